//! Read-modify-write operations on one key, as run inside a write
//! transaction: the bodies of `set-in`, `remove-in`, `append`, `increment`
//! and `compare-and-swap`, shared by the single calls and by `batch`.
//!
//! Each body reads the stored value and writes the new one under the same
//! SQLite write lock, so no other request can slip a write in between: that
//! is what makes them atomic under concurrency. Everything that can be
//! checked without the stored data (key, sizes, CBOR well-formedness, path
//! shape) is checked before the transaction starts, by `entry`, `check_path`
//! and `Op::check`, so bad input never takes the lock.

use crate::codec;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::nested::{self, Segment};
use crate::storage::{self, Meta};
use ciborium::Value;
use rusqlite::Connection;

/// One write of a batch, as the caller gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Set {
        key: String,
        value: Vec<u8>,
    },
    Remove {
        key: String,
    },
    SetIn {
        key: String,
        path: Vec<Segment>,
        value: Vec<u8>,
    },
    RemoveIn {
        key: String,
        path: Vec<Segment>,
    },
    Append {
        key: String,
        value: Vec<u8>,
    },
    Increment {
        key: String,
        delta: i64,
    },
}

/// What one batch write returned; the same as the single call's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Set,
    Remove(bool),
    SetIn,
    RemoveIn(bool),
    Append(u32),
    Increment(i64),
}

/// Why a batch failed. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// The position of the operation that failed; `None` when the batch as a
    /// whole failed (the session is gone, busy, or the commit failed).
    pub index: Option<u32>,
    pub error: Error,
}

impl BatchError {
    /// Op `index` failed.
    pub fn at(index: usize, error: Error) -> Self {
        BatchError {
            index: Some(index.try_into().unwrap_or(u32::MAX)),
            error,
        }
    }

    /// The batch failed as a whole.
    pub fn whole(error: Error) -> Self {
        BatchError { index: None, error }
    }
}

/// An `Op` whose input passed every check that needs no stored data; its
/// value arguments are decoded once, here, not again under the lock.
pub struct Checked {
    op: Op,
    item: Option<Value>,
}

impl Op {
    /// Checks key, sizes, CBOR and path, before any transaction.
    pub fn check(self, limits: &Limits) -> Result<Checked> {
        let item = match &self {
            Op::Set { key, value } => {
                entry(limits, key, value)?;
                None
            }
            Op::Remove { key } | Op::Increment { key, .. } => {
                limits.check_key(key)?;
                None
            }
            Op::SetIn { key, path, value } => {
                let item = entry(limits, key, value)?;
                check_path(path)?;
                Some(item)
            }
            Op::RemoveIn { key, path } => {
                limits.check_key(key)?;
                check_path(path)?;
                None
            }
            Op::Append { key, value } => Some(entry(limits, key, value)?),
        };
        Ok(Checked { op: self, item })
    }
}

impl Checked {
    /// Runs the write inside `tx`, exactly as the single call would. It may
    /// run more than once: a transaction that lost a race runs again.
    pub fn apply(&self, tx: &Connection, meta: &mut Meta, limits: &Limits) -> Result<Outcome> {
        let item = || {
            self.item
                .clone()
                .expect("checked ops with a value argument carry it decoded")
        };
        Ok(match &self.op {
            Op::Set { key, value } => {
                storage::put(tx, meta, limits, key, value)?;
                Outcome::Set
            }
            Op::Remove { key } => Outcome::Remove(storage::take(tx, meta, key)?.is_some()),
            Op::SetIn { key, path, .. } => {
                set_in(tx, meta, limits, key, path, item())?;
                Outcome::SetIn
            }
            Op::RemoveIn { key, path } => {
                Outcome::RemoveIn(remove_in(tx, meta, limits, key, path)?)
            }
            Op::Append { key, .. } => Outcome::Append(append(tx, meta, limits, key, item())?),
            Op::Increment { key, delta } => {
                Outcome::Increment(increment(tx, meta, limits, key, *delta)?)
            }
        })
    }
}

