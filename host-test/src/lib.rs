//! What the tests share: the store component the artifacts crate built (in
//! its directory and its key-value build), a process-wide [`Runtime`] of
//! each, the backends a test can run on (a directory, or a bucket in a real
//! Redis, standalone or cluster), the fixtures (a temporary session
//! directory or bucket, file names, integrity checks), and the increment
//! worker that the concurrency tests run in threads and the `stress` binary
//! in processes, and the edge demo's flows over HTTP.

pub mod backend;
pub mod fixtures;
pub mod http_flow;
pub mod redis_inspect;
pub mod stress;

pub use backend::Backend;

use std::path::Path;
use std::sync::OnceLock;

use sqlite_sessions_host::{Runtime, RuntimeOptions};

/// The store component.
///
/// # Panics
/// If it was not built, with the reason (a missing toolchain names what is
/// missing): a test that needs it fails, it never skips.
pub fn component() -> &'static Path {
    sqlite_sessions_artifacts::store().unwrap_or_else(|e| panic!("{e}"))
}

/// Default runtime options, with the compiled component cached beside it
/// so that each test binary and helper process skips Cranelift.
pub fn runtime_options() -> RuntimeOptions {
    RuntimeOptions::cached_beside(component())
}

/// A runtime of the store component with `options`.
///
/// # Panics
/// If the component cannot be loaded.
pub fn runtime_with(options: RuntimeOptions) -> Runtime {
    Runtime::from_file_with(component(), options)
        .unwrap_or_else(|e| panic!("loading the store component: {e:?}"))
}

/// A process-wide runtime with [`runtime_options`], created on first use,
/// so tests share one compiled component.
pub fn runtime() -> &'static Runtime {
    static SHARED: OnceLock<Runtime> = OnceLock::new();
    SHARED.get_or_init(|| runtime_with(runtime_options()))
}

/// The store's key-value build (world `session-store-kv`).
///
/// # Panics
/// If it was not built, with the reason.
pub fn component_kv() -> &'static Path {
    sqlite_sessions_artifacts::store_kv().unwrap_or_else(|e| panic!("{e}"))
}

/// A process-wide runtime of the key-value build, created on first use.
pub fn runtime_kv() -> &'static Runtime {
    static SHARED: OnceLock<Runtime> = OnceLock::new();
    SHARED.get_or_init(|| {
        Runtime::from_file_with(
            component_kv(),
            RuntimeOptions::cached_beside(component_kv()),
        )
        .unwrap_or_else(|e| panic!("loading the key-value store component: {e:?}"))
    })
}

/// The process-wide runtime of the build `backend` needs.
pub fn runtime_for(backend: Backend) -> &'static Runtime {
    if backend.is_kv() {
        runtime_kv()
    } else {
        runtime()
    }
}
