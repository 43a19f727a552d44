//! A settable wall clock for expiry tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::HostWallClock;

/// A wall clock the test controls, handed to the guest as
/// `wasi:clocks/wall-clock` (see [`RequestOptions::wall_clock`]).
///
/// Clones share one time, so a test keeps a clone, passes another to each
/// request, and moves time with [`set`](FakeClock::set) or
/// [`advance`](FakeClock::advance) between (or during) requests. Only the wall
/// clock is faked: the monotonic clock, which the guest may use to wait for a
/// lock, stays real.
///
/// [`RequestOptions::wall_clock`]: crate::RequestOptions::wall_clock
#[derive(Clone, Debug)]
pub struct FakeClock {
    /// Time since the Unix epoch: `wasi:clocks/wall-clock` cannot express
    /// earlier times, and neither can [`HostWallClock::now`].
    since_epoch: Arc<Mutex<Duration>>,
}

impl FakeClock {
    /// Whether `other` is a clone of this clock (they share one time).
    pub(crate) fn is_same_clock(&self, other: &FakeClock) -> bool {
        Arc::ptr_eq(&self.since_epoch, &other.since_epoch)
    }

    /// A clock that reads `start` until it is moved.
    ///
    /// # Panics
    /// If `start` is before the Unix epoch.
    pub fn new(start: SystemTime) -> Self {
        Self {
            since_epoch: Arc::new(Mutex::new(since_epoch(start))),
        }
    }

    /// A clock that reads `secs` seconds after the Unix epoch.
    pub fn at_unix_secs(secs: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// The time the guest currently sees.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + *self.lock()
    }

    /// Sets the time, forwards or backwards.
    ///
    /// # Panics
    /// If `time` is before the Unix epoch.
    pub fn set(&self, time: SystemTime) {
        *self.lock() = since_epoch(time);
    }

    /// Moves the time forwards by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now = now.checked_add(by).expect("FakeClock overflowed");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Duration> {
        // A panic while holding this lock cannot leave a torn `Duration`, so
        // a poisoned lock is still usable.
        self.since_epoch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for FakeClock {
    /// A clock that starts at the real current time.
    fn default() -> Self {
        Self::new(SystemTime::now())
    }
}

impl HostWallClock for FakeClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        *self.lock()
    }
}

fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH)
        .expect("FakeClock cannot represent times before the Unix epoch")
}
