#!/usr/bin/env bash
# Runs scripts/onnx_baseline.py in a virtual environment of its own, creating it and
# installing onnx, onnxruntime, numpy and safetensors from PyPI on first use.
#
#   scripts/onnx_baseline.sh MODEL_DIR --bytes 65536,1048576 --threads 1 --runs 5
#
# The environment lives in $SEQLESS_ONNX_VENV (default: target/onnx-venv, which git
# ignores); delete it to reinstall. Needs python3 with the venv module.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SEQLESS_ONNX_VENV:-$root/target/onnx-venv}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null; then
    echo "error: $python not found; install Python 3 (e.g. apt-get install python3 python3-venv)" >&2
    exit 2
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnx, onnxruntime, numpy, safetensors' 2>/dev/null; then
    echo "creating $venv (onnx, onnxruntime, numpy, safetensors)" >&2
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet \
        'numpy>=1.24' 'onnx>=1.15' 'onnxruntime>=1.17' 'safetensors>=0.4'
fi
exec "$venv/bin/python" "$root/scripts/onnx_baseline.py" "$@"
