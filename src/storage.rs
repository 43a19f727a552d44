//! One session's SQLite file: schema, transactions, and per-key rows.
//!
//! Each call runs in its own short transaction, as in the seed, so concurrent
//! requests that write different keys never lose each other's writes. A
//! reserved row (`META_KEY`) carries the timing facts, running totals for the
//! quotas (so checking them never scans values), and a `destroyed` flag.
//!
//! Why the flag: a slower request may still hold a connection to a session
//! that a logout has just destroyed. Destroy first commits `destroyed` and
//! only then unlinks the file; every transaction checks the flag (and the VFS
//! reports a file deleted under a connection), so a write that arrives late
//! fails with `not-found` instead of vanishing (the shape of Rack
//! CVE-2025-46336).

use crate::config::{ExpiryDefaults, Limits};
use crate::error::{Error, Result};
use crate::expiry::{self, Overrides, Timing};
use crate::vfs;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::time::Duration;

/// Bumped when the file layout changes; stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

/// One table. Unless pre-initialised (see `template`), every instance of
/// the component parses a session's schema afresh, and compiles each
/// statement it runs afresh: in wasm that SQL compilation was half of a
/// request's CPU time, so the layout keeps both small. (Not `WITHOUT
/// ROWID`: its rows overflow to their own pages beyond about 1 KiB, which
/// made a session of 1 KiB values four times larger.)
const SCHEMA: &str = "
    CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, val BLOB NOT NULL);
    PRAGMA user_version = 2;
";

/// The row that holds the session's `Meta` (see `MetaRecord`). Keys must be
/// non-empty (`Limits::check_key`), so no user key can be this one.
const META_KEY: &str = "";

/// The statements of the hot path: a request's load, get and set use only
/// these two (plus transaction control), each compiled once per instance.
const GET: &str = "SELECT val FROM kv WHERE key = ?1";
const PUT: &str = "INSERT OR REPLACE INTO kv (key, val) VALUES (?1, ?2)";

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
    conn: crate::template::Reusable,
    path: String,
    expiry_hint: Option<ExpiryDefaults>,
}

/// A write transaction: `BEGIN IMMEDIATE`, announced to the VFS so that its
/// lock is taken as the transaction starts (see `vfs::WriteIntent`), and
/// rolled back when dropped without `commit`. Its `BEGIN`, `COMMIT` and
/// `ROLLBACK` are cached statements: rusqlite's `Transaction` compiles them
/// afresh each time, which a fresh instance per request pays every time.
pub struct WriteTx<'a> {
    conn: &'a Connection,
    done: bool,
}

impl<'a> WriteTx<'a> {
    pub fn begin(conn: &'a Connection) -> Result<WriteTx<'a>> {
        let intent = vfs::WriteIntent::announce(conn);
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        drop(intent);
        Ok(WriteTx { conn, done: false })
    }

    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let committed = self.conn.prepare_cached("COMMIT")?.execute([]);
        if committed.is_err() {
            self.rollback();
        }
        committed?;
        Ok(())
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            // Best effort: SQLite has already rolled back after most errors.
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
        }
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.rollback();
        }
    }
}

impl SessionDb {
    /// Commits `tx`, first stamping the file's mtime with the session's
    /// expiry so that a sweep can skip it unopened: no extra call, the VFS
    /// sets it on the new version before publishing it.
    fn commit(hint: Option<ExpiryDefaults>, tx: WriteTx, meta: &Meta) -> Result<()> {
        if let Some(defaults) = hint {
            let at = expiry::expires_at_ms(meta.timing, &meta.overrides.apply(&defaults));
            vfs::set_commit_mtime(&tx, crate::sweep::hint_mtime(at));
        }
        tx.commit()
    }

