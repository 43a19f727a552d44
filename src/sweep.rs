//! Deleting expired sessions across the directory, in budgeted slices, and the
//! file-time hint that lets a sweep skip live sessions without opening them.
//!
//! The hint: when a handle that wrote to a session is dropped, the session
//! file's modification time is set to the session's expiry time (one host
//! call). A sweep then needs one `stat` per file: a modification time in the
//! future means "not expired yet", and the file is skipped unopened.
//!
//! The hint is only a hint. Anything that writes the file afterwards (SQLite
//! itself, or a host that never drops the handle) moves the time back to
//! "now", which makes the sweep open the file, read the real expiry from its
//! `meta` row, and repair the hint. So a wrong hint costs one open, never a
//! wrong deletion: the decision to delete is always made from `meta`.

use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::expiry;
use crate::ids::SessionFile;
use crate::live_count;
use crate::storage::SessionDb;
use std::ffi::CString;

/// The hint for sessions that never expire: 9999-12-31T23:59:59Z.
const NEVER_MS: i64 = 253_402_300_799_000;

/// Sets `path`'s modification time to `expires_at_ms` (its access time is left
/// alone).
pub fn set_expiry_hint(path: &str, expires_at_ms: Option<i64>) -> Result<()> {
    let ms = expires_at_ms.unwrap_or(NEVER_MS);
    let path = CString::new(path).map_err(|_| Error::Storage("path contains NUL".into()))?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: ms.div_euclid(1000) as _,
            tv_nsec: (ms.rem_euclid(1000) * 1_000_000) as _,
        },
    ];
    // SAFETY: `path` is a valid NUL-terminated string and `times` holds the two
    // entries utimensat reads; both outlive the call. std has no path-based
    // set-times, and opening the file to use `File::set_modified` would cost
    // two more host calls.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().into())
    }
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
/// `cursor`, and deletes those that have expired.
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
    let start = cursor.map(Cursor::parse).transpose()?;
    let mut progress = SweepProgress {
        cursor: None,
        examined: 0,
        deleted: 0,
        remaining_estimate: 0,
    };
    let (mut listed_shards, mut listed_files) = (0u64, 0u64);
    // Shards examined to their end in this call: their live-session counts
    // are recounted on the way out (only with `max-live-sessions`).
    let mut finished = Vec::new();
    for shard in start.as_ref().map_or(0, |c| c.shard)..=u8::MAX {
        let shard_name = format!("{shard:02x}");
        let names = list_shard(&format!("{}/{shard_name}", cfg.directory), &shard_name)?;
        listed_shards += 1;
        listed_files += names.len() as u64;
        let skip = match &start {
            Some(c) if c.shard == shard => names.partition_point(|n| n.as_str() <= c.name.as_str()),
            _ => 0,
        };
        for (i, name) in names.iter().enumerate().skip(skip) {
            if progress.examined == budget {
                // `progress.cursor` already names the last file examined.
                let shards_left = u64::from(u8::MAX - shard);
                progress.remaining_estimate =
                    (names.len() - i) as u64 + shards_left * listed_files.div_ceil(listed_shards);
                recount(cfg, &finished)?;
                return Ok(progress);
            }
            progress.examined += 1;
            progress.cursor = Some(
                Cursor {
                    shard,
                    name: name.clone(),
                }
                .render(),
            );
            let path = format!("{}/{shard_name}/{name}", cfg.directory);
            if sweep_file(cfg, &path, now_ms)? {
                progress.deleted += 1;
            }
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

/// The session files of one shard, sorted; a missing shard is empty. Only
/// regular files with a session file's name: anything else (a directory or
/// a journal that happens to be called that, a file someone left there) is
/// never examined, counted or deleted.
pub(crate) fn list_shard(dir: &str, shard: &str) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        // The entry's type comes with the listing: no extra host call.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| SessionFile::is_session_file_name(shard, n))
        .collect();
    names.sort();
    Ok(names)
}

/// Deletes the session at `path` if it has expired; returns whether it did.
fn sweep_file(cfg: &StoreConfig, path: &str, now_ms: i64) -> Result<bool> {
    let hinted_ms = match std::fs::metadata(path).and_then(|m| m.modified()) {
        Ok(t) => t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        // Deleted since the listing: nothing to do.
        Err(_) => return Ok(false),
    };
    if hinted_ms > now_ms {
        return Ok(false);
    }
    let mut db = match SessionDb::open_existing(path, cfg.busy_timeout_ms) {
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
