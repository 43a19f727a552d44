//! Signed cookies (`signing-keys`), through the component: every tampered or
//! unsigned value is treated exactly like an unknown id, and keys rotate.
//! Signatures are checked on the host with the `hmac` crate, independently of
//! the component's own code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use host_test::fixtures::{finish, Env};
use sha2::Sha256;
use sqlite_sessions_host::{default_config, Config, Error, Request, StoreHandle};

const KEY_A: [u8; 32] = [0xa1; 32];
const KEY_B: [u8; 32] = [0xb2; 32];
const KEY_C: [u8; 32] = [0xc3; 32];

fn config(keys: &[[u8; 32]]) -> Config {
    let mut c = default_config();
    c.signing_keys = Some(keys.iter().map(|k| k.to_vec()).collect());
    c
}

/// `<id>.<base64url(HMAC-SHA256(key, id))>`, computed on the host.
fn signed(key: &[u8], id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(id.as_bytes());
    format!(
        "{id}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Opens a store with `cfg` on `env`'s directory in a fresh instance.
fn request(env: &Env, cfg: &Config) -> (Request, StoreHandle) {
    let mut req = host_test::runtime().request(env.path()).unwrap();
    let store = req.open_store(cfg).unwrap().unwrap();
    (req, store)
}

/// Everything a request can observe after `load-or-create(cookie)`, without
/// writing: whether the session is new, its keys, the cookie it would send.
/// The id itself is left out (a fresh one is random).
#[derive(Debug, PartialEq)]
struct Outcome {
    is_new: bool,
    keys: Vec<String>,
    user: Option<String>,
    cookie_value: Option<String>,
    set_cookie: Option<String>,
}

fn outcome(env: &Env, cfg: &Config, cookie: &str, victim: &str) -> Outcome {
    let (mut req, store) = request(env, cfg);
    let s = req
        .store(&store)
        .load_or_create(Some(cookie))
        .unwrap()
        .unwrap_or_else(|e| panic!("load-or-create({cookie:.80}) failed: {e:?}"));
    let mut sess = req.session(&s);
    let id = sess.id().unwrap();
    if sess.is_new().unwrap() {
        assert_ne!(id, victim, "a fresh session reused the id in the cookie");
    }
    let o = Outcome {
        is_new: sess.is_new().unwrap(),
        keys: sess.keys().unwrap().unwrap(),
        user: sess.get_json("user").unwrap().unwrap(),
        cookie_value: sess.cookie_value().unwrap(),
        set_cookie: sess.set_cookie().unwrap(),
    };
    finish(req, store, s);
    o
}

/// A new session holding `user`, returned with its (signed) cookie value.
fn victim(env: &Env, cfg: &Config) -> (String, String) {
    let (mut req, store) = request(env, cfg);
    let s = req.store(&store).create().unwrap();
    req.session(&s)
        .set_json("user", r#""ada""#)
        .unwrap()
        .unwrap();
    let id = req.session(&s).id().unwrap();
    let cookie = req.session(&s).cookie_value().unwrap().unwrap();
    let header = req.session(&s).set_cookie().unwrap().unwrap();
    assert_eq!(
        cookie::Cookie::parse(header.as_str()).unwrap().value(),
        cookie
    );
    finish(req, store, s);
    (id, cookie)
}

fn flip(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[at] = match b[at] {
        b'A' => b'B',
        b'0' => b'1',
        b'a' => b'b',
        _ => b'A',
    };
    String::from_utf8(b).unwrap()
}

#[test]
fn tampered_cookies_are_exactly_unknown_ids() {
    let env = Env::new();
    let cfg = config(&[KEY_A]);
    let (id, cookie) = victim(&env, &cfg);
    assert_eq!(cookie, signed(&KEY_A, &id), "not HMAC-SHA256(key, id)");
    let sig = &cookie[37..];
    assert_eq!(sig.len(), 43);

    // The genuine cookie loads the session, and needs no new Set-Cookie.
    let genuine = outcome(&env, &cfg, &cookie, &id);
    assert_eq!(
        genuine,
        Outcome {
            is_new: false,
            keys: vec!["user".into()],
            user: Some(r#""ada""#.into()),
            cookie_value: Some(cookie.clone()),
            set_cookie: None,
        }
    );

    // The reference: a correctly signed id that has no session.
    let unknown_id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    let unknown = outcome(&env, &cfg, &signed(&KEY_A, unknown_id), unknown_id);
    assert_eq!(
        unknown,
        Outcome {
            is_new: true,
            keys: vec![],
            user: None,
            cookie_value: None,
            set_cookie: None,
        }
    );

    // Another session's valid signature on this session's id.
    let (other_id, other_cookie) = victim(&env, &cfg);
    let mut tampered: Vec<(String, String)> = vec![
        ("signature, first char".into(), flip(&cookie, 37)),
        ("signature, middle char".into(), flip(&cookie, 37 + 20)),
        (
            "signature, last char".into(),
            flip(&cookie, cookie.len() - 1),
        ),
        ("id, first char".into(), flip(&cookie, 0)),
        ("id, last char".into(), flip(&cookie, 35)),
        ("signature dropped".into(), id.clone()),
        ("signature empty".into(), format!("{id}.")),
        (
            "signature truncated".into(),
            cookie[..cookie.len() - 1].to_string(),
        ),
        ("signature extended".into(), format!("{cookie}A")),
        ("signature padded".into(), format!("{cookie}=")),
        ("standard base64".into(), {
            use base64::engine::general_purpose::STANDARD;
            let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
            format!("{id}.{}", STANDARD.encode(raw))
        }),
        (
            "another session's signature".into(),
            format!("{id}.{}", &other_cookie[37..]),
        ),
        ("signed by an unlisted key".into(), signed(&KEY_C, &id)),
        (
            "uppercase id".into(),
            format!("{}.{sig}", id.to_uppercase()),
        ),
        (
            "uppercase id, its own signature".into(),
            signed(&KEY_A, &id.to_uppercase()),
        ),
        ("extra dot".into(), format!("{cookie}.x")),
        ("two dots".into(), format!("{id}..{sig}")),
        ("swapped".into(), format!("{sig}.{id}")),
        ("empty".into(), String::new()),
        ("dot".into(), ".".into()),
        ("garbage".into(), "garbage".into()),
        ("NUL".into(), format!("{id}\0.{sig}")),
        ("spaces".into(), format!(" {cookie} ")),
        ("quoted".into(), format!("\"{cookie}\"")),
        ("non-ASCII".into(), format!("{id}.{}é", &sig[..42])),
        ("very long".into(), "a".repeat(1 << 20)),
        (
            "very long signature".into(),
            format!("{id}.{}", "A".repeat(100_000)),
        ),
    ];
    // Every single-character change of the signature.
    for at in 37..cookie.len() {
        tampered.push((format!("signature char {at}"), flip(&cookie, at)));
    }
    for (what, value) in &tampered {
        let got = outcome(&env, &cfg, value, &id);
        assert_eq!(got, unknown, "{what}: {value:.80}");
        // Through the header path too.
        let (mut req, store) = request(&env, &cfg);
        let extracted = req
            .store(&store)
            .cookie_value_from_header(&format!("a=1; sid={value}"))
            .unwrap();
        if let Some(v) = extracted {
            let s = req.store(&store).load_or_create(Some(&v)).unwrap().unwrap();
            // Cookie parsing trims whitespace around a value, so " <cookie> "
            // is the genuine cookie there; anything else is unknown.
            let genuine = v == cookie;
            assert_eq!(
                req.session(&s).is_new().unwrap(),
                !genuine,
                "{what}: {v:.80}"
            );
            req.drop_session(s).unwrap();
        }
        req.drop_store(store).unwrap();
    }
    // Nothing was created or destroyed by any of it.
    assert_eq!(env.session_files().len(), 2);
    assert_eq!(outcome(&env, &cfg, &cookie, &id), genuine);
    assert!(outcome(&env, &cfg, &other_cookie, &other_id).user.is_some());
}

#[test]
fn unsigned_ids_are_refused_once_signing_is_on() {
    // A session created while signing was off ...
    let env = Env::new();
    let (id, bare) = victim(&env, &default_config());
    assert_eq!(bare, id);
    // ... is not reachable with its bare id once keys are configured,
    let cfg = config(&[KEY_A]);
    assert!(outcome(&env, &cfg, &id, &id).is_new);
    // but a signed cookie for it works (an operator can re-issue).
    assert!(!outcome(&env, &cfg, &signed(&KEY_A, &id), &id).is_new);
    // `load` by id is the administrator's path and takes no cookie.
    let (mut req, store) = request(&env, &cfg);
    assert!(req.store(&store).load(&id).unwrap().unwrap().is_some());
    assert!(req.store(&store).load(&bare).unwrap().unwrap().is_some());
    let signed_value = signed(&KEY_A, &id);
    assert!(req
        .store(&store)
        .load(&signed_value)
        .unwrap()
        .unwrap()
        .is_none());
    req.drop_store(store).unwrap();
}

#[test]
fn keys_rotate_sign_with_the_newest_accept_any_listed() {
    let env = Env::new();
    let (id, cookie_a) = victim(&env, &config(&[KEY_A]));
    assert_eq!(cookie_a, signed(&KEY_A, &id));

    // New key B first, A still accepted: the A cookie loads the session and
    // the response re-issues it signed with B.
    let rotated = config(&[KEY_B, KEY_A]);
    let (mut req, store) = request(&env, &rotated);
    let s = req
        .store(&store)
        .load_or_create(Some(&cookie_a))
        .unwrap()
        .unwrap();
    assert!(!req.session(&s).is_new().unwrap());
    assert_eq!(
        req.session(&s).get_json("user").unwrap(),
        Ok(Some(r#""ada""#.into()))
    );
    let cookie_b = signed(&KEY_B, &id);
    assert_eq!(
        req.session(&s).cookie_value().unwrap(),
        Some(cookie_b.clone())
    );
    let header = req
        .session(&s)
        .set_cookie()
        .unwrap()
        .expect("a cookie signed by an old key must be re-issued");
    let parsed = cookie::Cookie::parse(header.as_str()).unwrap();
    assert_eq!(parsed.value(), cookie_b);
    assert!(parsed.max_age().is_some_and(|a| a.whole_seconds() > 0));
    finish(req, store, s);

    // The B cookie is current: loading it needs no Set-Cookie.
    let current = outcome(&env, &rotated, &cookie_b, &id);
    assert!(!current.is_new);
    assert_eq!(current.set_cookie, None);
    assert_eq!(current.cookie_value, Some(cookie_b.clone()));

    // A dropped: the A cookie is now an unknown id; the B cookie still works.
    let only_b = config(&[KEY_B]);
    let dropped = outcome(&env, &only_b, &cookie_a, &id);
    assert!(dropped.is_new && dropped.user.is_none() && dropped.set_cookie.is_none());
    assert!(!outcome(&env, &only_b, &cookie_b, &id).is_new);

    // Regenerating under rotation signs the new id with the newest key.
    let (mut req, store) = request(&env, &rotated);
    let s = req
        .store(&store)
        .load_or_create(Some(&cookie_a))
        .unwrap()
        .unwrap();
    req.session(&s).regenerate().unwrap().unwrap();
    let new_id = req.session(&s).id().unwrap();
    let header = req.session(&s).set_cookie().unwrap().unwrap();
    assert_eq!(
        cookie::Cookie::parse(header.as_str()).unwrap().value(),
        signed(&KEY_B, &new_id)
    );
    finish(req, store, s);
}

#[test]
fn short_signing_keys_are_a_config_error() {
    let env = Env::new();
    let mut req = host_test::runtime().request(env.path()).unwrap();
    for keys in [vec![vec![0u8; 31]], vec![KEY_A.to_vec(), vec![]]] {
        let mut c = default_config();
        c.signing_keys = Some(keys);
        assert!(matches!(req.open_store(&c).unwrap(), Err(Error::Config(_))));
    }
}
