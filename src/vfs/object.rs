//! The seam between the VFS and where session images are kept.
//!
//! The VFS treats a session's database file as one value: it reads a whole
//! published version (its *image*), lets SQLite change a copy, and publishes
//! the next version whole. [`Object`] is everything the VFS needs from the
//! storage beneath for one session: read the published version, tell whether
//! a version it holds is still the published one, take the right to publish
//! the next, publish it, or give the right back. The filesystem backend
//! ([`super::fs::FileObject`]) implements it with a lock file that stages
//! the next version and a rename that publishes it.

use std::io;
use std::time::{Duration, SystemTime};

/// What an object is opened with (from the connection's URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The write lock's lease (see `fs::lease`).
    pub lease: Duration,
    /// Make each published version durable before publishing it.
    pub durable: bool,
    /// Several hosts use the storage at once (a directory on a distributed
    /// filesystem): a writer makes sure it compares with what is published
    /// now, not with what its host remembers of it.
    pub shared: bool,
}

/// How the published version compares with the one a connection holds.
pub enum Refreshed<V> {
    /// The held version is still the published one.
    Current,
    /// Another version is published now: here it is, with its image.
    Changed(V, Vec<u8>),
    /// Nothing is published (never was, or was deleted).
    Absent,
}

/// Why [`Object::begin_write`] did not take the right to publish.
#[derive(Debug)]
pub enum BeginFailed {
    /// Someone else is writing; SQLite's busy handler retries.
    #[cfg_attr(feature = "kv", allow(dead_code))]
    Busy,
    /// The storage refuses writes (a directory preopened read-only).
    ReadOnly,
    Io(io::Error),
}

/// Why a commit did not publish. Either way the published version is
/// unchanged.
#[derive(Debug)]
pub enum CommitFailed {
    /// The writer held the right to publish too long (its lease lapsed):
    /// nothing was written, and retrying is safe.
    Lapsed,
    /// Someone else published a version since the write began (the
    /// key-value backend's compare-and-swap lost): nothing was written, and
    /// the transaction must run again from the version now published.
    #[cfg_attr(not(feature = "kv"), allow(dead_code))]
    Conflict,
    /// Publishing the staged version failed; the right to publish is given
    /// back.
    Io(io::Error),
}

/// One session's published versions, as one connection sees them.
pub trait Object: Sized {
    /// What a connection keeps of the version its image came from.
    type Version;

    fn new(path: &str, settings: Settings) -> Self;

    /// Compares the published version with `held` (a connection that has
    /// read none passes `None`), reading the published image only if it
    /// differs.
    fn refresh(&mut self, held: Option<&Self::Version>) -> io::Result<Refreshed<Self::Version>>;

    /// The image of `version` again, for a connection whose copy was spoiled
    /// by a transaction that failed.
    fn reread(&mut self, version: &Self::Version) -> io::Result<Vec<u8>>;

    /// Takes the right to publish the next version, then compares as
    /// [`refresh`](Object::refresh) does, so the writer starts from the
    /// version it will replace.
    fn begin_write(
        &mut self,
        held: Option<&Self::Version>,
    ) -> Result<Refreshed<Self::Version>, BeginFailed>;

    /// Whether this connection holds the right to publish.
    fn is_writing(&self) -> bool;

    /// Publishes `image` as the next version and gives up the right to
    /// publish. `hint` is the expiry hint the published version carries
    /// (see `expiry::hint_mtime` in the store).
    fn commit(
        &mut self,
        image: &[u8],
        hint: Option<SystemTime>,
    ) -> Result<Self::Version, CommitFailed>;

    /// Gives up the right to publish without publishing.
    fn abort(&mut self) -> io::Result<()>;
}
