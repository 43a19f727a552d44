//! Embeds the `sqlite-sessions` component in wasmtime 48 and drives it
//! through its WIT interface (`wit/store.wit`, world `session-store`, or
//! `session-store-kv` for the key-value build).
//!
//! A [`Runtime`] compiles, links and pre-instantiates the component once;
//! each [`Request`] is a fresh instance of it, as a server that isolates
//! requests would make, with its [`SessionStorage`]: the host's session
//! directory preopened, or, for the key-value build, the buckets of a
//! [`keyvalue::Buckets`] (Redis or Valkey, standalone or cluster, or
//! memory) behind `wasi:keyvalue`.
//! With [`RuntimeOptions::max_instance_reuse_count`] above 1 an instance
//! serves up to that many requests (as `wasmtime serve
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
//! The key-value build takes buckets instead of a directory, and its
//! `config.directory` names the bucket:
//!
//! ```no_run
//! use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions};
//! use sqlite_sessions_host::{default_config, Runtime};
//!
//! # fn main() -> anyhow::Result<()> {
//! let runtime = Runtime::from_file("sqlite_sessions_kv.wasm")?;
//! let buckets = Buckets::builder()
//!     .redis("default", "redis://127.0.0.1:6379/", &RedisOptions::default())?
//!     .build();
//! let mut req = runtime.request(&buckets)?;
//! let mut config = default_config();
//! config.directory = "default".into();
//! let store = req.open_store(&config)??;
//! # let _ = store;
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
//! ([`engine::pooling_config`]), pre-initialisation ([`preinit`]), the
//! host-call counter, which links into any store whose data can lend it a
//! [`HostCallsView`] ([`host_calls::add_to_linker`]), and the
//! `wasi:keyvalue` host, likewise ([`keyvalue::add_to_linker`]).

mod bindings;
mod calls;
mod clock;
mod config;
pub mod engine;
pub mod exports;
pub mod host_calls;
pub mod keyvalue;
mod memory;
pub mod preinit;
mod request;
mod runtime;
mod storage;
pub mod wasi;

pub use bindings::exports::sqlite_sessions::store::sessions::{
    BatchError, BatchOp, BatchResult, Config, CookieConfig, DirectoryCheck, DirectoryProblem,
    Durability, Error, ExpirySettings, KeyDelta, KeyPath, KeyPathValue, KeyValue, LimitExceeded,
    LimitKind, PathSegment, SameSite, StorageFailure, StorageKind, SweepProgress,
};
pub use calls::{AdminRef, SessionHandle, SessionRef, StoreHandle, StoreRef};
pub use clock::FakeClock;
pub use config::{default_config, default_cookie_config, DEFAULT_GUEST_DIR};
pub use host_calls::{HostCallCounter, HostCallCounts, HostCallEvent, HostCallsView};
pub use memory::MemoryStats;
pub use request::{Request, RequestOptions, RequestState};
pub use runtime::{Runtime, RuntimeOptions};
pub use storage::SessionStorage;

/// The records of the component's `admin` interface (operator views:
/// listings without ids, read-only inspection, the directory self-check),
/// returned by [`AdminRef`].
pub mod admin {
    pub use crate::bindings::exports::sqlite_sessions::store::admin::{
        CheckResult, Entry, Listing, OtherEntry, OtherKind, SessionDump, SessionInfo,
    };
}

// The README's embedding example, compiled with the other doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
