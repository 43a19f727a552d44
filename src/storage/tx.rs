//! The write transaction every mutating call runs in.

use crate::error::Result;
use crate::vfs;
use rusqlite::Connection;

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
