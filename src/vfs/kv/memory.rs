//! The key-value client outside wasm: buckets in this process's memory, with
//! the semantics the component relies on (whole values, compare-and-swap,
//! paged listing), so the storage core runs on the key-value backend
//! natively too, for its tests and the side-by-side benchmark.

use super::SwapFailed;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

type Values = BTreeMap<String, Vec<u8>>;

/// Keys per `list_keys` page.
const PAGE: usize = 100;

fn buckets() -> &'static Mutex<HashMap<String, Arc<Mutex<Values>>>> {
    static BUCKETS: OnceLock<Mutex<HashMap<String, Arc<Mutex<Values>>>>> = OnceLock::new();
    BUCKETS.get_or_init(Default::default)
}

/// A bucket of this process; every identifier names one, made on first use.
pub struct Bucket(Arc<Mutex<Values>>);

impl Bucket {
    pub fn open(identifier: &str) -> io::Result<Bucket> {
        let mut all = buckets().lock().unwrap_or_else(|e| e.into_inner());
        Ok(Bucket(Arc::clone(
            all.entry(identifier.to_owned()).or_default(),
        )))
    }

    fn values(&self) -> std::sync::MutexGuard<'_, Values> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.values().get(key).cloned())
    }

    pub fn delete(&self, key: &str) -> io::Result<()> {
        self.values().remove(key);
        Ok(())
    }

    /// Keys in order; the cursor is the last key of the page.
    pub fn list_keys(&self, cursor: Option<&str>) -> io::Result<(Vec<String>, Option<String>)> {
        let values = self.values();
        let keys: Vec<String> = match cursor {
            Some(after) => values
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .take(PAGE)
                .map(|(k, _)| k.clone())
                .collect(),
            None => values.keys().take(PAGE).cloned().collect(),
        };
        let next = (keys.len() == PAGE).then(|| keys[PAGE - 1].clone());
        Ok((keys, next))
    }

    pub fn increment(&self, key: &str, delta: i64) -> io::Result<i64> {
        let mut values = self.values();
        let now = match values.get(key) {
            None => 0,
            Some(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| io::Error::other("key-value store: not an integer"))?,
        };
        let next = now
            .checked_add(delta)
            .ok_or_else(|| io::Error::other("key-value store: increment overflows"))?;
        values.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }

    pub fn cas(&self, key: &str) -> io::Result<Cas> {
        Ok(Cas {
            bucket: Arc::clone(&self.0),
            key: key.to_owned(),
            current: self.get(key)?,
        })
    }
}

/// A compare-and-swap in progress: the value `key` had when it began.
pub struct Cas {
    bucket: Arc<Mutex<Values>>,
    key: String,
    current: Option<Vec<u8>>,
}

impl Cas {
    pub fn current(&self) -> Option<&[u8]> {
        self.current.as_deref()
    }

    pub fn swap(self, value: &[u8]) -> Result<(), SwapFailed> {
        let mut values = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        if values.get(&self.key) != self.current.as_ref() {
            return Err(SwapFailed::Conflict);
        }
        values.insert(self.key, value.to_vec());
        Ok(())
    }
}
