//! The filesystem backend: a session's versions are files in a directory.
//!
//! The published version is the file at the session's path. A writer takes
//! the lock by creating `<path>.lock` exclusively ([`lease`]), stages the
//! next version in it, and publishes by renaming it over the session file,
//! which also releases the lock. A published file never changes again, so a
//! reader only needs to know whether the file it has open is still the one
//! at the path: it compares the open file's identity with the path's.
//!
//! Not the link count, although a replaced file's drops to zero on a local
//! disk: a filesystem with a trash (JuiceFS's default) keeps replaced files
//! linked, and one shared by several hosts may delete a replaced file that
//! another host holds open, whose descriptor then fails. Identities are
//! compared only on the host that took them (see [`raw::Identity`]); a held
//! descriptor that can no longer say which file it is counts as replaced.

mod check;
pub mod dir;
pub(crate) mod image;
pub(crate) mod lease;
pub(crate) mod raw;

use super::object::{BeginFailed, CommitFailed, Object, Refreshed, Settings};
use image::read_image;
use lease::LeaseLock;
use raw::{Identity, OpenMode, RawFile};
use std::cell::OnceCell;
use std::io;
use std::time::SystemTime;

/// One session file, as one connection sees it.
pub struct FileObject {
    path: String,
    durable: bool,
    /// Several hosts share the directory: see [`FileObject::revalidate_name`].
    shared: bool,
    lock: LeaseLock,
}

/// A published version a connection read or committed: the file, kept open
/// (which also keeps its identity from being reused on a local disk), and
/// which file it is, asked the first time it is compared, so a version that
/// is never compared costs nothing.
pub struct Published {
    file: RawFile,
    identity: OnceCell<Identity>,
}

impl Published {
    fn new(file: RawFile) -> Published {
        Published {
            file,
            identity: OnceCell::new(),
        }
    }

    fn identity(&self) -> io::Result<Identity> {
        if let Some(id) = self.identity.get() {
            return Ok(*id);
        }
        let id = self.file.identity()?;
        Ok(*self.identity.get_or_init(|| id))
    }
}

/// How many times a load starts again because the version it was reading
/// was replaced and deleted meanwhile (see [`FileObject::load`]).
const LOAD_ATTEMPTS: u32 = 8;

impl FileObject {
    /// Opens the file at the path afresh and reads it whole: two calls.
    ///
    /// Always for reading only, even on a read-write connection: a published
    /// version is never written again (a commit renames a new file over it),
    /// so this descriptor is only ever read and compared. That is also what
    /// lets a host preopen the directory read-only and still serve reads.
    ///
    /// In a shared directory another host's commit may delete the version
    /// this host is opening or reading (JuiceFS deletes a replaced file at
    /// once unless it is open on the replacing host): the open then finds no
    /// file, or the read fails (see [`FileObject::read_failed`]), and the
    /// load starts again, a few times at most.
    fn load(&self) -> io::Result<Refreshed<Published>> {
        let mut attempt = 1;
        loop {
            match self.try_load() {
                Err(e) if raw::is_not_found(&e) && attempt < LOAD_ATTEMPTS => attempt += 1,
                loaded => return loaded,
            }
        }
    }

    /// One load. In a shared directory an empty file is no version (every
    /// commit publishes a whole database) but a writer's probe of an absent
    /// name, for the moment it takes to remove it again (see
    /// [`FileObject::revalidate_name`]). Elsewhere it is a damaged session,
    /// which SQLite reports.
    fn try_load(&self) -> io::Result<Refreshed<Published>> {
        let file = match RawFile::open(&self.path, OpenMode::ReadOnly) {
            Ok(file) => file,
            // On one host, no file means no session. In a shared directory
            // it may also be a version deleted between the lookup and the
            // open: the name, asked again, tells (a call only on this path).
            Err(e) if raw::is_not_found(&e) => {
                return match self.shared {
                    true if raw::identity(&self.path)?.is_some() => Err(e),
                    _ => Ok(Refreshed::Absent),
                }
            }
            Err(e) => return Err(e),
        };
        let image = read_image(&file).map_err(|e| self.read_failed(file.identity(), e))?;
        if image.is_empty() && self.shared {
            return Ok(Refreshed::Absent);
        }
        Ok(Refreshed::Changed(Published::new(file), image))
    }

