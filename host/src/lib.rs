//! Embeds the `sqlite-sessions` component in wasmtime 48 and drives it
//! through its WIT interface (`wit/store.wit`, world `session-store`).
//!
//! A [`Runtime`] compiles, links and pre-instantiates the component once;
//! each [`Request`] is a fresh instance of it, as a server that isolates
//! requests would make, with the host's session directory preopened. With
//! [`RuntimeOptions::max_instance_reuse_count`] above 1 an instance serves
//! up to that many requests (as `wasmtime serve
//! --max-instance-reuse-count`), each ended with [`Runtime::finish`]; an
//! instance that trapped, failed or still holds a resource is dropped.
//!
//! ```no_run
//! use sqlite_sessions_host::{default_config, Runtime};
//!
//! # fn main() -> anyhow::Result<()> {
//! let runtime = Runtime::from_file("sqlite_sessions.wasm")?;
//! let dir = std::env::temp_dir();
//!
//! let mut req = runtime.request(&dir)?; // a fresh instance; `dir` is `/sessions`
//! let store = req.open_store(&default_config())??;
//! let session = req.store(&store).create()?;
//! req.session(&session).set_json("user", r#"{"name":"ada"}"#)??;
//! let id = req.session(&session).id()?;
//! req.drop_session(session)?;
//! req.drop_store(store)?;
//! # let _ = id;
//! # Ok(())
//! # }
//! ```
//!
//! Every call returns `anyhow::Result<T>` with `T` exactly the WIT result
//! type: the outer error is a trap, the inner `Result<_, Error>` is the
//! component's own answer.
//!
//! The pieces a host of another shape needs are public too: the WASI
//! context that shows a guest nothing but its session directory
//! ([`wasi::session_ctx`]), the pooling-allocator settings
//! ([`engine::pooling_config`]), pre-initialisation ([`preinit`]), and the
//! host-call counter, which links into any store whose data can lend it a
//! [`HostCallsView`] ([`host_calls::add_to_linker`]).

mod bindings;
mod calls;
mod clock;
mod config;
pub mod engine;
pub mod exports;
pub mod host_calls;
mod memory;
pub mod preinit;
mod request;
mod runtime;
pub mod wasi;

pub use bindings::exports::sqlite_sessions::store::sessions::{
    BatchError, BatchOp, BatchResult, Config, CookieConfig, Durability, Error, ExpirySettings,
    KeyDelta, KeyPath, KeyPathValue, KeyValue, LimitExceeded, LimitKind, PathSegment, SameSite,
    StorageFailure, StorageKind, SweepProgress,
};
pub use calls::{AdminRef, SessionHandle, SessionRef, StoreHandle, StoreRef};
pub use clock::FakeClock;
pub use config::{default_config, default_cookie_config, DEFAULT_GUEST_DIR};
pub use host_calls::{HostCallCounter, HostCallCounts, HostCallEvent, HostCallsView};
pub use memory::MemoryStats;
pub use request::{Request, RequestOptions, RequestState};
pub use runtime::{Runtime, RuntimeOptions};

/// The records of the component's `admin` interface (operator views:
/// listings without ids, read-only inspection), returned by [`AdminRef`].
pub mod admin {
    pub use crate::bindings::exports::sqlite_sessions::store::admin::{
        Entry, Listing, OtherEntry, OtherKind, SessionDump, SessionInfo,
    };
}

// The README's embedding example, compiled with the other doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
