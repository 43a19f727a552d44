//! Bounded fuzzing through the component boundary: random and adversarial
//! bytes and strings at every input of the interface. Each call must return
//! (no trap: the outer `anyhow::Result` is `Ok`) with success or one of the
//! typed errors the contract allows for it, and where the answer can be
//! predicted independently it is checked too.
//!
//! Each fuzz test prints how many inputs it ran (`--nocapture` shows it).
//! `HOSTILE_SCALE=N` multiplies every count, for longer local runs.

use host_test::fixtures::{finish, Env};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use sqlite_sessions_host::{
    default_config, Config, CookieConfig, Error, LimitKind, PathSegment, Request, SameSite,
    SessionHandle, SessionRef, StoreHandle, StoreRef,
};
use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The session the fuzz inputs go to.
const SEED_KEY: &str = "seed";
const SEED_JSON: &str = r#"{"a":[1,{"b":2}],"s":"text","m":{}}"#;

/// Known component bug: a timeout over `i64::MAX / 1000` seconds, which
/// `store.open` accepts, overflows the expiry arithmetic and every session
/// expires as soon as it is written. `random_configs` accepts that outcome
/// while this is `true`; `bug_huge_timeouts_expire_sessions_at_once` is the
/// strict test. Set it to `false` once the bug is fixed.
const TOLERATE_HUGE_TIMEOUTS_EXPIRE_AT_ONCE: bool = false;

/// Known component bug: a `busy-timeout-ms` over `i32::MAX`, which
/// `store.open` accepts, makes rusqlite panic ("too big") and the component
/// trap on its first session file access. `random_configs` skips such configs
/// while this is `true`; `bug_huge_busy_timeout_traps` is the strict test.
const TOLERATE_HUGE_BUSY_TIMEOUT_TRAPS: bool = false;

/// Requests are recycled after this many inputs, so that state built up by
/// one input reaches the next ones, but not forever.
const INPUTS_PER_REQUEST: u32 = 100;

struct Live {
    req: Request,
    store: StoreHandle,
    s: SessionHandle,
}

/// One session directory and the request currently feeding it.
struct Target {
    env: Env,
    live: Option<Live>,
    uses: u32,
    /// A call trapped: the instance may not be entered again.
    poisoned: bool,
}

impl Target {
    fn new() -> Self {
        Target {
            env: Env::new(),
            live: None,
            uses: 0,
            poisoned: false,
        }
    }

    /// A live request with the seeded session, recycled now and then.
    fn ensure_live(&mut self) {
        if self.poisoned || self.uses >= INPUTS_PER_REQUEST {
            if let Some(live) = self.live.take() {
                if !self.poisoned {
                    finish(live.req, live.store, live.s);
                }
            }
            self.poisoned = false;
        }
        if self.live.is_none() {
            let (mut req, store) = self.env.request();
            let s = req.store(&store).create().unwrap();
            req.session(&s)
                .set_json(SEED_KEY, SEED_JSON)
                .unwrap()
                .unwrap();
            self.live = Some(Live { req, store, s });
            self.uses = 0;
        }
        self.uses += 1;
    }

    /// A call on the session; a trap fails the input and retires the
    /// instance, which a trap leaves unusable.
    fn sess<T>(
        &mut self,
        what: &str,
        call: impl FnOnce(&mut SessionRef<'_>) -> anyhow::Result<T>,
    ) -> Result<T, String> {
        let live = self.live.as_mut().expect("ensure_live first");
        let result = call(&mut live.req.session(&live.s));
        self.trap(what, result)
    }

    /// A call on the store.
    fn store<T>(
        &mut self,
        what: &str,
        call: impl FnOnce(&mut StoreRef<'_>) -> anyhow::Result<T>,
    ) -> Result<T, String> {
        let live = self.live.as_mut().expect("ensure_live first");
        let result = call(&mut live.req.store(&live.store));
        self.trap(what, result)
    }

    /// A call on the request itself (for other handles).
    fn req<T>(
        &mut self,
        what: &str,
        call: impl FnOnce(&mut Request) -> anyhow::Result<T>,
    ) -> Result<T, String> {
        let live = self.live.as_mut().expect("ensure_live first");
        let result = call(&mut live.req);
        self.trap(what, result)
    }

    fn trap<T>(&mut self, what: &str, result: anyhow::Result<T>) -> Result<T, String> {
        result.map_err(|e| {
            self.poisoned = true;
            format!("{what} trapped: {e:?}")
        })
    }
}

fn scale() -> u32 {
    std::env::var("HOSTILE_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Runs `check` on `cases` inputs from `strategy` against one target,
/// printing the number of executions (shrinking included) and the time.
fn fuzz<S>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(&mut Target, &S::Value) -> Result<(), String>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let target = RefCell::new(Target::new());
    let executions = Cell::new(0u64);
    let start = Instant::now();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: cases * scale(),
        failure_persistence: None,
        max_shrink_iters: 500,
        ..ProptestConfig::default()
    });
    let result = runner.run(&strategy, |input| {
        executions.set(executions.get() + 1);
        let mut t = target.borrow_mut();
        t.ensure_live();
        check(&mut t, &input).map_err(TestCaseError::fail)
    });
    println!(
        "{name}: {} executions in {:.2?}",
        executions.get(),
        start.elapsed()
    );
    let mut t = target.into_inner();
    if let (Some(live), false) = (t.live.take(), t.poisoned) {
        finish(live.req, live.store, live.s);
    }
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

fn is_canonical_v4(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            14 => *c == b'4',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
}

/// Decodes one CBOR item on the host, allowing any depth.
fn host_decode(bytes: &[u8]) -> Option<ciborium::Value> {
    let mut rest = bytes;
    let v = ciborium::de::from_reader_with_recursion_limit(&mut rest, 100_000).ok()?;
    rest.is_empty().then_some(v)
}

/// The JSON text `get-json` must return for a value, by the contract's
/// rules: none for byte strings, tags, non-text map keys, NaN or infinity and
/// integers beyond 64 bits. (Rendered by serde_json, as the component does,
/// so that float and key-order formatting agree; serde_json prints any depth,
/// though it parses at most 128 levels.)
fn expected_json(v: &ciborium::Value) -> Option<String> {
    fn conv(v: &ciborium::Value) -> Option<serde_json::Value> {
        use ciborium::Value as V;
        use serde_json::Value as J;
        Some(match v {
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Integer(i) => {
                let i = i128::from(*i);
                match u64::try_from(i) {
                    Ok(u) => J::from(u),
                    Err(_) => J::from(i64::try_from(i).ok()?),
                }
            }
            V::Float(f) => J::Number(serde_json::Number::from_f64(*f)?),
            V::Text(t) => J::String(t.clone()),
            V::Array(items) => J::Array(items.iter().map(conv).collect::<Option<_>>()?),
            V::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    let V::Text(k) = k else { return None };
                    map.insert(k.clone(), conv(v)?);
                }
                J::Object(map)
            }
            _ => return None,
        })
    }
    conv(v).map(|j| serde_json::to_string(&j).unwrap())
}

