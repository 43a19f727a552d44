//! `sessions`: the SQLite VFS every session database is opened with.
//!
//! It exists for two reasons, both measured (see README, "Concurrency and
//! durability", and BENCHMARKS.md):
//!
//! 1. **Locks that recover.** SQLite's default under WASI, `unix-dotfile`,
//!    leaves `<db>.lock` behind when an instance dies holding it, and the
//!    session is locked forever. The filesystem backend (`fs::lease`) keeps
//!    a lock file but adds a lease, renewal and a safe takeover.
//! 2. **Few host calls.** Every storage call crosses into the host. The
//!    fewest calls come from treating a session database as a value:
//!
//!    * **Copy on write.** A connection holds the whole database in memory
//!      (its *image*, read in one call). A write transaction changes the
//!      image, and its commit publishes the next version whole. So a
//!      version, once published, never changes; a crash at any point leaves
//!      the old version or the new one, never a mixture; and there is no
//!      rollback journal in storage (SQLite's journal lives in memory, for
//!      rolling back a transaction that fails).
//!    * **Reads without a lock.** Because a published version never
//!      changes, a reader only needs to know whether its image is still the
//!      published one. Readers never wait for writers, and never block them.
//!    * **Writers lock once.** The storage layer announces a write
//!      transaction ([`WriteIntent`]), so the right to publish is taken
//!      before SQLite reads anything; the commit gives it back.
//!
//! The modules, bottom up: `object` (the seam: what the VFS needs of the
//! storage beneath, for one session) and `fs` (the filesystem backend);
//! `io_methods` and `journal` (SQLite's file methods, and the journal in
//! memory); `main_file` (one connection's view of a session database);
//! `sqlite_vfs` (registration and the VFS callbacks); this module, the API
//! the store calls. None of them uses anything else of the crate.
//!
//! Files other than a main database and its rollback journal (SQLite's
//! temporary files, which `temp_store=MEMORY` mostly avoids) go to the
//! platform's default VFS unchanged.

mod directory_check;
#[cfg(not(feature = "kv"))]
mod fs;
mod io_methods;
mod journal;
#[cfg(feature = "kv")]
pub(crate) mod kv;
mod main_file;
mod object;
mod sqlite_vfs;

pub use directory_check::{CheckResult, DirectoryCheck};
pub use object::Settings;
pub use sqlite_vfs::register;

/// The backend session images are kept in, chosen at build time (the `kv`
/// feature), and the operations on its root as a whole (`dir`).
#[cfg(not(feature = "kv"))]
type Backend = fs::FileObject;
#[cfg(not(feature = "kv"))]
pub(crate) use fs::dir;
#[cfg(feature = "kv")]
type Backend = kv::KvObject;
#[cfg(feature = "kv")]
pub(crate) use kv::dir;

/// What the storage records of a session's expiry without opening it
/// (`dir::hint`).
#[cfg_attr(feature = "kv", allow(dead_code))]
pub enum Hint {
    /// Nothing is there any more.
    Gone,
    /// The expiry hint (see the store's `expiry::hint_mtime`).
    At(SystemTime),
    /// Nothing is recorded beside the session (a key-value bucket): read it.
    #[cfg_attr(not(feature = "kv"), allow(dead_code))]
    Unknown,
}

/// `<db>` + these: the filesystem backend's lock file and break directory.
pub const LOCK_SUFFIX: &str = ".lock";
pub const BREAK_SUFFIX: &str = ".lock-break";

use rusqlite::{ffi, Connection};
use std::ffi::{c_int, c_void, CStr};
use std::ptr;
use std::time::SystemTime;

/// The name sessions are opened with.
pub const VFS_NAME: &str = "sessions";
pub(super) const VFS_NAME_C: &CStr = c"sessions";

/// The URI parameter that carries the lock lease, in milliseconds.
pub(super) const LEASE_PARAM_C: &CStr = c"lease_ms";
pub(super) const DEFAULT_LEASE_MS: i64 = 2000;
/// The URI parameter that says whether a commit is fsynced (1) or not (0).
pub(super) const DURABLE_PARAM_C: &CStr = c"durable";
/// The URI parameter that says whether several hosts share the storage.
pub(super) const SHARED_PARAM_C: &CStr = c"shared";
/// The URI parameter that opens a template (see [`template_uri`]).
pub(super) const TEMPLATE_PARAM_C: &CStr = c"template";

/// The extended code for "our lease lapsed, nothing was written"; the storage
/// layer maps it to `busy`.
pub const LEASE_LAPSED: c_int = ffi::SQLITE_IOERR_LOCK;
/// The extended code for "another writer published first" (the key-value
/// backend's compare-and-swap lost): the storage layer runs the transaction
/// again. SQLite never produces it on this VFS (it is the code of F2FS's
/// batch-atomic writes), so it cannot be mistaken for anything else.
pub const CONFLICT: c_int = ffi::SQLITE_IOERR_COMMIT_ATOMIC;
/// The extended code for "the file was deleted since this connection last
/// saw it" (another request destroyed the session); mapped to `not-found`.
pub const VANISHED: c_int = ffi::SQLITE_IOERR_DELETE_NOENT;

/// `sqlite3_file_control` operations of this VFS (well above SQLite's own).
pub(super) const FCNTL_WRITE_INTENT: c_int = 0x5e55_0001;
pub(super) const FCNTL_COMMIT_MTIME: c_int = 0x5e55_0002;
pub(super) const FCNTL_READ_SCOPE: c_int = 0x5e55_0003;
pub(super) const FCNTL_ATTACH: c_int = 0x5e55_0004;
pub(super) const FCNTL_DETACH: c_int = 0x5e55_0005;
pub(super) const FCNTL_IMAGE: c_int = 0x5e55_0006;

/// The SQLite URI for a session file opened with `settings`.
pub fn uri(path: &str, settings: Settings) -> String {
    let mut out = String::from("file:");
    for b in path.bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    format!(
        "{out}?lease_ms={}&durable={}&shared={}",
        settings.lease.as_millis().max(1),
        u8::from(settings.durable),
        u8::from(settings.shared)
    )
}

/// The SQLite URI of a *template*: a database with no file behind it, held
/// in memory, that takes no lock and commits in memory. A connection to one
/// can have its schema read and its statements compiled ahead of time (in a
/// pre-initialised snapshot of the component, see the store's `storage::template`), and is
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
/// `path`, as if it had been opened there with [`uri`]`(path, settings)`.
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
    settings: Settings,
    new_image: Option<&[u8]>,
) -> Result<(), AttachError> {
    let mut request = AttachRequest {
        path,
        settings,
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
pub(super) struct AttachRequest<'a> {
    pub(super) path: &'a str,
    pub(super) settings: Settings,
    /// For a file not created yet: its first version.
    pub(super) new_image: Option<&'a [u8]>,
    /// Set by the VFS when it did not attach because a file was (`true`) or
    /// was not (`false`) at `path`.
    pub(super) found: Option<bool>,
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
