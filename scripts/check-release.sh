#!/usr/bin/env bash
# Builds every function under functions/ the way `sam build` does (`cargo lambda build --release`,
# linked with zig for x86_64-unknown-linux-gnu), then checks that no `bootstrap` needs a glibc
# symbol newer than 2.34, the glibc of provided.al2023. The self-test runs first, so a check that
# cannot fail is noticed.
#
# Only x86_64 is built here: an arm64 build needs the aarch64 Rust target, which this machine does
# not have. Users who deploy with Architecture=arm64 build on their own machines with `sam build`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/check-glibc.sh --self-test

packages=()
for manifest in functions/*/Cargo.toml; do
  packages+=(-p "$(basename "$(dirname "$manifest")")")
done

started=$(date +%s)
nice -n 10 cargo lambda build --release --x86-64 --locked "${packages[@]}"
echo "check-release: cargo lambda build took $(($(date +%s) - started)) s"

binaries=()
for manifest in functions/*/Cargo.toml; do
  binaries+=("target/lambda/$(basename "$(dirname "$manifest")")/bootstrap")
done
scripts/check-glibc.sh "${binaries[@]}"
