//! The atomic read-modify-write calls, `increment`, `compare-and-swap` and
//! `batch`, through the component boundary: their answers, and that every
//! error leaves the session byte for byte as it was.

use host_test::fixtures::{cbor, finish, Env};
use host_test::Backend;
use sqlite_sessions_host::{
    default_config, BatchError, BatchOp, BatchResult, Error, KeyDelta, KeyPath, KeyPathValue,
    KeyValue, LimitExceeded, LimitKind, PathSegment, SessionRef,
};

/// Every key and its raw bytes: what "unchanged" is checked against.
fn snapshot(sess: &mut SessionRef<'_>) -> Vec<(String, Vec<u8>)> {
    let keys = sess.keys().unwrap().unwrap();
    keys.into_iter()
        .map(|k| {
            let v = sess.get(&k).unwrap().unwrap().unwrap();
            (k, v)
        })
        .collect()
}

fn too_large(limit: LimitKind, max: u64, actual: u64) -> Error {
    Error::TooLarge(LimitExceeded { limit, max, actual })
}

fn set(key: &str, json: &str) -> BatchOp {
    BatchOp::Set(KeyValue {
        key: key.into(),
        value: cbor(json),
    })
}

fn append(key: &str, json: &str) -> BatchOp {
    BatchOp::Append(KeyValue {
        key: key.into(),
        value: cbor(json),
    })
}

fn increment(key: &str, delta: i64) -> BatchOp {
    BatchOp::Increment(KeyDelta {
        key: key.into(),
        delta,
    })
}

fn seg(k: &str) -> PathSegment {
    PathSegment::Key(k.into())
}

fn cbor_int(i: i128) -> Vec<u8> {
    let mut out = Vec::new();
    let v = ciborium::Value::Integer(i.try_into().unwrap());
    ciborium::into_writer(&v, &mut out).unwrap();
    out
}

// ---------------------------------------------------------------------------
// increment
// ---------------------------------------------------------------------------

fn increment_counts_from_zero_and_creates_the_session(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    assert_eq!(sess.cookie_value().unwrap(), None);
    assert_eq!(sess.increment("n", 5).unwrap(), Ok(5));
    // Like `set`, the first increment stores the session under its id.
    assert!(sess.cookie_value().unwrap().is_some());
    assert_eq!(env.session_files().len(), 1);
    assert_eq!(sess.increment("n", -7).unwrap(), Ok(-2));
    assert_eq!(sess.increment("n", 0).unwrap(), Ok(-2));
    // Stored as a plain CBOR integer, readable as JSON.
    assert_eq!(sess.get_json("n").unwrap(), Ok(Some("-2".into())));
    assert_eq!(sess.get("n").unwrap(), Ok(Some(cbor("-2"))));
    // A delta of 0 on a missing key stores 0.
    assert_eq!(sess.increment("zero", 0).unwrap(), Ok(0));
    assert_eq!(sess.get_json("zero").unwrap(), Ok(Some("0".into())));
    // A value set by hand counts on.
    sess.set("m", &cbor("41")).unwrap().unwrap();
    assert_eq!(sess.increment("m", 1).unwrap(), Ok(42));
    let id = sess.id().unwrap();
    finish(req, store, s);
    assert_eq!(env.get_json(&id, "m"), Some("42".into()));
}

