//! Operator views of a session directory (the WIT `admin` interface): every
//! session's metadata, listed without ids, and one session's full contents.
//!
//! Strictly read-only. A listing or an inspection is not activity (it would
//! otherwise keep every session alive), and an expired session is reported
//! as expired instead of deleted, so looking never changes what is looked
//! at. Cleaning stays with `sweep` and `destroy-id`, which apply the store's
//! own rules. Entries that are not live sessions of this store are reported
//! with a reason and never touched.

use crate::codec;
use crate::config::StoreConfig;
use crate::directory::{self, Others, Visited, WalkItem};
use crate::error::{Error, Result, StorageKind};
use crate::expiry;
use crate::ids::SessionId;
use crate::layout::{self, SessionFile};
use crate::storage::{self, Meta, SessionDb};
use crate::vfs;

/// One session's metadata, as the WIT `session-info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// `<shard>/<name>`, relative to the session directory.
    pub file: String,
    pub created_ms: i64,
    pub last_access_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub expired: bool,
    pub key_count: u64,
    pub total_bytes: u64,
    pub file_bytes: u64,
}

/// Why a directory entry is not listed as a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtherKind {
    ForeignName,
    Companion,
    NotASession(String),
    Busy,
    Destroyed,
}

/// A directory entry that is not a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherEntry {
    pub file: String,
    pub kind: OtherKind,
}

/// One slice of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub sessions: Vec<SessionInfo>,
    pub others: Vec<OtherEntry>,
    pub cursor: Option<String>,
    pub remaining_estimate: u64,
}

/// One key and its value, also as JSON when it has a JSON form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub json: Option<String>,
}

/// A whole session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDump {
    pub info: SessionInfo,
    pub entries: Vec<Entry>,
}

/// One slice of a listing of the session directory: reads the metadata of at
/// most `budget` session files after `cursor`, walking exactly as `sweep`
/// does.
pub fn list(cfg: &StoreConfig, cursor: Option<&str>, budget: u32, now_ms: i64) -> Result<Listing> {
    let mut sessions = Vec::new();
    let mut others = Vec::new();
    let walked = directory::walk(
        &cfg.directory,
        cursor,
        budget,
        Others::Everywhere,
        &mut |item| {
            match item {
                WalkItem::Session { rel, path } => match read_info(cfg, rel, path, now_ms)? {
                    Some(Ok(info)) => sessions.push(info),
                    Some(Err(kind)) => others.push(OtherEntry {
                        file: rel.to_string(),
                        kind,
                    }),
                    // Deleted since the directory was listed.
                    None => return Ok(Visited::Gone),
                },
                WalkItem::Other { rel } => others.push(OtherEntry {
                    file: rel.to_string(),
                    kind: classify_other(rel),
                }),
            }
            Ok(Visited::Kept)
        },
    )?;
    Ok(Listing {
        sessions,
        others,
        cursor: walked.cursor,
        remaining_estimate: walked.remaining_estimate,
    })
}

