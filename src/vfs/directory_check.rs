//! What a session directory must do for the store to be safe on it, as one
//! host can test it: the self-check's vocabulary, shared by both backends
//! (the filesystem's checks are in `fs::check`; a bucket has none).

/// One property of the directory that the filesystem backend relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryCheck {
    /// An exclusive create of an existing file or directory fails: the
    /// lock and the breakers' lock rely on it.
    ExclusiveCreate,
    /// After a rename over a file held open, the held file and the name are
    /// told apart by identity: how a connection notices a new version.
    ReplacedIdentity,
    /// After that rename, the held file has no link left: nothing (a trash,
    /// a snapshot, a recycle bin) keeps replaced files. With one, every
    /// commit would keep a whole old version, and hosts whose name cache is
    /// stale read old versions instead of failing.
    ReplacedLinkCount,
    /// A file written, flushed and renamed into place while still open
    /// reads back whole from a fresh open: a commit.
    RenamedInWhole,
    /// An explicit modification time, set on an open file or by name, reads
    /// back exactly, and a touch changes it: the sweep's expiry hint and the
    /// lease's renewals.
    ExactMtime,
    /// A new file shows in the directory's listing at once: the sweep and
    /// the operator listing find sessions that way.
    Listing,
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub check: DirectoryCheck,
    pub passed: bool,
    /// What was seen; for a failure, also what to change.
    pub detail: String,
}