fn depth(v: &ciborium::Value) -> usize {
    use ciborium::Value as V;
    match v {
        V::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        V::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        V::Tag(_, inner) => 1 + depth(inner),
        _ => 1,
    }
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

/// Initial bytes that steer a decoder into its interesting corners: every
/// major type with every length encoding (including reserved ones), break,
/// indefinite lengths, tags, floats and simple values.
const CBOR_HEADS: &[u8] = &[
    0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x38, 0x3b, 0x40, 0x41, 0x58, 0x5b, 0x5f,
    0x60, 0x61, 0x78, 0x7b, 0x7f, 0x80, 0x81, 0x98, 0x9b, 0x9f, 0xa0, 0xa1, 0xb8, 0xbb, 0xbf, 0xc0,
    0xc2, 0xc3, 0xd8, 0xdb, 0xe0, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xff,
];

fn cbor_value_tree() -> impl Strategy<Value = ciborium::Value> {
    use ciborium::Value as V;
    let leaf = prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(|i| V::Integer(i.into())),
        any::<u64>().prop_map(|i| V::Integer(i.into())),
        any::<f64>().prop_map(V::Float),
        ".{0,8}".prop_map(V::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(V::Bytes),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(V::Array),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(V::Map),
            (any::<u64>(), inner).prop_map(|(t, v)| V::Tag(t, Box::new(v))),
        ]
    })
}

/// Random and structured byte strings to use as CBOR values.
fn cbor_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Pure noise, short and long.
        3 => prop::collection::vec(any::<u8>(), 0..16),
        2 => prop::collection::vec(any::<u8>(), 0..2048),
        // Interesting heads followed by noise.
        4 => prop::collection::vec(
            prop_oneof![prop::sample::select(CBOR_HEADS), any::<u8>()],
            0..64
        ),
        // Well-formed items, then mutated: a byte changed, truncated, or
        // extended.
        4 => (cbor_value_tree(), any::<prop::sample::Index>(), any::<u8>(), 0u8..4).prop_map(
            |(v, at, byte, how)| {
                let mut out = Vec::new();
                ciborium::into_writer(&v, &mut out).unwrap();
                let i = at.index(out.len());
                match how {
                    0 => {}
                    1 => out[i] = byte,
                    2 => out.truncate(i),
                    _ => out.push(byte),
                }
                out
            }
        ),
        // Deep nesting around the 256-level limit.
        1 => (250usize..262, prop::sample::select(vec![0x81u8, 0x9f, 0xa1, 0xc1]))
            .prop_map(|(n, head)| {
                let mut out = Vec::new();
                for _ in 0..n {
                    out.push(head);
                    if head == 0xa1 {
                        out.push(0x00); // a key, then the nested value
                    }
                }
                out.push(0x00);
                if head == 0x9f {
                    out.extend(std::iter::repeat_n(0xff, n));
                }
                out
            }),
    ]
}

/// Strings to use as session ids.
fn id_strings() -> impl Strategy<Value = String> {
    let valid = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
    prop_oneof![
        2 => any::<String>(),
        2 => "[0-9a-fA-F-]{30,40}",
        // Canonical v4 ids (never issued, so unknown), and their near misses.
        2 => valid.prop_map(String::from),
        3 => (valid, any::<prop::sample::Index>(), any::<char>()).prop_map(|(id, at, c)| {
            let mut chars: Vec<char> = id.chars().collect();
            let i = at.index(chars.len());
            chars[i] = c;
            chars.into_iter().collect()
        }),
        1 => prop::sample::select(vec![
            String::new(),
            "../../../../etc/passwd".into(),
            "/sessions/00".into(),
            "00000000-0000-4000-8000-000000000000\0".into(),
            "{00000000-0000-4000-8000-000000000000}".into(),
            "urn:uuid:00000000-0000-4000-8000-000000000000".into(),
            "00000000000040008000000000000000".into(),
            "x".repeat(100_000),
        ]),
    ]
}

