#!/usr/bin/env bash
# Installs the Debian packages whose files make up the `codelang` data set (the list is
# crates/datasets/src/codelang/packages.txt), so that
#   seqless data codelang --out data/codelang
# can read them. Needs root (or sudo) and Debian 12's package archive; about 320 MB of
# downloads. Recommends are not installed: only what the listed packages depend on.
set -euo pipefail
cd "$(dirname "$0")/.."
list=crates/datasets/src/codelang/packages.txt
packages=$(grep -v '^#' "$list" | awk 'NF == 2 { print $2 }')
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
$sudo apt-get update -q
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $packages
