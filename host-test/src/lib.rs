//! A wasmtime 48 embedding of the `sqlite-sessions` component, driven through
//! its WIT interface (`wit/store.wit`, world `session-store`).
//!
//! ```no_run
//! use host_test::{default_config, Runtime};
//!
//! # fn main() -> anyhow::Result<()> {
//! let dir = std::env::temp_dir();
//! let runtime = Runtime::new()?;
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

pub mod admin;
mod clock;
pub mod host_calls;
pub mod http_server;
mod memory;
pub mod preinit;
mod request;
pub mod rng;
mod runtime;
pub mod stress;

/// The generated bindings. Private: the types a caller needs are re-exported
/// below, and calls go through [`Request`].
mod bindings {
    wasmtime::component::bindgen!({
        world: "session-store",
        path: "../wit",
        // So tests can `assert_eq!` on results and errors.
        additional_derives: [PartialEq, Eq],
    });
}

pub use admin::AdminRef;
pub use bindings::exports::sqlite_sessions::store::sessions::{
    BatchError, BatchOp, BatchResult, Config, CookieConfig, Durability, Error, ExpirySettings,
    KeyDelta, KeyPath, KeyPathValue, KeyValue, LimitExceeded, LimitKind, PathSegment, SameSite,
    SweepProgress,
};
pub use clock::FakeClock;
pub use host_calls::{HostCallCounts, HostCallEvent};
pub use memory::MemoryStats;
pub use request::{
    Request, RequestOptions, RequestState, SessionHandle, SessionRef, StoreHandle, StoreRef,
};
pub use runtime::{default_component_path, Runtime, RuntimeOptions};

/// Where [`Runtime::request`] preopens the session directory in the guest.
pub const DEFAULT_GUEST_DIR: &str = "/sessions";

/// A `config` for [`DEFAULT_GUEST_DIR`] with every option left to the
/// component's default.
pub fn default_config() -> Config {
    Config {
        directory: DEFAULT_GUEST_DIR.to_owned(),
        max_key_bytes: None,
        max_value_bytes: None,
        max_session_bytes: None,
        max_keys: None,
        max_live_sessions: None,
        idle_timeout_seconds: None,
        absolute_timeout_seconds: None,
        activity_granularity_seconds: None,
        busy_timeout_ms: None,
        lock_lease_ms: None,
        durability: None,
        file_name_secret: None,
        signing_keys: None,
        cookie: default_cookie_config(),
    }
}

/// A `cookie-config` with every field left to the component's default.
pub fn default_cookie_config() -> CookieConfig {
    CookieConfig {
        name: None,
        path: None,
        domain: None,
        secure: None,
        http_only: None,
        same_site: None,
        persistent: None,
    }
}
