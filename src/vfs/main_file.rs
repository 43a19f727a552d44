//! One connection's view of a session database: the image SQLite reads and
//! writes, and when it is checked, locked and published.
//!
//! SQLite drives this through its lock levels. A transaction starts by
//! taking SHARED: a read transaction then makes sure its image is the
//! published version (unless it was just read, or already checked in the
//! same [`ReadScope`](super::ReadScope)); a write transaction that was
//! announced ([`WriteIntent`](super::WriteIntent)) takes the right to
//! publish first. SQLite's sync of the database after the last page is
//! written is the commit point. Going back to SHARED or NONE without a
//! commit ends the write: the changed image is dropped.

use super::object::{BeginFailed, CommitFailed, Object, Refreshed, Settings};
use super::{AttachRequest, Backend, CONFLICT, LEASE_LAPSED, VANISHED};
use super::{
    FCNTL_ATTACH, FCNTL_COMMIT_MTIME, FCNTL_DETACH, FCNTL_IMAGE, FCNTL_READ_SCOPE,
    FCNTL_WRITE_INTENT,
};
use crate::vfs::io_methods::{io_methods, read_from, write_into, VfsFile};
use rusqlite::ffi;
use std::ffi::{c_int, c_void};
use std::time::{Duration, SystemTime};

type Version = <Backend as Object>::Version;

/// SQLite's methods for a main database file.
pub(super) static METHODS: ffi::sqlite3_io_methods = io_methods::<MainFile>();

/// One connection's view of a session database.
pub(super) struct MainFile {
    object: Backend,
    read_only: bool,
    /// The published version `image` was read from; `None` while the
    /// database does not exist yet.
    version: Option<Version>,
    /// The whole database, as SQLite reads and writes it.
    image: Vec<u8>,
    /// `image` is `version`'s content (false after a transaction that wrote
    /// to it failed or rolled back: the next transaction reads it again).
    image_valid: bool,
    /// Read at open and not yet used: a read transaction right after the
    /// open may take it without checking, as if it had run at the open.
    fresh: bool,
    /// Inside a `ReadScope`, and whether the image was checked in it.
    in_read_scope: bool,
    checked_in_scope: bool,
    /// The image has changes not yet published.
    dirty: bool,
    /// Set by `WriteIntent`: take the right to publish as the next
    /// transaction starts.
    write_intent: bool,
    /// Set by `set_commit_mtime`, used by the next commit.
    commit_mtime: Option<SystemTime>,
    level: c_int,
    /// A template (see `template_uri`): `image` has no storage behind it,
    /// needs no check, takes no lock and commits in memory, until `attach`.
    detached: bool,
    /// While the database does not exist: the image its first commit starts
    /// from. Empty (SQLite then creates one), or given to `attach`.
    new_image: Vec<u8>,
}

/// Why `open` found nothing to read.
pub(super) enum OpenFailed {
    /// Nothing is published at the path.
    Absent,
    Io(std::io::Error),
}

impl MainFile {
    fn new(path: &str, read_only: bool, settings: Settings) -> MainFile {
        MainFile {
            object: Backend::new(path, settings),
            read_only,
            version: None,
            image: Vec::new(),
            image_valid: false,
            fresh: false,
            in_read_scope: false,
            checked_in_scope: false,
            dirty: false,
            write_intent: false,
            commit_mtime: None,
            level: ffi::SQLITE_LOCK_NONE,
            detached: false,
            new_image: Vec::new(),
        }
    }

    /// The database at `path`, read whole. Nothing published there is
    /// `Absent`, and then the connection starts from an empty database,
    /// created by its first commit (if the caller allows creating).
    pub(super) fn open(
        path: &str,
        read_only: bool,
        settings: Settings,
    ) -> (MainFile, Result<(), OpenFailed>) {
        let mut file = MainFile::new(path, read_only, settings);
        let loaded = file.load();
        file.fresh = true;
        (file, loaded)
    }

    /// A template: an empty database in memory, with no storage, lock or
    /// lease of its own until `attach`.
    pub(super) fn template() -> MainFile {
        let settings = Settings {
            lease: Duration::from_millis(1),
            durable: false,
            shared: false,
        };
        let mut template = MainFile::new("", false, settings);
        template.detached = true;
        template.image_valid = true;
        template
    }

