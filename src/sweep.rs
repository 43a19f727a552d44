//! Deleting expired sessions across the directory, in budgeted slices, and the
//! file-time hint that lets a sweep skip live sessions without opening them.
//!
//! The hint: every commit to a session gives the new version of its file a
//! modification time equal to the session's expiry time, right after
//! publishing it (the VFS does it in the commit, see `expiry::hint_mtime`), so the
//! hint costs one call per commit and none per sweep. A sweep then needs one
//! `stat` per file: a
//! modification time in the future means "not expired yet", and the file is
//! skipped unopened.
//!
//! The hint is only a hint. Anything else that writes the file moves the
//! time back to "now", which makes the sweep open the file, read the real
//! expiry from its `meta` row, and repair the hint. So a wrong hint costs one
//! open, never a wrong deletion: the decision to delete is always made from
//! `meta`.

use crate::config::StoreConfig;
use crate::directory::{self, Others, Visited, WalkItem, Walked};
use crate::error::{Error, Result};
use crate::expiry::{self, hint_mtime};
use crate::layout;
use crate::live_count;
use crate::storage::SessionDb;
use crate::vfs::{self, Hint};

/// Where a sweep stopped, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepProgress {
    /// Pass back to continue; `None` when the pass is complete.
    pub cursor: Option<String>,
    pub examined: u32,
    pub deleted: u32,
    pub remaining_estimate: u64,
}

/// Examines at most `budget` (at least 1) session files, starting after
/// `cursor`, and deletes those that have expired. On entering a shard it
/// also starts watching the locks that writers which died creating a
/// session may have left behind (they do not count against the budget), and
/// before returning it removes those that stood unchanged for a lease (see
/// `vfs::dir::OrphanWatch`: the call then takes up to one lease longer).
pub fn sweep(
    cfg: &StoreConfig,
    cursor: Option<&str>,
    budget: u32,
    now_ms: i64,
) -> Result<SweepProgress> {
    if budget == 0 {
        return Err(Error::InvalidValue(
            "sweep budget must be at least 1".into(),
        ));
    }
    let mut deleted = 0;
    let lease = std::time::Duration::from_millis(u64::from(cfg.lock_lease_ms));
    let mut orphans = vfs::dir::OrphanWatch::new(lease);
    let walked = directory::walk(
        &cfg.directory,
        cursor,
        budget,
        Others::InShards,
        &mut |item| {
            match item {
                WalkItem::Session { path, .. } => {
                    return Ok(match sweep_file(cfg, path, now_ms)? {
                        Swept::Kept => Visited::Kept,
                        Swept::Deleted => {
                            deleted += 1;
                            Visited::Gone
                        }
                        Swept::Gone => Visited::Gone,
                    });
                }
                WalkItem::Other { rel } => {
                    if let Some(session) = layout::orphan_candidate(rel) {
                        // Like a file the sweep cannot open, a lock it cannot
                        // judge or remove is left for the next pass.
                        let path = format!("{}/{session}", cfg.directory);
                        let _ = orphans.watch(&path);
                    }
                }
            }
            Ok(Visited::Kept)
        },
    )?;
    let _ = orphans.settle();
    correct_count(cfg, &walked)?;
    Ok(SweepProgress {
        cursor: walked.cursor,
        examined: walked.examined,
        deleted,
        remaining_estimate: walked.remaining_estimate,
    })
}

/// Corrects the live-session count for what this call walked. A counter
/// held by another request is not worth failing the sweep for: the next pass
/// recounts.
fn correct_count(cfg: &StoreConfig, walked: &Walked) -> Result<()> {
    match live_count::correct(cfg, walked) {
        Err(Error::Busy) => Ok(()),
        other => other,
    }
}

/// What the sweep did with one session.
enum Swept {
    /// Left in place: live, in use, or not judged this time.
    Kept,
    /// Deleted as expired (by this sweep, or by someone else meanwhile).
    Deleted,
    /// Already gone when the sweep came to it.
    Gone,
}

/// Deletes the session at `path` if it has expired.
fn sweep_file(cfg: &StoreConfig, path: &str, now_ms: i64) -> Result<Swept> {
    match vfs::dir::hint(path) {
        Ok(Hint::At(t)) => {
            let hinted_ms = t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            if hinted_ms > now_ms {
                return Ok(Swept::Kept);
            }
        }
        Ok(Hint::Unknown) => {}
        // Deleted since the listing: nothing to do.
        Ok(Hint::Gone) => return Ok(Swept::Gone),
        Err(_) => return Ok(Swept::Kept),
    }
    let mut db = match SessionDb::open_existing(path, cfg.db_options()) {
        Ok(Some(db)) => db,
        // Gone since the listing.
        Ok(None) => return Ok(Swept::Gone),
        // Locked, or a file SQLite cannot open (say, unreadable): leave it,
        // and keep the pass moving.
        Err(Error::Busy | Error::Storage { .. }) => return Ok(Swept::Kept),
        Err(e) => return Err(e),
    };
    let meta = match db.read(|_, meta| Ok(*meta)) {
        Ok(meta) => meta,
        // Marked destroyed, but the file outlived its deleter: finish the job.
        // Whether its slot was given back is unknown (the deleter may have
        // died before or after); the shard's recount settles it.
        Err(Error::NotFound) => {
            db.delete_file();
            return Ok(Swept::Deleted);
        }
        // In use right now (so not abandoned), or damaged: leave it.
        Err(Error::Busy | Error::Storage { .. }) => return Ok(Swept::Kept),
        Err(e) => return Err(e),
    };
    let effective = meta.overrides.apply(&cfg.expiry);
    if expiry::is_expired(meta.timing, &effective, now_ms) {
        match db.destroy() {
            Ok(()) => {
                live_count::release(cfg, path);
                Ok(Swept::Deleted)
            }
            // Someone else deleted it (and gave its slot back) meanwhile.
            Err(Error::NotFound) => Ok(Swept::Deleted),
            Err(Error::Busy) => Ok(Swept::Kept),
            Err(e) => Err(e),
        }
    } else {
        drop(db);
        // Repair the hint, so the next pass skips it unopened.
        let at = hint_mtime(expiry::expires_at_ms(meta.timing, &effective));
        vfs::dir::set_hint(path, at)?;
        Ok(Swept::Kept)
    }
}
