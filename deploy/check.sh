#!/usr/bin/env bash
# Checks deploy/template.yaml offline: cfn-lint (errors, warnings and informational
# findings, nothing suppressed) and, where the AWS SAM CLI is installed, `sam validate
# --lint`. Installs nothing: a missing tool is named with the command that installs it.
set -euo pipefail

cd "$(dirname "$0")"
if ! command -v cfn-lint >/dev/null; then
    echo "deploy/check.sh: cfn-lint is missing; install it with: pip install cfn-lint" >&2
    exit 1
fi
cfn-lint --include-checks I -- template.yaml
echo "deploy/check.sh: cfn-lint $(cfn-lint --version | awk '{print $2}'): template.yaml clean"
if command -v sam >/dev/null; then
    # sam validate needs a region to name in the transform; it sends nothing to AWS, and
    # telemetry is off so that it sends nothing anywhere.
    AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0 \
        sam validate --lint --template template.yaml
else
    echo "deploy/check.sh: sam not installed (pip install aws-sam-cli); skipped sam validate --lint"
fi
