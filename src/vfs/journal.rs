//! SQLite's rollback journal, in memory.

use crate::vfs::io_methods::{io_methods, read_from, write_into, VfsFile};
use rusqlite::ffi;
use std::ffi::c_int;

/// SQLite's rollback journal for one transaction, in memory: it serves to
/// undo a transaction that fails or rolls back, never crash recovery (a
/// commit is a rename, see the module docs).
/// SQLite's methods for a journal.
pub(super) static METHODS: ffi::sqlite3_io_methods = io_methods::<MemoryJournal>();

pub(super) struct MemoryJournal {
    pub(super) data: Vec<u8>,
}

impl VfsFile for MemoryJournal {
    fn read(&mut self, out: &mut [u8], offset: usize) -> c_int {
        read_from(&self.data, out, offset)
    }

    fn write(&mut self, data: &[u8], offset: usize) -> c_int {
        write_into(&mut self.data, data, offset);
        ffi::SQLITE_OK
    }

    fn truncate(&mut self, size: usize) -> c_int {
        self.data.truncate(size);
        ffi::SQLITE_OK
    }

    fn sync(&mut self) -> c_int {
        ffi::SQLITE_OK
    }

    fn size(&mut self) -> usize {
        self.data.len()
    }
}
