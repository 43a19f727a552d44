//! Every function of the `sessions` interface, through the component boundary.

use host_test::fixtures::{cbor, finish, json_of, Env};
use host_test::Backend;
use sqlite_sessions_host::{default_config, Error, LimitExceeded, LimitKind, PathSegment};

fn key(k: &str) -> PathSegment {
    PathSegment::Key(k.into())
}

fn get_set_remove_contains_keys_len(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    assert!(sess.is_new().unwrap());
    assert_eq!(sess.get("a").unwrap(), Ok(None));
    assert_eq!(sess.len().unwrap(), Ok(0));
    assert_eq!(sess.keys().unwrap(), Ok(vec![]));

    sess.set("b", &cbor(r#"{"x":[1,2]}"#)).unwrap().unwrap();
    sess.set("a", &cbor("1")).unwrap().unwrap();
    sess.set("a", &cbor("2")).unwrap().unwrap(); // replace
    assert_eq!(json_of(&sess.get("a").unwrap().unwrap().unwrap()), "2");
    assert_eq!(
        json_of(&sess.get("b").unwrap().unwrap().unwrap()),
        r#"{"x":[1,2]}"#
    );
    assert_eq!(sess.contains("a").unwrap(), Ok(true));
    assert_eq!(sess.contains("zz").unwrap(), Ok(false));
    assert_eq!(
        sess.keys().unwrap(),
        Ok(vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(sess.len().unwrap(), Ok(2));

    assert_eq!(sess.remove("a").unwrap(), Ok(true));
    assert_eq!(sess.remove("a").unwrap(), Ok(false));
    assert_eq!(sess.len().unwrap(), Ok(1));
    assert_eq!(sess.get("a").unwrap(), Ok(None));
    finish(req, store, s);
}

fn json_round_trips_and_conversions(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    let doc = r#"{"name":"Ada","n":-3,"big":18446744073709551615,"f":1.5,"list":[true,null,"é"]}"#;
    sess.set_json("user", doc).unwrap().unwrap();
    assert_eq!(sess.get_json("user").unwrap(), Ok(Some(doc.to_string())));
    // Stored as CBOR: the raw bytes decode on the host to the same document.
    let raw = sess.get("user").unwrap().unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json_of(&raw)).unwrap(),
        serde_json::from_str::<serde_json::Value>(doc).unwrap()
    );
    // CBOR set, JSON get.
    sess.set("n", &cbor("[1,2,3]")).unwrap().unwrap();
    assert_eq!(sess.get_json("n").unwrap(), Ok(Some("[1,2,3]".into())));
    assert_eq!(sess.get_json("missing").unwrap(), Ok(None));

    // A byte string has no JSON form: a typed error, and the value is intact.
    let mut bytes = Vec::new();
    ciborium::into_writer(&ciborium::Value::Bytes(vec![1, 2, 3]), &mut bytes).unwrap();
    sess.set("bin", &bytes).unwrap().unwrap();
    assert!(matches!(
        sess.get_json("bin").unwrap(),
        Err(Error::NotJson(_))
    ));
    assert_eq!(sess.get("bin").unwrap(), Ok(Some(bytes)));

    // Bad JSON is invalid-value and writes nothing.
    assert!(matches!(
        sess.set_json("user", "{nope").unwrap(),
        Err(Error::InvalidValue(_))
    ));
    assert_eq!(sess.get_json("user").unwrap(), Ok(Some(doc.to_string())));
    finish(req, store, s);
}

fn malformed_cbor_is_rejected_and_nothing_changes(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("k", r#""keep""#);
    let (mut req, store, s) = env.load(&id).unwrap();
    let mut sess = req.session(&s);
    let deep: Vec<u8> = std::iter::repeat_n(0x81u8, 5000).chain([0x00]).collect();
    for bad in [
        vec![],
        vec![0x61],
        vec![0x01, 0x01],
        vec![0xff],
        vec![0x5f, 0x41],
        deep,
    ] {
        let err = sess.set("k", &bad).unwrap();
        assert!(
            matches!(err, Err(Error::InvalidValue(_))),
            "{bad:?} gave {err:?}"
        );
        assert!(matches!(
            sess.append("k2", &bad).unwrap(),
            Err(Error::InvalidValue(_))
        ));
        assert!(matches!(
            sess.set_in("k3", &[key("a")], &bad).unwrap(),
            Err(Error::InvalidValue(_))
        ));
    }
    assert_eq!(sess.get_json("k").unwrap(), Ok(Some(r#""keep""#.into())));
    assert_eq!(sess.keys().unwrap(), Ok(vec!["k".to_string()]));
    finish(req, store, s);
}

fn invalid_keys_are_typed_errors(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    assert!(matches!(
        sess.set("", &cbor("1")).unwrap(),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        sess.set("a\0b", &cbor("1")).unwrap(),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(sess.get("").unwrap(), Err(Error::InvalidKey(_))));
    let long = "k".repeat(257);
    assert_eq!(
        sess.set(&long, &cbor("1")).unwrap(),
        Err(Error::TooLarge(LimitExceeded {
            limit: LimitKind::KeyBytes,
            max: 256,
            actual: 257
        }))
    );
    // No write happened, so no file was created.
    assert!(env.session_files().is_empty());
    finish(req, store, s);
}

fn take_reads_once(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    sess.set_json("keep", "0").unwrap().unwrap();
    sess.set("once", &cbor(r#""hi""#)).unwrap().unwrap();
    assert_eq!(
        sess.take("once").unwrap().unwrap().map(|v| json_of(&v)),
        Some(r#""hi""#.into())
    );
    assert_eq!(sess.take("once").unwrap(), Ok(None));
    sess.set_json("once", "[1]").unwrap().unwrap();
    assert_eq!(sess.take_json("once").unwrap(), Ok(Some("[1]".into())));
    assert_eq!(sess.take_json("once").unwrap(), Ok(None));
    finish(req, store, s);
}

fn set_in_and_remove_in_persist_nested_edits(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with(
        "user",
        r#"{"name":"ada","prefs":{"theme":"light"},"tags":["a","b"]}"#,
    );

    // The seed's session['a']['b'] = 1, done right, in one request...
    let (mut req, store, s) = env.load(&id).unwrap();
    let mut sess = req.session(&s);
    sess.set_in("user", &[key("prefs"), key("theme")], &cbor(r#""dark""#))
        .unwrap()
        .unwrap();
    sess.set_in_json("user", &[key("prefs"), key("font"), key("size")], "14")
        .unwrap()
        .unwrap();
    sess.set_in_json("user", &[key("tags"), PathSegment::Index(2)], r#""c""#)
        .unwrap()
        .unwrap();
    sess.set_in_json("user", &[key("tags"), PathSegment::Index(0)], r#""A""#)
        .unwrap()
        .unwrap();
    sess.set_in_json("fresh", &[key("x")], "1")
        .unwrap()
        .unwrap();
    finish(req, store, s);

    // ...is visible to the next one.
    assert_eq!(
        env.get_json(&id, "user").as_deref(),
        Some(r#"{"name":"ada","prefs":{"theme":"dark","font":{"size":14}},"tags":["A","b","c"]}"#)
    );
    assert_eq!(env.get_json(&id, "fresh").as_deref(), Some(r#"{"x":1}"#));

    let (mut req, store, s) = env.load(&id).unwrap();
    let mut sess = req.session(&s);
    assert_eq!(
        sess.remove_in("user", &[key("tags"), PathSegment::Index(1)])
            .unwrap(),
        Ok(true)
    );
    assert_eq!(
        sess.remove_in("user", &[key("prefs"), key("font")])
            .unwrap(),
        Ok(true)
    );
    assert_eq!(
        sess.remove_in("user", &[key("prefs"), key("nope")])
            .unwrap(),
        Ok(false)
    );
    assert_eq!(
        sess.remove_in("user", &[key("no"), key("where")]).unwrap(),
        Ok(false)
    );
    assert_eq!(sess.remove_in("missing", &[key("x")]).unwrap(), Ok(false));
    finish(req, store, s);
    assert_eq!(
        env.get_json(&id, "user").as_deref(),
        Some(r#"{"name":"ada","prefs":{"theme":"dark"},"tags":["A","c"]}"#)
    );
}

fn bad_paths_are_invalid_path_and_change_nothing(backend: Backend) {
    let env = Env::on(backend);
    let doc = r#"{"name":"ada","tags":["a"]}"#;
    let id = env.session_with("user", doc);
    let (mut req, store, s) = env.load(&id).unwrap();
    let mut sess = req.session(&s);
    let bad_paths: Vec<Vec<PathSegment>> = vec![
        vec![],
        vec![key("name"), key("x")],              // into text
        vec![key("tags"), PathSegment::Index(5)], // past the end
        vec![key("tags"), key("x")],              // key into array
        vec![PathSegment::Index(0)],              // index into map
        vec![key("x"); 300],                      // deeper than the value limit
    ];
    for path in &bad_paths {
        let got = sess.set_in_json("user", path, "1").unwrap();
        assert!(
            matches!(got, Err(Error::InvalidPath(_))),
            "{path:?}: {got:?}"
        );
    }
    assert!(matches!(
        sess.remove_in("user", &[key("name"), key("x")]).unwrap(),
        Err(Error::InvalidPath(_))
    ));
    assert!(matches!(
        sess.remove_in("user", &[]).unwrap(),
        Err(Error::InvalidPath(_))
    ));
    assert_eq!(sess.get_json("user").unwrap(), Ok(Some(doc.into())));
    finish(req, store, s);
}

fn append_builds_flash_lists(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    assert_eq!(sess.append("_flashes", &cbor(r#""saved""#)).unwrap(), Ok(1));
    assert_eq!(
        sess.append_json("_flashes", r#"{"level":"warn"}"#).unwrap(),
        Ok(2)
    );
    sess.set_json("n", "5").unwrap().unwrap();
    assert!(matches!(
        sess.append_json("n", "1").unwrap(),
        Err(Error::InvalidPath(_))
    ));
    assert_eq!(sess.get_json("n").unwrap(), Ok(Some("5".into())));
    let id = sess.id().unwrap();
    finish(req, store, s);
    let (mut req, store, s) = env.load(&id).unwrap();
    assert_eq!(
        req.session(&s).take_json("_flashes").unwrap(),
        Ok(Some(r#"["saved",{"level":"warn"}]"#.into()))
    );
    assert_eq!(req.session(&s).take_json("_flashes").unwrap(), Ok(None));
    finish(req, store, s);
}

fn quotas_are_too_large_and_leave_data_unchanged(backend: Backend) {
    let mut config = default_config();
    config.max_value_bytes = Some(64);
    config.max_keys = Some(3);
    config.max_session_bytes = Some(150);
    config.max_key_bytes = Some(8);
    let env = Env::with_config_on(backend, config);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    sess.set_json("a", r#""x""#).unwrap().unwrap();
    sess.set_json("b", "[1,2]").unwrap().unwrap();

    let big = format!("\"{}\"", "v".repeat(100));
    assert!(matches!(
        sess.set_json("a", &big).unwrap(),
        Err(Error::TooLarge(LimitExceeded {
            limit: LimitKind::ValueBytes,
            max: 64,
            ..
        }))
    ));
    assert!(matches!(
        sess.append_json("b", &big).unwrap(),
        Err(Error::TooLarge(LimitExceeded {
            limit: LimitKind::ValueBytes,
            ..
        }))
    ));
    assert!(matches!(
        sess.set_json("toolongkey", "1").unwrap(),
        Err(Error::TooLarge(LimitExceeded {
            limit: LimitKind::KeyBytes,
            max: 8,
            actual: 10
        }))
    ));
    sess.set_json("c", "3").unwrap().unwrap();
    assert_eq!(
        sess.set_json("d", "4").unwrap(),
        Err(Error::TooLarge(LimitExceeded {
            limit: LimitKind::KeysPerSession,
            max: 3,
            actual: 4
        }))
    );
    // Growing a value through nested edits counts against the session total.
    let sixty = format!("\"{}\"", "s".repeat(56));
    sess.set_json("a", &sixty).unwrap().unwrap();
    sess.set_json("c", &sixty).unwrap().unwrap();
    let got = sess
        .set_in_json("b", &[PathSegment::Index(2)], &sixty)
        .unwrap();
    assert!(
        matches!(
            got,
            Err(Error::TooLarge(LimitExceeded {
                limit: LimitKind::SessionBytes,
                max: 150,
                ..
            }))
        ),
        "{got:?}"
    );
    assert_eq!(sess.get_json("b").unwrap(), Ok(Some("[1,2]".into())));
    assert_eq!(sess.get_json("a").unwrap(), Ok(Some(sixty.clone())));
    assert_eq!(
        sess.keys().unwrap(),
        Ok(vec!["a".into(), "b".into(), "c".into()])
    );
    finish(req, store, s);
}

#[test]
fn open_rejects_bad_config() {
    let env = Env::new();
    let mut req = host_test::runtime().request(env.path()).unwrap();
    let mut bad = Vec::new();
    let mut c = default_config();
    c.directory = "/sessions/does-not-exist".into();
    bad.push(c);
    let mut c = default_config();
    c.directory = "/not-preopened".into();
    bad.push(c);
    let mut c = default_config();
    c.max_keys = Some(0);
    bad.push(c);
    let mut c = default_config();
    c.cookie.name = Some("__Host-sid".into());
    c.cookie.domain = Some("example.com".into());
    bad.push(c);
    let mut c = default_config();
    c.cookie.name = Some("bad name;".into());
    bad.push(c);
    let mut c = default_config();
    c.cookie.secure = Some(false);
    c.cookie.same_site = Some(sqlite_sessions_host::SameSite::None);
    bad.push(c);
    let mut c = default_config();
    c.file_name_secret = Some(vec![]);
    bad.push(c);
    for cfg in bad {
        let got = req.open_store(&cfg).unwrap();
        assert!(matches!(got, Err(Error::Config(_))), "{cfg:?}");
    }
    // A subdirectory of the preopen works.
    std::fs::create_dir(env.path().join("app1")).unwrap();
    let mut c = default_config();
    c.directory = "/sessions/app1/".into();
    let store = req.open_store(&c).unwrap().unwrap();
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    finish(req, store, s);
    assert_eq!(host_test::fixtures::walk(&env.path().join("app1")).len(), 1);
}

fn destroy_id_deletes_by_id(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("k", "1");
    let (mut req, store) = env.request();
    assert_eq!(
        req.store(&store).destroy_id("nonsense").unwrap(),
        Err(Error::InvalidId)
    );
    assert_eq!(req.store(&store).destroy_id(&id).unwrap(), Ok(true));
    assert_eq!(req.store(&store).destroy_id(&id).unwrap(), Ok(false));
    req.drop_store(store).unwrap();
    assert!(env.load(&id).is_none());
    assert!(env.session_files().is_empty());
}

fn cookie_value_from_header_finds_the_configured_cookie(backend: Backend) {
    let mut config = default_config();
    config.cookie.name = Some("app_sid".into());
    let env = Env::with_config_on(backend, config);
    let (mut req, store) = env.request();
    let mut st = req.store(&store);
    assert_eq!(
        st.cookie_value_from_header("a=1; app_sid=xyz; b=2")
            .unwrap(),
        Some("xyz".into())
    );
    assert_eq!(st.cookie_value_from_header("sid=xyz").unwrap(), None);
    assert_eq!(st.cookie_value_from_header("").unwrap(), None);
    req.drop_store(store).unwrap();
}

/// A session file far larger than one host read (wasmtime caps a read at
/// 64 KiB): the VFS reads it whole in several calls, from the size its
/// header records, and every value comes back intact in a fresh instance,
/// before and after a write that rewrites the whole file.
fn a_session_larger_than_one_read_loads_whole(backend: Backend) {
    let env = Env::on(backend);
    let value = |i: usize| format!("\"{}\"", format!("{i:04}").repeat(500));
    let id = {
        let (mut req, store) = env.request();
        let s = req.store(&store).create().unwrap();
        for i in 0..150 {
            req.session(&s)
                .set_json(&format!("k{i:03}"), &value(i))
                .unwrap()
                .unwrap();
        }
        let id = req.session(&s).id().unwrap();
        finish(req, store, s);
        id
    };
    let [file] = &env.session_files()[..] else {
        panic!("one session file expected: {:?}", env.session_files());
    };
    let file_len = env.raw(file).unwrap().len();
    assert!(
        file_len > 4 * 64 * 1024,
        "session file is only {file_len} bytes"
    );
    // Each round reads what the previous round's whole-file rewrite left.
    for round in 0..3 {
        let (mut req, store, s) = env.load(&id).expect("the session loads");
        assert_eq!(req.session(&s).len().unwrap(), Ok(150));
        let first = if round == 0 { 0 } else { 1000 + round - 1 };
        for (key, want) in [(0, first), (75, 75), (149, 149)] {
            assert_eq!(
                req.session(&s).get_json(&format!("k{key:03}")).unwrap(),
                Ok(Some(value(want))),
                "round {round}, key {key}"
            );
        }
        req.session(&s)
            .set_json("k000", &value(1000 + round))
            .unwrap()
            .unwrap();
        finish(req, store, s);
    }
}

host_test::on_every_backend!(
    get_set_remove_contains_keys_len,
    json_round_trips_and_conversions,
    malformed_cbor_is_rejected_and_nothing_changes,
    invalid_keys_are_typed_errors,
    take_reads_once,
    set_in_and_remove_in_persist_nested_edits,
    bad_paths_are_invalid_path_and_change_nothing,
    append_builds_flash_lists,
    quotas_are_too_large_and_leave_data_unchanged,
    destroy_id_deletes_by_id,
    cookie_value_from_header_finds_the_configured_cookie,
    a_session_larger_than_one_read_loads_whole,
);