/// Raw `Cookie` headers.
fn cookie_headers() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        "[a-z]{1,4}=[ -~]{0,12}",
        "sid=[ -~]{0,40}",
        "sid=\"[ -~]{0,40}\"",
        " *sid *= *[0-9a-f-]{36} *",
        Just("sid".to_string()),
        Just("=sid".to_string()),
        Just(";;".to_string()),
        ".{0,12}",
    ];
    prop_oneof![
        3 => prop::collection::vec(pair, 0..6).prop_map(|p| p.join("; ")),
        1 => any::<String>(),
        1 => "[;= a-z\"\\\\%]{0,64}",
        1 => Just(format!("sid={}", "a".repeat(100_000))),
    ]
}

/// JSON-ish text.
fn json_texts() -> impl Strategy<Value = String> {
    prop_oneof![
        // JSON's alphabet, shuffled.
        4 => r#"[\[\]{}",:0-9a-zE.+\- \\u]{0,48}"#,
        2 => any::<String>(),
        // Real JSON values, sometimes cut short.
        3 => (cbor_value_tree(), any::<prop::sample::Index>(), any::<bool>()).prop_map(
            |(v, at, cut)| {
                let text = match serde_json::to_value(&v) {
                    Ok(j) => j.to_string(),
                    Err(_) => "null".into(),
                };
                if cut {
                    // Cut at a char boundary at or before a random byte.
                    let mut i = at.index(text.len() + 1);
                    while !text.is_char_boundary(i) {
                        i -= 1;
                    }
                    text[..i].to_string()
                } else {
                    text
                }
            }
        ),
        2 => prop::sample::select(vec![
            "1e999999".to_string(),
            "-1e999999".into(),
            "-0".into(),
            "18446744073709551616".into(),
            "-9223372036854775809".into(),
            "1".repeat(400),
            format!("0.{}1", "0".repeat(400)),
            r#""\ud800""#.into(),
            r#""\udc00\ud800""#.into(),
            r#"{"a":1,"a":2}"#.into(),
            "[".repeat(127) + &"]".repeat(127),
            "[".repeat(128) + &"]".repeat(128),
            "[".repeat(5000) + &"]".repeat(5000),
            "{\"a\":".repeat(200) + "1" + &"}".repeat(200),
            "\u{feff}1".into(),
            "1\u{0}".into(),
            " \t\r\n1\n".into(),
            "NaN".into(),
            "Infinity".into(),
            "".into(),
        ]),
    ]
}

fn path_segment() -> impl Strategy<Value = PathSegment> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "s", "m", ""]).prop_map(|k| PathSegment::Key(k.into())),
        1 => ".{0,6}".prop_map(PathSegment::Key),
        3 => (0u32..4).prop_map(PathSegment::Index),
        1 => prop::sample::select(vec![u32::MAX, u32::MAX - 1, 1 << 31, 1 << 20])
            .prop_map(PathSegment::Index),
    ]
}

fn paths() -> impl Strategy<Value = Vec<PathSegment>> {
    prop_oneof![
        8 => prop::collection::vec(path_segment(), 0..8),
        1 => (250usize..300, prop::bool::ANY).prop_map(|(n, index)| {
            (0..n)
                .map(|i| {
                    if index && i % 2 == 1 {
                        PathSegment::Index(0)
                    } else {
                        PathSegment::Key("d".into())
                    }
                })
                .collect()
        }),
    ]
}

/// What the component stores under `key` after `set-in(path, value)`.
fn lookup<'v>(root: &'v ciborium::Value, path: &[PathSegment]) -> Option<&'v ciborium::Value> {
    use ciborium::Value as V;
    let mut node = root;
    for seg in path {
        node = match (node, seg) {
            (V::Map(entries), PathSegment::Key(k)) => {
                &entries
                    .iter()
                    .find(|(key, _)| matches!(key, V::Text(t) if t == k))?
                    .1
            }
            (V::Array(items), PathSegment::Index(i)) => items.get(*i as usize)?,
            _ => return None,
        };
    }
    Some(node)
}

// ---------------------------------------------------------------------------
// The fuzz tests.
// ---------------------------------------------------------------------------

