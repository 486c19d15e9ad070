# Every command a developer or CI runs. The README names these targets, nothing else.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export AWS_EC2_METADATA_DISABLED := true
export CARGO_TERM_COLOR ?= never

.PHONY: setup test lint fmt check-template check-release demo bench fuzz

## setup: create .venv with the pinned Python tools (moto, cfn-lint, SDK clients, cargo-lambda)
setup:
	@scripts/setup.sh

## test: formatting, clippy, the template check, the release build check and every test against
## the local clouds
test: setup lint check-template check-release
	cargo test --workspace --locked --no-fail-fast

## lint: rustfmt and clippy with warnings denied
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## fmt: format the code
fmt:
	cargo fmt --all

## check-template: cfn-lint on template.yaml
check-template: setup
	cfn-lint template.yaml

## check-release: `cargo lambda build --release` of every function (x86_64, linked with zig), then
## fails naming any symbol of a `bootstrap` that needs a glibc newer than 2.34 (provided.al2023)
check-release: setup
	scripts/check-release.sh

## demo: the pipeline on the local clouds, printing what happened. It builds like `make test`
## (test profile, same features), so the binaries are reused rather than compiled twice.
demo: setup
	cargo test --workspace --locked --no-run
	target/debug/demo

## bench: copy engine vs rclone and a raw GET on 127.0.0.1, cold starts; writes docs/benchmarks.md
## (BENCH_SIZES=256M,1G,4G BENCH_RUNS=5 BENCH_COLD_RUNS=20 by default)
bench: setup
	scripts/bench.sh

## fuzz: each cargo-fuzz target in fuzz/ for FUZZ_SECONDS (60 by default); needs
## `cargo install cargo-fuzz`. Not part of `make test`. RUSTC_BOOTSTRAP=1 lets the stable
## toolchain accept the sanitizer flags that cargo-fuzz passes.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := s3_key s3_event trigger_events oss_v4_canonical acs3_canonical
fuzz:
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 cargo fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done
