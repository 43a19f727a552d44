//! The component driven in-process, one module per concern. One test binary
//! (as in wasmtime's `tests/all`): wasmtime and Cranelift are linked once,
//! and every module shares one compiled component (`host_test::runtime`,
//! and `host_test::runtime_kv` for the key-value build).
//!
//! The promises both builds make run on every backend: a test `case`
//! written once as `fn case(backend: Backend)` becomes `case::dir`,
//! `case::redis` and `case::cluster` (`host_test::on_every_backend!`), the
//! last two on a real redis-server and a three-master cluster that the test
//! process starts on loopback and stops when it exits. `keyvalue` holds what
//! only the key-value build has; `spin_imports` checks its imports against
//! Spin's platform world.
//!
//! Run one module with `cargo test --release --test component
//! <module>::`. The tests that need other processes, the CLI, HTTP or other
//! languages are binaries of their own: `crash_process`, `admin_cli`,
//! `e2e_http`, `polyglot`.

mod api;
mod atomic;
mod concurrency;
mod cookies;
mod directory_check;
mod exports;
mod faults;
mod host_calls;
mod hostile_fs;
mod hostile_input;
mod keyvalue;
mod lifecycle;
mod live_quota;
mod memory;
mod model;
mod preinit;
mod regenerate;
mod reuse;
mod security;
mod signing;
mod smoke;
mod spin_imports;
mod sweep;
