//! One session's SQLite file: schema, transactions, and per-key rows.
//!
//! Each call runs in its own short transaction, as in the seed, so concurrent
//! requests that write different keys never lose each other's writes. A
//! one-row `meta` table carries the timing facts, running totals for the
//! quotas (so checking them never scans values), and a `destroyed` flag.
//!
//! Why the flag: a slower request may still hold a connection to a session
//! file that a logout has just deleted. Deleting unlinks the path but the old
//! connection keeps writing into the orphaned inode, silently. So destroy
//! first commits `destroyed = 1` and only then unlinks; every transaction
//! checks the flag first, and a write that arrives late fails with
//! `not-found` instead of vanishing (the shape of Rack CVE-2025-46336).

use crate::config::{ExpiryDefaults, Limits};
use crate::error::{Error, Result};
use crate::expiry::{self, Overrides, Timing};
use crate::vfs;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use std::time::Duration;

/// Bumped when the file layout changes; stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
    CREATE TABLE meta (
        one            INTEGER PRIMARY KEY CHECK (one = 1),
        created_ms     INTEGER NOT NULL,
        last_access_ms INTEGER NOT NULL,
        key_count      INTEGER NOT NULL,
        total_bytes    INTEGER NOT NULL,
        -- Per-session overrides of the store's defaults; NULL = default.
        idle_timeout_s     INTEGER,
        absolute_timeout_s INTEGER,
        persistent_cookie  INTEGER,
        destroyed      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY NOT NULL,
        val BLOB NOT NULL
    );
    PRAGMA user_version = 1;
";

/// The `meta` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub timing: Timing,
    pub overrides: Overrides,
    pub key_count: u64,
    pub total_bytes: u64,
}

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
    /// The store's expiry defaults, to stamp each session file's mtime with
    /// its expiry at every commit (the sweep's hint, see `sweep`). `None`
    /// leaves the commit time.
    pub expiry_hint: Option<ExpiryDefaults>,
}

/// An open session database.
pub struct SessionDb {
    conn: Connection,
    path: String,
    expiry_hint: Option<ExpiryDefaults>,
}

/// Starts a write transaction on `conn`: announced to the VFS, so its lock is
/// taken as the transaction starts (see `vfs::set_write_intent`).
pub(crate) fn begin_write(conn: &mut Connection) -> Result<Transaction<'_>> {
    let intent = vfs::WriteIntent::announce(conn);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    drop(intent);
    Ok(tx)
}

