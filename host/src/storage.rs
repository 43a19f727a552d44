//! Where a request's sessions live: a host directory preopened for the
//! guest (the store's `session-store` world), or key-value buckets it opens
//! through `wasi:keyvalue` (the `session-store-kv` world).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::keyvalue::Buckets;

/// Where the sessions of a [`Request`](crate::Request) live. Which one a
/// component needs follows from how it was built: the directory build
/// opens `config.directory` as a path inside its preopened directory, the
/// key-value build opens it as a bucket identifier. The other one is a
/// typed error at `store.open`, never a trap.
///
/// Converts from a path (`&str`, `&Path`, `PathBuf`, `&PathBuf`) and from
/// [`Buckets`], so `runtime.request(dir.path())` and
/// `runtime.request(&buckets)` both work.
#[derive(Clone)]
pub enum SessionStorage {
    /// A host directory, preopened in the guest at
    /// [`RequestOptions::guest_dir`](crate::RequestOptions::guest_dir).
    Directory(PathBuf),
    /// The buckets the guest may open; nothing of the host's filesystem is
    /// preopened.
    KeyValue(Buckets),
}

impl SessionStorage {
    /// The directory, for [`SessionStorage::Directory`].
    pub fn directory(&self) -> Option<&Path> {
        match self {
            SessionStorage::Directory(dir) => Some(dir),
            SessionStorage::KeyValue(_) => None,
        }
    }

    /// The buckets, for [`SessionStorage::KeyValue`].
    pub fn buckets(&self) -> Option<&Buckets> {
        match self {
            SessionStorage::Directory(_) => None,
            SessionStorage::KeyValue(buckets) => Some(buckets),
        }
    }

    /// Whether an instance made for `self` may serve a request for `other`:
    /// the same directory path, or clones of the same [`Buckets`].
    pub fn is_same(&self, other: &SessionStorage) -> bool {
        match (self, other) {
            (SessionStorage::Directory(a), SessionStorage::Directory(b)) => a == b,
            (SessionStorage::KeyValue(a), SessionStorage::KeyValue(b)) => a.is_same(b),
            _ => false,
        }
    }
}

impl fmt::Debug for SessionStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionStorage::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
            SessionStorage::KeyValue(buckets) => {
                let mut ids: Vec<&str> = buckets.identifiers().collect();
                ids.sort_unstable();
                f.debug_tuple("KeyValue").field(&ids).finish()
            }
        }
    }
}

impl From<&str> for SessionStorage {
    fn from(dir: &str) -> Self {
        SessionStorage::Directory(dir.into())
    }
}

impl From<&Path> for SessionStorage {
    fn from(dir: &Path) -> Self {
        SessionStorage::Directory(dir.to_path_buf())
    }
}

impl From<PathBuf> for SessionStorage {
    fn from(dir: PathBuf) -> Self {
        SessionStorage::Directory(dir)
    }
}

impl From<&PathBuf> for SessionStorage {
    fn from(dir: &PathBuf) -> Self {
        SessionStorage::Directory(dir.clone())
    }
}

impl From<Buckets> for SessionStorage {
    fn from(buckets: Buckets) -> Self {
        SessionStorage::KeyValue(buckets)
    }
}

impl From<&Buckets> for SessionStorage {
    fn from(buckets: &Buckets) -> Self {
        SessionStorage::KeyValue(buckets.clone())
    }
}

impl From<&SessionStorage> for SessionStorage {
    fn from(storage: &SessionStorage) -> Self {
        storage.clone()
    }
}
