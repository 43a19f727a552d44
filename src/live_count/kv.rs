//! The count in a bucket: one counter, changed with `atomics.increment`,
//! so concurrent creations on any number of hosts never both take the last
//! slot: the one whose increment passes the limit gives its slot back.

use crate::config::StoreConfig;
use crate::directory::Walked;
use crate::error::{Error, LimitKind, Result};
use crate::layout::LIVE_COUNT_FILE;
use crate::vfs;

fn counter(cfg: &StoreConfig) -> String {
    format!("{}/{LIVE_COUNT_FILE}", cfg.directory)
}

/// Reserves a slot for a session about to be created: fails with
/// `too-large(live-sessions)` and counts nothing if the bucket is full.
pub fn reserve(cfg: &StoreConfig, _session_path: &str) -> Result<()> {
    let Some(max) = cfg.max_live_sessions else {
        return Ok(());
    };
    let counter = counter(cfg);
    let live = vfs::dir::increment(&counter, 1)?;
    let actual = live.max(0) as u64;
    if actual > max {
        let _ = vfs::dir::increment(&counter, -1);
        return Err(Error::TooLarge {
            limit: LimitKind::LiveSessions,
            max,
            actual,
        });
    }
    Ok(())
}

/// Gives back the slot of a session just deleted (or never created). Best
/// effort: a count left too high refuses early, never admits too many.
pub fn release(cfg: &StoreConfig, _session_path: &str) {
    if cfg.max_live_sessions.is_some() {
        let _ = vfs::dir::increment(&counter(cfg), -1);
    }
}

/// A bucket has no shards: a regenerated session's slot stays where it is.
pub fn moved(_cfg: &StoreConfig, _from: &str, _to: &str) {}

/// At the end of a full pass, sets the count to the sessions the pass saw,
/// by adding the difference (so increments made meanwhile are kept).
pub fn correct(cfg: &StoreConfig, walked: &Walked) -> Result<()> {
    let (Some(_), Some(seen)) = (cfg.max_live_sessions, walked.pass_total) else {
        return Ok(());
    };
    let counter = counter(cfg);
    let now = vfs::dir::increment(&counter, 0)?;
    let seen = i64::try_from(seen).unwrap_or(i64::MAX);
    if now != seen {
        vfs::dir::increment(&counter, seen - now)?;
    }
    Ok(())
}
