# The two README commands are `make demo` and `make test`. Each runs
# .ci/setup.sh first, which installs whatever is missing. The C toolchain
# for the component's SQLite is named in .cargo/config.toml.
# wasmtime takes minutes to compile: keep build output outside the checkout so
# that fresh clones (and CI) reuse it. Override to build elsewhere.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/sqlite-sessions/target

# Tests and the demo share one release build: wasmtime in debug mode compiles
# the component very slowly, and two profiles would compile wasmtime twice.
CARGO_PROFILE := --release

# The edge demo's port on 127.0.0.1: `make demo PORT=9000`.
PORT ?= 8080
# The store, pre-initialised (`make preinit`), for hosts that load a .wasm;
# next to the store component the artifacts crate builds.
PREINIT_WASM := $(CARGO_TARGET_DIR)/component/wasm32-wasip2/component/sqlite_sessions.preinit.wasm

.PHONY: setup polyglot-setup demo demo-script edge-wasm preinit test lint bench component
setup:
	@bash .ci/setup.sh

# Tools for the polyglot conformance tests (componentize-py, componentize-js,
# jco, wac-cli): installed where missing, see polyglot/setup.sh.
polyglot-setup:
	@bash polyglot/setup.sh

component: setup
	cargo build --profile component -p sqlite-sessions --target wasm32-wasip2

# Builds the app, composes it with the store (wac plug), and serves it on
# http://127.0.0.1:$(PORT)/ with ./sessions as the session directory.
demo: setup
	cargo run $(CARGO_PROFILE) -p edge-server -- --dir ./sessions --port $(PORT)

# The scripted, HTTP-free walk through login / counter / flash / logout.
demo-script: setup
	cargo run $(CARGO_PROFILE) -p sqlite-sessions-host --example demo -- --dir ./sessions

# Just the composed demo component, for `wasmtime serve` or Spin: prints its
# path.
edge-wasm: setup
	cargo run $(CARGO_PROFILE) -p sqlite-sessions-artifacts --example paths -- edge-demo

# The store with its `wizer-initialize` already run and snapshotted
# (host/src/preinit.rs): plug this one into an app for `wasmtime serve` or
# Spin, and each request skips compiling SQL.
preinit: setup
	cargo run $(CARGO_PROFILE) -p preinit -- $(PREINIT_WASM)

test: setup polyglot-setup
	cargo test $(CARGO_PROFILE) --workspace

lint: setup
	cargo fmt --all -- --check
	cargo clippy $(CARGO_PROFILE) --workspace --all-targets -- -D warnings
	cargo clippy --profile component -p sqlite-sessions --target wasm32-wasip2 -- -D warnings
	cargo clippy $(CARGO_PROFILE) -p edge-app --target wasm32-wasip2 -- -D warnings
