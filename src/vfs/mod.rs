//! `sessions`: the SQLite VFS every session file is opened with.
//!
//! It exists for two reasons, both measured (see README, "Concurrency and
//! durability" and the benchmark table):
//!
//! 1. **Locks that recover.** SQLite's default under WASI, `unix-dotfile`,
//!    leaves `<db>.lock` behind when an instance dies holding it, and the
//!    session is locked forever. [`lease`] keeps a lock file but adds a
//!    lease, renewal and a safe takeover.
//! 2. **Few host calls.** Every filesystem call crosses into the host. The
//!    fewest calls come from treating a session file as a value:
//!
//!    * **Copy on write.** A connection holds the whole file in memory (its
//!      *image*, read in one call). A write transaction changes the image,
//!      and its commit stages the new version in the lock file and renames
//!      it over the session file ([`lease::LeaseLock::commit`]). So a file,
//!      once published, never changes; a crash at any point leaves the old
//!      version or the new one, never a mixture; and there is no rollback
//!      journal on disk (SQLite's journal lives in memory, for rolling back
//!      a transaction that fails).
//!    * **Reads without a lock.** Because a published file never changes,
//!      a reader only needs to know whether its image is still the current
//!      version: one `stat` of the open file, whose link count drops to
//!      zero once a commit (or a delete) has replaced it. Readers never wait
//!      for writers, and never block them.
//!    * **Writers lock once.** The storage layer announces a write
//!      transaction ([`begin_write`]), so the lock is taken before SQLite
//!      reads anything; the commit releases it.
//!
//! Files other than a main database and its rollback journal (SQLite's
//! temporary files, which `temp_store=MEMORY` mostly avoids) go to the
//! platform's default VFS unchanged.

mod lease;
mod raw;

/// Filesystem primitives with one host call each on wasm (see `raw`).
pub(crate) mod fs {
    pub use super::raw::{is_preopened_dir, remove_file, set_mtime, stat};
}

/// The sweep's clean-up of a lock file left by a writer that died creating
/// a session (see [`lease::remove_orphan`]).
pub(crate) use lease::remove_orphan as remove_orphaned_lock;

use lease::{CommitFailed, LeaseLock};
use raw::{OpenMode, RawFile};
use rusqlite::{ffi, Connection};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The name sessions are opened with.
pub const VFS_NAME: &str = "sessions";
const VFS_NAME_C: &CStr = c"sessions";

/// The URI parameter that carries the lock lease, in milliseconds.
const LEASE_PARAM_C: &CStr = c"lease_ms";
const DEFAULT_LEASE_MS: i64 = 2000;
/// The URI parameter that says whether a commit is fsynced (1) or not (0).
const DURABLE_PARAM_C: &CStr = c"durable";
/// The URI parameter that opens a template (see [`template_uri`]).
const TEMPLATE_PARAM_C: &CStr = c"template";

/// The extended code for "our lease lapsed, nothing was written"; the storage
/// layer maps it to `busy`.
pub const LEASE_LAPSED: c_int = ffi::SQLITE_IOERR_LOCK;
/// The extended code for "the file was deleted since this connection last
/// saw it" (another request destroyed the session); mapped to `not-found`.
pub const VANISHED: c_int = ffi::SQLITE_IOERR_DELETE_NOENT;

/// `sqlite3_file_control` operations of this VFS (well above SQLite's own).
const FCNTL_WRITE_INTENT: c_int = 0x5e55_0001;
const FCNTL_COMMIT_MTIME: c_int = 0x5e55_0002;
const FCNTL_READ_SCOPE: c_int = 0x5e55_0003;
const FCNTL_ATTACH: c_int = 0x5e55_0004;
const FCNTL_DETACH: c_int = 0x5e55_0005;
const FCNTL_IMAGE: c_int = 0x5e55_0006;

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

/// The SQLite URI for a session file with the given lease, fsyncing each
/// commit when `durable`.
pub fn uri(path: &str, lease: Duration, durable: bool) -> String {
    let mut out = String::from("file:");
    for b in path.bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    format!(
        "{out}?lease_ms={}&durable={}",
        lease.as_millis().max(1),
        u8::from(durable)
    )
}

