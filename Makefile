# The two README commands are `make demo` and `make test`. Each runs
# .ci/setup.sh first, which installs whatever is missing.

# Building the bundled SQLite for wasm32-wasip2 needs clang and Debian's
# wasi-libc headers; without -isystem, clang would pick up glibc's.
export CC_wasm32_wasip2 ?= clang-19
export AR_wasm32_wasip2 ?= llvm-ar-19
export CFLAGS_wasm32_wasip2 ?= -isystem /usr/include/wasm32-wasi
# wasmtime takes minutes to compile: keep build output outside the checkout so
# that fresh clones (and CI) reuse it. Override to build elsewhere.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/sqlite-sessions/target

# Tests and the demo share one release build: wasmtime in debug mode compiles
# the component very slowly, and two profiles would compile wasmtime twice.
CARGO_PROFILE := --release

.PHONY: setup polyglot-setup demo test lint bench component
setup:
	@bash .ci/setup.sh

# Tools for the polyglot conformance tests (componentize-py, componentize-js,
# jco, wac-cli): installed where missing, see polyglot/setup.sh.
polyglot-setup:
	@bash polyglot/setup.sh

component: setup
	cargo build --profile component -p sqlite-sessions --target wasm32-wasip2

demo: setup
	cargo run $(CARGO_PROFILE) -p host-test --bin demo -- --dir ./sessions

test: setup polyglot-setup
	cargo test $(CARGO_PROFILE) --workspace

lint: setup
	cargo fmt --all -- --check
	cargo clippy $(CARGO_PROFILE) --workspace --all-targets -- -D warnings
	cargo clippy --profile component -p sqlite-sessions --target wasm32-wasip2 -- -D warnings
