//! Session ids.
//!
//! An id is a random UUID v4 (122 bits from the platform CSPRNG, which is
//! `wasi:random` inside the component). Ids arrive from cookies, i.e. from
//! attackers, so they are parsed strictly before they go near a path (and a
//! path is never built from an id's text, see `layout`).

use crate::error::{Error, Result};
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

    /// The id's 16 bytes, which `layout` hashes into a file name.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
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
}