    /// Becomes the database at `request.path`, read whole, if this is a
    /// template outside any transaction.
    pub(super) fn attach(&mut self, request: &mut AttachRequest) -> c_int {
        if !self.detached || self.level != ffi::SQLITE_LOCK_NONE || self.dirty {
            return ffi::SQLITE_MISUSE;
        }
        let mut file = MainFile::new(request.path, false, request.settings);
        if let Some(image) = request.new_image {
            file.new_image = image.to_vec();
        }
        match (file.load(), request.new_image.is_some()) {
            (Ok(()), false) | (Err(OpenFailed::Absent), true) => {}
            (Ok(()), true) => {
                request.found = Some(true);
                return ffi::SQLITE_CANTOPEN;
            }
            (Err(OpenFailed::Absent), false) => {
                request.found = Some(false);
                return ffi::SQLITE_CANTOPEN;
            }
            (Err(OpenFailed::Io(e)), _) => return io_code(&e, ffi::SQLITE_CANTOPEN),
        }
        file.fresh = true;
        *self = file;
        ffi::SQLITE_OK
    }

    /// Becomes a template (see `detach`) if no transaction is open.
    fn detach(&mut self) -> c_int {
        if self.level != ffi::SQLITE_LOCK_NONE || self.dirty || self.object.is_writing() {
            return ffi::SQLITE_MISUSE;
        }
        *self = MainFile::template();
        ffi::SQLITE_OK
    }

    /// Reads the published version, if there is one.
    fn load(&mut self) -> Result<(), OpenFailed> {
        match self.object.refresh(None).map_err(OpenFailed::Io)? {
            Refreshed::Changed(version, image) => {
                self.adopt(version, image);
                Ok(())
            }
            Refreshed::Current | Refreshed::Absent => {
                self.image.clone_from(&self.new_image);
                self.image_valid = true;
                Err(OpenFailed::Absent)
            }
        }
    }

    fn adopt(&mut self, version: Version, image: Vec<u8>) {
        self.version = Some(version);
        self.image = image;
        self.image_valid = true;
    }

