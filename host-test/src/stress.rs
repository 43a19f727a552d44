//! The increment worker behind the concurrency tests and the `stress`
//! binary: one instance that increments one key of one existing session
//! many times, as a burst of requests from one client would.
//!
//! It lives in the library so that the in-process test (threads) and the
//! cross-process test (`stress` children) run exactly the same loop.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use sqlite_sessions_host::{Config, Error, Runtime, SessionStorage};

/// What one worker did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementRun {
    /// The value the last `increment` returned.
    pub last: i64,
    /// `increment` calls answered `busy` and retried. The contract says a
    /// `busy` call wrote nothing, so retrying cannot double-count.
    pub busy_retries: u64,
    /// Wall time of the increment loop alone (not instantiation or load).
    pub elapsed: Duration,
}

/// Loads session `id` in one fresh instance of `runtime` (its sessions in
/// `storage`: a directory, or buckets for the key-value build) and calls
/// `increment(key, 1)` `count` times, retrying calls that answer `busy`.
/// `before_start` runs after the instance is ready and the session loaded,
/// just before the loop, so callers can line several workers up.
/// Any other error, or a trap, ends the run with an error.
pub fn increment_worker(
    runtime: &Runtime,
    storage: impl Into<SessionStorage>,
    config: &Config,
    id: &str,
    key: &str,
    count: u32,
    before_start: impl FnOnce(),
) -> anyhow::Result<IncrementRun> {
    let mut req = runtime.request(storage)?;
    let store = req
        .open_store(config)?
        .map_err(|e| anyhow::anyhow!("store.open: {e:?}"))?;
    let Some(session) = req
        .store(&store)
        .load(id)?
        .map_err(|e| anyhow::anyhow!("load: {e:?}"))?
    else {
        bail!("session {id} does not exist");
    };
    before_start();
    let started = Instant::now();
    let mut last = 0;
    let mut busy_retries = 0;
    for i in 0..count {
        loop {
            match req.session(&session).increment(key, 1)? {
                Ok(v) => {
                    last = v;
                    break;
                }
                Err(Error::Busy) => busy_retries += 1,
                Err(e) => bail!("increment {i} of {count}: {e:?}"),
            }
        }
    }
    let elapsed = started.elapsed();
    req.drop_session(session).context("dropping the session")?;
    req.drop_store(store).context("dropping the store")?;
    Ok(IncrementRun {
        last,
        busy_retries,
        elapsed,
    })
}
