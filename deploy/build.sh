#!/usr/bin/env bash
# Builds the Lambda deployment zip: the `seqless` binary as `bootstrap` (glibc <= 2.34, the
# glibc of Amazon Linux 2023 and so of the provided.al2023 runtime) plus the model, in
# deploy/dist/seqless-function.zip, which deploy/template.yaml's functions point at.
#
#   deploy/build.sh [--arch x86_64|arm64] [--model DIR]
#
# Needs cargo-lambda (`pip install cargo-lambda`, which brings zig as the C compiler and
# linker that targets an older glibc). A release build: minutes, so it is not part of CI.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
arch=x86_64
model="$repo/models/langid"
# The newest glibc symbol version Amazon Linux 2023 provides.
max_glibc=2.34

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch=${2:?--arch needs x86_64 or arm64}; shift 2 ;;
        --model) model=${2:?--model needs a directory}; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

case "$arch" in
    x86_64) rust_target=x86_64-unknown-linux-gnu; elf_machine="Advanced Micro Devices X86-64" ;;
    arm64) rust_target=aarch64-unknown-linux-gnu; elf_machine="AArch64" ;;
    *) echo "build.sh: --arch $arch: expected x86_64 or arm64" >&2; exit 2 ;;
esac

if ! rustup target list --installed 2>/dev/null | grep -qx "$rust_target"; then
    cat >&2 <<EOF
build.sh: the Rust target $rust_target is not installed here, so $arch cannot be built.
On a machine with network access to rustup, run:
    rustup target add $rust_target
    pip install cargo-lambda
    deploy/build.sh --arch $arch
then deploy with --parameter-overrides Architecture=$arch.
EOF
    exit 2
fi
if ! command -v cargo-lambda >/dev/null; then
    echo "build.sh: cargo-lambda is missing; install it with: pip install cargo-lambda" >&2
    exit 2
fi
if [ ! -f "$model/config.json" ] || [ ! -f "$model/model.safetensors" ]; then
    echo "build.sh: --model $model: expected config.json and model.safetensors there" >&2
    exit 2
fi

dist="$repo/deploy/dist"
stage="$dist/function"
rm -rf "$stage" "$dist/seqless-function.zip"
mkdir -p "$stage/model"

cd "$repo"
start=$(date +%s)
# `function`: the binary is the functions' bootstrap; `aws`: the master on EC2 runs the same
# binary as `serve --platform lambda`.
cargo lambda build --release -p seqless --bin seqless --features function,aws \
    --target "$rust_target.$max_glibc" --lambda-dir "$dist/lambda"
echo "build.sh: cargo lambda build took $(( $(date +%s) - start )) s"

bootstrap="$dist/lambda/seqless/bootstrap"
machine=$(readelf -h "$bootstrap" | sed -n 's/^ *Machine: *//p')
if [ "$machine" != "$elf_machine" ]; then
    echo "build.sh: $bootstrap is built for '$machine', not $arch ($elf_machine)" >&2
    exit 1
fi
newest=$(objdump -T "$bootstrap" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
if [ "$(printf '%s\n%s\n' "$newest" "$max_glibc" | sort -V | tail -n1)" != "$max_glibc" ]; then
    echo "build.sh: $bootstrap needs GLIBC_$newest, newer than Amazon Linux 2023's $max_glibc" >&2
    exit 1
fi
echo "build.sh: $bootstrap: $machine, newest glibc symbol GLIBC_$newest (limit $max_glibc)"

cp "$bootstrap" "$stage/bootstrap"
cp "$model/config.json" "$model/model.safetensors" "$stage/model/"
(cd "$stage" && zip -q -r -X ../seqless-function.zip bootstrap model)
ls -l "$stage/bootstrap" "$dist/seqless-function.zip"
echo "build.sh: wrote deploy/dist/seqless-function.zip (bootstrap + model/ from $model)"