/// The SQLite URI of a *template*: a database with no file behind it, held
/// in memory, that takes no lock and commits in memory. A connection to one
/// can have its schema read and its statements compiled ahead of time (in a
/// pre-initialised snapshot of the component, see `crate::template`), and is
/// then pointed at a real session file with [`attach`]. Only this function
/// makes such a URI, so no session path can open a template by accident.
pub fn template_uri() -> String {
    "file:/sessions-template?template=1".to_owned()
}

/// Why [`attach`] did not point a template at a file.
#[derive(Debug, PartialEq, Eq)]
pub enum AttachError {
    /// There is no file at the path (and no `new_image` was given).
    Absent,
    /// There is a file at the path (and a `new_image` was given).
    Exists,
    /// The connection is not an idle template, or the file could not be
    /// read. (No code kept: the caller then opens the ordinary way, which
    /// reports the error.)
    Failed,
}

/// Points the idle template connection `conn` at the session file at
/// `path`, as if it had been opened there with [`uri`]`(path, lease,
/// durable)`.
///
/// * `new_image: None`: the file exists; two host calls (open, read), like
///   an open.
/// * `new_image: Some(image)`: the file does not exist yet, and its first
///   commit is to start from `image` (a database with the session schema,
///   see [`image_of`]) rather than from an empty database; one host call
///   (the open that finds nothing), like a create.
///
/// SQLite's compiled statements and schema survive; its page cache must be
/// empty (the storage layer releases it), and its change-counter check then
/// treats the new file as a database another process rewrote. A schema that
/// differs from the template's is caught by SQLite's own schema-cookie check,
/// which recompiles.
pub fn attach(
    conn: &Connection,
    path: &str,
    lease: Duration,
    durable: bool,
    new_image: Option<&[u8]>,
) -> Result<(), AttachError> {
    let mut request = AttachRequest {
        path,
        lease,
        durable,
        new_image,
        found: None,
    };
    // SAFETY: the handle is valid for the duration of the call.
    let db = unsafe { conn.handle() };
    let rc = file_control(
        db,
        FCNTL_ATTACH,
        (&mut request as *mut AttachRequest).cast(),
    );
    match (rc, request.found) {
        (ffi::SQLITE_OK, _) => Ok(()),
        (_, Some(false)) => Err(AttachError::Absent),
        (_, Some(true)) => Err(AttachError::Exists),
        (_, None) => Err(AttachError::Failed),
    }
}

/// A copy of the whole database held by the template connection `conn`
/// (one that is not attached to a file), or `None` for any other.
pub fn image_of(conn: &Connection) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    // SAFETY: the handle is valid for the duration of the call.
    let db = unsafe { conn.handle() };
    file_control(db, FCNTL_IMAGE, (&mut out as *mut Option<Vec<u8>>).cast());
    out
}

/// Makes the idle connection `conn` a template again: it lets go of its
/// session file (closing it) and holds an empty image, so that it can be
/// kept and [`attach`]ed to the next session file. Fails (changing nothing)
/// inside a transaction or on a connection that is not ours.
pub fn detach(conn: &Connection) -> Result<(), c_int> {
    // SAFETY: the handle is valid for the duration of the call.
    let db = unsafe { conn.handle() };
    match file_control(db, FCNTL_DETACH, ptr::null_mut()) {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(rc),
    }
}

/// What `attach` passes through `sqlite3_file_control`.
struct AttachRequest<'a> {
    path: &'a str,
    lease: Duration,
    durable: bool,
    /// For a file not created yet: its first version.
    new_image: Option<&'a [u8]>,
    /// Set by the VFS when it did not attach because a file was (`true`) or
    /// was not (`false`) at `path`.
    found: Option<bool>,
}

/// A per-connection setting of this VFS, on while the guard lives. Made by
/// [`WriteIntent::announce`] and [`ReadScope::begin`].
pub struct VfsFlag {
    db: *mut ffi::sqlite3,
    op: c_int,
}

impl VfsFlag {
    fn on(conn: &Connection, op: c_int) -> VfsFlag {
        // SAFETY: the handle stays valid while `conn` lives, and the guards
        // live inside the storage calls that borrow `conn`.
        let db = unsafe { conn.handle() };
        set_flag(db, op, true);
        VfsFlag { db, op }
    }
}