fn increment_refuses_what_is_not_an_s64_and_writes_nothing(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    sess.set("text", &cbor(r#""7""#)).unwrap().unwrap();
    sess.set("float", &cbor("1.5")).unwrap().unwrap();
    sess.set("list", &cbor("[1]")).unwrap().unwrap();
    sess.set("big", &cbor_int(u64::MAX as i128))
        .unwrap()
        .unwrap();
    sess.set("bigneg", &cbor_int(i64::MIN as i128 - 1))
        .unwrap()
        .unwrap();
    sess.set("max", &cbor_int(i64::MAX as i128))
        .unwrap()
        .unwrap();
    sess.set("min", &cbor_int(i64::MIN as i128))
        .unwrap()
        .unwrap();
    let before = snapshot(&mut sess);

    for key in ["text", "float", "list", "big", "bigneg"] {
        match sess.increment(key, 1).unwrap() {
            Err(Error::NotAnInteger(msg)) => assert!(!msg.is_empty()),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(sess.increment("max", 1).unwrap(), Err(Error::Overflow));
    assert_eq!(sess.increment("min", -1).unwrap(), Err(Error::Overflow));
    assert_eq!(
        sess.increment("max", i64::MIN).unwrap(),
        Ok(-1),
        "a negative delta brings the maximum back into range"
    );
    sess.set("max", &cbor_int(i64::MAX as i128))
        .unwrap()
        .unwrap();
    assert_eq!(snapshot(&mut sess), before);

    // Bad keys.
    assert!(matches!(
        sess.increment("", 1).unwrap(),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        sess.increment("a\0b", 1).unwrap(),
        Err(Error::InvalidKey(_))
    ));
    assert_eq!(
        sess.increment(&"k".repeat(257), 1).unwrap(),
        Err(too_large(LimitKind::KeyBytes, 256, 257))
    );
    assert_eq!(snapshot(&mut sess), before);
    finish(req, store, s);
}

fn increment_respects_quotas(backend: Backend) {
    let mut config = default_config();
    config.max_keys = Some(1);
    // 23 encodes in one byte, 24 needs two.
    config.max_value_bytes = Some(1);
    let env = Env::with_config_on(backend, config);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    assert_eq!(sess.increment("n", 23).unwrap(), Ok(23));
    assert_eq!(
        sess.increment("n", 1).unwrap(),
        Err(too_large(LimitKind::ValueBytes, 1, 2))
    );
    assert_eq!(
        sess.increment("other", 1).unwrap(),
        Err(too_large(LimitKind::KeysPerSession, 1, 2))
    );
    assert_eq!(snapshot(&mut sess), vec![("n".into(), cbor("23"))]);
    finish(req, store, s);

    // A fresh session whose first increment fails leaves no file.
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    assert_eq!(
        req.session(&s).increment("n", 100).unwrap(),
        Err(too_large(LimitKind::ValueBytes, 1, 2))
    );
    assert_eq!(req.session(&s).cookie_value().unwrap(), None);
    finish(req, store, s);
    assert_eq!(env.session_files().len(), 1);
}

fn increment_on_a_destroyed_session_is_not_found(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("n", "1");
    let (mut req, store, s) = env.load(&id).unwrap();
    let (mut admin, admin_store) = env.request();
    assert_eq!(admin.store(&admin_store).destroy_id(&id).unwrap(), Ok(true));
    assert_eq!(
        req.session(&s).increment("n", 1).unwrap(),
        Err(Error::NotFound)
    );
    assert!(env.session_files().is_empty(), "the write was not revived");
    finish(req, store, s);
}

// ---------------------------------------------------------------------------
// compare-and-swap
// ---------------------------------------------------------------------------

fn compare_and_swap_on_a_fresh_session(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    let one = cbor("1");
    // Nothing is stored, so only "absent" matches, and none of these writes.
    assert_eq!(
        sess.compare_and_swap("k", Some(&one[..]), Some(&one[..]))
            .unwrap(),
        Ok(false)
    );
    assert_eq!(
        sess.compare_and_swap("k", Some(&one[..]), None).unwrap(),
        Ok(false)
    );
    assert_eq!(sess.compare_and_swap("k", None, None).unwrap(), Ok(true));
    assert!(env.session_files().is_empty());
    assert_eq!(sess.cookie_value().unwrap(), None);
    // Absent -> value creates the session.
    assert_eq!(
        sess.compare_and_swap("k", None, Some(&one[..])).unwrap(),
        Ok(true)
    );
    assert_eq!(sess.get("k").unwrap(), Ok(Some(one)));
    assert_eq!(env.session_files().len(), 1);
    finish(req, store, s);
}

fn compare_and_swap_swaps_only_on_byte_equality(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    sess.set("k", &cbor(r#"{"v":1}"#)).unwrap().unwrap();
    sess.set("other", &cbor("true")).unwrap().unwrap();
    let seen = sess.get("k").unwrap().unwrap().unwrap();

    // A stale expectation: no swap, nothing written.
    let before = snapshot(&mut sess);
    assert_eq!(
        sess.compare_and_swap("k", Some(&cbor(r#"{"v":0}"#)[..]), Some(&cbor("2")[..]))
            .unwrap(),
        Ok(false)
    );
    assert_eq!(
        sess.compare_and_swap("k", None, Some(&cbor("2")[..]))
            .unwrap(),
        Ok(false),
        "expected absent, but present"
    );
    // The same number, encoded in two bytes instead of one, is not equal.
    sess.set("n", &cbor("1")).unwrap().unwrap();
    assert_eq!(
        sess.compare_and_swap("n", Some(&[0x18, 0x01][..]), Some(&cbor("2")[..]))
            .unwrap(),
        Ok(false)
    );
    assert_eq!(sess.remove("n").unwrap(), Ok(true));
    assert_eq!(snapshot(&mut sess), before);

    // The bytes `get` returned match.
    assert_eq!(
        sess.compare_and_swap("k", Some(&seen[..]), Some(&cbor(r#"{"v":2}"#)[..]))
            .unwrap(),
        Ok(true)
    );
    assert_eq!(sess.get_json("k").unwrap(), Ok(Some(r#"{"v":2}"#.into())));
    // ... and only once: the old bytes are stale now.
    assert_eq!(
        sess.compare_and_swap("k", Some(&seen[..]), Some(&cbor("3")[..]))
            .unwrap(),
        Ok(false)
    );
    // `new = none` removes the key.
    let now = sess.get("k").unwrap().unwrap().unwrap();
    assert_eq!(
        sess.compare_and_swap("k", Some(&now[..]), None).unwrap(),
        Ok(true)
    );
    assert_eq!(sess.contains("k").unwrap(), Ok(false));
    assert_eq!(sess.keys().unwrap(), Ok(vec!["other".to_string()]));
    finish(req, store, s);
}

fn compare_and_swap_removing_the_last_key_deletes_the_session(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("only", "1");
    let (mut req, store, s) = env.load(&id).unwrap();
    let mut sess = req.session(&s);
    assert_eq!(
        sess.compare_and_swap("only", Some(&cbor("1")[..]), None)
            .unwrap(),
        Ok(true)
    );
    assert!(env.session_files().is_empty());
    assert_eq!(sess.cookie_value().unwrap(), None);
    let header = sess.set_cookie().unwrap().expect("a deletion cookie");
    assert!(header.contains("Max-Age=0"), "{header}");
    // Written again, it starts over under a new id, as after `remove`.
    assert_eq!(
        sess.compare_and_swap("only", None, Some(&cbor("2")[..]))
            .unwrap(),
        Ok(true)
    );
    assert_ne!(sess.id().unwrap(), id);
    finish(req, store, s);
    assert!(env.load(&id).is_none());
}

fn compare_and_swap_errors_change_nothing(backend: Backend) {
    let mut config = default_config();
    config.max_keys = Some(2);
    config.max_value_bytes = Some(8);
    let env = Env::with_config_on(backend, config);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    sess.set("a", &cbor("1")).unwrap().unwrap();
    sess.set("b", &cbor("2")).unwrap().unwrap();
    let before = snapshot(&mut sess);
    let one = cbor("1");

    for bad in [&[][..], &[0x61], &[0x01, 0x01]] {
        assert!(
            matches!(
                sess.compare_and_swap("a", Some(&one[..]), Some(bad))
                    .unwrap(),
                Err(Error::InvalidValue(_))
            ),
            "new = {bad:?}"
        );
        assert!(
            matches!(
                sess.compare_and_swap("a", Some(bad), Some(&one[..]))
                    .unwrap(),
                Err(Error::InvalidValue(_))
            ),
            "expected = {bad:?}"
        );
    }
    let long = cbor(r#""twelve chars""#);
    assert_eq!(
        sess.compare_and_swap("a", Some(&one[..]), Some(&long[..]))
            .unwrap(),
        Err(too_large(LimitKind::ValueBytes, 8, long.len() as u64))
    );
    // Checked even when the comparison would fail.
    assert_eq!(
        sess.compare_and_swap("a", Some(&cbor("9")[..]), Some(&long[..]))
            .unwrap(),
        Err(too_large(LimitKind::ValueBytes, 8, long.len() as u64))
    );
    assert_eq!(
        sess.compare_and_swap("c", None, Some(&one[..])).unwrap(),
        Err(too_large(LimitKind::KeysPerSession, 2, 3))
    );
    assert!(matches!(
        sess.compare_and_swap("", None, Some(&one[..])).unwrap(),
        Err(Error::InvalidKey(_))
    ));
    assert_eq!(snapshot(&mut sess), before);

    sess.destroy().unwrap().unwrap();
    assert_eq!(
        sess.compare_and_swap("a", None, Some(&one[..])).unwrap(),
        Err(Error::NotFound)
    );
    finish(req, store, s);
}

// ---------------------------------------------------------------------------
// batch
// ---------------------------------------------------------------------------

fn batch_applies_every_op_in_order_and_answers_each(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    sess.set("gone", &cbor("0")).unwrap().unwrap();
    let ops = vec![
        set("user", r#"{"name":"ada"}"#),
        BatchOp::SetIn(KeyPathValue {
            key: "user".into(),
            path: vec![seg("prefs"), seg("theme")],
            value: cbor(r#""dark""#),
        }),
        append("flash", r#""hi""#),
        append("flash", r#""again""#),
        increment("visits", 2),
        increment("visits", 3),
        BatchOp::Remove("gone".into()),
        BatchOp::Remove("never".into()),
        BatchOp::RemoveIn(KeyPath {
            key: "user".into(),
            path: vec![seg("name")],
        }),
        BatchOp::RemoveIn(KeyPath {
            key: "user".into(),
            path: vec![seg("nothing")],
        }),
    ];
    assert_eq!(
        sess.batch(&ops).unwrap(),
        Ok(vec![
            BatchResult::Set,
            BatchResult::SetIn,
            BatchResult::Append(1),
            BatchResult::Append(2),
            BatchResult::Increment(2),
            BatchResult::Increment(5),
            BatchResult::Remove(true),
            BatchResult::Remove(false),
            BatchResult::RemoveIn(true),
            BatchResult::RemoveIn(false),
        ])
    );
    let id = sess.id().unwrap();
    finish(req, store, s);
    assert_eq!(
        env.get_json(&id, "user"),
        Some(r#"{"prefs":{"theme":"dark"}}"#.into())
    );
    assert_eq!(env.get_json(&id, "flash"), Some(r#"["hi","again"]"#.into()));
    assert_eq!(env.get_json(&id, "visits"), Some("5".into()));
    assert_eq!(env.get_json(&id, "gone"), None);
}

fn an_empty_batch_does_nothing(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    assert_eq!(req.session(&s).batch(&[]).unwrap(), Ok(vec![]));
    assert!(env.session_files().is_empty());
    req.session(&s).destroy().unwrap().unwrap();
    assert_eq!(
        req.session(&s).batch(&[]).unwrap(),
        Err(BatchError {
            index: None,
            error: Error::NotFound
        })
    );
    finish(req, store, s);
}

/// Each failing batch is tried on a stored session; the error must name the
/// op and leave every byte as it was.
fn a_failing_batch_names_the_op_and_writes_nothing(backend: Backend) {
    let mut config = default_config();
    config.max_keys = Some(3);
    config.max_value_bytes = Some(64);
    let env = Env::with_config_on(backend, config);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    sess.set("text", &cbor(r#""x""#)).unwrap().unwrap();
    sess.set("n", &cbor("1")).unwrap().unwrap();
    let before = snapshot(&mut sess);

    let bad_value = BatchOp::Set(KeyValue {
        key: "v".into(),
        value: vec![0x61],
    });
    type Case = (Vec<BatchOp>, u32, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        // Input errors, found before the lock.
        (vec![increment("n", 1), bad_value], 1, |e| {
            matches!(e, Error::InvalidValue(_))
        }),
        (vec![set("n", "5"), BatchOp::Remove("".into())], 1, |e| {
            matches!(e, Error::InvalidKey(_))
        }),
        (
            vec![
                set("n", "5"),
                set("n", "6"),
                BatchOp::SetIn(KeyPathValue {
                    key: "n".into(),
                    path: vec![],
                    value: cbor("1"),
                }),
            ],
            2,
            |e| matches!(e, Error::InvalidPath(_)),
        ),
        (
            vec![set("big", &format!("\"{}\"", "x".repeat(80)))],
            0,
            |e| matches!(e, Error::TooLarge(x) if x.limit == LimitKind::ValueBytes),
        ),
        // Errors that depend on the stored data roll back the ops before.
        (vec![increment("n", 1), append("text", "1")], 1, |e| {
            matches!(e, Error::InvalidPath(_))
        }),
        (
            vec![BatchOp::Remove("n".into()), increment("text", 1)],
            1,
            |e| matches!(e, Error::NotAnInteger(_)),
        ),
        (
            vec![set("n", &i64::MAX.to_string()), increment("n", 1)],
            1,
            |e| *e == Error::Overflow,
        ),
        (
            vec![
                set("n", "[]"),
                BatchOp::SetIn(KeyPathValue {
                    key: "n".into(),
                    path: vec![PathSegment::Index(5)],
                    value: cbor("1"),
                }),
            ],
            1,
            |e| matches!(e, Error::InvalidPath(_)),
        ),
        // A quota reached part-way: the third key is fine, the fourth is not.
        (
            vec![
                set("c", "1"),
                increment("d", 1),
                BatchOp::Remove("c".into()),
            ],
            1,
            |e| *e == too_large(LimitKind::KeysPerSession, 3, 4),
        ),
        // An edit that grows a value past its limit.
        (
            vec![
                append("list", &format!("\"{}\"", "y".repeat(40))),
                append("list", &format!("\"{}\"", "y".repeat(40))),
            ],
            1,
            |e| matches!(e, Error::TooLarge(x) if x.limit == LimitKind::ValueBytes),
        ),
    ];
    for (i, (ops, index, is_expected)) in cases.into_iter().enumerate() {
        match sess.batch(&ops).unwrap() {
            Err(BatchError {
                index: Some(at),
                error,
            }) => {
                assert_eq!(at, index, "case {i}: {error:?}");
                assert!(is_expected(&error), "case {i}: {error:?}");
            }
            other => panic!("case {i}: {other:?}"),
        }
        assert_eq!(snapshot(&mut sess), before, "case {i} wrote something");
    }
    finish(req, store, s);
}

fn a_batch_that_empties_the_session_deletes_it(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("a", "1");
    let (mut req, store, s) = env.load(&id).unwrap();
    let mut sess = req.session(&s);
    assert_eq!(
        sess.batch(&[
            set("b", "2"),
            BatchOp::Remove("a".into()),
            BatchOp::Remove("b".into())
        ])
        .unwrap(),
        Ok(vec![
            BatchResult::Set,
            BatchResult::Remove(true),
            BatchResult::Remove(true)
        ])
    );
    assert!(env.session_files().is_empty());
    assert!(sess.set_cookie().unwrap().unwrap().contains("Max-Age=0"));
    finish(req, store, s);
    assert!(env.load(&id).is_none());
}

fn a_batch_on_a_fresh_session_leaves_a_file_only_if_it_stores_something(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let mut sess = req.session(&s);
    let id = sess.id().unwrap();
    // Stores and removes: nothing is left, so no file and no cookie.
    assert_eq!(
        sess.batch(&[set("a", "1"), BatchOp::Remove("a".into())])
            .unwrap(),
        Ok(vec![BatchResult::Set, BatchResult::Remove(true)])
    );
    assert!(env.session_files().is_empty());
    assert_eq!(sess.cookie_value().unwrap(), None);
    assert_eq!(sess.set_cookie().unwrap(), None);
    // Fails: no file either.
    assert!(sess
        .batch(&[set("a", "1"), append("a", "2")])
        .unwrap()
        .is_err());
    assert!(env.session_files().is_empty());
    // Stores: the session is created under the id it was given.
    assert_eq!(
        sess.batch(&[increment("n", 1)]).unwrap(),
        Ok(vec![BatchResult::Increment(1)])
    );
    assert_eq!(sess.id().unwrap(), id);
    assert_eq!(env.session_files().len(), 1);
    finish(req, store, s);
    assert_eq!(env.get_json(&id, "n"), Some("1".into()));
}

fn a_batch_on_a_session_destroyed_elsewhere_is_not_found_as_a_whole(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("a", "1");
    let (mut req, store, s) = env.load(&id).unwrap();
    let (mut admin, admin_store) = env.request();
    assert_eq!(admin.store(&admin_store).destroy_id(&id).unwrap(), Ok(true));
    assert_eq!(
        req.session(&s).batch(&[set("a", "2")]).unwrap(),
        Err(BatchError {
            index: None,
            error: Error::NotFound
        })
    );
    assert!(env.session_files().is_empty());
    finish(req, store, s);
}

host_test::on_every_backend!(
    increment_counts_from_zero_and_creates_the_session,
    increment_refuses_what_is_not_an_s64_and_writes_nothing,
    increment_respects_quotas,
    increment_on_a_destroyed_session_is_not_found,
    compare_and_swap_on_a_fresh_session,
    compare_and_swap_swaps_only_on_byte_equality,
    compare_and_swap_removing_the_last_key_deletes_the_session,
    compare_and_swap_errors_change_nothing,
    batch_applies_every_op_in_order_and_answers_each,
    an_empty_batch_does_nothing,
    a_failing_batch_names_the_op_and_writes_nothing,
    a_batch_that_empties_the_session_deletes_it,
    a_batch_on_a_fresh_session_leaves_a_file_only_if_it_stores_something,
    a_batch_on_a_session_destroyed_elsewhere_is_not_found_as_a_whole,
);
