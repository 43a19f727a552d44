//! Connections through the `sessions` VFS.

use super::DbOptions;
use super::Durability;
use crate::error::{Error, Result, StorageKind};
use crate::vfs;
use rusqlite::{Connection, OpenFlags};
use std::time::Duration;

/// A connection through the `sessions` VFS (its lock, lease and I/O), with
/// the store's pragmas. Every SQLite file in the directory is opened this
/// way, so they all follow one lock protocol.
pub(crate) fn connect(path: &str, flags: OpenFlags, opts: DbOptions) -> Result<Connection> {
    let uri = vfs::uri(path, settings_of(opts));
    connect_uri(&uri, flags, opts)
}

/// What the VFS opens a session file with.
pub(super) fn settings_of(opts: DbOptions) -> vfs::Settings {
    vfs::Settings {
        lease: Duration::from_millis(opts.lock_lease_ms.into()),
        durable: opts.durability == Durability::PowerLoss,
        shared: opts.shared_directory,
    }
}

pub(super) fn connect_uri(uri: &str, flags: OpenFlags, opts: DbOptions) -> Result<Connection> {
    vfs::register().map_err(|e| Error::storage(StorageKind::Io, e))?;
    let conn = Connection::open_with_flags_and_vfs(
        uri,
        flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        vfs::VFS_NAME,
    )?;
    conn.busy_timeout(Duration::from_millis(opts.busy_timeout_ms.into()))?;
    // The rollback journal lives in SQLite's own memory: with this VFS it
    // never reaches storage anyway (a commit publishes the whole file), and
    // a journal SQLite believes is a file gets a random header nonce, which
    // costs each instance a host call to seed SQLite's PRNG. `synchronous`
    // stays FULL: the VFS commits at SQLite's sync of the database, whether
    // or not it fsyncs (see `vfs`).
    conn.query_row("PRAGMA journal_mode = MEMORY", [], |_| Ok(()))?;
    // Statement journals and sorts stay in memory (no temporary files)
    // because SQLite is built with SQLITE_TEMP_STORE=3 (`.cargo/config.toml`),
    // which saves a `PRAGMA temp_store` per connection.
    Ok(conn)
}