/// Random bytes as CBOR values, through `set`, `append` and `set-in`.
#[test]
fn random_bytes_as_cbor_values() {
    fuzz("cbor values", 3000, cbor_bytes(), |t, bytes| {
        let decoded = host_decode(bytes);
        let shallow = decoded.as_ref().is_some_and(|v| depth(v) <= 200);

        let set = t.sess("set", |s| s.set("v", bytes))?;
        match &set {
            Ok(()) => {
                if decoded.is_none() {
                    return Err(format!(
                        "set accepted bytes the host cannot decode: {bytes:02x?}"
                    ));
                }
                let got = t.sess("get", |s| s.get("v"))?;
                if got != Ok(Some(bytes.clone())) {
                    return Err(format!("get after set: {got:?}"));
                }
                let want = expected_json(decoded.as_ref().unwrap());
                match (t.sess("get-json", |s| s.get_json("v"))?, want) {
                    (Ok(Some(text)), Some(want)) if text == want => {}
                    (Err(Error::NotJson(_)), None) => {}
                    (got, want) => return Err(format!("get-json: {got:?}, want {want:?}")),
                }
            }
            Err(Error::InvalidValue(_)) => {
                // A decodable, not too deep item must be accepted. (CBOR's
                // simple values, which the host's decoder cannot represent
                // either, are covered by bug_well_formed_simple_values_are_rejected.)
                if shallow {
                    return Err(format!("set rejected a decodable item: {bytes:02x?}"));
                }
            }
            Err(e) => return Err(format!("set: {e:?}")),
        }

        let append = t.sess("append", |s| s.append("list", bytes))?;
        match &append {
            Ok(n) if *n >= 1 && set.is_ok() => {}
            // One level deeper (inside the list) may cross the depth limit.
            Err(Error::InvalidValue(_)) if set.is_err() || !shallow => {}
            _ => return Err(format!("append: {append:?} where set gave {set:?}")),
        }
        let path = [PathSegment::Key("m".into()), PathSegment::Key("k".into())];
        let set_in = t.sess("set-in", |s| s.set_in(SEED_KEY, &path, bytes))?;
        match (&set, &set_in) {
            (Ok(()), Ok(())) | (Err(_), Err(Error::InvalidValue(_))) => {}
            (Ok(()), Err(Error::InvalidValue(_))) if !shallow => {}
            _ => return Err(format!("set-in: {set_in:?} where set gave {set:?}")),
        }
        // Keep the list from growing without bound.
        if t.uses % 20 == 0 {
            t.sess("remove", |s| s.remove("list"))?
                .map_err(|e| format!("remove: {e:?}"))?;
        }
        Ok(())
    });
}

/// Random strings as session ids, to `load`, `load-or-create` and
/// `destroy-id`.
#[test]
fn random_strings_as_ids() {
    fuzz("ids", 5000, id_strings(), |t, id| {
        let loaded = t.store("load", |st| st.load(id))?;
        if !matches!(loaded, Ok(None)) {
            return Err(format!("load({id:?}): {loaded:?}"));
        }
        let destroyed = t.store("destroy-id", |st| st.destroy_id(id))?;
        let want = if is_canonical_v4(id) {
            Ok(false)
        } else {
            Err(Error::InvalidId)
        };
        if destroyed != want {
            return Err(format!("destroy-id({id:?}): {destroyed:?}, want {want:?}"));
        }
        let s = t
            .store("load-or-create", |st| st.load_or_create(Some(id)))?
            .map_err(|e| format!("load-or-create({id:?}): {e:?}"))?;
        let new_id = t.req("id", |r| r.session(&s).id())?;
        let is_new = t.req("is-new", |r| r.session(&s).is_new())?;
        t.req("drop", |r| r.drop_session(s))?;
        if !is_new || &new_id == id || !is_canonical_v4(&new_id) {
            return Err(format!(
                "load-or-create({id:?}) gave {new_id:?}, is-new {is_new}"
            ));
        }
        Ok(())
    });
}

/// Random `Cookie` headers to `cookie-value-from-header`, and whatever comes
/// out of it to `load-or-create`.
#[test]
fn random_cookie_headers() {
    fuzz("cookie headers", 5000, cookie_headers(), |t, header| {
        let value = t.store("cookie-value-from-header", |st| {
            st.cookie_value_from_header(header)
        })?;
        if let Some(v) = &value {
            if !header.contains(v.as_str()) {
                return Err(format!("{header:?} gave {v:?}, which it does not contain"));
            }
        }
        let s = t
            .store("load-or-create", |st| st.load_or_create(value.as_deref()))?
            .map_err(|e| format!("load-or-create({value:?}): {e:?}"))?;
        t.req("drop", |r| r.drop_session(s))?;
        Ok(())
    });
}

/// JSON-ish text to `set-json`, `append-json` and `set-in-json`, checked
/// against the host's own JSON parser.
#[test]
fn random_json_text() {
    fuzz("json text", 3000, json_texts(), |t, text| {
        let host: Option<serde_json::Value> = serde_json::from_str(text).ok();
        let set = t.sess("set-json", |s| s.set_json("j", text))?;
        match (&set, &host) {
            (Ok(()), Some(want)) => {
                // The same text serde_json itself makes of what it parsed.
                let want = serde_json::to_string(want).unwrap();
                let got = t.sess("get-json", |s| s.get_json("j"))?;
                if got.as_ref() != Ok(&Some(want.clone())) {
                    return Err(format!(
                        "set-json({text:?}) read back as {got:?}, want {want}"
                    ));
                }
            }
            (Err(Error::InvalidValue(_)), None) => {}
            _ => {
                return Err(format!(
                    "set-json({text:?}): {set:?}, but the host parses it as {host:?}"
                ))
            }
        }
        let appended = t.sess("append-json", |s| s.append_json("jl", text))?;
        match (&appended, &host) {
            (Ok(_), Some(_)) | (Err(Error::InvalidValue(_)), None) => {}
            _ => return Err(format!("append-json({text:?}): {appended:?}")),
        }
        let path = [PathSegment::Key("m".into()), PathSegment::Key("j".into())];
        let set_in = t.sess("set-in-json", |s| s.set_in_json(SEED_KEY, &path, text))?;
        match (&set_in, &host) {
            (Ok(()), Some(_)) | (Err(Error::InvalidValue(_)), None) => {}
            _ => return Err(format!("set-in-json({text:?}): {set_in:?}")),
        }
        if t.uses % 20 == 0 {
            t.sess("remove", |s| s.remove("jl"))?
                .map_err(|e| format!("remove: {e:?}"))?;
        }
        Ok(())
    });
}