/// Every key and value of session `id` with its metadata, or `None` if it
/// does not exist. An expired session is returned, marked expired.
pub fn inspect(cfg: &StoreConfig, id: &str, now_ms: i64) -> Result<Option<SessionDump>> {
    let id = SessionId::parse(id)?;
    let f = SessionFile::for_id(&id, cfg.file_name_secret.as_deref());
    let rel = format!("{}/{}", f.shard, f.name);
    let path = format!("{}/{rel}", cfg.directory);
    let Some(mut db) = SessionDb::open_existing(&path, cfg.db_options())? else {
        return Ok(None);
    };
    let read = db.read(|tx, meta| {
        let entries = storage::keys(tx)?
            .into_iter()
            .map(|key| {
                // Same version of the file as `keys`, so every key is still there.
                let value = storage::get(tx, &key)?.unwrap_or_default();
                let json = codec::cbor_to_json(&value).ok();
                Ok(Entry { key, value, json })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((*meta, entries))
    });
    let (meta, entries) = match read {
        Ok(found) => found,
        // Destroyed, but not yet unlinked: gone as far as anyone can tell.
        Err(Error::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    drop(db);
    let file_bytes = vfs::dir::size(&path).ok().flatten().unwrap_or(0);
    Ok(Some(SessionDump {
        info: info(cfg, rel, &meta, file_bytes, now_ms),
        entries,
    }))
}

/// The metadata of the session file at `path`; `Some(Err(kind))` when it is
/// not a live session, `None` when it vanished meanwhile.
fn read_info(
    cfg: &StoreConfig,
    rel: &str,
    path: &str,
    now_ms: i64,
) -> Result<Option<Result<SessionInfo, OtherKind>>> {
    let opened = match SessionDb::open_existing(path, cfg.db_options()) {
        Ok(None) => return Ok(None),
        Ok(Some(db)) => Ok(db),
        Err(e) => Err(e),
    };
    let meta = opened.and_then(|mut db| db.read(|_, meta| Ok(*meta)));
    let kind = match meta {
        Ok(meta) => {
            let file_bytes = vfs::dir::size(path).ok().flatten().unwrap_or(0);
            return Ok(Some(Ok(info(
                cfg,
                rel.to_string(),
                &meta,
                file_bytes,
                now_ms,
            ))));
        }
        Err(Error::NotFound) => OtherKind::Destroyed,
        Err(Error::Busy) => OtherKind::Busy,
        Err(Error::Storage {
            kind: StorageKind::Corrupt,
            message,
        }) => OtherKind::NotASession(message),
        Err(e) => return Err(e),
    };
    Ok(Some(Err(kind)))
}

fn info(cfg: &StoreConfig, file: String, meta: &Meta, file_bytes: u64, now_ms: i64) -> SessionInfo {
    let effective = meta.overrides.apply(&cfg.expiry);
    SessionInfo {
        file,
        created_ms: meta.timing.created_ms,
        last_access_ms: meta.timing.last_access_ms,
        expires_at_ms: expiry::expires_at_ms(meta.timing, &effective),
        expired: expiry::is_expired(meta.timing, &effective, now_ms),
        key_count: meta.key_count,
        total_bytes: meta.total_bytes,
        file_bytes,
    }
}

/// A companion of a session file or of the live-session counter is the
/// store's own; anything else (a name the store never writes) is foreign.
fn classify_other(rel: &str) -> OtherKind {
    if layout::is_companion(rel) {
        OtherKind::Companion
    } else {
        OtherKind::ForeignName
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companions_are_recognised_by_their_database_name() {
        let f = SessionFile::for_id(&SessionId::generate(), None);
        let rel = |suffix: &str| format!("{}/{}{suffix}", f.shard, f.name);
        assert_eq!(classify_other(&rel("-journal")), OtherKind::Companion);
        assert_eq!(classify_other(&rel(".lock")), OtherKind::Companion);
        assert_eq!(classify_other(&rel(".lock-break")), OtherKind::Companion);
        assert_eq!(classify_other("live-count.db"), OtherKind::Companion);
        assert_eq!(classify_other("live-count.db.lock"), OtherKind::Companion);
        assert_eq!(classify_other("live-count.db.x"), OtherKind::ForeignName);
        assert_eq!(classify_other(&rel(".bak")), OtherKind::ForeignName);
        assert_eq!(
            classify_other(&format!("{}/notes.txt", f.shard)),
            OtherKind::ForeignName
        );
        assert_eq!(classify_other("notes.txt"), OtherKind::ForeignName);
        // A companion name under the wrong shard is not ours.
        let wrong = if f.shard == "00" { "01" } else { "00" };
        assert_eq!(
            classify_other(&format!("{wrong}/{}-journal", f.name)),
            OtherKind::ForeignName
        );
    }
}
