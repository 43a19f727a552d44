//! The seam between the `wasi:keyvalue` host and a storage engine.
//!
//! Keys here are the guest's keys (any prefix is the engine's business); values are opaque
//! bytes. Every method reports what it cost in the caller's [`Traffic`].

use std::fmt;

/// What a context's operations cost the storage engine.
///
/// A round trip is one request sent and its reply read: one command, one pipeline, or one
/// script call. A pipeline that a cluster client spreads over several nodes counts once, since
/// all of it is sent before any reply is read. Connections are counted apart, because opening
/// one takes a handshake of its own (and, for a cluster, a slot-map fetch and a connection to
/// every master).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Requests sent and answered (or failed).
    pub round_trips: u64,
    /// Connections opened (or attempted).
    pub connects: u64,
}

/// A storage failure: reaches the guest as `error::other(message)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure(pub(crate) String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

/// The outcome of a compare-and-swap that reached the store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Swap {
    /// The key held the expected value (or was absent, as expected) and now holds the new one.
    Done,
    /// The key held something else, returned here; nothing was written.
    Conflict(Option<Vec<u8>>),
}

/// One page of `list-keys`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) keys: Vec<String>,
    /// Where the next page starts; `None` once the walk is complete.
    pub(crate) cursor: Option<String>,
}

/// A bucket's storage engine. Shared by every context and thread, hence `&self`.
pub(crate) trait Store: Send + Sync {
    fn get(&self, key: &str, traffic: &mut Traffic) -> Result<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8], traffic: &mut Traffic) -> Result<()>;
    fn delete(&self, key: &str, traffic: &mut Traffic) -> Result<()>;
    fn exists(&self, key: &str, traffic: &mut Traffic) -> Result<bool>;
    fn list_keys(&self, cursor: Option<&str>, traffic: &mut Traffic) -> Result<Page>;
    /// Adds `delta` to the integer stored as decimal text under `key` (absent counts as 0).
    fn increment(&self, key: &str, delta: i64, traffic: &mut Traffic) -> Result<i64>;
    /// Writes `value` only if `key` still holds `expected` (`None`: only if it is absent).
    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        traffic: &mut Traffic,
    ) -> Result<Swap>;
    fn get_many(&self, keys: &[String], traffic: &mut Traffic) -> Result<Vec<Option<Vec<u8>>>>;
    fn set_many(&self, entries: &[(String, Vec<u8>)], traffic: &mut Traffic) -> Result<()>;
    fn delete_many(&self, keys: &[String], traffic: &mut Traffic) -> Result<()>;
}
