//! Limits on what one session may hold, and the checks a write must pass
//! before anything is written.

use crate::error::{Error, LimitKind, Result};

/// Limits on what one session may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_key_bytes: u32,
    pub max_value_bytes: u32,
    pub max_session_bytes: u64,
    pub max_keys: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 256,
            max_value_bytes: 1 << 20,
            max_session_bytes: 16 << 20,
            max_keys: 1024,
        }
    }
}

impl Limits {
    /// A key must be non-empty UTF-8 without NUL, and not too long.
    pub fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::InvalidKey("empty key".into()));
        }
        if key.contains('\0') {
            return Err(Error::InvalidKey("key contains NUL".into()));
        }
        exceeds(
            LimitKind::KeyBytes,
            self.max_key_bytes.into(),
            key.len() as u64,
        )
    }

    pub fn check_value_len(&self, len: usize) -> Result<()> {
        exceeds(
            LimitKind::ValueBytes,
            self.max_value_bytes.into(),
            len as u64,
        )
    }

    /// Checks what a write would make the whole session.
    pub fn check_totals(&self, keys: u64, bytes: u64) -> Result<()> {
        exceeds(LimitKind::KeysPerSession, self.max_keys.into(), keys)?;
        exceeds(LimitKind::SessionBytes, self.max_session_bytes, bytes)
    }
}

fn exceeds(limit: LimitKind, max: u64, actual: u64) -> Result<()> {
    if actual > max {
        Err(Error::TooLarge { limit, max, actual })
    } else {
        Ok(())
    }
}
