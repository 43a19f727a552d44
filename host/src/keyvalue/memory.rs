//! An in-memory store, shared by every context built from the same [`Buckets`](super::Buckets).
//!
//! It keeps the Redis store's semantics (decimal-text counters, byte-exact compare-and-swap,
//! resumable cursors) and counts one round trip per operation, as a single Redis server would,
//! so tests and benchmarks without a server see the same figures.

use super::store::{Failure, Page, Result, Store, Swap, Traffic};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) struct MemoryStore {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    page_size: usize,
}

impl MemoryStore {
    pub(crate) fn new(page_size: usize) -> Self {
        Self {
            entries: Mutex::default(),
            page_size: page_size.max(1),
        }
    }

    /// Every operation leaves the map consistent, so a panic elsewhere while the lock was held
    /// cannot have left it half-written.
    fn entries(&self, traffic: &mut Traffic) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        traffic.round_trips += 1;
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Parses a stored counter the way Redis does: optional minus sign, decimal digits.
pub(crate) fn parse_counter(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    if text.starts_with('+') {
        return None;
    }
    text.parse().ok()
}

impl Store for MemoryStore {
    fn get(&self, key: &str, traffic: &mut Traffic) -> Result<Option<Vec<u8>>> {
        Ok(self.entries(traffic).get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], traffic: &mut Traffic) -> Result<()> {
        self.entries(traffic).insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str, traffic: &mut Traffic) -> Result<()> {
        self.entries(traffic).remove(key);
        Ok(())
    }

    fn exists(&self, key: &str, traffic: &mut Traffic) -> Result<bool> {
        Ok(self.entries(traffic).contains_key(key))
    }

    /// The cursor is the last key of the previous page: keys are visited in order, each once.
    fn list_keys(&self, cursor: Option<&str>, traffic: &mut Traffic) -> Result<Page> {
        let entries = self.entries(traffic);
        let start = match cursor {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        let mut rest = entries.range::<str, _>((start, Bound::Unbounded));
        let keys: Vec<String> = rest
            .by_ref()
            .take(self.page_size)
            .map(|(k, _)| k.clone())
            .collect();
        let cursor = match (rest.next(), keys.last()) {
            (Some(_), Some(last)) => Some(last.clone()),
            _ => None,
        };
        Ok(Page { keys, cursor })
    }

    fn increment(&self, key: &str, delta: i64, traffic: &mut Traffic) -> Result<i64> {
        let mut entries = self.entries(traffic);
        let current = match entries.get(key) {
            None => 0,
            Some(value) => parse_counter(value)
                .ok_or_else(|| Failure("value is not an integer or out of range".into()))?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| Failure("increment or decrement would overflow".into()))?;
        entries.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }

    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        traffic: &mut Traffic,
    ) -> Result<Swap> {
        let mut entries = self.entries(traffic);
        let current = entries.get(key).map(Vec::as_slice);
        if current != expected {
            return Ok(Swap::Conflict(current.map(<[u8]>::to_vec)));
        }
        entries.insert(key.to_owned(), value.to_vec());
        Ok(Swap::Done)
    }

    fn get_many(&self, keys: &[String], traffic: &mut Traffic) -> Result<Vec<Option<Vec<u8>>>> {
        let entries = self.entries(traffic);
        Ok(keys.iter().map(|k| entries.get(k).cloned()).collect())
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)], traffic: &mut Traffic) -> Result<()> {
        let mut entries = self.entries(traffic);
        for (key, value) in pairs {
            entries.insert(key.clone(), value.clone());
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String], traffic: &mut Traffic) -> Result<()> {
        let mut entries = self.entries(traffic);
        for key in keys {
            entries.remove(key);
        }
        Ok(())
    }
}
