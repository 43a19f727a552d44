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
# The Redis (or Valkey) `make demo-redis` keeps the sessions in; it must be
# running. `REDIS_CLUSTER=url,url,...` uses a cluster instead.
REDIS ?= redis://127.0.0.1:6379/
REDIS_CLUSTER ?=
# The store, pre-initialised (`make preinit`), for hosts that load a .wasm;
# next to the store component the artifacts crate builds.
PREINIT_WASM := $(CARGO_TARGET_DIR)/component/wasm32-wasip2/component/sqlite_sessions.preinit.wasm
PREINIT_KV_WASM := $(CARGO_TARGET_DIR)/component-kv/wasm32-wasip2/component/sqlite_sessions_kv.preinit.wasm
# The edge demo composed with the pre-initialised store (`make edge-wasm`),
# which `make demo` serves.
EDGE_DEMO_WASM := $(CARGO_TARGET_DIR)/component/wasm32-wasip2/component/edge_demo.preinit.wasm

.PHONY: setup polyglot-setup component component-kv demo demo-redis demo-script edge-wasm edge-wasm-kv preinit preinit-kv test lint doc bench
setup:
	@bash .ci/setup.sh

# Tools for the polyglot conformance tests (componentize-py, componentize-js,
# jco, wac-cli): installed where missing, see polyglot/setup.sh.
polyglot-setup:
	@bash polyglot/setup.sh

component: setup
	cargo build --profile component -p sqlite-sessions --target wasm32-wasip2

# The store over wasi:keyvalue (world session-store-kv), for Spin or any host
# with wasi:keyvalue 0.2.0-draft2; prints the path of sqlite_sessions_kv.wasm
# (the artifacts crate builds it apart from the directory build).
component-kv: setup
	cargo run $(CARGO_PROFILE) --example paths -- store-kv

# Builds the app, composes it with the pre-initialised store (make
# edge-wasm), and serves it on http://127.0.0.1:$(PORT)/ with ./sessions as
# the session directory.
demo: edge-wasm
	cargo run $(CARGO_PROFILE) --bin edge-server -- --dir ./sessions --port $(PORT) --component $(EDGE_DEMO_WASM)

# The same demo with its sessions in Redis or Valkey, which must already be
# running (Debian's redis-server, which `make setup` installs: `redis-server
# --save '' --bind 127.0.0.1` in another terminal), through the store's
# key-value build. Start several on other PORTs to share one Redis.
demo-redis: setup
	cargo run $(CARGO_PROFILE) --bin edge-server -- $(if $(REDIS_CLUSTER),--kv-cluster $(REDIS_CLUSTER),--kv $(REDIS)) --port $(PORT)

# The scripted, HTTP-free walk through login / counter / flash / logout.
demo-script: setup
	cargo run $(CARGO_PROFILE) --example demo -- --dir ./sessions

# Just the composed demo component, for `wasmtime serve` or Spin: the app
# plugged with the pre-initialised store (each request skips compiling SQL);
# prints its path.
edge-wasm: setup
	cargo run $(CARGO_PROFILE) --bin preinit -- --edge-demo $(EDGE_DEMO_WASM) $(PREINIT_WASM)

# The key-value build's store, app and composed demo, for Spin: prints their
# paths (sqlite_sessions_kv.wasm, edge_app_kv.wasm, edge_demo_kv.wasm).
edge-wasm-kv: setup
	cargo run $(CARGO_PROFILE) --example paths -- store-kv edge-app-kv edge-demo-kv

# The store with its `wizer-initialize` already run and snapshotted
# (host/src/preinit.rs): plug this one into an app for `wasmtime serve` or
# Spin, and each request skips compiling SQL.
preinit: setup
	cargo run $(CARGO_PROFILE) --bin preinit -- $(PREINIT_WASM)

# The key-value build, pre-initialised the same way (for Spin).
preinit-kv: setup
	cargo run $(CARGO_PROFILE) --bin preinit -- --kv $(PREINIT_KV_WASM)

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
	cargo clippy $(CARGO_PROFILE) -p edge-app --features kv --target wasm32-wasip2 -- -D warnings

# The API docs of every crate; broken intra-doc links (and every other
# rustdoc warning) fail it.
doc: setup
	RUSTDOCFLAGS="-D warnings" cargo doc $(CARGO_PROFILE) --workspace --no-deps

# The side-by-side benchmark (BENCHMARKS.md); pass flags with
# `make bench ARGS="--durability process-crash"`.
bench: setup
	cargo run $(CARGO_PROFILE) --bin bench -- $(ARGS)