impl SessionDb {
    /// A read transaction: no lock (the VFS reads published versions only,
    /// see `vfs`).
    fn begin_read(&mut self) -> Result<Transaction<'_>> {
        Ok(self.conn.transaction()?)
    }

    fn begin_write(&mut self) -> Result<Transaction<'_>> {
        begin_write(&mut self.conn)
    }

    /// Commits `tx`, first stamping the file's mtime with the session's
    /// expiry so that a sweep can skip it unopened: no extra call, the VFS
    /// sets it on the new version before publishing it.
    fn commit(hint: Option<ExpiryDefaults>, tx: Transaction, meta: &Meta) -> Result<()> {
        if let Some(defaults) = hint {
            let at = expiry::expires_at_ms(meta.timing, &meta.overrides.apply(&defaults));
            vfs::set_commit_mtime(&tx, crate::sweep::hint_mtime(at));
        }
        Ok(tx.commit()?)
    }

    /// Opens the session file at `path` if it exists; never creates it.
    pub fn open_existing(path: &str, opts: DbOptions) -> Result<Option<SessionDb>> {
        match open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, opts) {
            Ok(db) => Ok(Some(db)),
            // CANTOPEN also covers permission problems, so ask the filesystem
            // (only on this rare path) whether the file is really absent.
            Err(_) if !matches!(vfs::fs::stat(path), Ok(Some(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the session file at `path` and runs `first_write` in the same
    /// transaction as the schema, so a new session appears complete or not at
    /// all. On failure the file is removed again.
    pub fn create_with<T>(
        path: &str,
        shard_dir: &str,
        opts: DbOptions,
        now_ms: i64,
        first_write: impl FnOnce(&Transaction, &mut Meta) -> Result<T>,
    ) -> Result<(SessionDb, Meta, T)> {
        match vfs::fs::create_dir(shard_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e.into()),
            _ => {}
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let mut db = open(path, flags, opts)?;
        let hint = db.expiry_hint;
        let outcome = (|| {
            let tx = db.begin_write()?;
            tx.execute_batch(SCHEMA)?;
            let mut meta = Meta {
                timing: Timing {
                    created_ms: now_ms,
                    last_access_ms: now_ms,
                },
                overrides: Overrides::default(),
                key_count: 0,
                total_bytes: 0,
            };
            tx.execute(
                "INSERT INTO meta (one, created_ms, last_access_ms, key_count, total_bytes)
                 VALUES (1, ?1, ?1, 0, 0)",
                [now_ms],
            )?;
            let out = first_write(&tx, &mut meta)?;
            save_meta(&tx, &meta)?;
            if meta.key_count == 0 {
                // As in `write`: a session left without keys is gone; the
                // caller deletes the file.
                mark_destroyed(&tx)?;
            }
            SessionDb::commit(hint, tx, &meta)?;
            Ok((meta, out))
        })();
        match outcome {
            Ok((meta, out)) => Ok((db, meta, out)),
            Err(e) => {
                drop(db);
                remove_files(path);
                Err(e)
            }
        }
    }

    /// Runs `f` in a read transaction, after checking the session still
    /// exists.
    pub fn read<T>(&mut self, f: impl FnOnce(&Transaction, &Meta) -> Result<T>) -> Result<T> {
        let _scope = vfs::ReadScope::begin(&self.conn);
        let tx = self.begin_read()?;
        let meta = live_meta(&tx)?;
        f(&tx, &meta)
    }

    /// Runs `f` in a write transaction, after checking the session still
    /// exists, and stores the updated meta row. If `f` leaves the session
    /// without keys it is marked destroyed in the same transaction; the
    /// caller then deletes the file with `delete_file`.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction, &mut Meta) -> Result<T>,
    ) -> Result<(Meta, T)> {
        let hint = self.expiry_hint;
        let tx = self.begin_write()?;
        let mut meta = live_meta(&tx)?;
        let out = f(&tx, &mut meta)?;
        save_meta(&tx, &meta)?;
        if meta.key_count == 0 {
            mark_destroyed(&tx)?;
        }
        SessionDb::commit(hint, tx, &meta)?;
        Ok((meta, out))
    }

    /// Copies this session, data and all, into a new file at `new_path`, then
    /// marks this one destroyed, all while holding this session's write lock.
    /// Nobody else knows the new file's id yet, and anyone waiting on the old
    /// one sees it destroyed when the lock is released: no observer ever finds
    /// both ids or neither alive. The caller deletes the old file afterwards.
    /// Renaming the file instead would leave connections that opened the old
    /// path locking a different lock file than new ones: two writers at once.
    pub fn copy_to_new_id(
        &mut self,
        new_path: &str,
        new_shard_dir: &str,
        opts: DbOptions,
        now_ms: i64,
    ) -> Result<(SessionDb, Meta)> {
        let tx = self.begin_write()?;
        let old = live_meta(&tx)?;
        let (new_db, new_meta, ()) =
            SessionDb::create_with(new_path, new_shard_dir, opts, now_ms, |ntx, meta| {
                let mut rows = tx.prepare("SELECT key, val FROM kv")?;
                let mut insert = ntx.prepare("INSERT INTO kv (key, val) VALUES (?1, ?2)")?;
                let mut rows = rows.query([])?;
                while let Some(row) = rows.next()? {
                    insert.execute(params![row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?])?;
                }
                // The absolute timeout runs from the session's first creation:
                // regenerating must not extend it.
                *meta = Meta {
                    timing: Timing {
                        created_ms: old.timing.created_ms,
                        last_access_ms: now_ms,
                    },
                    ..old
                };
                Ok(())
            })?;
        let committed = mark_destroyed(&tx).and_then(|()| Ok(tx.commit()?));
        if let Err(e) = committed {
            // The old session is intact; drop the copy.
            new_db.delete_file();
            return Err(e);
        }
        Ok((new_db, new_meta))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Marks the session destroyed (visible to every other connection) and
    /// deletes its file.
    pub fn destroy(mut self) -> Result<()> {
        let tx = self.begin_write()?;
        live_meta(&tx)?;
        mark_destroyed(&tx)?;
        tx.commit()?;
        self.delete_file();
        Ok(())
    }

    /// Closes the connection and removes the file (and any journal left by a
    /// crash). Only for a session already marked destroyed.
    pub fn delete_file(self) {
        let SessionDb { conn, path, .. } = self;
        drop(conn);
        remove_files(&path);
    }
}

fn open(path: &str, flags: OpenFlags, opts: DbOptions) -> Result<SessionDb> {
    Ok(SessionDb {
        conn: connect(path, flags, opts)?,
        path: path.to_string(),
        expiry_hint: opts.expiry_hint,
    })
}

/// A connection through the `sessions` VFS (its lock, lease and I/O), with
/// the store's pragmas. Every SQLite file in the directory is opened this
/// way, so they all follow one lock protocol.
pub(crate) fn connect(path: &str, flags: OpenFlags, opts: DbOptions) -> Result<Connection> {
    vfs::register().map_err(Error::Storage)?;
    let durable = opts.durability == Durability::PowerLoss;
    let conn = Connection::open_with_flags_and_vfs(
        vfs::uri(
            path,
            Duration::from_millis(opts.lock_lease_ms.into()),
            durable,
        ),
        flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        vfs::VFS_NAME,
    )?;
    conn.busy_timeout(Duration::from_millis(opts.busy_timeout_ms.into()))?;
    // The journal mode stays SQLite's default (DELETE) and `synchronous`
    // its default (FULL): the VFS keeps the journal in memory and commits at
    // SQLite's sync of the database, whether or not it fsyncs (see `vfs`).
    // Statement journals and sorts stay in memory: no temporary files.
    conn.execute_batch("PRAGMA temp_store=MEMORY;")?;
    Ok(conn)
}

/// Opens a session file the way the store does (same VFS) and returns
/// `PRAGMA integrity_check`'s verdict: `"ok"` for a sound file.
pub fn integrity_check(path: &str, opts: DbOptions) -> Result<String> {
    let db = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, opts)?;
    let mut stmt = db.conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("\n"))
}

fn remove_files(path: &str) {
    // Best effort: a missing file is what we want anyway. There is never a
    // journal on disk (see `vfs`).
    let _ = vfs::fs::remove_file(path);
}

/// The meta row of a session that still exists, or `not-found`.
fn live_meta(tx: &Transaction) -> Result<Meta> {
    let row = tx
        .prepare_cached(
            "SELECT created_ms, last_access_ms, key_count, total_bytes,
                    idle_timeout_s, absolute_timeout_s, persistent_cookie, destroyed
             FROM meta",
        )
        .map_err(not_a_session)?
        .query_row([], |r| {
            let secs = |i| r.get::<_, Option<i64>>(i).map(|v| v.map(|v| v as u64));
            Ok((
                Meta {
                    timing: Timing {
                        created_ms: r.get(0)?,
                        last_access_ms: r.get(1)?,
                    },
                    key_count: r.get::<_, i64>(2)? as u64,
                    total_bytes: r.get::<_, i64>(3)? as u64,
                    overrides: Overrides {
                        idle_timeout_s: secs(4)?,
                        absolute_timeout_s: secs(5)?,
                        persistent_cookie: r.get(6)?,
                    },
                },
                r.get::<_, bool>(7)?,
            ))
        })
        .optional()?;
    match row {
        Some((meta, false)) => Ok(meta),
        // No row, or a destroyed session: either way it is gone.
        _ => Err(Error::NotFound),
    }
}

/// A file whose schema we cannot read was not written by this store (or was
/// damaged); say so instead of surfacing "no such table".
fn not_a_session(e: rusqlite::Error) -> Error {
    match Error::from(e) {
        Error::Storage(msg) => Error::Storage(format!(
            "not a session database (schema version {SCHEMA_VERSION} expected): {msg}"
        )),
        other => other,
    }
}

fn save_meta(tx: &Transaction, meta: &Meta) -> Result<()> {
    let o = &meta.overrides;
    tx.prepare_cached(
        "UPDATE meta SET created_ms = ?1, last_access_ms = ?2, key_count = ?3, total_bytes = ?4,
                         idle_timeout_s = ?5, absolute_timeout_s = ?6, persistent_cookie = ?7",
    )?
    .execute(params![
        meta.timing.created_ms,
        meta.timing.last_access_ms,
        meta.key_count as i64,
        meta.total_bytes as i64,
        o.idle_timeout_s.map(|v| v as i64),
        o.absolute_timeout_s.map(|v| v as i64),
        o.persistent_cookie,
    ])?;
    Ok(())
}

fn mark_destroyed(tx: &Transaction) -> Result<()> {
    tx.prepare_cached("UPDATE meta SET destroyed = 1")?
        .execute([])?;
    Ok(())
}

/// The value under `key`.
pub fn get(tx: &Transaction, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(tx
        .prepare_cached("SELECT val FROM kv WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn contains(tx: &Transaction, key: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM kv WHERE key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn keys(tx: &Transaction) -> Result<Vec<String>> {
    let mut stmt = tx.prepare_cached("SELECT key FROM kv ORDER BY key")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores `val` under `key`, keeping the totals and enforcing the limits
/// before anything is written.
pub fn put(
    tx: &Transaction,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    val: &[u8],
) -> Result<()> {
    // length() reads the record header only, not the value itself.
    let old_len: Option<u64> = tx
        .prepare_cached("SELECT length(val) FROM kv WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|len| len as u64);
    let entry = |len: u64| key.len() as u64 + len;
    let key_count = meta.key_count + u64::from(old_len.is_none());
    let total_bytes = meta.total_bytes - old_len.map_or(0, entry) + entry(val.len() as u64);
    limits.check_totals(key_count, total_bytes)?;
    tx.prepare_cached("INSERT OR REPLACE INTO kv (key, val) VALUES (?1, ?2)")?
        .execute(params![key, val])?;
    meta.key_count = key_count;
    meta.total_bytes = total_bytes;
    Ok(())
}

/// Removes `key`, returning the value it held.
pub fn take(tx: &Transaction, meta: &mut Meta, key: &str) -> Result<Option<Vec<u8>>> {
    let old: Option<Vec<u8>> = tx
        .prepare_cached("DELETE FROM kv WHERE key = ?1 RETURNING val")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    if let Some(val) = &old {
        meta.key_count -= 1;
        meta.total_bytes -= (key.len() + val.len()) as u64;
    }
    Ok(old)
}

/// Removes every key.
pub fn clear(tx: &Transaction, meta: &mut Meta) -> Result<()> {
    tx.prepare_cached("DELETE FROM kv")?.execute([])?;
    meta.key_count = 0;
    meta.total_bytes = 0;
    Ok(())
}

/// Records activity.
pub fn touch(meta: &mut Meta, now_ms: i64) {
    meta.timing.last_access_ms = now_ms;
}