/// Random paths, deep ones and huge indices, to `set-in` and `remove-in`.
#[test]
fn random_paths() {
    let seed: ciborium::Value = serde_json::from_str(SEED_JSON).unwrap();
    fuzz("paths", 1000, paths(), |t, path| {
        // A fresh copy of the seed each time, so paths meet a known value.
        t.sess("set-json", |s| s.set_json(SEED_KEY, SEED_JSON))?
            .map_err(|e| format!("reseeding: {e:?}"))?;
        let set_in = t.sess("set-in-json", |s| s.set_in_json(SEED_KEY, path, "7"))?;
        let stored = match t.sess("get", |s| s.get(SEED_KEY))? {
            Ok(Some(b)) => host_decode(&b).ok_or("the stored value does not decode")?,
            other => return Err(format!("get after set-in: {other:?}")),
        };
        match &set_in {
            Ok(()) => {
                if path.is_empty() {
                    return Err("set-in with an empty path succeeded".into());
                }
                let at = lookup(&stored, path);
                if at != Some(&ciborium::Value::Integer(7.into())) {
                    return Err(format!("after set-in the path holds {at:?}"));
                }
            }
            Err(Error::InvalidPath(_) | Error::InvalidValue(_)) => {
                if stored != seed {
                    return Err(format!("a failed set-in changed the value: {stored:?}"));
                }
            }
            Err(e) => return Err(format!("set-in-json: {e:?}")),
        }

        let removed = t.sess("remove-in", |s| s.remove_in(SEED_KEY, path))?;
        match (&removed, &set_in) {
            // What set-in just wrote, remove-in finds.
            (Ok(true), Ok(())) => {}
            (Ok(_) | Err(Error::InvalidPath(_)), Err(_)) => {}
            _ => {
                return Err(format!(
                    "remove-in: {removed:?} after set-in gave {set_in:?}"
                ))
            }
        }
        // And on a key that does not exist.
        let missing = t.sess("remove-in", |s| s.remove_in("nothing", path))?;
        if !matches!(missing, Ok(false) | Err(Error::InvalidPath(_))) {
            return Err(format!("remove-in on a missing key: {missing:?}"));
        }
        Ok(())
    });
}

/// Keys: long, multi-byte, with NUL, empty.
#[test]
fn hostile_keys() {
    let keys = prop_oneof![
        (0usize..300).prop_map(|n| "k".repeat(n)),
        (120usize..140).prop_map(|n| "é".repeat(n)),
        prop::sample::select(vec![1000usize, 65_536, 1 << 20]).prop_map(|n| "k".repeat(n)),
        ".{0,40}",
        "[a\\x00]{1,4}",
    ];
    fuzz("keys", 1000, keys, |t, key| {
        let valid = !key.is_empty() && !key.contains('\0');
        let fits = key.len() <= 256;
        let set = t.sess("set-json", |s| s.set_json(key, "1"))?;
        let ok = match &set {
            Ok(()) => valid && fits,
            Err(Error::InvalidKey(_)) => !valid,
            Err(Error::TooLarge(x)) => {
                valid
                    && !fits
                    && x.limit == LimitKind::KeyBytes
                    && x.max == 256
                    && x.actual == key.len() as u64
            }
            _ => false,
        };
        if !ok {
            return Err(format!("set-json(key of {} bytes): {set:?}", key.len()));
        }
        let got = t.sess("get-json", |s| s.get_json(key))?;
        let want = set.is_ok().then(|| "1".to_string());
        match &got {
            Ok(v) if *v == want => {}
            Err(Error::InvalidKey(_)) if !valid => {}
            Err(Error::TooLarge(_)) if valid && !fits => {}
            _ => return Err(format!("get-json(key of {} bytes): {got:?}", key.len())),
        }
        let removed = t.sess("remove", |s| s.remove(key))?;
        match &removed {
            Ok(r) if *r == set.is_ok() => {}
            Err(Error::InvalidKey(_)) if !valid => {}
            Err(Error::TooLarge(_)) if valid && !fits => {}
            _ => return Err(format!("remove(key of {} bytes): {removed:?}", key.len())),
        }
        Ok(())
    });
}