/// Checks a key and a value argument and decodes the value.
pub fn entry(limits: &Limits, key: &str, value: &[u8]) -> Result<Value> {
    limits.check_key(key)?;
    limits.check_value_len(value.len())?;
    codec::decode(value)
}

/// Nested edits may not build values deeper than the codec accepts back.
pub fn check_path(path: &[Segment]) -> Result<()> {
    if path.is_empty() {
        return Err(Error::InvalidPath(
            "empty path: use the whole-value call".into(),
        ));
    }
    if path.len() > codec::MAX_DEPTH {
        return Err(Error::InvalidPath(format!(
            "path has {} segments; at most {}",
            path.len(),
            codec::MAX_DEPTH
        )));
    }
    Ok(())
}

/// `set-in`: sets the part of the value under `key` that `path` names.
pub fn set_in(
    tx: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    path: &[Segment],
    value: Value,
) -> Result<()> {
    let new = nested::set_in(stored(tx, key)?, path, value)?;
    store_encoded(tx, meta, limits, key, &new)
}

/// `remove-in`: whether something was removed.
pub fn remove_in(
    tx: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    path: &[Segment],
) -> Result<bool> {
    let Some(old) = stored(tx, key)? else {
        return Ok(false);
    };
    let (new, removed) = nested::remove_in(old, path)?;
    if removed {
        storage::put(tx, meta, limits, key, &codec::encode(&new))?;
    }
    Ok(removed)
}

/// `append`: the array's new length.
pub fn append(
    tx: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    item: Value,
) -> Result<u32> {
    let (new, len) = nested::append(stored(tx, key)?, item)?;
    store_encoded(tx, meta, limits, key, &new)?;
    Ok(len as u32)
}

/// `increment`: adds `delta` to the integer under `key` (a missing key counts
/// as 0) and returns the sum. A stored value that is not an integer within
/// s64, or a sum outside s64, fails before anything is written.
pub fn increment(
    tx: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    delta: i64,
) -> Result<i64> {
    let old = match stored(tx, key)? {
        None => 0,
        Some(Value::Integer(i)) => {
            let wide = i128::from(i);
            i64::try_from(wide).map_err(|_| {
                Error::NotAnInteger(format!("integer {wide} is outside the signed 64-bit range"))
            })?
        }
        Some(other) => {
            return Err(Error::NotAnInteger(format!(
                "found a {}",
                nested::kind(&other)
            )))
        }
    };
    let new = old.checked_add(delta).ok_or(Error::Overflow)?;
    store_encoded(tx, meta, limits, key, &Value::Integer(new.into()))?;
    Ok(new)
}

/// `compare-and-swap`: when the bytes stored under `key` equal `expected`
/// (`None`: the key is absent), stores `new` (`None`: removes the key) and
/// answers `true`; otherwise changes nothing and answers `false`. The caller
/// has checked both arguments.
pub fn compare_and_swap(
    tx: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<bool> {
    let matches = match expected {
        // No need to read a value only to learn that it exists.
        None => !storage::contains(tx, key)?,
        Some(expected) => storage::get(tx, key)?.as_deref() == Some(expected),
    };
    if matches {
        match new {
            Some(new) => storage::put(tx, meta, limits, key, new)?,
            None => {
                storage::take(tx, meta, key)?;
            }
        }
    }
    Ok(matches)
}

/// The value under `key`, decoded.
fn stored(tx: &Connection, key: &str) -> Result<Option<Value>> {
    storage::get(tx, key)?
        .map(|v| codec::decode(&v))
        .transpose()
}

/// Encodes an edited value, re-checking size and depth before storing it.
fn store_encoded(
    tx: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    value: &Value,
) -> Result<()> {
    let bytes = codec::encode(value);
    limits.check_value_len(bytes.len())?;
    // An edit can nest a deep value under a deep path; refuse what could not
    // be read back.
    codec::validate(&bytes)?;
    storage::put(tx, meta, limits, key, &bytes)
}
