//! sqlite-sessions: server-side web sessions, one SQLite file per session and
//! one row per key, shipped as a WebAssembly component.
//!
//! The storage core is plain Rust and builds natively too; `component` is the
//! thin wit-bindgen layer that exports it as the `sqlite-sessions:store`
//! interfaces.
//!
//! Modules, bottom up (each uses only modules above it in this list):
//! - `vfs`: the `sessions` SQLite VFS and the filesystem beneath it; uses
//!   nothing else of the crate.
//! - `error`, `ids`, `layout`, `limits`, `expiry`, `codec`, `nested`: values
//!   and rules with no storage of their own.
//! - `storage`: one session's database.
//! - `cookies`, `config`: the store's settings, checked once.
//! - `directory`, `live_count`, `sweep`, `admin`, `self_check`: jobs over
//!   the whole directory.
//! - `ops`, `session`, `store`: the API.
//! - `component`: the wit-bindgen glue (wasm only).

mod admin;
pub mod codec;
mod config;
mod cookies;
mod directory;
mod error;
mod expiry;
mod ids;
pub mod layout;
mod limits;
mod live_count;
pub mod nested;
mod ops;
mod self_check;
mod session;
mod storage;
mod store;
mod sweep;
mod vfs;

#[cfg(target_arch = "wasm32")]
mod component;

pub use admin::{Entry, Listing, OtherEntry, OtherKind, SessionDump, SessionInfo};
pub use config::StoreConfig;
pub use cookies::{CookieSettings, SameSite, Signer};
pub use error::{DirectoryCheck, Error, LimitKind, Result, StorageKind};
pub use expiry::{ExpiryDefaults, Overrides};
pub use ids::SessionId;
pub use limits::Limits;
pub use nested::Segment;
pub use ops::{BatchError, Op, Outcome};
pub use session::Session;
pub use storage::{integrity_check, DbOptions, Durability};
pub use store::Store;
pub use sweep::SweepProgress;
pub use vfs::CheckResult;

/// Pre-initialisation: a connection with a session's schema read and its
/// statements compiled ahead of time, which the next session opened on this
/// thread takes (in the component, the `wizer-initialize` export prepares it
/// before the instance is snapshotted).
pub mod template {
    pub use crate::storage::template::{discard, is_ready, prepare};
}
