//! One open session: reads without a lock, writes in a transaction,
//! creation, the copy behind `regenerate`, and destroy.

use super::connect::connect;
use super::meta::{live_meta, save_meta, Meta};
use super::retry::Retry;
use super::sql::PUT;
use super::template::{self, Reusable};
use super::tx::{Committed, WriteTx};
use super::{DbOptions, SCHEMA};
use crate::error::{Error, Result};
use crate::expiry::{self, ExpiryDefaults, Overrides, Timing};
use crate::vfs;
use rusqlite::{params, Connection, OpenFlags};

/// An open session database.
pub struct SessionDb {
    conn: Reusable,
    path: String,
    expiry_hint: Option<ExpiryDefaults>,
    /// How long a write may keep losing races before it answers `busy`.
    busy_timeout_ms: u32,
}

impl SessionDb {
    /// Commits `tx`, first stamping the file's mtime with the session's
    /// expiry so that a sweep can skip it unopened: no extra call, the VFS
    /// sets it on the new version as it publishes it.
    fn commit(hint: Option<ExpiryDefaults>, tx: WriteTx, meta: &Meta) -> Result<Committed> {
        if let Some(defaults) = hint {
            let at = expiry::expires_at_ms(meta.timing, &meta.overrides.apply(&defaults));
            vfs::set_commit_mtime(&tx, expiry::hint_mtime(at));
        }
        tx.try_commit()
    }

    /// Opens the session file at `path` if it exists; never creates it.
    pub fn open_existing(path: &str, opts: DbOptions) -> Result<Option<SessionDb>> {
        match open(path, false, opts) {
            Ok((db, _)) => Ok(Some(db)),
            // CANTOPEN also covers permission problems, so ask the storage
            // (only on this rare path) whether the file is really absent. If
            // it cannot tell either (a key-value store that is unreachable),
            // that is the answer: never "absent" without knowing.
            Err(e) => match vfs::dir::exists(path) {
                Ok(false) => Ok(None),
                Ok(true) => Err(e),
                Err(io) => Err(io.into()),
            },
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
            // A new id is known to nobody else: losing a race to publish it
            // would mean a collision of 122 random bits; say `busy`.
            match SessionDb::commit(db.expiry_hint, tx, &meta)? {
                Committed::Done => Ok((meta, out)),
                Committed::Conflict => Err(Error::Busy),
            }
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
    /// caller then deletes the file with `delete_file`. When another writer
    /// published first (only where the backend locks optimistically), the
    /// transaction runs again, `f` included, from the version now published.
    pub fn write<T>(
        &mut self,
        mut f: impl FnMut(&Connection, &mut Meta) -> Result<T>,
    ) -> Result<(Meta, T)> {
        let mut retry = Retry::new(self.busy_timeout_ms);
        loop {
            let tx = WriteTx::begin(&self.conn)?;
            let mut meta = live_meta(&tx)?;
            let out = f(&tx, &mut meta)?;
            save_meta(&tx, &meta, meta.key_count == 0)?;
            match SessionDb::commit(self.expiry_hint, tx, &meta)? {
                Committed::Done => return Ok((meta, out)),
                Committed::Conflict => retry.after_conflict()?,
            }
        }
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
        let mut retry = Retry::new(self.busy_timeout_ms);
        loop {
            let tx = WriteTx::begin(&self.conn)?;
            let old = live_meta(&tx)?;
            let (new_db, new_meta, ()) =
                SessionDb::create_with(new_path, opts, now_ms, |ntx, meta| {
                    let mut rows = tx.prepare("SELECT key, val FROM kv WHERE key <> ''")?;
                    let mut insert = ntx.prepare_cached(PUT)?;
                    let mut rows = rows.query([])?;
                    while let Some(row) = rows.next()? {
                        insert.execute(params![
                            row.get::<_, String>(0)?,
                            row.get::<_, Vec<u8>>(1)?
                        ])?;
                    }
                    // The absolute timeout runs from the session's first
                    // creation: regenerating must not extend it.
                    *meta = Meta {
                        timing: Timing {
                            created_ms: old.timing.created_ms,
                            last_access_ms: now_ms,
                        },
                        ..old
                    };
                    Ok(())
                })?;
            let committed = save_meta(&tx, &old, true).and_then(|()| tx.try_commit());
            if let Ok(Committed::Done) = committed {
                return Ok((new_db, new_meta));
            }
            // The old session is intact; drop the copy.
            new_db.delete_file();
            committed?;
            retry.after_conflict()?;
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Marks the session destroyed (visible to every other connection) and
    /// deletes its file.
    pub fn destroy(self) -> Result<()> {
        let mut retry = Retry::new(self.busy_timeout_ms);
        loop {
            let tx = WriteTx::begin(&self.conn)?;
            let meta = live_meta(&tx)?;
            save_meta(&tx, &meta, true)?;
            match tx.try_commit()? {
                Committed::Done => break,
                Committed::Conflict => retry.after_conflict()?,
            }
        }
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
    let (conn, prepared) = match template::take_attached(path, opts, new) {
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
        conn: Reusable::new(conn),
        path: path.to_string(),
        expiry_hint: opts.expiry_hint,
        busy_timeout_ms: opts.busy_timeout_ms,
    };
    Ok((db, prepared))
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
    let _ = vfs::dir::remove(path);
}
