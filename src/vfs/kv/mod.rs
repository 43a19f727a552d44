//! The key-value backend: a session's published version is one value in a
//! bucket, under the key its file would have in a directory
//! (`<shard>/<name>.db`), so nothing in a key reveals an id.
//!
//! A connection's "path" is `<bucket>/<key>`: the store's directory setting
//! names the bucket. Reading is one `get`. Writing takes no lock: it begins
//! a compare-and-swap (`atomics.cas`, which reads the current value), and the
//! commit swaps in the next version only if nobody published another
//! meanwhile. A lost race publishes nothing and answers [`CONFLICT`]
//! (`super::CONFLICT`), on which the storage layer re-runs the whole
//! transaction from a fresh read. So the compare-and-swap is the lock, and
//! a writer that dies leaves nothing behind to recover.

#[cfg(not(target_arch = "wasm32"))]
mod memory;
#[cfg(target_arch = "wasm32")]
mod wasi;

#[cfg(not(target_arch = "wasm32"))]
use memory::{Bucket, Cas};
#[cfg(target_arch = "wasm32")]
pub use wasi::wasi_keyvalue;
#[cfg(target_arch = "wasm32")]
use wasi::{Bucket, Cas};

use super::object::{BeginFailed, CommitFailed, Object, Refreshed, Settings};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::SystemTime;

/// Why a swap did not happen.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub enum SwapFailed {
    /// Someone else changed the value since the compare-and-swap began.
    Conflict,
    Io(io::Error),
}

thread_local! {
    /// Open buckets, by identifier: each `store.open` is a host call and
    /// returns a fresh handle, so an instance opens each bucket once.
    static BUCKETS: RefCell<HashMap<String, Rc<Bucket>>> = RefCell::new(HashMap::new());
}

/// Runs `f` with the bucket `identifier`, opening it on first use.
pub fn with_bucket<T>(identifier: &str, f: impl FnOnce(&Bucket) -> io::Result<T>) -> io::Result<T> {
    let bucket = BUCKETS.with(|b| b.borrow().get(identifier).cloned());
    let bucket = match bucket {
        Some(bucket) => bucket,
        None => {
            let bucket = Rc::new(Bucket::open(identifier)?);
            BUCKETS.with(|b| {
                b.borrow_mut()
                    .insert(identifier.to_owned(), Rc::clone(&bucket))
            });
            bucket
        }
    };
    f(&bucket)
}

/// `<bucket>/<key>` split in two. A path without a `/` is a bucket's own
/// name with an empty key.
pub fn split(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or((path, ""))
}

/// One session's value, as one connection sees it.
pub struct KvObject {
    bucket: String,
    key: String,
    /// The compare-and-swap of the write in progress.
    writing: Option<Cas>,
}

impl KvObject {
    fn compare(held: Option<&Vec<u8>>, now: Option<&[u8]>) -> Refreshed<Vec<u8>> {
        match now {
            None => Refreshed::Absent,
            Some(now) if held.is_some_and(|held| held.as_slice() == now) => Refreshed::Current,
            Some(now) => Refreshed::Changed(now.to_vec(), now.to_vec()),
        }
    }
}

impl Object for KvObject {
    /// The published image as read: a later read compares against it.
    type Version = Vec<u8>;

