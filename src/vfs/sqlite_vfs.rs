//! The `sqlite3_vfs` itself: registration, and the callbacks SQLite makes
//! to open, delete and find files. Session databases and their journals are
//! ours; everything else goes to the platform's default VFS unchanged.

use super::io_methods::Handle;
use super::journal::{self, MemoryJournal};
use super::main_file::{self, MainFile, OpenFailed};
use super::object::Settings;
use super::{
    DEFAULT_LEASE_MS, DURABLE_PARAM_C, LEASE_PARAM_C, SHARED_PARAM_C, TEMPLATE_PARAM_C, VFS_NAME_C,
};
use rusqlite::ffi;
use std::ffi::{c_char, c_int, CStr};
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

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
            // The default VFS, too: SQLite seeds its PRNG (for journal
            // nonces) from the default VFS's xRandomness, and the unix one
            // costs a wasi-libc `get-directories` and two clock calls per
            // instance (see `x_randomness`). Files that are not ours still
            // go to the unix VFS (see `x_open`).
            // SAFETY: `vfs` is leaked, so it outlives every connection.
            let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 1) };
            if rc == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(format!("sqlite3_vfs_register failed: {rc}"))
            }
        })
        .clone()
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
pub(super) unsafe fn main_of_journal(z: *const c_char) -> Option<&'static mut MainFile> {
    if !name_of(z)?.ends_with("-journal") {
        return None;
    }
    // SAFETY: only called with journal names that came from SQLite's pager,
    // for which sqlite3_database_file_object is defined.
    let file = ffi::sqlite3_database_file_object(z);
    if file.is_null() || !ptr::eq((*file).pMethods, &main_file::METHODS) {
        return None;
    }
    Some(&mut *((*file.cast::<Handle>()).state.cast::<MainFile>()))
}

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
    let handle = file.cast::<Handle>();
    if is_main {
        let read_only = flags & ffi::SQLITE_OPEN_READWRITE == 0;
        let may_create = flags & ffi::SQLITE_OPEN_CREATE != 0;
        let lease_ms = ffi::sqlite3_uri_int64(z_name, LEASE_PARAM_C.as_ptr(), DEFAULT_LEASE_MS);
        let durable = ffi::sqlite3_uri_boolean(z_name, DURABLE_PARAM_C.as_ptr(), 1) != 0;
        let shared = ffi::sqlite3_uri_boolean(z_name, SHARED_PARAM_C.as_ptr(), 0) != 0;
        let settings = Settings {
            lease: Duration::from_millis(lease_ms.max(1) as u64),
            durable,
            shared,
        };
        let main = if ffi::sqlite3_uri_boolean(z_name, TEMPLATE_PARAM_C.as_ptr(), 0) != 0 {
            MainFile::template()
        } else {
            match MainFile::open(path, read_only, settings) {
                (main, Ok(())) => main,
                (main, Err(OpenFailed::Absent)) if may_create => main,
                _ => return ffi::SQLITE_CANTOPEN,
            }
        };
        (*handle).state = Box::into_raw(Box::new(main)).cast();
        (*file).pMethods = &main_file::METHODS;
    } else {
        if main_of_journal(z_name).is_none() {
            return ffi::SQLITE_CANTOPEN;
        }
        let journal = Box::new(MemoryJournal { data: Vec::new() });
        (*handle).state = Box::into_raw(journal).cast();
        (*file).pMethods = &journal::METHODS;
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
    // Our journals live in memory: deleting one (the end of a transaction)
    // is nothing to do.
    if main_of_journal(z_name).is_some() {
        return ffi::SQLITE_OK;
    }
    let default = default_vfs(vfs);
    ((*default).xDelete.expect("every VFS has xDelete"))(default, z_name, sync_dir)
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    flags: c_int,
    res_out: *mut c_int,
) -> c_int {
    let name = name_of(z_name).unwrap_or("");
    // Our files are never in WAL mode (the VFS has no shared memory), and
    // their journals are never on disk (commits are renames), so there is
    // neither a WAL nor a hot journal to find.
    if name.ends_with("-wal") || main_of_journal(z_name).is_some() {
        *res_out = 0;
        return ffi::SQLITE_OK;
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
    // component looking for symlinks, six host calls per open. A bucket's
    // `<bucket>/<key>` is no path at all, and must stay as it is.
    let ours = |n: &&str| cfg!(feature = "kv") || n.starts_with('/');
    if let Some(name) = name_of(z_name).filter(ours) {
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

/// SQLite seeds its PRNG from here once per instance. The unix VFS tries to
/// open `/dev/urandom`, which under WASI is not there and costs wasi-libc's
/// own `get-directories` before falling back to the time; `wasi:random` is
/// one call and really random. The key-value build asks through `getrandom`
/// instead, which imports `wasi:random` at the oldest 0.2 version, so that
/// component imports nothing newer than hosts such as Spin provide.
unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    #[cfg(all(target_arch = "wasm32", not(feature = "kv")))]
    {
        let _ = vfs;
        let bytes = wasip2::random::random::get_random_bytes(n.max(0) as u64);
        ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), bytes.len());
        bytes.len() as c_int
    }
    #[cfg(all(target_arch = "wasm32", feature = "kv"))]
    {
        let _ = vfs;
        // SAFETY: SQLite hands a buffer of `n` bytes.
        let buf = std::slice::from_raw_parts_mut(out.cast::<u8>(), n.max(0) as usize);
        match getrandom::fill(buf) {
            Ok(()) => n,
            Err(_) => 0,
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let default = default_vfs(vfs);
        match (*default).xRandomness {
            Some(f) => f(default, n, out),
            None => 0,
        }
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
