# The two README commands are `make demo` and `make test`. Each runs
# .ci/setup.sh first, which installs whatever is missing. The C toolchain
# for the component's SQLite is named in .cargo/config.toml.

# wasmtime takes minutes to compile: keep build output outside the checkout so
# that fresh clones (and CI) reuse it. Override to build elsewhere.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/sqlite-sessions/target

# Tests, tools and the demo share one release build: wasmtime in debug mode
# compiles the component very slowly, and two profiles would compile
# wasmtime twice. The tools run with `--bin`/`--example`, not `-p`, so that
# their dependencies get the features `make test` gave them (see
# `default-members` in Cargo.toml) and nothing is compiled again.
CARGO_PROFILE := --release

# The edge demo's port on 127.0.0.1: `make demo PORT=9000`.
PORT ?= 8080
# The store, pre-initialised (`make preinit`), for hosts that load a .wasm;
# next to the store component the artifacts crate builds.
PREINIT_WASM := $(CARGO_TARGET_DIR)/component/wasm32-wasip2/component/sqlite_sessions.preinit.wasm

.PHONY: setup polyglot-setup component demo demo-script edge-wasm preinit test lint doc bench
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
	cargo run $(CARGO_PROFILE) --bin edge-server -- --dir ./sessions --port $(PORT)

# The scripted, HTTP-free walk through login / counter / flash / logout.
demo-script: setup
	cargo run $(CARGO_PROFILE) --example demo -- --dir ./sessions

# Just the composed demo component, for `wasmtime serve` or Spin: prints its
# path.
edge-wasm: setup
	cargo run $(CARGO_PROFILE) --example paths -- edge-demo

# The store with its `wizer-initialize` already run and snapshotted
# (host/src/preinit.rs): plug this one into an app for `wasmtime serve` or
# Spin, and each request skips compiling SQL.
preinit: setup
	cargo run $(CARGO_PROFILE) --bin preinit -- $(PREINIT_WASM)

test: setup polyglot-setup
	cargo test $(CARGO_PROFILE) --workspace
	# The storage core on the key-value backend, natively (in-memory buckets).
	cargo test $(CARGO_PROFILE) -p sqlite-sessions --features kv --lib --test native

lint: setup
	cargo fmt --all -- --check
	cargo clippy $(CARGO_PROFILE) --workspace --all-targets -- -D warnings
	cargo clippy --profile component -p sqlite-sessions --target wasm32-wasip2 -- -D warnings
	cargo clippy $(CARGO_PROFILE) -p sqlite-sessions --features kv --all-targets -- -D warnings
	cargo clippy --profile component -p sqlite-sessions --features kv --target wasm32-wasip2 -- -D warnings
	cargo clippy $(CARGO_PROFILE) -p edge-app --target wasm32-wasip2 -- -D warnings

# The API docs of every crate; broken intra-doc links (and every other
# rustdoc warning) fail it.
doc: setup
	RUSTDOCFLAGS="-D warnings" cargo doc $(CARGO_PROFILE) --workspace --no-deps

# The side-by-side benchmark (BENCHMARKS.md); pass flags with
# `make bench ARGS="--durability process-crash"`.
bench: setup
	cargo run $(CARGO_PROFILE) --bin bench -- $(ARGS)
