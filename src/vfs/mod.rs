//! `sessions`: the SQLite VFS every session file is opened with.
//!
//! It exists for two reasons, both measured (see README, "Concurrency and
//! durability" and the benchmark table):
//!
//! 1. **Locks that recover.** SQLite's default under WASI, `unix-dotfile`,
//!    leaves `<db>.lock` behind when an instance dies holding it, and the
//!    session is locked forever. [`lease`] keeps the lock directory but adds
//!    a lease, renewal and a safe takeover.
//! 2. **Few host calls.** Every filesystem call crosses into the host. This
//!    VFS does positional I/O with one call each ([`raw`]), reads a small
//!    session file whole in one call when it takes the lock and serves
//!    SQLite's reads from that image, buffers a transaction's writes and
//!    issues them as one call per file at the points where order matters, and
//!    answers SQLite's per-transaction "is there a hot journal?" / "is there a
//!    WAL?" probes without a call when the lock protocol already knows.
//!
//! Crash safety is SQLite's own rollback journal (`journal_mode=DELETE`). The
//! buffering keeps its ordering: journal bytes reach the file before any
//! database page they protect, and database pages before the journal is
//! deleted (the commit point). `synchronous` decides whether each of those
//! steps is also fsynced (see `storage::Durability`).
//!
//! Files other than a main database and its rollback journal (SQLite's
//! temporary files, which `temp_store=MEMORY` mostly avoids) go to the
//! platform's default VFS unchanged.

mod lease;
mod raw;

/// Filesystem primitives with one host call each on wasm (see `raw`).
pub(crate) mod fs {
    pub use super::raw::{create_dir, remove_file, set_mtime, stat};
}

use lease::{Acquired, LeaseLock, LeaseState};
use raw::{OpenMode, RawFile};
use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

/// The name sessions are opened with.
pub const VFS_NAME: &str = "sessions";
const VFS_NAME_C: &CStr = c"sessions";

/// The URI parameter that carries the lock lease, in milliseconds.
pub const LEASE_PARAM: &str = "lease_ms";
const LEASE_PARAM_C: &CStr = c"lease_ms";
const DEFAULT_LEASE_MS: i64 = 2000;

/// A file up to this size is read whole, in one call, when the lock is taken.
/// A fresh session is 16 KiB; larger ones are read page by page and rely on
/// SQLite's own page cache, which survives between transactions when the
/// file did not change.
const WHOLE_FILE_LIMIT: usize = 64 * 1024;
/// A transaction that grows the cached image beyond this writes through.
const IMAGE_LIMIT: usize = 4 << 20;
/// Journal bytes buffered before they are written out regardless.
const JOURNAL_BUFFER_LIMIT: usize = 1 << 20;

/// The extended code for "our lease lapsed, nothing was written"; the storage
/// layer maps it to `busy`.
pub const LEASE_LAPSED: c_int = ffi::SQLITE_IOERR_LOCK;

/// Registers the VFS with SQLite (once per process or instance).
pub fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS, which
            // lives as long as the process; we only read it.
            let default = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
            if default.is_null() {
                return Err("SQLite has no default VFS".into());
            }
            // SAFETY: `default` is non-null and valid (see above).
            let default_size = unsafe { (*default).szOsFile };
            let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
                iVersion: 2,
                szOsFile: default_size.max(std::mem::size_of::<Handle>() as c_int),
                mxPathname: 1024,
                pNext: ptr::null_mut(),
                zName: VFS_NAME_C.as_ptr(),
                pAppData: default.cast(),
                xOpen: Some(x_open),
                xDelete: Some(x_delete),
                xAccess: Some(x_access),
                xFullPathname: Some(x_full_pathname),
                xDlOpen: None,
                xDlError: None,
                xDlSym: None,
                xDlClose: None,
                xRandomness: Some(x_randomness),
                xSleep: Some(x_sleep),
                xCurrentTime: Some(x_current_time),
                xGetLastError: Some(x_get_last_error),
                xCurrentTimeInt64: Some(x_current_time_int64),
                xSetSystemCall: None,
                xGetSystemCall: None,
                xNextSystemCall: None,
            }));
            // SAFETY: `vfs` is leaked, so it outlives every connection.
            let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
            if rc == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(format!("sqlite3_vfs_register failed: {rc}"))
            }
        })
        .clone()
}

