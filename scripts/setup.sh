#!/usr/bin/env bash
# Prepares a fresh machine for `make test` and `make demo`: the project virtualenv with the pinned
# Python tools (moto, cfn-lint, the Aliyun SDKs used as independent clients, cargo-lambda, zig).
# Safe to run again: it reinstalls only when requirements-dev.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "setup: installing requirements-dev.txt into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi

for tool in moto_server cfn-lint cargo-lambda; do
  if [[ ! -x .venv/bin/$tool ]]; then
    echo "setup: .venv/bin/$tool is missing after install; check requirements-dev.txt" >&2
    exit 1
  fi
done

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is not installed; install the Rust toolchain first" >&2
  exit 1
fi
echo "setup: ready ($(.venv/bin/python -c 'import moto; print("moto", moto.__version__)'), $(.venv/bin/cargo-lambda lambda --version | head -1))"
