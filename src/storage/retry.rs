//! Waiting between attempts of a write that lost a race to publish (a
//! backend that locks optimistically, see `vfs::CONFLICT`): a randomised,
//! growing pause, so that writers contending for one session spread out
//! instead of colliding again, until the busy timeout runs out.

use crate::error::{Error, Result};
use std::time::{Duration, Instant};

/// The first pause's upper bound; each further conflict doubles it.
const FIRST_PAUSE: Duration = Duration::from_micros(250);
/// The longest pause.
const MAX_PAUSE: Duration = Duration::from_millis(20);

pub struct Retry {
    deadline: Instant,
    conflicts: u32,
}

impl Retry {
    pub fn new(busy_timeout_ms: u32) -> Retry {
        Retry {
            deadline: Instant::now() + Duration::from_millis(busy_timeout_ms.into()),
            conflicts: 0,
        }
    }

    /// After a lost race: pauses before the next attempt, or answers `busy`
    /// once the busy timeout has passed.
    pub fn after_conflict(&mut self) -> Result<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Error::Busy);
        }
        let bound = FIRST_PAUSE
            .saturating_mul(1 << self.conflicts.min(16))
            .min(MAX_PAUSE);
        self.conflicts += 1;
        let pause = bound.mul_f64(random_fraction()).min(self.deadline - now);
        std::thread::sleep(pause);
        Ok(())
    }
}

/// A number in [0, 1) from SQLite's PRNG (seeded once from the platform's
/// randomness), so no other source is needed.
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    // SAFETY: SQLite writes exactly `bytes.len()` bytes into the buffer.
    unsafe { rusqlite::ffi::sqlite3_randomness(bytes.len() as i32, bytes.as_mut_ptr().cast()) };
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
