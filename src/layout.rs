//! Where things live in a session directory: the one mapping from a session
//! id to its file, the shard subdirectories, and the names of everything
//! else the store keeps there.
//!
//! ```text
//! <directory>/
//!   live-count.db                  the live-session counter (max-live-sessions)
//!   <2 hex>/                       a shard: the first byte of the file name
//!     <64 hex>.db                  one session
//!     <64 hex>.db.lock             its write lock, while a request writes
//!     <64 hex>.db.lock-break       held while a stale lock is taken over
//! ```
//!
//! A file name is a SHA-256 (or, with a secret, HMAC-SHA256) of the id, never
//! the id's text: whoever can list the directory sees only hashes, which
//! cannot be turned back into a usable id, and no cookie can name a path.

use crate::ids::SessionId;
use crate::vfs;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The live-session counter's file in the directory root.
pub const LIVE_COUNT_FILE: &str = "live-count.db";

/// Suffixes of what is kept next to a database: the `sessions` VFS's lock
/// file (which stages the next version) and its break directory, and
/// SQLite's journal files, which older versions of the store wrote.
pub const COMPANION_SUFFIXES: &[&str] = &[
    "-journal",
    "-wal",
    "-shm",
    vfs::LOCK_SUFFIX,
    vfs::BREAK_SUFFIX,
];

/// Where a session lives, relative to the session directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFile {
    /// Two hex digits: the shard subdirectory, so no directory holds millions
    /// of entries.
    pub shard: String,
    /// `<64 hex digits>.db`.
    pub name: String,
}

/// The file-name suffix of every session database.
pub const FILE_SUFFIX: &str = ".db";

impl SessionFile {
    /// The file for `id`, keyed by `secret` when one is configured.
    pub fn for_id(id: &SessionId, secret: Option<&[u8]>) -> Self {
        let digest: [u8; 32] = match secret {
            Some(key) => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
                mac.update(id.as_bytes());
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(id.as_bytes()).into(),
        };
        let hex = hex::encode(digest);
        SessionFile {
            shard: hex[..2].to_string(),
            name: format!("{hex}{FILE_SUFFIX}"),
        }
    }

    /// Whether `shard`/`name` look like a file this store wrote, so tools never
    /// touch anything else in the directory.
    pub fn is_session_file_name(shard: &str, name: &str) -> bool {
        let Some(hex) = name.strip_suffix(FILE_SUFFIX) else {
            return false;
        };
        hex.len() == 64
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && hex[..2] == *shard
    }
}

/// `<directory>/<shard>/<name>`: where session `id`'s file lives.
pub fn session_path(directory: &str, id: &SessionId, secret: Option<&[u8]>) -> String {
    let f = SessionFile::for_id(id, secret);
    format!("{directory}/{}/{}", f.shard, f.name)
}

/// The name of shard `shard`'s subdirectory.
pub fn shard_name(shard: u8) -> String {
    format!("{shard:02x}")
}

/// Whether `name` is a shard directory's name (two lowercase hex digits).
pub fn is_shard_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The shard number of a session path `<dir>/<2 hex>/<name>`.
pub fn shard_of(session_path: &str) -> Option<u8> {
    let name = session_path.rsplit('/').next().unwrap_or(session_path);
    name.get(..2)
        .and_then(|hex| u8::from_str_radix(hex, 16).ok())
}

/// For `<shard>/<session file>.lock`, the session file's `<shard>/<name>`:
/// a lock the sweep may find orphaned (see `vfs::dir::OrphanWatch`).
/// Anything else is not the sweep's.
pub fn orphan_candidate(rel: &str) -> Option<&str> {
    let session = rel.strip_suffix(vfs::LOCK_SUFFIX)?;
    let (shard, name) = session.split_once('/')?;
    SessionFile::is_session_file_name(shard, name).then_some(session)
}

/// Whether `rel` (relative to the directory) is a companion of a session
/// file or of the live-session counter: one of the store's own entries.
pub fn is_companion(rel: &str) -> bool {
    let with_suffix = |base: &str| {
        COMPANION_SUFFIXES
            .iter()
            .any(|suffix| rel.strip_suffix(suffix) == Some(base))
    };
    match rel.split_once('/') {
        None => rel == LIVE_COUNT_FILE || with_suffix(LIVE_COUNT_FILE),
        Some((shard, name)) => COMPANION_SUFFIXES.iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|db| SessionFile::is_session_file_name(shard, db))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_hashes_and_depend_on_the_secret() {
        let id = SessionId::generate();
        let plain = SessionFile::for_id(&id, None);
        let keyed = SessionFile::for_id(&id, Some(b"k"));
        assert_ne!(plain, keyed);
        assert!(SessionFile::is_session_file_name(&plain.shard, &plain.name));
        assert!(!plain.name.contains(&id.as_string().replace('-', "")[..8]));
        assert!(!SessionFile::is_session_file_name("00", "notes.txt"));
    }

    #[test]
    fn paths_and_shards_agree() {
        let id = SessionId::generate();
        let f = SessionFile::for_id(&id, None);
        let path = session_path("/s", &id, None);
        assert_eq!(path, format!("/s/{}/{}", f.shard, f.name));
        assert_eq!(shard_of(&path).map(shard_name), Some(f.shard.clone()));
        assert!(is_shard_name(&f.shard));
        assert_eq!(
            orphan_candidate(&format!("{}/{}.lock", f.shard, f.name)),
            Some(format!("{}/{}", f.shard, f.name).as_str())
        );
        assert_eq!(orphan_candidate(&format!("{}/{}", f.shard, f.name)), None);
    }
}