    /// Opens the session file at `path` if it exists; never creates it.
    pub fn open_existing(path: &str, opts: DbOptions) -> Result<Option<SessionDb>> {
        match open(path, false, opts) {
            Ok((db, _)) => Ok(Some(db)),
            // CANTOPEN also covers permission problems, so ask the filesystem
            // (only on this rare path) whether the file is really absent.
            Err(_) if !matches!(vfs::fs::stat(path), Ok(Some(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the session file at `path` and runs `first_write` in the same
    /// transaction as the schema, so a new session appears complete or not at
    /// all. On failure the file is removed again. (Its directory is created
    /// by the commit's lock when missing, see `vfs::lease`.)
    pub fn create_with<T>(
        path: &str,
        opts: DbOptions,
        now_ms: i64,
        first_write: impl FnOnce(&Connection, &mut Meta) -> Result<T>,
    ) -> Result<(SessionDb, Meta, T)> {
        // Through the template, the new file starts from a copy of its
        // schema-only image: no DDL to compile and run.
        let (db, has_schema) = open(path, true, opts)?;
        let outcome = (|| {
            let tx = WriteTx::begin(&db.conn)?;
            if !has_schema {
                tx.execute_batch(SCHEMA)?;
            }
            let mut meta = Meta {
                timing: Timing {
                    created_ms: now_ms,
                    last_access_ms: now_ms,
                },
                overrides: Overrides::default(),
                key_count: 0,
                total_bytes: 0,
            };
            let out = first_write(&tx, &mut meta)?;
            // As in `write`: a session left without keys is gone; the caller
            // deletes the file.
            save_meta(&tx, &meta, meta.key_count == 0)?;
            SessionDb::commit(db.expiry_hint, tx, &meta)?;
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

    /// Runs `f` after checking the session still exists. No transaction and
    /// no lock: the VFS serves one published version of the file for the
    /// whole call (`vfs::ReadScope`), so every statement sees the same
    /// session, as in one transaction.
    pub fn read<T>(&mut self, f: impl FnOnce(&Connection, &Meta) -> Result<T>) -> Result<T> {
        let _scope = vfs::ReadScope::begin(&self.conn);
        let meta = live_meta(&self.conn)?;
        f(&self.conn, &meta)
    }

    /// Runs `f` in a write transaction, after checking the session still
    /// exists, and stores the updated meta row. If `f` leaves the session
    /// without keys it is marked destroyed in the same transaction; the
    /// caller then deletes the file with `delete_file`.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection, &mut Meta) -> Result<T>,
    ) -> Result<(Meta, T)> {
        let tx = WriteTx::begin(&self.conn)?;
        let mut meta = live_meta(&tx)?;
        let out = f(&tx, &mut meta)?;
        save_meta(&tx, &meta, meta.key_count == 0)?;
        SessionDb::commit(self.expiry_hint, tx, &meta)?;
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
        opts: DbOptions,
        now_ms: i64,
    ) -> Result<(SessionDb, Meta)> {
        let tx = WriteTx::begin(&self.conn)?;
        let old = live_meta(&tx)?;
        let (new_db, new_meta, ()) =
            SessionDb::create_with(new_path, opts, now_ms, |ntx, meta| {
                let mut rows = tx.prepare("SELECT key, val FROM kv WHERE key <> ''")?;
                let mut insert = ntx.prepare_cached(PUT)?;
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
        let committed = save_meta(&tx, &old, true).and_then(|()| tx.commit());
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
    pub fn destroy(self) -> Result<()> {
        let tx = WriteTx::begin(&self.conn)?;
        let meta = live_meta(&tx)?;
        save_meta(&tx, &meta, true)?;
        tx.commit()?;
        self.delete_file();
        Ok(())
    }

    /// Closes the connection and removes the file. Only for a session already
    /// marked destroyed.
    pub fn delete_file(self) {
        let SessionDb { conn, path, .. } = self;
        drop(conn);
        remove_files(&path);
    }
}

/// Opens the session file at `path`: an existing one, or (`new`) one still
/// to be created. The instance's template, if there is one (see
/// `template`), comes with the schema read and the hot statements compiled,
/// and a new file through it starts with the schema in place; the second
/// value says whether it was used.
fn open(path: &str, new: bool, opts: DbOptions) -> Result<(SessionDb, bool)> {
    let (conn, prepared) = match crate::template::take_attached(path, opts, new) {
        Some(conn) => (conn, true),
        None => {
            let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE;
            if new {
                flags |= OpenFlags::SQLITE_OPEN_CREATE;
            }
            (connect(path, flags, opts)?, false)
        }
    };
    let db = SessionDb {
        conn: crate::template::Reusable::new(conn),
        path: path.to_string(),
        expiry_hint: opts.expiry_hint,
    };
    Ok((db, prepared))
}

/// A connection through the `sessions` VFS (its lock, lease and I/O), with
/// the store's pragmas. Every SQLite file in the directory is opened this
/// way, so they all follow one lock protocol.
pub(crate) fn connect(path: &str, flags: OpenFlags, opts: DbOptions) -> Result<Connection> {
    let uri = vfs::uri(path, lease_of(opts), durable_of(opts));
    connect_uri(&uri, flags, opts)
}

fn lease_of(opts: DbOptions) -> Duration {
    Duration::from_millis(opts.lock_lease_ms.into())
}

fn durable_of(opts: DbOptions) -> bool {
    opts.durability == Durability::PowerLoss
}

/// The template for `crate::template`: an in-memory database given the
/// session schema exactly as `SessionDb::create_with` gives a new file (so
/// the two have the same schema cookie), with the hot statements compiled
/// into its statement cache.
pub(crate) fn template_connection() -> Result<Connection> {
    // Nothing here waits, leases or publishes: the template is in memory.
    let opts = DbOptions {
        busy_timeout_ms: 0,
        lock_lease_ms: 1,
        durability: Durability::ProcessCrash,
        expiry_hint: None,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    let conn = connect_uri(&vfs::template_uri(), flags, opts)?;
    // No journal for this one transaction: a journal header carries a
    // random nonce, and the template must draw no randomness (it may be
    // snapshotted, see `template`). Nothing here is ever rolled back. The
    // default mode comes back before any session file is attached.
    let journal_mode =
        |mode: &str| conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()));
    journal_mode("OFF")?;
    let tx = WriteTx::begin(&conn)?;
    tx.execute_batch(SCHEMA)?;
    tx.commit()?;
    journal_mode("DELETE")?;
    for sql in [GET, PUT, "ROLLBACK"] {
        conn.prepare_cached(sql)?;
    }
    Ok(conn)
}

/// Points a template connection at the session file at `path` with the
/// settings `connect` would give it: an existing file, or (with
/// `new_image`) one to be created from that image (see `vfs::attach`).
pub(crate) fn attach_template(
    conn: &Connection,
    path: &str,
    opts: DbOptions,
    new_image: Option<&[u8]>,
) -> std::result::Result<(), vfs::AttachError> {
    // SQLite keeps the template's pages cached, and would notice the new
    // file only by its change counter, page count and freelist; a session
    // written in one commit has the same ones as the template. With no page
    // cached there is nothing to mistake (`tests/template.rs` shows the
    // difference).
    // SAFETY: the handle is live; the call only frees unused cache pages.
    unsafe { rusqlite::ffi::sqlite3_db_release_memory(conn.handle()) };
    vfs::attach(conn, path, lease_of(opts), durable_of(opts), new_image)?;
    conn.busy_timeout(Duration::from_millis(opts.busy_timeout_ms.into()))
        .map_err(|_| vfs::AttachError::Failed)
}

fn connect_uri(uri: &str, flags: OpenFlags, opts: DbOptions) -> Result<Connection> {
    vfs::register().map_err(Error::Storage)?;
    let conn = Connection::open_with_flags_and_vfs(
        uri,
        flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        vfs::VFS_NAME,
    )?;
    conn.busy_timeout(Duration::from_millis(opts.busy_timeout_ms.into()))?;
    // The journal mode stays SQLite's default (DELETE) and `synchronous`
    // its default (FULL): the VFS keeps the journal in memory and commits at
    // SQLite's sync of the database, whether or not it fsyncs (see `vfs`).
    // Statement journals and sorts stay in memory (no temporary files)
    // because SQLite is built with SQLITE_TEMP_STORE=3 (`.cargo/config.toml`),
    // which saves a `PRAGMA temp_store` per connection.
    Ok(conn)
}

/// Opens a session file the way the store does (same VFS) and returns
/// `PRAGMA integrity_check`'s verdict: `"ok"` for a sound file.
pub fn integrity_check(path: &str, opts: DbOptions) -> Result<String> {
    let (db, _) = open(path, false, opts)?;
    let mut stmt = db.conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("\n"))
}

fn remove_files(path: &str) {
    // Best effort: a missing file is what we want anyway. There is never a
    // journal on disk (see `vfs`).
    let _ = vfs::fs::remove_file(path);
}

/// The meta row as stored: eight little-endian i64s, in this order.
struct MetaRecord;

impl MetaRecord {
    const LEN: usize = 8 * 8;

    fn encode(meta: &Meta, destroyed: bool) -> [u8; MetaRecord::LEN] {
        let opt = |v: Option<u64>| v.map_or(-1, |v| v.min(i64::MAX as u64) as i64);
        let o = &meta.overrides;
        let fields: [i64; 8] = [
            meta.timing.created_ms,
            meta.timing.last_access_ms,
            meta.key_count as i64,
            meta.total_bytes as i64,
            opt(o.idle_timeout_s),
            opt(o.absolute_timeout_s),
            o.persistent_cookie.map_or(-1, i64::from),
            i64::from(destroyed),
        ];
        let mut out = [0; MetaRecord::LEN];
        for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }

    /// The meta and the destroyed flag, or `None` for bytes this store did
    /// not write.
    fn decode(bytes: &[u8]) -> Option<(Meta, bool)> {
        if bytes.len() != MetaRecord::LEN {
            return None;
        }
        let f = |i: usize| i64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        let opt = |v: i64| u64::try_from(v).ok();
        let meta = Meta {
            timing: Timing {
                created_ms: f(0),
                last_access_ms: f(1),
            },
            key_count: u64::try_from(f(2)).ok()?,
            total_bytes: u64::try_from(f(3)).ok()?,
            overrides: Overrides {
                idle_timeout_s: opt(f(4)),
                absolute_timeout_s: opt(f(5)),
                persistent_cookie: match f(6) {
                    -1 => None,
                    v => Some(v != 0),
                },
            },
        };
        Some((meta, f(7) != 0))
    }
}

/// The meta row of a session that still exists, or `not-found`.
fn live_meta(conn: &Connection) -> Result<Meta> {
    let record =
        with_value(conn, META_KEY, |bytes| bytes.map(MetaRecord::decode)).map_err(not_a_session)?;
    match record {
        Some(Some((meta, false))) => Ok(meta),
        // A destroyed session is gone.
        Some(Some((_, true))) => Err(Error::NotFound),
        Some(None) => Err(not_a_session(Error::Storage("bad meta row".into()))),
        // A file without the row is not one this store wrote.
        None => Err(not_a_session(Error::Storage("no meta row".into()))),
    }
}

/// A file whose schema we cannot read was not written by this store (or was
/// damaged); say so instead of surfacing "no such table".
fn not_a_session(e: Error) -> Error {
    match e {
        Error::Storage(msg) => Error::Storage(format!(
            "not a session database (schema version {SCHEMA_VERSION} expected): {msg}"
        )),
        other => other,
    }
}

/// Writes the meta row; `destroyed` marks the session gone for every other
/// connection once committed.
fn save_meta(conn: &Connection, meta: &Meta, destroyed: bool) -> Result<()> {
    conn.prepare_cached(PUT)?
        .execute(params![META_KEY, &MetaRecord::encode(meta, destroyed)[..]])?;
    Ok(())
}

/// Runs `f` on the value under `key` without copying it out of SQLite.
fn with_value<T>(conn: &Connection, key: &str, f: impl FnOnce(Option<&[u8]>) -> T) -> Result<T> {
    let mut stmt = conn.prepare_cached(GET)?;
    let mut rows = stmt.query([key])?;
    Ok(match rows.next()? {
        Some(row) => f(Some(
            row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?,
        )),
        None => f(None),
    })
}

/// The value under `key`.
pub fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    with_value(conn, key, |v| v.map(<[u8]>::to_vec))
}

pub fn contains(conn: &Connection, key: &str) -> Result<bool> {
    with_value(conn, key, |v| v.is_some())
}

pub fn keys(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM kv WHERE key <> '' ORDER BY key")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores `val` under `key`, keeping the totals and enforcing the limits
/// before anything is written.
pub fn put(
    conn: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    val: &[u8],
) -> Result<()> {
    let old_len = with_value(conn, key, |v| v.map(|v| v.len() as u64))?;
    let entry = |len: u64| key.len() as u64 + len;
    let key_count = meta.key_count + u64::from(old_len.is_none());
    let total_bytes = meta.total_bytes - old_len.map_or(0, entry) + entry(val.len() as u64);
    limits.check_totals(key_count, total_bytes)?;
    conn.prepare_cached(PUT)?.execute(params![key, val])?;
    meta.key_count = key_count;
    meta.total_bytes = total_bytes;
    Ok(())
}

/// Removes `key`, returning the value it held.
pub fn take(conn: &Connection, meta: &mut Meta, key: &str) -> Result<Option<Vec<u8>>> {
    let old: Option<Vec<u8>> = conn
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
pub fn clear(conn: &Connection, meta: &mut Meta) -> Result<()> {
    conn.prepare_cached("DELETE FROM kv WHERE key <> ''")?
        .execute([])?;
    meta.key_count = 0;
    meta.total_bytes = 0;
    Ok(())
}

/// Records activity.
pub fn touch(meta: &mut Meta, now_ms: i64) {
    meta.timing.last_access_ms = now_ms;
}