/// Random `config`s to `store.open`: it answers a store or `config`, and a
/// store it opens works: a session written through it loads again, by the
/// cookie value it hands out, in the next request.
#[test]
fn random_configs() {
    // Each field is usually left out (its default) and otherwise takes a
    // valid, edge or invalid value, so that most configs open and the checks
    // after `open` run, while every refusal path is still reached.
    let opt = |values: Vec<u64>| prop::option::weighted(0.4, prop::sample::select(values));
    let text = |fixed: Vec<&'static str>| {
        prop::option::weighted(
            0.3,
            prop_oneof![
                3 => prop::sample::select(fixed).prop_map(String::from),
                1 => ".{0,8}",
            ],
        )
    };
    let limits = (
        opt(vec![0, 1, 2, 256, u32::MAX.into()]),
        opt(vec![0, 1, 16, 1 << 20, u32::MAX.into()]),
        opt(vec![0, 1, 3, 1 << 24, u64::MAX]),
        opt(vec![0, 1, 1024, u32::MAX.into()]),
    );
    // No timeouts short enough to expire during the test.
    let long = vec![0, 3600, 86_400, 1 << 31, 1 << 53, u64::MAX / 1000, u64::MAX];
    let timing = (
        opt(long.clone()),
        opt(long),
        opt(vec![0, 60, u64::MAX]),
        opt(vec![0, 5000, i32::MAX as u64, u32::MAX.into()]),
    );
    let key = || {
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 32..48),
            1 => prop::collection::vec(any::<u8>(), 0..32),
        ]
    };
    let secrets = (
        prop::option::weighted(0.3, prop::collection::vec(any::<u8>(), 0..40)),
        prop::option::weighted(0.3, prop::collection::vec(key(), 0..3)),
    );
    let cookie = (
        text(vec![
            "sid",
            "app_sid",
            "__Host-sid",
            "__Secure-sid",
            "",
            "a b",
            "a;b",
            "é",
        ]),
        text(vec!["/", "/app", "", "app", "/a;b", "/a b"]),
        text(vec!["example.com", "", "a;b", ".example.com"]),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(vec![
            SameSite::Strict,
            SameSite::Lax,
            SameSite::None,
        ])),
        prop::option::of(any::<bool>()),
    );
    let directory = prop_oneof![
        12 => Just("/sessions".to_string()),
        4 => prop::sample::select(vec![
            "/sessions/", "/sessions//", "/sessions/.", "/sessions/..", "/sessions/../sessions",
            "/", "", ".", "sessions", "/sessions/missing", "/sessions\0x", "/etc",
        ]).prop_map(String::from),
        1 => ".{0,12}",
    ];
    let strategy = (directory, limits, timing, secrets, cookie);

    let executions = Cell::new(0u64);
    let start = Instant::now();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 3000 * scale(),
        failure_persistence: None,
        max_shrink_iters: 500,
        ..ProptestConfig::default()
    });
    let result = runner.run(&strategy, |(directory, limits, timing, secrets, cookie)| {
        executions.set(executions.get() + 1);
        let mut cfg = default_config();
        cfg.directory = directory;
        cfg.max_key_bytes = limits.0.map(|v| v as u32);
        cfg.max_value_bytes = limits.1.map(|v| v as u32);
        cfg.max_session_bytes = limits.2;
        cfg.max_keys = limits.3.map(|v| v as u32);
        cfg.idle_timeout_seconds = timing.0;
        cfg.absolute_timeout_seconds = timing.1;
        cfg.activity_granularity_seconds = timing.2;
        cfg.busy_timeout_ms = timing.3.map(|v| v as u32);
        cfg.file_name_secret = secrets.0;
        cfg.signing_keys = secrets.1;
        cfg.cookie = CookieConfig {
            name: cookie.0,
            path: cookie.1,
            domain: cookie.2,
            secure: cookie.3,
            http_only: cookie.4,
            same_site: cookie.5,
            persistent: cookie.6,
        };
        check_config(cfg).map_err(TestCaseError::fail)
    });
    println!(
        "configs: {} executions in {:.2?} ({} refused by open, {} opened, {} written and \
         reloaded)",
        executions.get(),
        start.elapsed(),
        CONFIGS_REFUSED.load(Ordering::Relaxed),
        CONFIGS_OPENED.load(Ordering::Relaxed),
        CONFIGS_RELOADED.load(Ordering::Relaxed),
    );
    if let Err(e) = result {
        panic!("configs: {e}");
    }
}

/// How far `random_configs` inputs got: refused by `open`, opened, and
/// written and loaded again.
static CONFIGS_REFUSED: AtomicU64 = AtomicU64::new(0);
static CONFIGS_OPENED: AtomicU64 = AtomicU64::new(0);
static CONFIGS_RELOADED: AtomicU64 = AtomicU64::new(0);