impl Drop for VfsFlag {
    fn drop(&mut self) {
        set_flag(self.db, self.op, false);
    }
}

fn set_flag(db: *mut ffi::sqlite3, op: c_int, on: bool) {
    let mut arg = c_int::from(on);
    file_control(db, op, (&mut arg as *mut c_int).cast());
}

/// Says that the next transaction on a connection writes, so that the VFS
/// takes the lock as the transaction starts, before SQLite reads anything.
/// Hold it across `BEGIN IMMEDIATE`. Without it a write still works, but
/// locks only at its first write, re-checks the file then (a host call) and
/// reports `busy` if it changed since the transaction began.
pub struct WriteIntent;

impl WriteIntent {
    pub fn announce(conn: &Connection) -> VfsFlag {
        VfsFlag::on(conn, FCNTL_WRITE_INTENT)
    }
}

/// Makes the read transactions on a connection check that its image is
/// current only once: SQLite loads a connection's schema in a read
/// transaction of its own before the statement's, and each would cost a
/// `stat`. Hold it across one storage operation (a `get`, a `load`), which
/// then reads one consistent version, as one transaction would.
pub struct ReadScope;

impl ReadScope {
    pub fn begin(conn: &Connection) -> VfsFlag {
        VfsFlag::on(conn, FCNTL_READ_SCOPE)
    }
}

/// The mtime the next commit on `conn` gives the file (the sweep's expiry
/// hint); without it the file keeps the filesystem's time of the commit.
pub fn set_commit_mtime(conn: &Connection, at: SystemTime) {
    let mut ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64);
    // SAFETY: the handle is valid for the duration of the call.
    let db = unsafe { conn.handle() };
    file_control(db, FCNTL_COMMIT_MTIME, (&mut ms as *mut i64).cast());
}

fn file_control(db: *mut ffi::sqlite3, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: `db` is a live handle; "main" is NUL-terminated; our ops only
    // use `arg` during the call. On a connection of another VFS SQLite
    // answers NOTFOUND, which is harmless.
    unsafe { ffi::sqlite3_file_control(db, c"main".as_ptr(), op, arg) }
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
    let handle = file.cast::<Handle>();
    if is_main {
        let read_only = flags & ffi::SQLITE_OPEN_READWRITE == 0;
        let may_create = flags & ffi::SQLITE_OPEN_CREATE != 0;
        let lease_ms = ffi::sqlite3_uri_int64(z_name, LEASE_PARAM_C.as_ptr(), DEFAULT_LEASE_MS);
        let durable = ffi::sqlite3_uri_boolean(z_name, DURABLE_PARAM_C.as_ptr(), 1) != 0;
        let lease = Duration::from_millis(lease_ms.max(1) as u64);
        let main = if ffi::sqlite3_uri_boolean(z_name, TEMPLATE_PARAM_C.as_ptr(), 0) != 0 {
            MainFile::template()
        } else {
            let mut main = MainFile::new(path, read_only, durable, lease);
            match main.reload() {
                Ok(()) => {}
                Err(Reload::Absent) if may_create => {}
                Err(_) => return ffi::SQLITE_CANTOPEN,
            }
            main.fresh = true;
            main
        };
        (*handle).state = Box::into_raw(Box::new(main)).cast();
        (*file).pMethods = &MAIN_METHODS;
    } else {
        if main_of_journal(z_name).is_none() {
            return ffi::SQLITE_CANTOPEN;
        }
        let journal = Box::new(MemoryJournal { data: Vec::new() });
        (*handle).state = Box::into_raw(journal).cast();
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

/// SQLite seeds its PRNG from here once per instance. The unix VFS tries to
/// open `/dev/urandom`, which under WASI is not there and costs wasi-libc's
/// own `get-directories` before falling back to the time; `wasi:random` is
/// one call and really random.
unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = vfs;
        let bytes = wasip2::random::random::get_random_bytes(n.max(0) as u64);
        ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), bytes.len());
        bytes.len() as c_int
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

// ------------------------------------------------------- the main database