/// The SQLite URI for a session file with the given lease.
pub fn uri(path: &str, lease: Duration) -> String {
    let mut out = String::from("file:");
    for b in path.bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    format!("{out}?{LEASE_PARAM}={}", lease.as_millis().max(1))
}

/// The memory SQLite allocates for each open file (`szOsFile` bytes) starts
/// with this.
#[repr(C)]
struct Handle {
    base: ffi::sqlite3_file,
    state: *mut c_void,
}

/// The default VFS, for everything this one does not handle itself.
unsafe fn default_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

fn name_of<'a>(z: *const c_char) -> Option<&'a str> {
    if z.is_null() {
        return None;
    }
    // SAFETY: SQLite passes NUL-terminated names that outlive the call.
    unsafe { CStr::from_ptr(z) }.to_str().ok()
}

/// The main database of a journal name SQLite gave us, if it is one of ours.
unsafe fn main_of_journal(z: *const c_char) -> Option<&'static mut MainFile> {
    if !name_of(z)?.ends_with("-journal") {
        return None;
    }
    // SAFETY: only called with journal names that came from SQLite's pager,
    // for which sqlite3_database_file_object is defined.
    let file = ffi::sqlite3_database_file_object(z);
    if file.is_null() || !ptr::eq((*file).pMethods, &MAIN_METHODS) {
        return None;
    }
    Some(&mut *((*file.cast::<Handle>()).state.cast::<MainFile>()))
}

fn io_code(e: &std::io::Error, fallback: c_int) -> c_int {
    match e.kind() {
        std::io::ErrorKind::StorageFull => ffi::SQLITE_FULL,
        _ => fallback,
    }
}

