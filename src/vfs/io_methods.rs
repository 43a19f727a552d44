//! The C side of an open file: SQLite's `sqlite3_io_methods` table, with
//! one `extern "C"` shim per method, generic over [`VfsFile`], so that each
//! kind of file (the main database, the journal) is plain safe Rust.

use rusqlite::ffi;
use std::ffi::{c_int, c_void};
use std::ptr;

/// The memory SQLite allocates for each open file (`szOsFile` bytes) starts
/// with this.
#[repr(C)]
pub(super) struct Handle {
    pub(super) base: ffi::sqlite3_file,
    pub(super) state: *mut c_void,
}

/// What SQLite asks of an open file, in safe Rust: one `extern "C"` shim per
/// method, generic over this, serves both kinds of file.
pub(super) trait VfsFile {
    fn read(&mut self, out: &mut [u8], offset: usize) -> c_int;
    fn write(&mut self, data: &[u8], offset: usize) -> c_int;
    fn truncate(&mut self, size: usize) -> c_int;
    fn sync(&mut self) -> c_int;
    fn size(&mut self) -> usize;
    fn lock(&mut self, _level: c_int) -> c_int {
        ffi::SQLITE_OK
    }
    fn unlock(&mut self, _level: c_int) -> c_int {
        ffi::SQLITE_OK
    }
    fn check_reserved(&mut self) -> bool {
        false
    }
    fn file_control(&mut self, _op: c_int, _arg: *mut c_void) -> c_int {
        ffi::SQLITE_NOTFOUND
    }
    fn close(&mut self) -> c_int {
        ffi::SQLITE_OK
    }
}

pub(super) const fn io_methods<T: VfsFile>() -> ffi::sqlite3_io_methods {
    ffi::sqlite3_io_methods {
        iVersion: 1,
        xClose: Some(shim_close::<T>),
        xRead: Some(shim_read::<T>),
        xWrite: Some(shim_write::<T>),
        xTruncate: Some(shim_truncate::<T>),
        xSync: Some(shim_sync::<T>),
        xFileSize: Some(shim_file_size::<T>),
        xLock: Some(shim_lock::<T>),
        xUnlock: Some(shim_unlock::<T>),
        xCheckReservedLock: Some(shim_check_reserved::<T>),
        xFileControl: Some(shim_file_control::<T>),
        xSectorSize: Some(sector_size),
        xDeviceCharacteristics: Some(device_characteristics),
        xShmMap: None,
        xShmLock: None,
        xShmBarrier: None,
        xShmUnmap: None,
        xFetch: None,
        xUnfetch: None,
    }
}

pub(super) unsafe fn state<'a, T>(file: *mut ffi::sqlite3_file) -> &'a mut T {
    &mut *(*file.cast::<Handle>()).state.cast::<T>()
}

unsafe extern "C" fn shim_close<T: VfsFile>(file: *mut ffi::sqlite3_file) -> c_int {
    let mut boxed = Box::from_raw((*file.cast::<Handle>()).state.cast::<T>());
    let rc = boxed.close();
    drop(boxed);
    (*file).pMethods = ptr::null();
    rc
}

unsafe extern "C" fn shim_read<T: VfsFile>(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt.max(0) as usize);
    state::<T>(file).read(out, offset.max(0) as usize)
}

unsafe extern "C" fn shim_write<T: VfsFile>(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), amt.max(0) as usize);
    state::<T>(file).write(data, offset.max(0) as usize)
}

unsafe extern "C" fn shim_truncate<T: VfsFile>(
    file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    state::<T>(file).truncate(size.max(0) as usize)
}

unsafe extern "C" fn shim_sync<T: VfsFile>(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    state::<T>(file).sync()
}

unsafe extern "C" fn shim_file_size<T: VfsFile>(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    *size = state::<T>(file).size() as ffi::sqlite3_int64;
    ffi::SQLITE_OK
}

unsafe extern "C" fn shim_lock<T: VfsFile>(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    state::<T>(file).lock(level)
}

unsafe extern "C" fn shim_unlock<T: VfsFile>(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    state::<T>(file).unlock(level)
}

unsafe extern "C" fn shim_check_reserved<T: VfsFile>(
    file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    *out = c_int::from(state::<T>(file).check_reserved());
    ffi::SQLITE_OK
}

unsafe extern "C" fn shim_file_control<T: VfsFile>(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    state::<T>(file).file_control(op, arg)
}

unsafe extern "C" fn sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    4096
}

unsafe extern "C" fn device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    0
}

pub(super) fn read_from(src: &[u8], out: &mut [u8], offset: usize) -> c_int {
    let avail = src.len().saturating_sub(offset).min(out.len());
    if avail > 0 {
        out[..avail].copy_from_slice(&src[offset..offset + avail]);
    }
    if avail < out.len() {
        out[avail..].fill(0);
        return ffi::SQLITE_IOERR_SHORT_READ;
    }
    ffi::SQLITE_OK
}

pub(super) fn write_into(dst: &mut Vec<u8>, data: &[u8], offset: usize) {
    let end = offset + data.len();
    if dst.len() < end {
        dst.resize(end, 0);
    }
    dst[offset..end].copy_from_slice(data);
}