/// One connection's view of a session file.
struct MainFile {
    path: String,
    read_only: bool,
    /// Fsync each commit (`durability = power-loss`).
    durable: bool,
    /// The published file `image` was read from; `None` while the database
    /// does not exist yet.
    file: Option<RawFile>,
    /// The whole file, as SQLite reads and writes it.
    image: Vec<u8>,
    /// `image` is `file`'s content (false after a transaction that wrote to
    /// it failed or rolled back: the next transaction reads it again).
    image_valid: bool,
    /// Read at open and not yet used: a read transaction right after the
    /// open may take it without checking, as if it had run at the open.
    fresh: bool,
    /// Inside a `ReadScope`, and whether the image was checked in it.
    in_read_scope: bool,
    checked_in_scope: bool,
    /// The image has changes not yet published.
    dirty: bool,
    lock: LeaseLock,
    /// Set by `set_write_intent`: lock as the next transaction starts.
    write_intent: bool,
    /// Set by `set_commit_mtime`, used by the next commit.
    commit_mtime: Option<SystemTime>,
    level: c_int,
    /// A template (see [`template_uri`]): `image` has no file behind it,
    /// needs no check, takes no lock and commits in memory, until `attach`.
    detached: bool,
    /// While the file does not exist: the database its first commit starts
    /// from. Empty (SQLite then creates one), or given to `attach`.
    new_image: Vec<u8>,
}

/// Why `reload` found no file.
enum Reload {
    /// There is no file at the path.
    Absent,
    Failed(std::io::Error),
}

impl MainFile {
    fn new(path: &str, read_only: bool, durable: bool, lease: Duration) -> MainFile {
        MainFile {
            path: path.to_owned(),
            read_only,
            durable,
            file: None,
            image: Vec::new(),
            image_valid: false,
            fresh: false,
            in_read_scope: false,
            checked_in_scope: false,
            dirty: false,
            lock: LeaseLock::new(path, lease),
            write_intent: false,
            commit_mtime: None,
            level: ffi::SQLITE_LOCK_NONE,
            detached: false,
            new_image: Vec::new(),
        }
    }

    /// A template: an empty database in memory, with no file, lock or
    /// lease of its own until `attach`.
    fn template() -> MainFile {
        let mut template = MainFile::new("", false, false, Duration::from_millis(1));
        template.detached = true;
        template.image_valid = true;
        template
    }

    /// Becomes the existing file at `request.path`, read whole (two calls),
    /// if this is a template outside any transaction.
    fn attach(&mut self, request: &mut AttachRequest) -> c_int {
        if !self.detached || self.level != ffi::SQLITE_LOCK_NONE || self.dirty {
            return ffi::SQLITE_MISUSE;
        }
        let mut file = MainFile::new(request.path, false, request.durable, request.lease);
        if let Some(image) = request.new_image {
            file.new_image = image.to_vec();
        }
        match (file.reload(), request.new_image.is_some()) {
            (Ok(()), false) | (Err(Reload::Absent), true) => {}
            (Ok(()), true) => {
                request.found = Some(true);
                return ffi::SQLITE_CANTOPEN;
            }
            (Err(Reload::Absent), false) => {
                request.found = Some(false);
                return ffi::SQLITE_CANTOPEN;
            }
            (Err(Reload::Failed(e)), _) => return io_code(&e, ffi::SQLITE_CANTOPEN),
        }
        file.fresh = true;
        *self = file;
        ffi::SQLITE_OK
    }

    /// Becomes a template (see [`detach`]) if no transaction is open.
    fn detach(&mut self) -> c_int {
        if self.level != ffi::SQLITE_LOCK_NONE || self.dirty || self.lock.is_held() {
            return ffi::SQLITE_MISUSE;
        }
        *self = MainFile::template();
        ffi::SQLITE_OK
    }

    /// Opens the file at our path afresh and reads it whole: two calls.
    ///
    /// Always for reading only, even on a read-write connection: a published
    /// version is never written again (a commit renames a new file over it),
    /// so this descriptor is only ever read and `stat`ed. That is also what
    /// lets a host preopen the directory read-only (`FsPerms::Read`) and
    /// still serve loads and gets.
    fn reload(&mut self) -> Result<(), Reload> {
        let file = match RawFile::open(&self.path, OpenMode::ReadOnly) {
            Ok(file) => file,
            Err(e) if raw::is_not_found(&e) => {
                if self.file.is_none() {
                    // Still not created: its first version is still to be
                    // (an empty database, unless `attach` gave one).
                    self.image.clone_from(&self.new_image);
                    self.image_valid = true;
                }
                return Err(Reload::Absent);
            }
            Err(e) => return Err(Reload::Failed(e)),
        };
        self.image = read_image(&file).map_err(Reload::Failed)?;
        self.file = Some(file);
        self.image_valid = true;
        Ok(())
    }

