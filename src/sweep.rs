//! Deleting expired sessions across the directory, in budgeted slices, and the
//! file-time hint that lets a sweep skip live sessions without opening them.
//!
//! The hint: every commit to a session gives the new version of its file a
//! modification time equal to the session's expiry time, right after
//! publishing it (the VFS does it in the commit, see `vfs::lease`), so the
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
use crate::error::{Error, Result};
use crate::expiry;
use crate::ids::SessionFile;
use crate::live_count;
use crate::storage::SessionDb;
use crate::vfs;

/// The hint for sessions that never expire: 9999-12-31T23:59:59Z.
const NEVER_MS: i64 = 253_402_300_799_000;

/// The modification time that says "expires at `expires_at_ms`" (or never).
pub fn hint_mtime(expires_at_ms: Option<i64>) -> std::time::SystemTime {
    let ms = expires_at_ms.unwrap_or(NEVER_MS).max(0) as u64;
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

/// Sets `path`'s modification time to `expires_at_ms` (its access time is left
/// alone): the sweep's repair of a wrong hint.
pub fn set_expiry_hint(path: &str, expires_at_ms: Option<i64>) -> Result<()> {
    Ok(vfs::fs::set_mtime(path, Some(hint_mtime(expires_at_ms)))?)
}

/// Where a sweep stopped, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepProgress {
    /// Pass back to continue; `None` when the pass is complete.
    pub cursor: Option<String>,
    pub examined: u32,
    pub deleted: u32,
    pub remaining_estimate: u64,
}

/// A position in the directory: `<shard>/<file name>`, the last file examined.
struct Cursor {
    shard: u8,
    name: String,
}

impl Cursor {
    fn parse(text: &str) -> Result<Cursor> {
        let bad = || Error::InvalidValue(format!("not a sweep cursor: {text:?}"));
        let (shard, name) = text.split_once('/').ok_or_else(bad)?;
        if !SessionFile::is_session_file_name(shard, name) {
            return Err(bad());
        }
        let shard = u8::from_str_radix(shard, 16).map_err(|_| bad())?;
        Ok(Cursor {
            shard,
            name: name.to_string(),
        })
    }

    fn render(&self) -> String {
        format!("{:02x}/{}", self.shard, self.name)
    }
}

/// Examines at most `budget` (at least 1) session files, starting after
/// `cursor`, and deletes those that have expired. On entering a shard it
/// also removes the locks that writers which died creating a session left
/// behind (they do not count against the budget).
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
    let walked = walk(cfg, cursor, budget, Others::InShards, &mut |item| {
        match item {
            WalkItem::Session { path, .. } => {
                if sweep_file(cfg, path, now_ms)? {
                    deleted += 1;
                }
            }
            WalkItem::Other { rel } => {
                if let Some(session) = orphan_candidate(rel) {
                    // Like a file the sweep cannot open, a lock it cannot
                    // judge or remove is left for the next pass.
                    let path = format!("{}/{session}", cfg.directory);
                    let _ = vfs::remove_orphaned_lock(&path, lease);
                }
            }
        }
        Ok(())
    })?;
    Ok(SweepProgress {
        cursor: walked.cursor,
        examined: walked.examined,
        deleted,
        remaining_estimate: walked.remaining_estimate,
    })
}

/// What the directory walk met, in order.
pub(crate) enum WalkItem<'a> {
    /// A session file (by its name); each counts against the budget.
    /// `rel` is `<shard>/<name>`, `path` the full path.
    Session { rel: &'a str, path: &'a str },
    /// Any other directory entry (as [`Others`] asks): at the top level,
    /// anything but a shard directory (reported in a pass's first slice);
    /// inside a shard, anything not named like a session file (reported once
    /// per pass, when the walk enters the shard).
    Other { rel: &'a str },
}

/// Which entries other than session files a walk reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Others {
    Skip,
    /// Those inside shards (the sweep looks there for orphaned locks).
    InShards,
    /// Those inside shards and at the top level (the operator listing).
    Everywhere,
}

/// Where a walk slice stopped.
pub(crate) struct Walked {
    /// Pass back to continue; `None` when the pass is complete.
    pub cursor: Option<String>,
    pub examined: u32,
    pub remaining_estimate: u64,
}

