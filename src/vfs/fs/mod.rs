//! The filesystem backend: a session's versions are files in a directory.
//!
//! The published version is the file at the session's path. A writer takes
//! the lock by creating `<path>.lock` exclusively ([`lease`]), stages the
//! next version in it, and publishes by renaming it over the session file,
//! which also releases the lock. A published file never changes again, so a
//! reader only needs to know whether the file it has open is still the one
//! at the path: one `stat` of the open file, whose link count drops to zero
//! once a commit (or a delete) has replaced it.

pub mod dir;
pub(crate) mod image;
pub(crate) mod lease;
pub(crate) mod raw;

use super::object::{BeginFailed, CommitFailed, Object, Refreshed, Settings};
use image::read_image;
use lease::LeaseLock;
use raw::{OpenMode, RawFile};
use std::io;
use std::time::SystemTime;

/// One session file, as one connection sees it.
pub struct FileObject {
    path: String,
    durable: bool,
    lock: LeaseLock,
}

impl FileObject {
    /// Opens the file at the path afresh and reads it whole: two calls.
    ///
    /// Always for reading only, even on a read-write connection: a published
    /// version is never written again (a commit renames a new file over it),
    /// so this descriptor is only ever read and `stat`ed. That is also what
    /// lets a host preopen the directory read-only and still serve reads.
    fn load(&self) -> io::Result<Refreshed<RawFile>> {
        match RawFile::open(&self.path, OpenMode::ReadOnly) {
            Ok(file) => {
                let image = read_image(&file)?;
                Ok(Refreshed::Changed(file, image))
            }
            Err(e) if raw::is_not_found(&e) => Ok(Refreshed::Absent),
            Err(e) => Err(e),
        }
    }
}

impl Object for FileObject {
    /// The published file a connection read its image from, kept open.
    type Version = RawFile;

    fn new(path: &str, settings: Settings) -> Self {
        FileObject {
            path: path.to_owned(),
            durable: settings.durable,
            lock: LeaseLock::new(path, settings.lease),
        }
    }

    fn refresh(&mut self, held: Option<&RawFile>) -> io::Result<Refreshed<RawFile>> {
        if let Some(file) = held {
            if file.link_count()? > 0 {
                return Ok(Refreshed::Current);
            }
        }
        self.load()
    }

    fn reread(&mut self, version: &RawFile) -> io::Result<Vec<u8>> {
        read_image(version)
    }

    fn begin_write(&mut self, held: Option<&RawFile>) -> Result<Refreshed<RawFile>, BeginFailed> {
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
        self.refresh(held).map_err(|e| {
            let _ = self.lock.release();
            BeginFailed::Io(e)
        })
    }

    fn is_writing(&self) -> bool {
        self.lock.is_held()
    }

    fn commit(&mut self, image: &[u8], hint: Option<SystemTime>) -> Result<RawFile, CommitFailed> {
        let committed = self.lock.commit(image, hint, self.durable, &self.path);
        if let Err(CommitFailed::Io(_)) = &committed {
            // The lock file holds a half-written version nobody reads; give
            // the lock back at once.
            let _ = self.lock.release();
        }
        committed
    }

    fn abort(&mut self) -> io::Result<()> {
        self.lock.release()
    }
}