    /// Makes `image` the current published version (or an empty database
    /// when there is none yet). One `stat` when nothing changed.
    fn refresh(&mut self) -> c_int {
        let current = match &self.file {
            Some(file) => match file.link_count() {
                Ok(links) => links > 0,
                Err(e) => return io_code(&e, ffi::SQLITE_IOERR_FSTAT),
            },
            None => false,
        };
        if current && self.image_valid {
            return ffi::SQLITE_OK;
        }
        if current {
            // Same file, but our image of it was spoiled: read it again.
            return match self.file.as_ref().map(read_image) {
                Some(Ok(image)) => {
                    self.image = image;
                    self.image_valid = true;
                    ffi::SQLITE_OK
                }
                Some(Err(e)) => io_code(&e, ffi::SQLITE_IOERR_READ),
                None => ffi::SQLITE_IOERR_READ,
            };
        }
        match self.reload() {
            Ok(()) => ffi::SQLITE_OK,
            // Never created: still an empty database (see `reload`).
            Err(Reload::Absent) if self.file.is_none() => ffi::SQLITE_OK,
            // It existed and is gone: destroyed by another request.
            Err(Reload::Absent) => VANISHED,
            Err(Reload::Failed(e)) => io_code(&e, ffi::SQLITE_IOERR_READ),
        }
    }

    /// Whether the file at our path is still the one `image` came from,
    /// without reading it. For a write that did not announce itself.
    fn unchanged(&mut self) -> Result<bool, c_int> {
        match &self.file {
            Some(file) => file
                .link_count()
                .map(|links| links > 0 && self.image_valid)
                .map_err(|e| io_code(&e, ffi::SQLITE_IOERR_FSTAT)),
            None => match RawFile::open(&self.path, OpenMode::ReadOnly) {
                Err(e) if raw::is_not_found(&e) => Ok(self.image_valid),
                Ok(_) => Ok(false),
                Err(e) => Err(io_code(&e, ffi::SQLITE_IOERR_FSTAT)),
            },
        }
    }

    fn acquire(&mut self) -> c_int {
        if self.read_only {
            return ffi::SQLITE_READONLY;
        }
        match self.lock.try_acquire() {
            Ok(true) => ffi::SQLITE_OK,
            Ok(false) => ffi::SQLITE_BUSY,
            // Not `SQLITE_IOERR_LOCK`: that is `LEASE_LAPSED`, which callers
            // are told to retry. A lock file that cannot be created will not
            // appear by retrying; a directory the host made read-only gets
            // SQLite's own "readonly database".
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => ffi::SQLITE_READONLY,
            Err(e) => io_code(&e, ffi::SQLITE_IOERR_ACCESS),
        }
    }

    /// Ends a write transaction that did not commit: its changes to the
    /// image are dropped and the lock is given back.
    fn abort_write(&mut self) -> c_int {
        if self.dirty {
            self.dirty = false;
            self.image_valid = false;
        }
        match self.lock.release() {
            Ok(()) => ffi::SQLITE_OK,
            Err(_) => ffi::SQLITE_IOERR_UNLOCK,
        }
    }

    /// Publishes the image (see `LeaseLock::commit`).
    fn commit(&mut self) -> c_int {
        let mtime = self.commit_mtime.take();
        if self.detached {
            self.dirty = false;
            return ffi::SQLITE_OK;
        }
        match self
            .lock
            .commit(&self.image, mtime, self.durable, &self.path)
        {
            Ok(published) => {
                self.file = Some(published);
                self.dirty = false;
                ffi::SQLITE_OK
            }
            Err(CommitFailed::Lapsed) => {
                self.dirty = false;
                self.image_valid = false;
                LEASE_LAPSED
            }
            Err(CommitFailed::Io(e)) => {
                // The lock file holds a half-written version nobody reads;
                // give the lock back at once.
                let _ = self.abort_write();
                io_code(&e, ffi::SQLITE_IOERR_WRITE)
            }
        }
    }
}

