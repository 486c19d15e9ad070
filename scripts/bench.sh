#!/usr/bin/env bash
# Runs `make bench`: installs the peer tools when missing (s3s-fs into .bench-tools/, rclone from
# requirements-bench.txt into .venv), builds the harness and every function in release mode,
# and runs the harness, which starts and stops its servers on 127.0.0.1 itself.
# Settings: BENCH_SIZES (default 256M,1G,4G), BENCH_RUNS (5), BENCH_COLD_RUNS (20), BENCH_TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_EC2_METADATA_DISABLED=true
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
tools=$PWD/.bench-tools

if [[ ! -x $tools/bin/s3s-fs ]]; then
  echo "bench: installing s3s-fs 0.14.1 into $tools"
  cargo install s3s-fs --locked --version 0.14.1 --features binary --root "$tools"
fi
if [[ ! -x .venv/bin/rclone ]]; then
  echo "bench: installing requirements-bench.txt into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
fi

functions=()
for manifest in functions/*/Cargo.toml; do
  functions+=(-p "$(basename "$(dirname "$manifest")")")
done
cargo build --release --locked -p bench "${functions[@]}"

BENCH_S3S_FS=$tools/bin/s3s-fs \
BENCH_RCLONE=$PWD/.venv/bin/rclone \
BENCH_TARGET_DIR=$target_dir \
  "$target_dir/release/bench"
