//! Session ids, and the one mapping from an id to the file that holds it.
//!
//! An id is a random UUID v4 (122 bits from the platform CSPRNG, which is
//! `wasi:random` inside the component). Ids arrive from cookies, i.e. from
//! attackers, so they are parsed strictly before they go near a path, and a
//! path is never built from the id's text: the file name is a SHA-256 (or,
//! with a secret, HMAC-SHA256) of the id. Whoever can list the directory sees
//! only hashes, which cannot be turned back into a usable id.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Length of the canonical hyphenated form, the only accepted form.
const ID_LEN: usize = 36;

/// A session id that is known to be a canonical lowercase UUID v4.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        SessionId(Uuid::new_v4())
    }

    /// Accepts only `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx` in lowercase.
    /// Braced, URN, uppercase and simple forms are rejected so that one
    /// session has exactly one spelling.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() != ID_LEN {
            return Err(Error::InvalidId);
        }
        let uuid = Uuid::try_parse(text).map_err(|_| Error::InvalidId)?;
        let canonical = uuid.hyphenated().to_string();
        if canonical != text
            || uuid.get_version() != Some(uuid::Version::Random)
            || uuid.get_variant() != uuid::Variant::RFC4122
        {
            return Err(Error::InvalidId);
        }
        Ok(SessionId(uuid))
    }

    pub fn as_string(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

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
                mac.update(id.0.as_bytes());
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(id.0.as_bytes()).into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip() {
        let id = SessionId::generate();
        assert_eq!(SessionId::parse(&id.as_string()), Ok(id));
    }

    #[test]
    fn rejects_non_canonical_and_hostile_ids() {
        let good = SessionId::generate().as_string();
        for bad in [
            "".to_string(),
            good.to_uppercase(),
            format!("{{{good}}}"),
            format!("urn:uuid:{good}"),
            good.replace('-', ""),
            "../../../../etc/passwd".to_string(),
            "/etc/passwd".to_string(),
            format!("{}\0", &good[..35]),
            "00000000-0000-1000-8000-000000000000".to_string(), // v1
            "x".repeat(5000),
            "é".repeat(18),
        ] {
            assert_eq!(SessionId::parse(&bad), Err(Error::InvalidId), "{bad:?}");
        }
    }

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
}