impl VfsFile for MainFile {
    fn read(&mut self, out: &mut [u8], offset: usize) -> c_int {
        read_from(&self.image, out, offset)
    }

    /// Changes stay in memory until the commit (`sync`).
    fn write(&mut self, data: &[u8], offset: usize) -> c_int {
        write_into(&mut self.image, data, offset);
        self.dirty = true;
        ffi::SQLITE_OK
    }

    fn truncate(&mut self, size: usize) -> c_int {
        self.image.truncate(size);
        self.dirty = true;
        ffi::SQLITE_OK
    }

    /// SQLite syncs the database once per commit, after writing every page
    /// (the VFS keeps `synchronous=FULL` in both durability modes so that
    /// this call always comes): the commit point.
    fn sync(&mut self) -> c_int {
        if self.dirty {
            self.commit()
        } else {
            ffi::SQLITE_OK
        }
    }

    fn size(&mut self) -> usize {
        self.image.len()
    }

    fn lock(&mut self, level: c_int) -> c_int {
        if self.detached {
            // Nothing to check or lock: the image is all there is.
            self.level = self.level.max(level);
            return ffi::SQLITE_OK;
        }
        if self.level == ffi::SQLITE_LOCK_NONE && level > ffi::SQLITE_LOCK_NONE {
            if self.write_intent && !self.read_only {
                let rc = self.acquire();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                let rc = self.refresh();
                if rc != ffi::SQLITE_OK {
                    let _ = self.lock.release();
                    return rc;
                }
            } else if !(self.fresh || self.checked_in_scope) {
                let rc = self.refresh();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            self.fresh = false;
            self.checked_in_scope = self.in_read_scope;
        }
        if level >= ffi::SQLITE_LOCK_RESERVED && !self.lock.is_held() {
            // A write that did not announce itself: lock now, and go on only
            // if nothing was published since the transaction read its image.
            let rc = self.acquire();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match self.unchanged() {
                Ok(true) => {}
                other => {
                    let _ = self.lock.release();
                    return other.err().unwrap_or(ffi::SQLITE_BUSY);
                }
            }
        }
        self.level = self.level.max(level);
        ffi::SQLITE_OK
    }

    fn unlock(&mut self, level: c_int) -> c_int {
        if level >= self.level {
            return ffi::SQLITE_OK;
        }
        self.level = level;
        if level <= ffi::SQLITE_LOCK_SHARED && self.lock.is_held() {
            // The write transaction ended without publishing: a rollback, a
            // failure, or a transaction that wrote nothing.
            return self.abort_write();
        }
        ffi::SQLITE_OK
    }

    fn check_reserved(&mut self) -> bool {
        self.lock.is_held()
    }

    fn file_control(&mut self, op: c_int, arg: *mut c_void) -> c_int {
        match op {
            FCNTL_WRITE_INTENT => {
                // SAFETY: `set_write_intent` passes a c_int.
                self.write_intent = unsafe { *arg.cast::<c_int>() } != 0;
                ffi::SQLITE_OK
            }
            FCNTL_READ_SCOPE => {
                // SAFETY: `ReadScope` passes a c_int.
                self.in_read_scope = unsafe { *arg.cast::<c_int>() } != 0;
                self.checked_in_scope = false;
                ffi::SQLITE_OK
            }
            FCNTL_ATTACH => {
                // SAFETY: `attach` passes an `AttachRequest` it holds.
                self.attach(unsafe { &mut *arg.cast::<AttachRequest>() })
            }
            FCNTL_DETACH => self.detach(),
            FCNTL_IMAGE => {
                if self.detached && !self.dirty {
                    // SAFETY: `image_of` passes an `Option<Vec<u8>>` it holds.
                    unsafe { *arg.cast::<Option<Vec<u8>>>() = Some(self.image.clone()) };
                }
                ffi::SQLITE_OK
            }
            FCNTL_COMMIT_MTIME => {
                // SAFETY: `set_commit_mtime` passes an i64.
                let ms = unsafe { *arg.cast::<i64>() }.max(0) as u64;
                self.commit_mtime = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
                ffi::SQLITE_OK
            }
            _ => ffi::SQLITE_NOTFOUND,
        }
    }

    fn close(&mut self) -> c_int {
        if self.lock.is_held() {
            self.abort_write()
        } else {
            ffi::SQLITE_OK
        }
    }
}

/// What one read asks for: wasmtime's cap on a read, and more than a session
/// of a few keys (16 KiB) needs, so one call almost always gets all of it.
const READ_CHUNK: usize = 64 * 1024;

/// The whole file. A read may return less than asked before the end (see
/// `RawFile::read_at`), and asking until a read comes back empty would cost
/// every load a second call, so the database header says how long the file
/// is: its page size times the page count it records (valid when the two
/// change counters in it agree, as SQLite itself checks). Without a valid
/// header, read until a read is empty.
fn read_image(file: &RawFile) -> std::io::Result<Vec<u8>> {
    let mut image = file.read_at(READ_CHUNK, 0)?;
    let expected = recorded_size(&image);
    while expected.is_none_or(|n| image.len() < n) {
        let want = expected.map_or(READ_CHUNK, |n| n - image.len());
        let more = file.read_at(want, image.len() as u64)?;
        if more.is_empty() {
            break;
        }
        image.extend_from_slice(&more);
    }
    Ok(image)
}

/// The file size a SQLite database header records, if it records one.
fn recorded_size(header: &[u8]) -> Option<usize> {
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(header.get(at..at + 4)?.try_into().ok()?))
    };
    let raw_page_size = u16::from_be_bytes(header.get(16..18)?.try_into().ok()?);
    let page_size = match raw_page_size {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => usize::from(n),
        _ => return None,
    };
    let (change_counter, valid_for, pages) = (be32(24)?, be32(92)?, be32(28)?);
    (change_counter == valid_for && pages > 0).then(|| page_size * pages as usize)
}