// ---------------------------------------------------------------- the VFS

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let is_main = flags & ffi::SQLITE_OPEN_MAIN_DB != 0;
    let is_journal = flags & ffi::SQLITE_OPEN_MAIN_JOURNAL != 0;
    let path = name_of(z_name);
    let (Some(path), true) = (path, is_main || is_journal) else {
        let default = default_vfs(vfs);
        return ((*default).xOpen.expect("every VFS has xOpen"))(
            default, z_name, file, flags, out_flags,
        );
    };
    (*file).pMethods = ptr::null();
    let mode = if flags & ffi::SQLITE_OPEN_CREATE != 0 {
        OpenMode::Create
    } else if flags & ffi::SQLITE_OPEN_READWRITE != 0 {
        OpenMode::ReadWrite
    } else {
        OpenMode::ReadOnly
    };
    let handle = file.cast::<Handle>();
    if is_main {
        let raw = match RawFile::open(path, mode) {
            Ok(raw) => raw,
            Err(_) => return ffi::SQLITE_CANTOPEN,
        };
        let lease_ms = ffi::sqlite3_uri_int64(z_name, LEASE_PARAM_C.as_ptr(), DEFAULT_LEASE_MS);
        let state = Box::new(MainFile {
            raw,
            lock: LeaseLock::new(path, Duration::from_millis(lease_ms.max(1) as u64)),
            level: ffi::SQLITE_LOCK_NONE,
            acquired: None,
            cache: Cache::Off,
            journal: ptr::null_mut(),
            io_failed: false,
        });
        (*handle).state = Box::into_raw(state).cast();
        (*file).pMethods = &MAIN_METHODS;
    } else {
        let Some(main) = main_of_journal(z_name) else {
            return ffi::SQLITE_CANTOPEN;
        };
        if mode != OpenMode::ReadOnly && main.lock.may_modify() == LeaseState::Lapsed {
            return LEASE_LAPSED;
        }
        let raw = match RawFile::open(path, mode) {
            Ok(raw) => raw,
            Err(_) => return ffi::SQLITE_CANTOPEN,
        };
        let state = Box::into_raw(Box::new(JournalFile {
            raw,
            main,
            buf: Vec::new(),
            buf_offset: 0,
        }));
        main.journal = state;
        (*handle).state = state.cast();
        (*file).pMethods = &JOURNAL_METHODS;
    }
    if !out_flags.is_null() {
        *out_flags = flags;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let Some(main) = main_of_journal(z_name) else {
        let default = default_vfs(vfs);
        return ((*default).xDelete.expect("every VFS has xDelete"))(default, z_name, sync_dir);
    };
    // Deleting the journal commits (or finishes a rollback): only a holder
    // whose lease is still valid may do it.
    if main.lock.may_modify() == LeaseState::Lapsed {
        return LEASE_LAPSED;
    }
    let Some(path) = name_of(z_name) else {
        return ffi::SQLITE_IOERR_DELETE;
    };
    match raw::remove_file(path) {
        Ok(()) => ffi::SQLITE_OK,
        Err(e) if raw::is_not_found(&e) => ffi::SQLITE_IOERR_DELETE_NOENT,
        Err(_) => {
            main.io_failed = true;
            ffi::SQLITE_IOERR_DELETE
        }
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    flags: c_int,
    res_out: *mut c_int,
) -> c_int {
    let name = name_of(z_name).unwrap_or("");
    // Our files are never in WAL mode (the VFS has no shared memory, and the
    // storage layer sets journal_mode=DELETE), so there is no WAL to find.
    if name.ends_with("-wal") {
        *res_out = 0;
        return ffi::SQLITE_OK;
    }
    // See `lease`: a lock created fresh proves there is no hot journal.
    if let Some(main) = main_of_journal(z_name) {
        if main.acquired == Some(Acquired::Fresh) {
            *res_out = 0;
            return ffi::SQLITE_OK;
        }
    }
    let default = default_vfs(vfs);
    ((*default).xAccess.expect("every VFS has xAccess"))(default, z_name, flags, res_out)
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    n_out: c_int,
    z_out: *mut c_char,
) -> c_int {
    // The store builds absolute paths itself, from the configured directory
    // and hex names: nothing to resolve. The unix VFS would lstat every path
    // component looking for symlinks, six host calls per open.
    if let Some(name) = name_of(z_name).filter(|n| n.starts_with('/')) {
        let bytes = name.as_bytes();
        if bytes.len() >= n_out.max(0) as usize {
            return ffi::SQLITE_CANTOPEN;
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), z_out.cast::<u8>(), bytes.len());
        *z_out.add(bytes.len()) = 0;
        return ffi::SQLITE_OK;
    }
    let default = default_vfs(vfs);
    ((*default)
        .xFullPathname
        .expect("every VFS has xFullPathname"))(default, z_name, n_out, z_out)
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xRandomness {
        Some(f) => f(default, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    std::thread::sleep(Duration::from_micros(micros.max(0) as u64));
    let _ = vfs;
    micros
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xCurrentTime {
        Some(f) => f(default, out),
        None => ffi::SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xCurrentTimeInt64 {
        Some(f) if (*default).iVersion >= 2 => f(default, out),
        _ => ffi::SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let default = default_vfs(vfs);
    match (*default).xGetLastError {
        Some(f) => f(default, n, out),
        None => 0,
    }
}

// ------------------------------------------------------- the main database

/// What we hold of the file's bytes during one lock.
enum Cache {
    /// Not locked, or the file is too big to cache: every call goes through.
    Off,
    /// Locked, nothing read yet: the first read fetches the whole file.
    Pending,
    /// The whole file, with the range written since the last flush.
    Whole {
        image: Vec<u8>,
        dirty: Option<(usize, usize)>,
    },
}

struct MainFile {
    raw: RawFile,
    lock: LeaseLock,
    level: c_int,
    acquired: Option<Acquired>,
    cache: Cache,
    /// The open rollback journal: its buffered bytes must reach the file
    /// before any database page does.
    journal: *mut JournalFile,
    /// An I/O call failed under this lock: a hot journal may be left, so the
    /// lock is abandoned rather than released (see `lease`).
    io_failed: bool,
}

impl MainFile {
    fn fill_cache(&mut self) -> std::io::Result<()> {
        if let Cache::Pending = self.cache {
            let data = self.raw.read_at(WHOLE_FILE_LIMIT, 0)?;
            self.cache = if data.len() < WHOLE_FILE_LIMIT {
                Cache::Whole {
                    image: data,
                    dirty: None,
                }
            } else {
                Cache::Off
            };
        }
        Ok(())
    }

    /// Writes the journal's buffer, then our dirty range: one call each.
    fn flush(&mut self) -> c_int {
        // SAFETY: `journal` is registered by the journal's open and cleared
        // by its close, so it is valid while non-null.
        if let Some(journal) = unsafe { self.journal.as_mut() } {
            let rc = journal.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let Cache::Whole { image, dirty } = &mut self.cache else {
            return ffi::SQLITE_OK;
        };
        let Some((lo, hi)) = *dirty else {
            return ffi::SQLITE_OK;
        };
        if self.lock.may_modify() == LeaseState::Lapsed {
            return LEASE_LAPSED;
        }
        match self.raw.write_all_at(&image[lo..hi], lo as u64) {
            Ok(()) => {
                *dirty = None;
                ffi::SQLITE_OK
            }
            Err(e) => {
                self.io_failed = true;
                io_code(&e, ffi::SQLITE_IOERR_WRITE)
            }
        }
    }

    /// Buffered writes are checked against the lease when they are flushed:
    /// nothing reaches the file without that check.
    fn write(&mut self, buf: &[u8], offset: usize) -> c_int {
        if let Err(e) = self.fill_cache() {
            self.io_failed = true;
            return io_code(&e, ffi::SQLITE_IOERR_READ);
        }
        let end = offset + buf.len();
        if let Cache::Whole { image, dirty } = &mut self.cache {
            if end <= IMAGE_LIMIT {
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[offset..end].copy_from_slice(buf);
                *dirty = Some(match *dirty {
                    Some((lo, hi)) => (lo.min(offset), hi.max(end)),
                    None => (offset, end),
                });
                return ffi::SQLITE_OK;
            }
            // Too big to keep: write out what we have and go direct.
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            self.cache = Cache::Off;
        }
        let rc = self.flush(); // the journal first
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if self.lock.may_modify() == LeaseState::Lapsed {
            return LEASE_LAPSED;
        }
        match self.raw.write_all_at(buf, offset as u64) {
            Ok(()) => ffi::SQLITE_OK,
            Err(e) => {
                self.io_failed = true;
                io_code(&e, ffi::SQLITE_IOERR_WRITE)
            }
        }
    }

    fn read(&mut self, out: &mut [u8], offset: usize) -> c_int {
        if self.level >= ffi::SQLITE_LOCK_SHARED {
            if let Err(e) = self.fill_cache() {
                return io_code(&e, ffi::SQLITE_IOERR_READ);
            }
        }
        let bytes_read = match &self.cache {
            Cache::Whole { image, .. } => {
                let avail = image.len().saturating_sub(offset).min(out.len());
                if avail > 0 {
                    out[..avail].copy_from_slice(&image[offset..offset + avail]);
                }
                avail
            }
            _ => match self.raw.read_at(out.len(), offset as u64) {
                Ok(data) => {
                    out[..data.len()].copy_from_slice(&data);
                    data.len()
                }
                Err(e) => return io_code(&e, ffi::SQLITE_IOERR_READ),
            },
        };
        if bytes_read < out.len() {
            out[bytes_read..].fill(0);
            return ffi::SQLITE_IOERR_SHORT_READ;
        }
        ffi::SQLITE_OK
    }

    fn lock(&mut self, level: c_int) -> c_int {
        if self.level == ffi::SQLITE_LOCK_NONE && level > ffi::SQLITE_LOCK_NONE {
            match self.lock.try_acquire() {
                Ok(Some(how)) => {
                    self.acquired = Some(how);
                    self.cache = Cache::Pending;
                    self.io_failed = false;
                }
                Ok(None) => return ffi::SQLITE_BUSY,
                Err(_) => return ffi::SQLITE_IOERR_LOCK,
            }
        }
        self.level = self.level.max(level);
        ffi::SQLITE_OK
    }

    fn unlock(&mut self, level: c_int) -> c_int {
        if level >= self.level {
            return ffi::SQLITE_OK;
        }
        let mut rc = ffi::SQLITE_OK;
        if self.level > ffi::SQLITE_LOCK_SHARED {
            rc = self.flush();
            if rc != ffi::SQLITE_OK {
                self.io_failed = true;
            }
        }
        self.level = level;
        if level == ffi::SQLITE_LOCK_NONE {
            if self.io_failed {
                self.lock.abandon();
            } else if self.lock.release().is_err() {
                rc = ffi::SQLITE_IOERR_UNLOCK;
            }
            self.acquired = None;
            self.cache = Cache::Off;
        }
        rc
    }
}

// --------------------------------------------------------- the journal

struct JournalFile {
    raw: RawFile,
    main: *mut MainFile,
    /// Bytes written at `buf_offset..` and not yet sent: SQLite writes a
    /// journal as many small sequential pieces.
    buf: Vec<u8>,
    buf_offset: u64,
}

impl JournalFile {
    fn main(&mut self) -> &mut MainFile {
        // SAFETY: SQLite closes a journal before its main database file.
        unsafe { &mut *self.main }
    }

    fn flush(&mut self) -> c_int {
        if self.buf.is_empty() {
            return ffi::SQLITE_OK;
        }
        if self.main().lock.may_modify() == LeaseState::Lapsed {
            return LEASE_LAPSED;
        }
        match self.raw.write_all_at(&self.buf, self.buf_offset) {
            Ok(()) => {
                self.buf.clear();
                ffi::SQLITE_OK
            }
            Err(e) => {
                self.main().io_failed = true;
                io_code(&e, ffi::SQLITE_IOERR_WRITE)
            }
        }
    }

    fn write(&mut self, data: &[u8], offset: u64) -> c_int {
        let contiguous = offset == self.buf_offset + self.buf.len() as u64;
        if !self.buf.is_empty() && !contiguous {
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if self.buf.is_empty() {
            self.buf_offset = offset;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= JOURNAL_BUFFER_LIMIT {
            return self.flush();
        }
        ffi::SQLITE_OK
    }
}

// ------------------------------------------------------ io_methods glue

unsafe fn main_file<'a>(file: *mut ffi::sqlite3_file) -> &'a mut MainFile {
    &mut *(*file.cast::<Handle>()).state.cast::<MainFile>()
}

unsafe fn journal_file<'a>(file: *mut ffi::sqlite3_file) -> &'a mut JournalFile {
    &mut *(*file.cast::<Handle>()).state.cast::<JournalFile>()
}

static MAIN_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(main_close),
    xRead: Some(main_read),
    xWrite: Some(main_write),
    xTruncate: Some(main_truncate),
    xSync: Some(main_sync),
    xFileSize: Some(main_file_size),
    xLock: Some(main_lock),
    xUnlock: Some(main_unlock),
    xCheckReservedLock: Some(main_check_reserved),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

static JOURNAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(journal_close),
    xRead: Some(journal_read),
    xWrite: Some(journal_write),
    xTruncate: Some(journal_truncate),
    xSync: Some(journal_sync),
    xFileSize: Some(journal_file_size),
    xLock: Some(no_lock),
    xUnlock: Some(no_lock),
    xCheckReservedLock: Some(journal_check_reserved),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn main_close(file: *mut ffi::sqlite3_file) -> c_int {
    let state = (*file.cast::<Handle>()).state.cast::<MainFile>();
    let mut main = Box::from_raw(state);
    let rc = if main.level > ffi::SQLITE_LOCK_NONE {
        main.unlock(ffi::SQLITE_LOCK_NONE)
    } else {
        ffi::SQLITE_OK
    };
    drop(main);
    (*file).pMethods = ptr::null();
    rc
}

unsafe extern "C" fn main_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt.max(0) as usize);
    main_file(file).read(out, offset.max(0) as usize)
}

unsafe extern "C" fn main_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), amt.max(0) as usize);
    main_file(file).write(data, offset.max(0) as usize)
}

unsafe extern "C" fn main_truncate(
    file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    let main = main_file(file);
    let rc = main.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if main.lock.may_modify() == LeaseState::Lapsed {
        return LEASE_LAPSED;
    }
    let size = size.max(0) as usize;
    if let Err(e) = main.raw.set_len(size as u64) {
        main.io_failed = true;
        return io_code(&e, ffi::SQLITE_IOERR_TRUNCATE);
    }
    if let Cache::Whole { image, .. } = &mut main.cache {
        image.resize(size, 0);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn main_sync(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    let main = main_file(file);
    let rc = main.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match main.raw.sync() {
        Ok(()) => ffi::SQLITE_OK,
        Err(_) => {
            main.io_failed = true;
            ffi::SQLITE_IOERR_FSYNC
        }
    }
}

unsafe extern "C" fn main_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    let main = main_file(file);
    if main.level >= ffi::SQLITE_LOCK_SHARED {
        if let Err(e) = main.fill_cache() {
            return io_code(&e, ffi::SQLITE_IOERR_FSTAT);
        }
    }
    if let Cache::Whole { image, .. } = &main.cache {
        *size = image.len() as i64;
        return ffi::SQLITE_OK;
    }
    match main.raw.size() {
        Ok(n) => {
            *size = n as i64;
            ffi::SQLITE_OK
        }
        Err(_) => ffi::SQLITE_IOERR_FSTAT,
    }
}

unsafe extern "C" fn main_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    main_file(file).lock(level)
}

unsafe extern "C" fn main_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    main_file(file).unlock(level)
}

unsafe extern "C" fn main_check_reserved(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // Our lock is exclusive from SHARED up: while we hold any level, nobody
    // else holds RESERVED; without it we cannot know, and SQLite only asks
    // while holding SHARED.
    *out = c_int::from(main_file(file).level > ffi::SQLITE_LOCK_SHARED);
    ffi::SQLITE_OK
}

unsafe extern "C" fn journal_close(file: *mut ffi::sqlite3_file) -> c_int {
    let state = (*file.cast::<Handle>()).state.cast::<JournalFile>();
    let mut journal = Box::from_raw(state);
    // Ordering: the journal's bytes, then the database pages they protect,
    // and only then may SQLite delete the journal (which it does next).
    let mut rc = journal.flush();
    let main = journal.main();
    main.journal = ptr::null_mut();
    if rc == ffi::SQLITE_OK {
        rc = main.flush();
    }
    drop(journal);
    (*file).pMethods = ptr::null();
    rc
}

unsafe extern "C" fn journal_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let journal = journal_file(file);
    let rc = journal.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt.max(0) as usize);
    match journal.raw.read_at(out.len(), offset.max(0) as u64) {
        Ok(data) => {
            out[..data.len()].copy_from_slice(&data);
            if data.len() < out.len() {
                out[data.len()..].fill(0);
                return ffi::SQLITE_IOERR_SHORT_READ;
            }
            ffi::SQLITE_OK
        }
        Err(e) => io_code(&e, ffi::SQLITE_IOERR_READ),
    }
}

