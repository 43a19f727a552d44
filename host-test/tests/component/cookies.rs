//! The Set-Cookie matrix, through the component: every attribute of
//! `cookie-config` in every combination, persistent and browser-session
//! cookies, and the deletion cookie after destroy and after emptying. Headers
//! are parsed with the `cookie` crate, so attribute order and spelling do not
//! matter, only their meaning.

use cookie::time::{Duration as CookieDuration, OffsetDateTime};
use cookie::{Cookie, SameSite as CookieSameSite};
use host_test::fixtures::Env;
use sqlite_sessions_host::{
    default_config, Config, Error, ExpirySettings, FakeClock, Request, RequestOptions, SameSite,
    StoreHandle,
};

const T0: i64 = 1_800_000_000;

#[derive(Clone, Debug)]
struct Attrs {
    name: Option<&'static str>,
    secure: Option<bool>,
    http_only: Option<bool>,
    same_site: Option<SameSite>,
    path: Option<&'static str>,
    domain: Option<&'static str>,
    persistent: Option<bool>,
}

impl Attrs {
    fn config(&self) -> Config {
        let mut c = default_config();
        c.cookie.name = self.name.map(Into::into);
        c.cookie.secure = self.secure;
        c.cookie.http_only = self.http_only;
        c.cookie.same_site = self.same_site;
        c.cookie.path = self.path.map(Into::into);
        c.cookie.domain = self.domain.map(Into::into);
        c.cookie.persistent = self.persistent;
        c
    }

    /// What the component must do with this config, by the cookie rules
    /// (RFC 6265bis prefixes, matched case-insensitively; SameSite=None needs
    /// Secure), written out independently of the component's code.
    fn valid(&self) -> bool {
        let name = self.name.unwrap_or("sid").to_ascii_lowercase();
        let secure = self.secure.unwrap_or(true);
        let path = self.path.unwrap_or("/");
        if name.starts_with("__host-") && (!secure || path != "/" || self.domain.is_some()) {
            return false;
        }
        if name.starts_with("__secure-") && !secure {
            return false;
        }
        self.same_site != Some(SameSite::None) || secure
    }

    /// Checks the attributes every header for this config shares.
    fn check_common(&self, c: &Cookie<'_>, header: &str) {
        assert_eq!(c.name(), self.name.unwrap_or("sid"), "{header}");
        assert_eq!(
            c.secure().unwrap_or(false),
            self.secure.unwrap_or(true),
            "{header}"
        );
        assert_eq!(
            c.http_only().unwrap_or(false),
            self.http_only.unwrap_or(true),
            "{header}"
        );
        let same_site = match self.same_site.unwrap_or(SameSite::Lax) {
            SameSite::Strict => CookieSameSite::Strict,
            SameSite::Lax => CookieSameSite::Lax,
            SameSite::None => CookieSameSite::None,
        };
        assert_eq!(c.same_site(), Some(same_site), "{header}");
        // Deleting a cookie only works with the same path and domain.
        assert_eq!(c.path(), Some(self.path.unwrap_or("/")), "{header}");
        assert_eq!(c.domain(), self.domain, "{header}");
    }
}