fn check_config(cfg: Config) -> Result<(), String> {
    let env = Env::with_config(cfg.clone());
    let mut req = host_test::runtime()
        .request(env.path())
        .map_err(|e| format!("instantiate: {e:?}"))?;
    let store = match req
        .open_store(&cfg)
        .map_err(|e| format!("open trapped: {e:?}"))?
    {
        Ok(store) => store,
        Err(Error::Config(_)) => {
            CONFIGS_REFUSED.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        Err(e) => return Err(format!("open: {e:?}")),
    };
    let trap = |what: &str| {
        let what = what.to_string();
        move |e: anyhow::Error| format!("{what} trapped: {e:?}")
    };
    CONFIGS_OPENED.fetch_add(1, Ordering::Relaxed);
    if TOLERATE_HUGE_BUSY_TIMEOUT_TRAPS
        && cfg.busy_timeout_ms.is_some_and(|ms| ms > i32::MAX as u32)
    {
        // Known bug (see the flag): the first file access would trap.
        req.drop_store(store).map_err(|e| format!("drop: {e:?}"))?;
        return Ok(());
    }
    let s = req.store(&store).create().map_err(trap("create"))?;
    let set = req
        .session(&s)
        .set_json("k", "1")
        .map_err(trap("set-json"))?;
    match set {
        Ok(()) => {}
        Err(Error::TooLarge(_)) => {
            req.drop_session(s).map_err(trap("drop"))?;
            req.drop_store(store).map_err(trap("drop"))?;
            return Ok(());
        }
        Err(e) => return Err(format!("set-json: {e:?}")),
    }
    let id = req.session(&s).id().map_err(trap("id"))?;
    let value = req
        .session(&s)
        .cookie_value()
        .map_err(trap("cookie-value"))?
        .ok_or("no cookie value for a stored session")?;
    let header = req
        .session(&s)
        .set_cookie()
        .map_err(trap("set-cookie"))?
        .ok_or("no set-cookie for a new session")?;
    let name = cfg.cookie.name.clone().unwrap_or_else(|| "sid".into());
    if !header.starts_with(&format!("{name}={value}")) {
        return Err(format!("set-cookie {header:?} for cookie value {value:?}"));
    }
    finish(req, store, s);

    // The next request finds it from the cookie.
    let (mut req, store) = env.request();
    let raw = format!("other=1; {name}={value}");
    let from_header = req
        .store(&store)
        .cookie_value_from_header(&raw)
        .map_err(trap("cookie-value-from-header"))?;
    if from_header.as_deref() != Some(value.as_str()) {
        return Err(format!(
            "cookie-value-from-header({raw:?}): {from_header:?}"
        ));
    }
    let s = req
        .store(&store)
        .load_or_create(Some(&value))
        .map_err(trap("load-or-create"))?
        .map_err(|e| format!("load-or-create: {e:?}"))?;
    let loaded_id = req.session(&s).id().map_err(trap("id"))?;
    let huge = |t: Option<u64>| t.is_some_and(|t| t > i64::MAX as u64 / 1000);
    if loaded_id != id
        && TOLERATE_HUGE_TIMEOUTS_EXPIRE_AT_ONCE
        && (huge(cfg.idle_timeout_seconds) || huge(cfg.absolute_timeout_seconds))
    {
        // Known bug (see the flag); nothing more to check.
        finish(req, store, s);
        return Ok(());
    }
    if loaded_id != id {
        return Err(format!(
            "the session written a moment ago did not load (new id {loaded_id}, \
             is-new {:?})",
            req.session(&s).is_new()
        ));
    }
    CONFIGS_RELOADED.fetch_add(1, Ordering::Relaxed);
    let got = req.session(&s).get_json("k").map_err(trap("get-json"))?;
    if got != Ok(Some("1".into())) {
        return Err(format!("get-json after reload: {got:?}"));
    }
    req.session(&s)
        .destroy()
        .map_err(trap("destroy"))?
        .map_err(|e| format!("destroy: {e:?}"))?;
    finish(req, store, s);
    if !env.session_files().is_empty() {
        return Err(format!("files left: {:?}", env.files()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Single adversarial inputs that cost memory rather than parsing effort.
// ---------------------------------------------------------------------------

fn fresh_session(env: &Env) -> (Request, StoreHandle, SessionHandle) {
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    (req, store, s)
}

/// Declared lengths far beyond the input: a decoder that trusts them would
/// allocate (and trap) before noticing the input is short.
#[test]
fn huge_declared_lengths_are_invalid_values() {
    let env = Env::new();
    let (mut req, store, s) = fresh_session(&env);
    let max = [0xffu8; 8];
    for head in [0x5bu8, 0x7b, 0x9b, 0xbb, 0x5a, 0x7a, 0x9a, 0xba] {
        let mut bytes = vec![head];
        bytes.extend_from_slice(if head & 0x1f == 0x1b { &max } else { &max[..4] });
        let got = req.session(&s).set("k", &bytes).expect("trap");
        assert!(
            matches!(got, Err(Error::InvalidValue(_))),
            "{head:02x}: {got:?}"
        );
        let got = req.session(&s).append("k", &bytes).expect("trap");
        assert!(
            matches!(got, Err(Error::InvalidValue(_))),
            "{head:02x}: {got:?}"
        );
    }
    finish(req, store, s);
}

/// BUG (trap on hostile input): a JSON text whose CBOR form is over
/// `max-value-bytes` (1 MiB by default), made of many tiny items. The
/// component parses the whole text into a tree before it checks the size,
/// and the tree costs ~20 times the text: the guest runs out of memory
/// (64 MiB here) and traps, where the contract says nothing traps on bad
/// input and the answer is `too-large(value-bytes)`.
#[test]
#[ignore = "known: decoding into a ciborium::Value tree needs ~32 B per item; fix by validating/transcoding without a tree"]
fn bug_oversized_json_array_traps_instead_of_too_large() {
    let env = Env::new();
    let (mut req, store, s) = fresh_session(&env);
    let n = 1_200_000;
    let mut text = String::with_capacity(2 * n + 2);
    text.push('[');
    for i in 0..n {
        if i > 0 {
            text.push(',');
        }
        text.push('0');
    }
    text.push(']');
    let got = req.session(&s).set_json("big", &text);
    let got =
        got.unwrap_or_else(|e| panic!("set-json of a {} byte array trapped: {e:?}", text.len()));
    assert!(
        matches!(
            got,
            Err(Error::TooLarge(ref x)) if x.limit == LimitKind::ValueBytes
        ),
        "{got:?}"
    );
    finish(req, store, s);
}

/// BUG (trap on valid input): a value within `max-value-bytes` (1 MiB, the
/// default) made of a million one-byte items. `set` validates it by decoding
/// it into a `ciborium::Value` tree of 32 bytes per item, and the guest runs
/// out of memory (64 MiB here) and traps. Storing it is allowed by the
/// contract; reading it back as JSON, editing it and appending to it must
/// each return, not trap.
#[test]
#[ignore = "known: decoding into a ciborium::Value tree needs ~32 B per item; fix by validating/transcoding without a tree"]
fn bug_largest_allowed_value_of_tiny_items_traps() {
    let env = Env::new();
    let limit = 1usize << 20;
    // 0x9a: an array with a 4-byte length, then that many 0x00 items.
    let n = limit - 5;
    let mut bytes = vec![0x9a];
    bytes.extend_from_slice(&(n as u32).to_be_bytes());
    bytes.resize(limit, 0x00);

    let (mut req, store, s) = fresh_session(&env);
    let set = req.session(&s).set("big", &bytes);
    let set = set.unwrap_or_else(|e| panic!("set of a {limit}-byte array trapped: {e:?}"));
    assert_eq!(set, Ok(()));
    let id = req.session(&s).id().unwrap();
    finish(req, store, s);

    // Each call in a fresh instance, so that one trap does not hide the next.
    type Call = fn(&mut Request, &SessionHandle) -> anyhow::Result<String>;
    let calls: [(&str, Call); 4] = [
        ("get-json", |r, s| {
            Ok(format!(
                "{:?}",
                r.session(s).get_json("big")?.map(|t| t.map(|t| t.len()))
            ))
        }),
        ("append-json", |r, s| {
            Ok(format!("{:?}", r.session(s).append_json("big", "1")?))
        }),
        ("set-in-json", |r, s| {
            Ok(format!(
                "{:?}",
                r.session(s)
                    .set_in_json("big", &[PathSegment::Index(0)], "1")?
            ))
        }),
        ("remove-in", |r, s| {
            Ok(format!(
                "{:?}",
                r.session(s).remove_in("big", &[PathSegment::Index(0)])?
            ))
        }),
    ];
    let mut traps = Vec::new();
    for (what, call) in calls {
        let (mut req, store, s) = env.load(&id).expect("the session is stored");
        match call(&mut req, &s) {
            Ok(_) => finish(req, store, s),
            Err(e) => traps.push(format!("{what}: {e:?}")),
        }
    }
    assert!(traps.is_empty(), "trapped: {traps:#?}");
}

// ---------------------------------------------------------------------------
// COMPONENT BUGS found by the fuzzing above, as strict minimal tests.
// ---------------------------------------------------------------------------

/// BUG: CBOR simple values (major type 7, additional information 0..19 and
/// 24 with a byte >= 32) are well-formed items (RFC 8949 3.3), which the
/// contract's `value` admits ("exactly one well-formed CBOR data item"), but
/// `set` answers `invalid-value` for them: ciborium cannot represent them.
#[test]
#[ignore = "known: ciborium cannot represent unassigned CBOR simple values"]
fn bug_well_formed_simple_values_are_rejected() {
    let env = Env::new();
    let (mut req, store, s) = fresh_session(&env);
    let mut rejected = Vec::new();
    for bytes in [
        vec![0xe0],
        vec![0xf0],
        vec![0xf3],
        vec![0xf8, 0x20],
        vec![0xf8, 0xff],
    ] {
        let got = req.session(&s).set("k", &bytes).unwrap();
        if got.is_err() {
            rejected.push(format!("{bytes:02x?}: {got:?}"));
        }
    }
    finish(req, store, s);
    assert!(
        rejected.is_empty(),
        "well-formed items rejected: {rejected:#?}"
    );
}

/// BUG (silent data loss): `store.open` accepts any timeout, but
/// `expiry::expires_at_ms` computes `secs as i64 * 1000`, which overflows
/// past `i64::MAX / 1000` seconds (and `u64::MAX` turns negative outright):
/// the expiry lands in the past and every session is deleted on its next
/// load. A timeout that large means "practically never"; the contract allows
/// `config` refusing it, but not sessions expiring at once.
#[test]
fn bug_huge_timeouts_expire_sessions_at_once() {
    let mut failures = Vec::new();
    for (field, secs) in [
        ("absolute", u64::MAX / 1000),
        ("absolute", u64::MAX),
        ("idle", u64::MAX / 1000),
        ("idle", u64::MAX),
    ] {
        let mut cfg = default_config();
        match field {
            "idle" => cfg.idle_timeout_seconds = Some(secs),
            _ => cfg.absolute_timeout_seconds = Some(secs),
        }
        let env = Env::with_config(cfg.clone());
        let mut req = host_test::runtime().request(env.path()).unwrap();
        let store = match req.open_store(&cfg).unwrap() {
            Ok(store) => store,
            Err(Error::Config(_)) => continue, // refusing it is fine
            Err(e) => panic!("open: {e:?}"),
        };
        let s = req.store(&store).create().unwrap();
        req.session(&s).set_json("k", "1").unwrap().unwrap();
        let id = req.session(&s).id().unwrap();
        finish(req, store, s);
        if env.load(&id).is_none() {
            failures.push(format!("{field}-timeout-seconds = {secs}"));
        }
    }
    assert!(
        failures.is_empty(),
        "sessions expired at once with: {failures:#?}"
    );
}

/// BUG (trap on a config `store.open` accepts): rusqlite's `busy_timeout`
/// panics ("too big") for more than `i32::MAX` milliseconds, so with
/// `busy-timeout-ms` above that every call that opens a session file traps.
/// `store.open` should refuse it with `config` (or clamp it).
#[test]
fn bug_huge_busy_timeout_traps() {
    let mut cfg = default_config();
    cfg.busy_timeout_ms = Some(u32::MAX);
    let env = Env::with_config(cfg.clone());
    let mut req = host_test::runtime().request(env.path()).unwrap();
    match req.open_store(&cfg).unwrap() {
        Err(Error::Config(_)) => {} // refusing it is fine
        Err(e) => panic!("open: {e:?}"),
        Ok(store) => {
            let s = req.store(&store).create().unwrap();
            let set = req.session(&s).set_json("k", "1");
            assert!(set.is_ok(), "set-json trapped: {:?}", set.unwrap_err());
            finish(req, store, s);
        }
    }
}