unsafe extern "C" fn journal_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), amt.max(0) as usize);
    journal_file(file).write(data, offset.max(0) as u64)
}

unsafe extern "C" fn journal_truncate(
    file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    let journal = journal_file(file);
    let rc = journal.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if journal.main().lock.may_modify() == LeaseState::Lapsed {
        return LEASE_LAPSED;
    }
    match journal.raw.set_len(size.max(0) as u64) {
        Ok(()) => ffi::SQLITE_OK,
        Err(e) => {
            journal.main().io_failed = true;
            io_code(&e, ffi::SQLITE_IOERR_TRUNCATE)
        }
    }
}

unsafe extern "C" fn journal_sync(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    let journal = journal_file(file);
    let rc = journal.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match journal.raw.sync() {
        Ok(()) => ffi::SQLITE_OK,
        Err(_) => {
            journal.main().io_failed = true;
            ffi::SQLITE_IOERR_FSYNC
        }
    }
}

unsafe extern "C" fn journal_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    let journal = journal_file(file);
    let rc = journal.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match journal.raw.size() {
        Ok(n) => {
            *size = n as i64;
            ffi::SQLITE_OK
        }
        Err(_) => ffi::SQLITE_IOERR_FSTAT,
    }
}

unsafe extern "C" fn journal_check_reserved(
    _file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    *out = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn no_lock(_file: *mut ffi::sqlite3_file, _level: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn file_control(
    _file: *mut ffi::sqlite3_file,
    _op: c_int,
    _arg: *mut c_void,
) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    4096
}

unsafe extern "C" fn device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    0
}
