//! The write transaction every mutating call runs in.

use crate::error::{Error, Result};
use crate::vfs;
use rusqlite::Connection;

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Done,
    /// Another writer published first; nothing was written.
    Conflict,
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

    /// Commits; another writer that published first is an error (`busy`).
    pub fn commit(self) -> Result<()> {
        match self.try_commit()? {
            Committed::Done => Ok(()),
            Committed::Conflict => Err(Error::Busy),
        }
    }

    /// Commits, or reports that another writer published first (see
    /// `vfs::CONFLICT`), in which case nothing was written and the
    /// transaction is rolled back, ready to run again.
    pub fn try_commit(mut self) -> Result<Committed> {
        self.done = true;
        let committed = self.conn.prepare_cached("COMMIT")?.execute([]);
        match committed {
            Ok(_) => Ok(Committed::Done),
            Err(e) => {
                self.rollback();
                let conflict = matches!(
                    &e,
                    rusqlite::Error::SqliteFailure(code, _) if code.extended_code == vfs::CONFLICT
                );
                if conflict {
                    Ok(Committed::Conflict)
                } else {
                    Err(e.into())
                }
            }
        }
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