    /// Brings `image` up to the published version, as `refreshed` found it.
    fn apply(&mut self, refreshed: Refreshed<Version>) -> c_int {
        match refreshed {
            Refreshed::Current if self.image_valid => ffi::SQLITE_OK,
            Refreshed::Current => {
                // Same version, but our image of it was spoiled: read it again.
                let Some(version) = &self.version else {
                    return ffi::SQLITE_IOERR_READ;
                };
                match self.object.reread(version) {
                    Ok(image) => {
                        self.image = image;
                        self.image_valid = true;
                        ffi::SQLITE_OK
                    }
                    // Replaced and deleted since the comparison (by another
                    // host): read what is published now. (Reading afresh
                    // never answers `Current`, so this does not come back.)
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        match self.object.refresh(None) {
                            Ok(refreshed) => self.apply(refreshed),
                            Err(e) => io_code(&e, ffi::SQLITE_IOERR_READ),
                        }
                    }
                    Err(e) => io_code(&e, ffi::SQLITE_IOERR_READ),
                }
            }
            Refreshed::Changed(version, image) => {
                self.adopt(version, image);
                ffi::SQLITE_OK
            }
            // Never created: its first version is still to be (an empty
            // database, unless `attach` gave one).
            Refreshed::Absent if self.version.is_none() => {
                self.image.clone_from(&self.new_image);
                self.image_valid = true;
                ffi::SQLITE_OK
            }
            // It existed and is gone: destroyed by another request.
            Refreshed::Absent => VANISHED,
        }
    }

    /// Makes `image` the published version (or an empty database when there
    /// is none yet).
    fn refresh(&mut self) -> c_int {
        match self.object.refresh(self.version.as_ref()) {
            Ok(refreshed) => self.apply(refreshed),
            Err(e) => io_code(&e, ffi::SQLITE_IOERR_READ),
        }
    }

    /// Takes the right to publish. With `then_refresh`, the image is then
    /// brought up to the published version; without, going on is allowed
    /// only if nothing was published since the image was read (a write that
    /// did not announce itself, whose transaction already read the image).
    fn begin_write(&mut self, then_refresh: bool) -> c_int {
        if self.read_only {
            return ffi::SQLITE_READONLY;
        }
        let refreshed = match self.object.begin_write(self.version.as_ref()) {
            Ok(refreshed) => refreshed,
            Err(BeginFailed::Busy) => return ffi::SQLITE_BUSY,
            // Not `SQLITE_IOERR_LOCK`: that is `LEASE_LAPSED`, which callers
            // are told to retry. A read-only directory gets SQLite's own
            // "readonly database".
            Err(BeginFailed::ReadOnly) => return ffi::SQLITE_READONLY,
            Err(BeginFailed::Io(e)) => return io_code(&e, ffi::SQLITE_IOERR_ACCESS),
        };
        let rc = if then_refresh {
            self.apply(refreshed)
        } else {
            let unchanged = match refreshed {
                Refreshed::Current => self.image_valid,
                Refreshed::Absent => self.version.is_none() && self.image_valid,
                Refreshed::Changed(..) => false,
            };
            if unchanged {
                ffi::SQLITE_OK
            } else {
                ffi::SQLITE_BUSY
            }
        };
        if rc != ffi::SQLITE_OK {
            let _ = self.object.abort();
        }
        rc
    }

    /// Ends a write transaction that did not commit: its changes to the
    /// image are dropped and the right to publish is given back.
    fn abort_write(&mut self) -> c_int {
        if self.dirty {
            self.dirty = false;
            self.image_valid = false;
        }
        match self.object.abort() {
            Ok(()) => ffi::SQLITE_OK,
            Err(_) => ffi::SQLITE_IOERR_UNLOCK,
        }
    }

    /// Publishes the image (see [`Object::commit`]).
    fn commit(&mut self) -> c_int {
        let mtime = self.commit_mtime.take();
        if self.detached {
            self.dirty = false;
            return ffi::SQLITE_OK;
        }
        match self.object.commit(&self.image, mtime) {
            Ok(published) => {
                self.version = Some(published);
                self.dirty = false;
                ffi::SQLITE_OK
            }
            Err(CommitFailed::Lapsed) => {
                self.dirty = false;
                self.image_valid = false;
                LEASE_LAPSED
            }
            Err(CommitFailed::Conflict) => {
                self.dirty = false;
                self.image_valid = false;
                CONFLICT
            }
            Err(CommitFailed::Io(e)) => {
                self.dirty = false;
                self.image_valid = false;
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
                let rc = self.begin_write(true);
                if rc != ffi::SQLITE_OK {
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
        if level >= ffi::SQLITE_LOCK_RESERVED && !self.object.is_writing() {
            // A write that did not announce itself: lock now, and go on only
            // if nothing was published since the transaction read its image.
            let rc = self.begin_write(false);
            if rc != ffi::SQLITE_OK {
                return rc;
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
        if level <= ffi::SQLITE_LOCK_SHARED && self.object.is_writing() {
            // The write transaction ended without publishing: a rollback, a
            // failure, or a transaction that wrote nothing.
            return self.abort_write();
        }
        ffi::SQLITE_OK
    }

    fn check_reserved(&mut self) -> bool {
        self.object.is_writing()
    }

    fn file_control(&mut self, op: c_int, arg: *mut c_void) -> c_int {
        match op {
            FCNTL_WRITE_INTENT => {
                // SAFETY: `WriteIntent` passes a c_int.
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
        if self.object.is_writing() {
            self.abort_write()
        } else {
            ffi::SQLITE_OK
        }
    }
}

/// SQLite's code for an I/O error: `FULL` when the storage is out of space.
pub(super) fn io_code(e: &std::io::Error, fallback: c_int) -> c_int {
    match e.kind() {
        std::io::ErrorKind::StorageFull => ffi::SQLITE_FULL,
        _ => fallback,
    }
}

#[cfg(all(test, not(feature = "kv")))]
mod tests {
    use super::*;
    use crate::vfs::fs::image::tests::header;

    fn request<'a>(path: &'a str, new_image: Option<&'a [u8]>) -> AttachRequest<'a> {
        AttachRequest {
            path,
            settings: Settings {
                lease: Duration::from_millis(100),
                durable: false,
                shared: false,
            },
            new_image,
            found: None,
        }
    }

    #[test]
    fn a_template_attaches_to_an_existing_file_or_to_a_new_one_only() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
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
        assert!(!t.detached && t.fresh && t.image_valid && t.version.is_some());
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
        assert!(t.version.is_none() && t.image == new_image);
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
    }

    #[test]
    fn only_an_idle_template_attaches_and_only_an_idle_file_detaches() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
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
        assert!(matches!(
            file.object.begin_write(None),
            Ok(Refreshed::Changed(..))
        ));
        assert_eq!(file.detach(), ffi::SQLITE_MISUSE);
        file.object.abort().unwrap();

        // Idle: a template again, holding no file and taking no lock.
        assert_eq!(file.detach(), ffi::SQLITE_OK);
        assert!(file.detached && file.version.is_none() && file.image.is_empty());
        assert_eq!(file.lock(ffi::SQLITE_LOCK_EXCLUSIVE), ffi::SQLITE_OK);
        assert!(!file.object.is_writing());
    }
}