    /// What a failed read of a version means, given which file the read
    /// was on (`held`, as its descriptor tells).
    ///
    /// In a shared directory another host's commit may delete the version
    /// while this host reads it, and the read then fails with whatever the
    /// filesystem reports for a file gone under an open descriptor: JuiceFS
    /// says EBADF, not ENOENT. If the name no longer leads to the file read
    /// (or the descriptor cannot say which file it is any more, as in
    /// [`refresh`](Object::refresh)), the version was replaced meanwhile:
    /// the error becomes `NotFound`, so that the caller reads what is
    /// published now. Otherwise the read's own error stands.
    fn read_failed(&self, held: io::Result<Identity>, e: io::Error) -> io::Error {
        if !self.shared || raw::is_not_found(&e) {
            return e;
        }
        let replaced = match held {
            Err(_) => true,
            Ok(mine) => matches!(raw::identity(&self.path), Ok(now) if now != Some(mine)),
        };
        if replaced {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("the version was replaced during the read ({e})"),
            )
        } else {
            e
        }
    }

    /// Makes this host look the session file's name up afresh, for a writer
    /// about to compare what it holds with the published version.
    ///
    /// On a filesystem shared by several hosts, each host's kernel may
    /// answer a path lookup from its own cache of names for a while (FUSE's
    /// entry timeout, NFS's lookup cache), so the name can still point at a
    /// version another host has replaced. An exclusive create of the name
    /// always makes the kernel ask the filesystem, and when it fails because
    /// the file exists, the fresh answer stays cached for the comparison that
    /// follows. Only a writer holding the lock does this: if the name turns
    /// out to be absent (the session was deleted), the create makes an empty
    /// file, which nobody else may publish over while the lock is held, and
    /// which is removed at once (readers in a shared directory take an empty
    /// file for an absent one, see [`FileObject::try_load`]).
    fn revalidate_name(&self) -> io::Result<()> {
        match RawFile::open(&self.path, OpenMode::CreateNew) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            // No shard directory any more: nothing there.
            Err(e) if raw::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
            Ok(probe) => {
                drop(probe);
                match raw::remove_file(&self.path) {
                    Err(e) if !raw::is_not_found(&e) => Err(e),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl Object for FileObject {
    type Version = Published;

    fn new(path: &str, settings: Settings) -> Self {
        FileObject {
            path: path.to_owned(),
            durable: settings.durable,
            shared: settings.shared,
            lock: LeaseLock::new(path, settings.lease),
        }
    }

    /// Two calls the first time a version is compared (its identity, then
    /// the path's), one afterwards; a load when it was replaced.
    fn refresh(&mut self, held: Option<&Published>) -> io::Result<Refreshed<Published>> {
        let Some(held) = held else {
            return self.load();
        };
        // A descriptor that cannot say which file it is (the file was
        // deleted under it by another host: ENOENT, ESTALE) is not the
        // published version any more; whatever is wrong beyond that, the
        // load reports.
        let Ok(mine) = held.identity() else {
            return self.load();
        };
        match raw::identity(&self.path)? {
            Some(now) if now == mine => Ok(Refreshed::Current),
            Some(_) => self.load(),
            None => Ok(Refreshed::Absent),
        }
    }

    fn reread(&mut self, version: &Published) -> io::Result<Vec<u8>> {
        read_image(&version.file).map_err(|e| self.read_failed(version.identity(), e))
    }

    fn begin_write(
        &mut self,
        held: Option<&Published>,
    ) -> Result<Refreshed<Published>, BeginFailed> {
        match self.lock.try_acquire() {
            Ok(true) => {}
            Ok(false) => return Err(BeginFailed::Busy),
            // A lock file that cannot be created will not appear by
            // retrying: a directory the host made read-only.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(BeginFailed::ReadOnly)
            }
            Err(e) => return Err(BeginFailed::Io(e)),
        }
        // Only a writer that read a version can be misled by a stale name;
        // one that found none is creating the session, under a new id.
        let revalidated = if self.shared && held.is_some() {
            self.revalidate_name()
        } else {
            Ok(())
        };
        revalidated.and_then(|()| self.refresh(held)).map_err(|e| {
            let _ = self.lock.release();
            BeginFailed::Io(e)
        })
    }

    fn is_writing(&self) -> bool {
        self.lock.is_held()
    }

    fn commit(
        &mut self,
        image: &[u8],
        hint: Option<SystemTime>,
    ) -> Result<Published, CommitFailed> {
        let committed = self.lock.commit(image, hint, self.durable, &self.path);
        if let Err(CommitFailed::Io(_)) = &committed {
            // The lock file holds a half-written version nobody reads; give
            // the lock back at once.
            let _ = self.lock.release();
        }
        committed.map(Published::new)
    }

    fn abort(&mut self) -> io::Result<()> {
        self.lock.release()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Another host's commit: a new version renamed over `path`.
    fn publish(path: &str, bytes: &[u8]) {
        let staged = format!("{path}.staged");
        std::fs::write(&staged, bytes).unwrap();
        std::fs::rename(&staged, path).unwrap();
    }

    fn object(path: &str) -> FileObject {
        let settings = Settings {
            lease: Duration::from_secs(2),
            durable: false,
            shared: true,
        };
        FileObject::new(path, settings)
    }

    /// What JuiceFS answers a read of a file another client deleted.
    fn bad_descriptor() -> io::Error {
        io::Error::from_raw_os_error(libc::EBADF)
    }

    fn loaded(refreshed: io::Result<Refreshed<Published>>) -> Vec<u8> {
        match refreshed {
            Ok(Refreshed::Changed(_, image)) => image,
            Ok(Refreshed::Current) => panic!("expected a version, got current"),
            Ok(Refreshed::Absent) => panic!("expected a version, got absent"),
            Err(e) => panic!("expected a version, got {e}"),
        }
    }

    #[test]
    fn a_version_deleted_under_the_first_read_is_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db").to_str().unwrap().to_owned();
        std::fs::write(&path, b"version one").unwrap();
        let mut object = object(&path);
        let other_host = path.clone();
        raw::fail_next_read(move || {
            publish(&other_host, b"version two");
            bad_descriptor()
        });
        assert_eq!(loaded(object.refresh(None)), b"version two");
    }

    #[test]
    fn a_held_version_deleted_under_a_reread_says_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db").to_str().unwrap().to_owned();
        std::fs::write(&path, b"version one").unwrap();
        let mut object = object(&path);
        let Ok(Refreshed::Changed(held, _)) = object.refresh(None) else {
            panic!("the first version loads");
        };
        let other_host = path.clone();
        raw::fail_next_read(move || {
            publish(&other_host, b"version two");
            bad_descriptor()
        });
        let e = object.reread(&held).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert_eq!(loaded(object.refresh(Some(&held))), b"version two");
    }

    #[test]
    fn a_failed_read_of_the_published_version_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db").to_str().unwrap().to_owned();
        std::fs::write(&path, b"version one").unwrap();
        let mut object = object(&path);
        raw::fail_next_read(bad_descriptor);
        let Err(e) = object.refresh(None) else {
            panic!("the read failed, and nothing replaced the version");
        };
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");

        let Ok(Refreshed::Changed(held, _)) = object.refresh(None) else {
            panic!("the version loads once the read succeeds");
        };
        raw::fail_next_read(|| io::Error::from_raw_os_error(libc::EIO));
        let e = object.reread(&held).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    }
}
