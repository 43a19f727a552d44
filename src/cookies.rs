//! Cookies: reading the session cookie from a `Cookie` header, and building the
//! `Set-Cookie` header a response needs. Built with the `cookie` crate so that
//! quoting and attribute syntax follow RFC 6265.

use crate::error::{Error, Result};
use crate::ids::SessionId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::time::{Duration, OffsetDateTime};
pub use cookie::SameSite;
use cookie::{Cookie, Expiration};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest signing key accepted: 256 bits, the HMAC-SHA256 output size.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// Signs session ids for the cookie as `<id>.<base64url(HMAC-SHA256(key, id))>`.
/// With several keys, the first signs and any verifies, so keys can be
/// rotated: add the new key first, and drop the old one once every cookie it
/// signed has expired.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

impl Signer {
    pub fn new(keys: Vec<Vec<u8>>) -> Result<Signer> {
        if let Some((i, k)) = keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.len() < MIN_SIGNING_KEY_BYTES)
        {
            return Err(Error::Config(format!(
                "signing-keys[{i}]: {} bytes; at least {MIN_SIGNING_KEY_BYTES} needed",
                k.len()
            )));
        }
        Ok(Signer { keys })
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The cookie value for `id`: signed if keys are configured, else the id.
    pub fn cookie_value(&self, id: &SessionId) -> String {
        let id = id.as_string();
        match self.keys.first() {
            Some(key) => {
                let tag = mac(key, &id).finalize().into_bytes();
                format!("{id}.{}", URL_SAFE_NO_PAD.encode(tag))
            }
            None => id,
        }
    }

    /// The id in a cookie value, if its signature verifies under any key
    /// (compared in constant time) — or, without keys, if it parses. A bad
    /// signature is indistinguishable from an unknown id.
    pub fn verify(&self, value: &str) -> Option<SessionId> {
        self.verify_with_key(value).map(|(id, _)| id)
    }

    /// `verify`, also saying which key verified it (0 is the newest, the one
    /// that signs; always 0 without keys).
    pub fn verify_with_key(&self, value: &str) -> Option<(SessionId, usize)> {
        if !self.is_enabled() {
            return SessionId::parse(value).ok().map(|id| (id, 0));
        }
        let (id, sig) = value.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let parsed = SessionId::parse(id).ok()?;
        self.keys
            .iter()
            .position(|key| mac(key, id).verify_slice(&sig).is_ok())
            .map(|i| (parsed, i))
    }
}

fn mac(key: &[u8], id: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac
}

/// How session cookies are built; defaults are the secure ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    pub name: String,
    pub path: String,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: SameSite,
    pub persistent: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            name: "sid".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            persistent: true,
        }
    }
}

impl CookieSettings {
    /// Rejects names and attributes a browser would refuse or mis-handle.
    pub fn validate(&self) -> Result<()> {
        let token_char = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if self.name.is_empty() || !self.name.chars().all(token_char) {
            return Err(Error::Config(format!(
                "cookie.name: {:?} is not an RFC 6265 token",
                self.name
            )));
        }
        let attr_ok = |s: &str| s.chars().all(|c| c.is_ascii_graphic() && c != ';');
        if !self.path.starts_with('/') || !attr_ok(&self.path) {
            return Err(Error::Config(format!(
                "cookie.path: {:?} must start with / and have no spaces or ;",
                self.path
            )));
        }
        if let Some(domain) = &self.domain {
            if domain.is_empty() || !attr_ok(domain) {
                return Err(Error::Config(format!(
                    "cookie.domain: {domain:?} is invalid"
                )));
            }
        }
        // Browsers match the prefixes case-insensitively (RFC 6265bis), so a
        // `__host-` name gets the same rules.
        let prefixed = |prefix: &str| {
            self.name
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        };
        if prefixed("__Host-") && (!self.secure || self.path != "/" || self.domain.is_some()) {
            return Err(Error::Config(
                "cookie.name: a __Host- cookie needs secure, path \"/\" and no domain".into(),
            ));
        }
        if prefixed("__Secure-") && !self.secure {
            return Err(Error::Config(
                "cookie.name: a __Secure- cookie needs secure".into(),
            ));
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(Error::Config(
                "cookie.same-site: none needs secure, or browsers drop the cookie".into(),
            ));
        }
        Ok(())
    }