    fn new(path: &str, _settings: Settings) -> Self {
        let (bucket, key) = split(path);
        KvObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            writing: None,
        }
    }

    fn refresh(&mut self, held: Option<&Vec<u8>>) -> io::Result<Refreshed<Vec<u8>>> {
        let now = with_bucket(&self.bucket, |b| b.get(&self.key))?;
        Ok(Self::compare(held, now.as_deref()))
    }

    fn reread(&mut self, version: &Vec<u8>) -> io::Result<Vec<u8>> {
        Ok(version.clone())
    }

    fn begin_write(&mut self, held: Option<&Vec<u8>>) -> Result<Refreshed<Vec<u8>>, BeginFailed> {
        let cas = with_bucket(&self.bucket, |b| b.cas(&self.key)).map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                BeginFailed::ReadOnly
            } else {
                BeginFailed::Io(e)
            }
        })?;
        let refreshed = Self::compare(held, cas.current());
        self.writing = Some(cas);
        Ok(refreshed)
    }

    fn is_writing(&self) -> bool {
        self.writing.is_some()
    }

    /// The expiry hint has nowhere to go: a sweep reads each value instead.
    fn commit(&mut self, image: &[u8], _hint: Option<SystemTime>) -> Result<Vec<u8>, CommitFailed> {
        let Some(cas) = self.writing.take() else {
            return Err(CommitFailed::Lapsed);
        };
        match cas.swap(image) {
            Ok(()) => Ok(image.to_vec()),
            Err(SwapFailed::Conflict) => Err(CommitFailed::Conflict),
            Err(SwapFailed::Io(e)) => Err(CommitFailed::Io(e)),
        }
    }

    fn abort(&mut self) -> io::Result<()> {
        self.writing = None;
        Ok(())
    }
}

/// The operations on a bucket as a whole that the store's directory-wide
/// jobs need: the functions of the filesystem's `dir`, and the listing and
/// counter only a bucket has.
pub mod dir {
    use super::{split, with_bucket};
    use crate::vfs::Hint;
    use std::io;
    use std::time::SystemTime;

    /// Checks that the store's root, a bucket, can be opened. The message
    /// says what is wrong.
    pub fn check_root(identifier: &str) -> Result<(), String> {
        if identifier.is_empty() || identifier.contains('/') {
            return Err(format!(
                "{identifier:?} is not a bucket identifier (non-empty, without '/')"
            ));
        }
        with_bucket(identifier, |_| Ok(()))
            .map_err(|e| format!("bucket {identifier:?} cannot be opened: {e}"))
    }

    /// Whether a value is stored at `<bucket>/<key>`.
    pub fn exists(path: &str) -> io::Result<bool> {
        Ok(size(path)?.is_some())
    }

    /// The stored value's size, if there is one.
    pub fn size(path: &str) -> io::Result<Option<u64>> {
        let (bucket, key) = split(path);
        with_bucket(bucket, |b| b.get(key)).map(|v| v.map(|v| v.len() as u64))
    }

    /// Deletes the value at `<bucket>/<key>`; a missing one is not an error.
    pub fn remove(path: &str) -> io::Result<()> {
        let (bucket, key) = split(path);
        with_bucket(bucket, |b| b.delete(key))
    }

    /// A bucket keeps no metadata beside a value.
    pub fn hint(_path: &str) -> io::Result<Hint> {
        Ok(Hint::Unknown)
    }

    /// A bucket keeps no metadata beside a value: nothing to record.
    pub fn set_hint(_path: &str, _at: SystemTime) -> io::Result<()> {
        Ok(())
    }

    /// One page of the bucket's keys and the next page's cursor.
    pub fn list_keys(
        bucket: &str,
        cursor: Option<&str>,
    ) -> io::Result<(Vec<String>, Option<String>)> {
        with_bucket(bucket, |b| b.list_keys(cursor))
    }

    /// A bucket has no filesystem semantics to check: its compare-and-swap
    /// is the whole protocol.
    pub fn check(_identifier: &str) -> io::Result<Vec<crate::vfs::CheckResult>> {
        Ok(Vec::new())
    }

    /// A bucket has no lock files to leave behind: nothing to watch.
    pub struct OrphanWatch;

    impl OrphanWatch {
        pub fn new(_lease: std::time::Duration) -> OrphanWatch {
            OrphanWatch
        }

        pub fn watch(&mut self, _path: &str) -> io::Result<()> {
            Ok(())
        }

        pub fn settle(self) -> io::Result<u32> {
            Ok(0)
        }
    }

    /// Adds `delta` to the counter at `<bucket>/<key>`; returns the sum.
    pub fn increment(path: &str, delta: i64) -> io::Result<i64> {
        let (bucket, key) = split(path);
        with_bucket(bucket, |b| b.increment(key, delta))
    }
}
