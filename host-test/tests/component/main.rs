//! The component driven in-process, one module per concern. One test binary
//! (as in wasmtime's `tests/all`): wasmtime and Cranelift are linked once,
//! and every module shares one compiled component (`host_test::runtime`).
//!
//! Run one module with `cargo test --release --test component
//! <module>::`. The tests that need other processes, the CLI, HTTP or other
//! languages are binaries of their own: `crash_process`, `admin_cli`,
//! `e2e_http`, `polyglot`.

mod api;
mod atomic;
mod concurrency;
mod cookies;
mod exports;
mod faults;
mod host_calls;
mod hostile_fs;
mod hostile_input;
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
mod sweep;