    /// The value of this store's cookie in a raw `Cookie` request header.
    /// With duplicates (a cookie set for a parent path or domain too), the
    /// first wins, as in browsers' most-specific-first order.
    pub fn value_from_header(&self, header: &str) -> Option<String> {
        Cookie::split_parse(header)
            .filter_map(|c| c.ok())
            .find(|c| c.name() == self.name)
            .map(|c| c.value().to_string())
    }

    /// `Set-Cookie` for `value`. `max_age_s` is how long until the session
    /// expires, or `None` for a browser-session cookie (no `Max-Age`, no
    /// `Expires`).
    pub fn set_header(&self, value: &str, max_age_s: Option<u64>, now_ms: i64) -> String {
        let mut cookie = self.base(value.to_string());
        if let Some(secs) = max_age_s {
            // Browsers cap cookie lifetimes at 400 days (RFC 6265bis); so do we,
            // which also covers sessions that never expire.
            let secs = secs.min(400 * 24 * 3600) as i64;
            cookie.set_max_age(Duration::seconds(secs));
            cookie.set_expires(expiration(now_ms / 1000 + secs));
        }
        cookie.to_string()
    }

    /// `Set-Cookie` that makes the browser drop the cookie.
    pub fn delete_header(&self) -> String {
        let mut cookie = self.base(String::new());
        cookie.set_max_age(Duration::ZERO);
        cookie.set_expires(expiration(0));
        cookie.to_string()
    }

    fn base(&self, value: String) -> Cookie<'static> {
        let mut builder = Cookie::build((self.name.clone(), value))
            .path(self.path.clone())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder.build()
    }
}

fn expiration(unix_s: i64) -> Expiration {
    let at = OffsetDateTime::from_unix_timestamp(unix_s).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Expiration::DateTime(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_cookie_has_secure_attributes() {
        let header = CookieSettings::default().set_header("v", Some(60), 0);
        for part in [
            "sid=v",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(header.contains(part), "{header}");
        }
        assert!(
            header.contains("Expires=Thu, 01 Jan 1970 00:01:00 GMT"),
            "{header}"
        );
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let s = CookieSettings::default();
        assert_eq!(
            s.value_from_header("a=1; sid=xyz; b=2").as_deref(),
            Some("xyz")
        );
        assert_eq!(s.value_from_header("a=1"), None);
    }

    #[test]
    fn signatures_verify_under_any_key_and_reject_tampering() {
        let (old, new) = (vec![1u8; 32], vec![2u8; 32]);
        let id = SessionId::generate();
        let signed_old = Signer::new(vec![old.clone()]).unwrap().cookie_value(&id);
        let rotated = Signer::new(vec![new.clone(), old]).unwrap();
        assert_eq!(rotated.verify(&signed_old), Some(id));
        let signed_new = rotated.cookie_value(&id);
        assert_ne!(signed_new, signed_old);
        assert_eq!(Signer::new(vec![new]).unwrap().verify(&signed_old), None);
        // Flip one character of the signature.
        let mut tampered = signed_new.clone().into_bytes();
        tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(rotated.verify(&tampered), None);
        assert_eq!(rotated.verify(&id.as_string()), None);
        assert!(matches!(
            Signer::new(vec![vec![0; 31]]),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn host_prefix_rules_are_enforced() {
        let mut s = CookieSettings {
            name: "__Host-sid".into(),
            ..Default::default()
        };
        assert!(s.validate().is_ok());
        s.domain = Some("example.com".into());
        assert!(matches!(s.validate(), Err(Error::Config(_))));
    }
}