/// One slice of a resumable pass over the session directory, shard by shard
/// in name order, handing at most `budget` (at least 1) session files to
/// `visit`. Shared by `sweep` and the operator listing (`admin`), so both
/// see the directory the same way and accept each other's cursors.
pub(crate) fn walk(
    cfg: &StoreConfig,
    cursor: Option<&str>,
    budget: u32,
    others: Others,
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<()>,
) -> Result<Walked> {
    if budget == 0 {
        return Err(Error::InvalidValue("budget must be at least 1".into()));
    }
    let start = cursor.map(Cursor::parse).transpose()?;
    let mut progress = Walked {
        cursor: None,
        examined: 0,
        remaining_estimate: 0,
    };
    if others == Others::Everywhere && start.is_none() {
        for rel in top_level_others(&cfg.directory)? {
            visit(WalkItem::Other { rel: &rel })?;
        }
    }
    let (mut listed_shards, mut listed_files) = (0u64, 0u64);
    // Shards examined to their end in this call: their live-session counts
    // are recounted on the way out (only with `max-live-sessions`).
    let mut finished = Vec::new();
    for shard in start.as_ref().map_or(0, |c| c.shard)..=u8::MAX {
        let shard_name = format!("{shard:02x}");
        let (names, shard_others) =
            list_shard(&format!("{}/{shard_name}", cfg.directory), &shard_name)?;
        listed_shards += 1;
        listed_files += names.len() as u64;
        let estimate = |from: usize| {
            let shards_left = u64::from(u8::MAX - shard);
            (names.len() - from) as u64 + shards_left * listed_files.div_ceil(listed_shards)
        };
        let skip = match &start {
            Some(c) if c.shard == shard => names.partition_point(|n| n.as_str() <= c.name.as_str()),
            _ => 0,
        };
        let entering = !matches!(&start, Some(c) if c.shard == shard);
        if others != Others::Skip && entering && !shard_others.is_empty() {
            if progress.examined == budget {
                // Report them in the next slice, which enters this shard anew.
                progress.remaining_estimate = estimate(0);
                recount(cfg, &finished)?;
                return Ok(progress);
            }
            for name in &shard_others {
                visit(WalkItem::Other {
                    rel: &format!("{shard_name}/{name}"),
                })?;
            }
        }
        for (i, name) in names.iter().enumerate().skip(skip) {
            if progress.examined == budget {
                // `progress.cursor` already names the last file examined.
                progress.remaining_estimate = estimate(i);
                recount(cfg, &finished)?;
                return Ok(progress);
            }
            progress.examined += 1;
            let cursor = Cursor {
                shard,
                name: name.clone(),
            }
            .render();
            let path = format!("{}/{cursor}", cfg.directory);
            visit(WalkItem::Session {
                rel: &cursor,
                path: &path,
            })?;
            progress.cursor = Some(cursor);
        }
        finished.push(shard);
    }
    // The pass is complete.
    progress.cursor = None;
    recount(cfg, &finished)?;
    Ok(progress)
}

/// Corrects the live-session counts of the shards this call finished. A
/// counter held by another request is not worth failing the sweep for: the
/// next pass recounts.
fn recount(cfg: &StoreConfig, shards: &[u8]) -> Result<()> {
    match live_count::recount(cfg, shards) {
        Err(Error::Busy) => Ok(()),
        other => other,
    }
}

/// The session files of one shard and, separately, its other entries, both
/// sorted; a missing shard (or a stray file with a shard's name) is empty.
/// Session files are regular files with a session file's name: anything else
/// (a directory or a journal that happens to be called that, a file someone
/// left there) is never examined, counted or deleted.
pub(crate) fn list_shard(dir: &str, shard: &str) -> Result<(Vec<String>, Vec<String>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Default::default())
        }
        Err(e) => return Err(e.into()),
    };
    let (mut names, mut others) = (Vec::new(), Vec::new());
    for entry in entries.filter_map(|e| e.ok()) {
        // The entry's type comes with the listing: no extra host call.
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_file && SessionFile::is_session_file_name(shard, &name) {
            names.push(name);
        } else {
            others.push(name);
        }
    }
    names.sort();
    others.sort();
    Ok((names, others))
}

/// The session directory's top-level entries that are not shard
/// directories, sorted.
fn top_level_others(dir: &str) -> Result<Vec<String>> {
    let mut others: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let is_shard_name = name.to_str().is_some_and(|n| {
                n.len() == 2 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
            !(is_shard_name && e.file_type().is_ok_and(|t| t.is_dir()))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    others.sort();
    Ok(others)
}

/// For `<shard>/<session file>.lock`, the session file's `<shard>/<name>`:
/// a lock the sweep may find orphaned (see `vfs::remove_orphaned_lock`).
/// Anything else is not the sweep's.
fn orphan_candidate(rel: &str) -> Option<&str> {
    let session = rel.strip_suffix(".lock")?;
    let (shard, name) = session.split_once('/')?;
    SessionFile::is_session_file_name(shard, name).then_some(session)
}

/// Deletes the session at `path` if it has expired; returns whether it did.
fn sweep_file(cfg: &StoreConfig, path: &str, now_ms: i64) -> Result<bool> {
    let hinted_ms = match vfs::fs::stat(path) {
        Ok(Some((_, t))) => t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        // Deleted since the listing: nothing to do.
        Ok(None) | Err(_) => return Ok(false),
    };
    if hinted_ms > now_ms {
        return Ok(false);
    }
    let mut db = match SessionDb::open_existing(path, cfg.db_options()) {
        Ok(Some(db)) => db,
        // Gone since the listing, locked, or a file SQLite cannot open (say,
        // unreadable): leave it, and keep the pass moving.
        Ok(None) | Err(Error::Busy) | Err(Error::Storage(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let meta = match db.read(|_, meta| Ok(*meta)) {
        Ok(meta) => meta,
        // Marked destroyed, but the file outlived its deleter: finish the job.
        // Whether its slot was given back is unknown (the deleter may have
        // died before or after); the shard's recount settles it.
        Err(Error::NotFound) => {
            db.delete_file();
            return Ok(true);
        }
        // In use right now (so not abandoned), or damaged: leave it.
        Err(Error::Busy) | Err(Error::Storage(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let effective = meta.overrides.apply(&cfg.expiry);
    if expiry::is_expired(meta.timing, &effective, now_ms) {
        match db.destroy() {
            Ok(()) => {
                live_count::release(cfg, path);
                Ok(true)
            }
            // Someone else deleted it (and gave its slot back) meanwhile.
            Err(Error::NotFound) => Ok(true),
            Err(Error::Busy) => Ok(false),
            Err(e) => Err(e),
        }
    } else {
        drop(db);
        set_expiry_hint(path, expiry::expires_at_ms(meta.timing, &effective))?;
        Ok(false)
    }
}
