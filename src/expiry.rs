//! When a session expires, and when activity must be written down.
//!
//! Two timeouts combine: idle (since last access) and absolute (since
//! creation). The session expires at whichever comes first. Times are Unix
//! milliseconds from the wall clock (`wasi:clocks/wall-clock` inside the
//! component, which a host can replace, e.g. with a fake clock in tests).

/// Expiry defaults, in seconds; 0 turns a timeout off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryDefaults {
    pub idle_timeout_s: u64,
    pub absolute_timeout_s: u64,
    pub activity_granularity_s: u64,
}

impl Default for ExpiryDefaults {
    fn default() -> Self {
        ExpiryDefaults {
            idle_timeout_s: 24 * 3600,
            absolute_timeout_s: 30 * 24 * 3600,
            activity_granularity_s: 60,
        }
    }
}

/// The timing facts stored with each session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub created_ms: i64,
    pub last_access_ms: i64,
}

/// A session's own settings, each `None` to follow the store's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overrides {
    pub idle_timeout_s: Option<u64>,
    pub absolute_timeout_s: Option<u64>,
    pub persistent_cookie: Option<bool>,
}

impl Overrides {
    /// The store's defaults with this session's overrides applied.
    pub fn apply(&self, defaults: &ExpiryDefaults) -> ExpiryDefaults {
        ExpiryDefaults {
            idle_timeout_s: self.idle_timeout_s.unwrap_or(defaults.idle_timeout_s),
            absolute_timeout_s: self
                .absolute_timeout_s
                .unwrap_or(defaults.absolute_timeout_s),
            activity_granularity_s: defaults.activity_granularity_s,
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// When the session expires, or `None` if both timeouts are off.
pub fn expires_at_ms(t: Timing, d: &ExpiryDefaults) -> Option<i64> {
    // Saturating: a huge timeout means "practically never", not an overflow
    // into the past.
    let after = |start: i64, secs: u64| {
        (secs > 0).then(|| {
            start.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
        })
    };
    match (
        after(t.last_access_ms, d.idle_timeout_s),
        after(t.created_ms, d.absolute_timeout_s),
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub fn is_expired(t: Timing, d: &ExpiryDefaults, now_ms: i64) -> bool {
    expires_at_ms(t, d).is_some_and(|at| now_ms >= at)
}

/// Whether activity at `now_ms` should be recorded. Only when the stored
/// last access is older than the granularity, so a busy session costs one
/// write per period, not one per request.
pub fn needs_touch(t: Timing, d: &ExpiryDefaults, now_ms: i64) -> bool {
    d.idle_timeout_s > 0 && now_ms - t.last_access_ms >= d.activity_granularity_s as i64 * 1000
}

/// Seconds until expiry (for the cookie's `Max-Age`), rounded up so a session
/// created this instant shows its whole lifetime; `None` for never.
pub fn remaining_s(t: Timing, d: &ExpiryDefaults, now_ms: i64) -> Option<u64> {
    expires_at_ms(t, d).map(|at| ((at - now_ms).max(0) as u64).div_ceil(1000))
}

/// The hint for sessions that never expire: 9999-12-31T23:59:59Z.
const NEVER_MS: i64 = 253_402_300_799_000;

/// The modification time that says "expires at `expires_at_ms`" (or never):
/// every commit gives a session file this mtime, so that a sweep can skip
/// live files after one `stat` (see `sweep`).
pub fn hint_mtime(expires_at_ms: Option<i64>) -> std::time::SystemTime {
    let ms = expires_at_ms.unwrap_or(NEVER_MS).max(0) as u64;
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: ExpiryDefaults = ExpiryDefaults {
        idle_timeout_s: 10,
        absolute_timeout_s: 100,
        activity_granularity_s: 5,
    };

    #[test]
    fn the_earlier_timeout_wins() {
        let t = Timing {
            created_ms: 0,
            last_access_ms: 95_000,
        };
        assert_eq!(expires_at_ms(t, &D), Some(100_000));
        let t = Timing {
            created_ms: 0,
            last_access_ms: 1_000,
        };
        assert_eq!(expires_at_ms(t, &D), Some(11_000));
        assert!(!is_expired(t, &D, 10_999));
        assert!(is_expired(t, &D, 11_000));
    }

    #[test]
    fn zero_turns_timeouts_off() {
        let off = ExpiryDefaults {
            idle_timeout_s: 0,
            absolute_timeout_s: 0,
            activity_granularity_s: 5,
        };
        let t = Timing {
            created_ms: 0,
            last_access_ms: 0,
        };
        assert_eq!(expires_at_ms(t, &off), None);
        assert!(!needs_touch(t, &off, i64::MAX / 2));
    }

    #[test]
    fn touch_only_after_granularity() {
        let t = Timing {
            created_ms: 0,
            last_access_ms: 0,
        };
        assert!(!needs_touch(t, &D, 4_999));
        assert!(needs_touch(t, &D, 5_000));
    }
}