fn matrix() -> Vec<Attrs> {
    let mut all = Vec::new();
    for name in [
        None,
        Some("app_sid"),
        Some("__Host-sid"),
        Some("__Secure-sid"),
        Some("__host-sid"),
    ] {
        for secure in [None, Some(true), Some(false)] {
            for http_only in [None, Some(false)] {
                for same_site in [
                    None,
                    Some(SameSite::Strict),
                    Some(SameSite::Lax),
                    Some(SameSite::None),
                ] {
                    for path in [None, Some("/app")] {
                        for domain in [None, Some("example.com")] {
                            for persistent in [None, Some(false)] {
                                all.push(Attrs {
                                    name,
                                    secure,
                                    http_only,
                                    same_site,
                                    path,
                                    domain,
                                    persistent,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    all
}

fn clocked_request(env: &Env, clock: &FakeClock) -> Request {
    host_test::runtime()
        .request_with(
            env.path(),
            RequestOptions {
                wall_clock: Some(clock.clone()),
                ..Default::default()
            },
        )
        .unwrap()
}

fn parse(header: &str) -> Cookie<'static> {
    Cookie::parse(header.to_string()).unwrap_or_else(|e| panic!("{header:?}: {e}"))
}

fn at(unix_s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_s).unwrap()
}

/// Creates and writes a session; returns its id, cookie value and Set-Cookie.
fn write_one(req: &mut Request, store: &StoreHandle) -> (String, Option<String>, Option<String>) {
    let s = req.store(store).create().unwrap();
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    let id = req.session(&s).id().unwrap();
    let value = req.session(&s).cookie_value().unwrap();
    let header = req.session(&s).set_cookie().unwrap();
    req.drop_session(s).unwrap();
    (id, value, header)
}

#[test]
fn every_attribute_combination() {
    let env = Env::new();
    let clock = FakeClock::at_unix_secs(T0 as u64);
    let mut req = clocked_request(&env, &clock);
    let (mut valid, mut invalid) = (0, 0);
    for attrs in matrix() {
        let cfg = attrs.config();
        let store = match req.open_store(&cfg).unwrap() {
            Err(Error::Config(msg)) => {
                assert!(!attrs.valid(), "{attrs:?} refused: {msg}");
                assert!(msg.contains("cookie."), "message names the field: {msg}");
                invalid += 1;
                continue;
            }
            Err(e) => panic!("{attrs:?}: {e:?}"),
            Ok(store) => store,
        };
        assert!(attrs.valid(), "{attrs:?} accepted");
        valid += 1;

        // A new session, once written, sets its cookie.
        let (id, value, header) = write_one(&mut req, &store);
        let header = header.expect("a written session sets its cookie");
        let c = parse(&header);
        attrs.check_common(&c, &header);
        assert_eq!(c.value(), id);
        assert_eq!(value.as_deref(), Some(id.as_str()));
        if attrs.persistent.unwrap_or(true) {
            // Default idle timeout, 24 h, is sooner than the 30-day absolute one.
            assert_eq!(
                c.max_age(),
                Some(CookieDuration::seconds(86_400)),
                "{header}"
            );
            assert_eq!(c.expires_datetime(), Some(at(T0 + 86_400)), "{header}");
        } else {
            assert_eq!(c.max_age(), None, "{header}");
            assert_eq!(c.expires(), None, "{header}");
        }

        // Destroying it sends the deletion cookie, with matching attributes.
        let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
        assert_eq!(req.session(&s).set_cookie().unwrap(), None);
        req.session(&s).destroy().unwrap().unwrap();
        let header = req.session(&s).set_cookie().unwrap().unwrap();
        req.drop_session(s).unwrap();
        check_deletion(&attrs, &header);

        // So does emptying one (removing its last key).
        let (id, _, _) = write_one(&mut req, &store);
        let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
        assert_eq!(req.session(&s).remove("k").unwrap(), Ok(true));
        let header = req.session(&s).set_cookie().unwrap().unwrap();
        req.drop_session(s).unwrap();
        check_deletion(&attrs, &header);
        req.drop_store(store).unwrap();
    }
    assert!(
        valid > 100 && invalid > 100,
        "{valid} valid, {invalid} invalid"
    );
    assert!(env.session_files().is_empty());
}

fn check_deletion(attrs: &Attrs, header: &str) {
    let c = parse(header);
    attrs.check_common(&c, header);
    assert_eq!(c.value(), "", "{header}");
    assert_eq!(c.max_age(), Some(CookieDuration::ZERO), "{header}");
    let expires = c
        .expires_datetime()
        .expect("deletion carries a past Expires");
    assert!(expires < at(T0), "{header}");
}

#[test]
fn lifetime_follows_the_expiry_model() {
    let env = Env::new();
    let clock = FakeClock::at_unix_secs(T0 as u64);
    let mut req = clocked_request(&env, &clock);
    let max_age = |req: &mut Request, cfg: &Config, settings: Option<ExpirySettings>| {
        let store = req.open_store(cfg).unwrap().unwrap();
        let s = req.store(&store).create().unwrap();
        if let Some(settings) = settings {
            req.session(&s).set_expiry(settings).unwrap().unwrap();
        }
        req.session(&s).set_json("k", "1").unwrap().unwrap();
        let c = parse(&req.session(&s).set_cookie().unwrap().unwrap());
        req.session(&s).destroy().unwrap().unwrap();
        req.drop_session(s).unwrap();
        req.drop_store(store).unwrap();
        (
            c.max_age().map(|d| d.whole_seconds()),
            c.expires_datetime().map(|t| t.unix_timestamp() - T0),
        )
    };
    let settings = |idle, absolute, persistent| {
        Some(ExpirySettings {
            idle_timeout_seconds: idle,
            absolute_timeout_seconds: absolute,
            persistent_cookie: persistent,
        })
    };
    let mut cfg = default_config();
    cfg.idle_timeout_seconds = Some(3600);
    cfg.absolute_timeout_seconds = Some(600);
    // The absolute timeout is sooner here.
    assert_eq!(max_age(&mut req, &cfg, None), (Some(600), Some(600)));
    // Both off: capped at 400 days, as browsers cap it anyway.
    cfg.idle_timeout_seconds = Some(0);
    cfg.absolute_timeout_seconds = Some(0);
    let cap = 400 * 86_400;
    assert_eq!(max_age(&mut req, &cfg, None), (Some(cap), Some(cap)));
    // Per-session overrides: a "remember me" session, a browser-session one.
    let cfg = default_config();
    assert_eq!(
        max_age(&mut req, &cfg, settings(Some(7 * 86_400), None, None)),
        (Some(7 * 86_400), Some(7 * 86_400))
    );
    assert_eq!(
        max_age(&mut req, &cfg, settings(None, None, Some(false))),
        (None, None)
    );
    let mut browser = default_config();
    browser.cookie.persistent = Some(false);
    assert_eq!(
        max_age(&mut req, &browser, settings(None, None, Some(true))),
        (Some(86_400), Some(86_400))
    );
    assert!(env.session_files().is_empty());
}

#[test]
fn malformed_cookie_attributes_are_config_errors() {
    let env = Env::new();
    let mut req = host_test::runtime().request(env.path()).unwrap();
    let mut bad: Vec<(&str, Config)> = Vec::new();
    for name in ["", "a b", "a;b", "a=b", "a,b", "é", "a\tb", "(x)"] {
        let mut c = default_config();
        c.cookie.name = Some(name.into());
        bad.push(("name", c));
    }
    for path in ["", "app", "/a;b", "/a b", "/a\nb"] {
        let mut c = default_config();
        c.cookie.path = Some(path.into());
        bad.push(("path", c));
    }
    for domain in ["", "a;b", "a b"] {
        let mut c = default_config();
        c.cookie.domain = Some(domain.into());
        bad.push(("domain", c));
    }
    for (what, cfg) in bad {
        match req.open_store(&cfg).unwrap() {
            Err(Error::Config(msg)) => assert!(msg.contains(&format!("cookie.{what}")), "{msg}"),
            other => panic!("{what} {:?}: {other:?}", cfg.cookie),
        }
    }
    // The prefix rules name the offending field.
    let mut c = default_config();
    c.cookie.name = Some("__Host-sid".into());
    c.cookie.path = Some("/app".into());
    match req.open_store(&c).unwrap() {
        Err(Error::Config(msg)) => assert!(msg.contains("__Host-"), "{msg}"),
        other => panic!("{other:?}"),
    }
}