// --------------------------------------------------------- the journal

/// SQLite's rollback journal for one transaction, in memory: it serves to
/// undo a transaction that fails or rolls back, never crash recovery (a
/// commit is a rename, see the module docs).
struct MemoryJournal {
    data: Vec<u8>,
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

fn read_from(src: &[u8], out: &mut [u8], offset: usize) -> c_int {
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

fn write_into(dst: &mut Vec<u8>, data: &[u8], offset: usize) {
    let end = offset + data.len();
    if dst.len() < end {
        dst.resize(end, 0);
    }
    dst[offset..end].copy_from_slice(data);
}

// ------------------------------------------------------ io_methods glue

/// What SQLite asks of an open file, in safe Rust: one `extern "C"` shim per
/// method, generic over this, serves both kinds of file.
trait VfsFile {
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

const fn io_methods<T: VfsFile>() -> ffi::sqlite3_io_methods {
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

static MAIN_METHODS: ffi::sqlite3_io_methods = io_methods::<MainFile>();
static JOURNAL_METHODS: ffi::sqlite3_io_methods = io_methods::<MemoryJournal>();

unsafe fn state<'a, T>(file: *mut ffi::sqlite3_file) -> &'a mut T {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A database header recording `pages` pages of `page_size` bytes.
    fn header(page_size: u16, pages: u32, counter: u32, valid_for: u32) -> Vec<u8> {
        let mut h = vec![0u8; 100];
        h[16..18].copy_from_slice(&page_size.to_be_bytes());
        h[24..28].copy_from_slice(&counter.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h[92..96].copy_from_slice(&valid_for.to_be_bytes());
        h
    }

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn request<'a>(path: &'a str, new_image: Option<&'a [u8]>) -> AttachRequest<'a> {
        AttachRequest {
            path,
            lease: Duration::from_millis(100),
            durable: false,
            new_image,
            found: None,
        }
    }

    #[test]
    fn a_template_attaches_to_an_existing_file_or_to_a_new_one_only() {
        let dir = scratch_dir("attach");
        let existing = dir.join("existing");
        let bytes = header(4096, 1, 1, 1);
        std::fs::write(&existing, &bytes).unwrap();
        let existing = existing.to_str().unwrap();
        let absent = dir.join("absent");
        let absent = absent.to_str().unwrap();
        let new_image = header(4096, 1, 9, 9);

        // An existing file: read whole, and the next read transaction may
        // take it unchecked.
        let mut t = MainFile::template();
        assert_eq!(t.attach(&mut request(existing, None)), ffi::SQLITE_OK);
        assert!(!t.detached && t.fresh && t.image_valid && t.file.is_some());
        assert_eq!(t.image, bytes);

        // A missing file without a new image: nothing changes.
        let mut t = MainFile::template();
        let mut r = request(absent, None);
        assert_eq!(t.attach(&mut r), ffi::SQLITE_CANTOPEN);
        assert_eq!(r.found, Some(false));
        assert!(t.detached);

        // A new file: no file yet, its first version is the given image,
        // and a refresh (as at the write's lock) keeps it.
        let mut t = MainFile::template();
        assert_eq!(
            t.attach(&mut request(absent, Some(&new_image))),
            ffi::SQLITE_OK
        );
        assert!(t.file.is_none() && t.image == new_image);
        t.image.clear();
        t.image_valid = false;
        assert_eq!(t.refresh(), ffi::SQLITE_OK);
        assert_eq!(t.image, new_image);

        // ... but not over a file that exists.
        let mut t = MainFile::template();
        let mut r = request(existing, Some(&new_image));
        assert_eq!(t.attach(&mut r), ffi::SQLITE_CANTOPEN);
        assert_eq!(r.found, Some(true));
        assert!(t.detached);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_an_idle_template_attaches_and_only_an_idle_file_detaches() {
        let dir = scratch_dir("detach");
        let path = dir.join("s");
        std::fs::write(&path, header(4096, 1, 1, 1)).unwrap();
        let path = path.to_str().unwrap();

        // Attached already: not a template.
        let mut file = MainFile::template();
        assert_eq!(file.attach(&mut request(path, None)), ffi::SQLITE_OK);
        assert_eq!(file.attach(&mut request(path, None)), ffi::SQLITE_MISUSE);

        // Inside a transaction, or holding the write lock: stays attached.
        file.level = ffi::SQLITE_LOCK_SHARED;
        assert_eq!(file.detach(), ffi::SQLITE_MISUSE);
        file.level = ffi::SQLITE_LOCK_NONE;
        assert!(file.lock.try_acquire().unwrap());
        assert_eq!(file.detach(), ffi::SQLITE_MISUSE);
        file.lock.release().unwrap();

        // Idle: a template again, holding no file and taking no lock.
        assert_eq!(file.detach(), ffi::SQLITE_OK);
        assert!(file.detached && file.file.is_none() && file.image.is_empty());
        assert_eq!(file.lock(ffi::SQLITE_LOCK_EXCLUSIVE), ffi::SQLITE_OK);
        assert!(!file.lock.is_held());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_recorded_size_is_trusted_only_when_valid() {
        assert_eq!(recorded_size(&header(4096, 3, 7, 7)), Some(12288));
        // page size 1 means 65536
        assert_eq!(recorded_size(&header(1, 2, 7, 7)), Some(131072));
        // stale header (change counters differ), bad page size, no pages,
        // too short to be a header
        assert_eq!(recorded_size(&header(4096, 3, 7, 6)), None);
        assert_eq!(recorded_size(&header(1000, 3, 7, 7)), None);
        assert_eq!(recorded_size(&header(4096, 0, 7, 7)), None);
        assert_eq!(recorded_size(&[0u8; 50]), None);
    }

    #[test]
    fn read_image_reads_files_larger_than_one_read() {
        let dir = std::env::temp_dir().join(format!("vfs-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, len) in [("small", 12288usize), ("big", 5 * READ_CHUNK + 4096)] {
            let path = dir.join(name);
            let pages = (len / 4096) as u32;
            let mut bytes = header(4096, pages, 1, 1);
            bytes.extend((100..len).map(|i| (i % 251) as u8));
            std::fs::write(&path, &bytes).unwrap();
            let file = RawFile::open(path.to_str().unwrap(), OpenMode::ReadOnly).unwrap();
            assert_eq!(read_image(&file).unwrap(), bytes, "{name}");
        }
        // A file that is not a database: read until a read comes back empty.
        let path = dir.join("foreign");
        let bytes: Vec<u8> = (0..3 * READ_CHUNK + 17).map(|i| (i % 7) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = RawFile::open(path.to_str().unwrap(), OpenMode::ReadOnly).unwrap();
        assert_eq!(read_image(&file).unwrap(), bytes);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
