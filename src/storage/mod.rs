//! One session's SQLite database: how it is opened, its schema, its
//! transactions and its rows.
//!
//! Each call runs in its own short transaction, as in the seed, so concurrent
//! requests that write different keys never lose each other's writes. A
//! reserved row carries the timing facts, running totals for the quotas (so
//! checking them never scans values), and a `destroyed` flag (see `meta`).
//!
//! Layers, bottom up: `connect` (a connection through the `sessions` VFS),
//! `tx` (the write transaction), `meta` and `rows` (what a session holds),
//! `template` (a connection prepared ahead of time), `session_db` (one open
//! session: read, write, create, copy, destroy).

mod connect;
mod meta;
mod retry;
mod rows;
mod session_db;
mod sql;
pub(crate) mod template;
mod tx;

#[cfg(not(feature = "kv"))]
pub(crate) use connect::connect;
pub use meta::Meta;
pub use rows::{clear, contains, get, keys, put, take, touch};
pub use session_db::{integrity_check, SessionDb};
#[cfg(not(feature = "kv"))]
pub use tx::WriteTx;

use crate::expiry::ExpiryDefaults;

/// Bumped when the file layout changes; stored in `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 2;

/// One table. Unless pre-initialised (see `template`), every instance of
/// the component parses a session's schema afresh, and compiles each
/// statement it runs afresh: in wasm that SQL compilation was half of a
/// request's CPU time, so the layout keeps both small. (Not `WITHOUT
/// ROWID`: its rows overflow to their own pages beyond about 1 KiB, which
/// made a session of 1 KiB values four times larger.)
pub(super) const SCHEMA: &str = "
    CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, val BLOB NOT NULL);
    PRAGMA user_version = 2;
";

/// How much a committed write survives. Both keep every session consistent
/// (old or new version, never torn: a commit renames a complete new file
/// over the old one) when an instance traps, a process dies or the power
/// fails; they differ in whether the last commits may be lost to an OS crash
/// or power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The new version is fsynced before it is renamed into place, so a
    /// power cut leaves either version complete.
    #[default]
    PowerLoss,
    /// No fsync. A committed write survives the instance or process dying
    /// (it is in the OS page cache), not an OS crash, which may leave the
    /// renamed file without its data. On tmpfs, which a power cut empties
    /// anyway, this loses nothing.
    ProcessCrash,
}

/// Per-connection settings, from the store config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbOptions {
    /// How long to wait for another request's lock before `busy`.
    pub busy_timeout_ms: u32,
    /// The lock lease (see `vfs::lease`).
    pub lock_lease_ms: u32,
    pub durability: Durability,
    /// Several hosts use the directory at once (see `StoreConfig`).
    pub shared_directory: bool,
    /// The store's expiry defaults, to stamp each session file's mtime with
    /// its expiry at every commit (the sweep's hint, see `sweep`). `None`
    /// leaves the commit time.
    pub expiry_hint: Option<ExpiryDefaults>,
}
