//! The storage core on the key-value backend (the `kv` feature), natively:
//! buckets live in this process's memory with the semantics the component
//! gets from `wasi:keyvalue` (whole values, compare-and-swap, paged
//! listing). What a session promises holds here too: no lost updates under
//! contention (writes that lose a compare-and-swap run again), destroy is
//! final, regenerate moves the data, empty means deleted, expired sessions
//! are swept page by page, and `max-live-sessions` counts across stores.

use sqlite_sessions::{Error, LimitKind, Overrides, Store, StoreConfig};
use std::sync::atomic::{AtomicU64, Ordering};

/// A bucket of its own for each test: the in-memory buckets are shared by
/// the whole process.
fn bucket() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn store(bucket: &str) -> Store {
    Store::open(StoreConfig::new(bucket)).unwrap()
}

/// Every session the bucket holds, as the operator listing sees them.
fn listed(store: &Store) -> Vec<String> {
    let mut files = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_sessions(cursor.as_deref(), 7).unwrap();
        files.extend(page.sessions.into_iter().map(|s| s.file));
        cursor = page.cursor;
        if cursor.is_none() {
            return files;
        }
    }
}

#[test]
fn a_bucket_identifier_is_checked_at_open() {
    for bad in ["", "a/b"] {
        match Store::open(StoreConfig::new(bad)) {
            Err(Error::Config(msg)) => assert!(msg.starts_with("directory:"), "{msg}"),
            other => panic!("{bad:?}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn sessions_round_trip_under_hashed_keys() {
    let bucket = bucket();
    let store = store(&bucket);
    let mut s = store.create();
    s.set_json("user", r#"{"name":"ada"}"#).unwrap();
    let id = s.id();
    drop(s);

    let mut again = store.load(&id).unwrap().expect("stored");
    assert_eq!(
        again.get_json("user").unwrap().as_deref(),
        Some(r#"{"name":"ada"}"#)
    );
    let files = listed(&store);
    assert_eq!(files.len(), 1);
    // The key is the file name a directory would use: a hash, never the id.
    assert!(!files[0].contains(&id), "{files:?}");
    assert_eq!(files[0].len(), 2 + 1 + 64 + 3, "{files:?}");
}

#[test]
fn concurrent_increments_on_one_session_are_never_lost() {
    let bucket = bucket();
    let id = {
        let mut s = store(&bucket).create();
        s.increment("n", 0).unwrap();
        s.id()
    };
    const THREADS: usize = 8;
    const EACH: usize = 200;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let store = store(&bucket);
                let mut s = store.load(&id).unwrap().expect("stored");
                for _ in 0..EACH {
                    s.increment("n", 1).unwrap();
                }
            });
        }
    });
    let mut s = store(&bucket).load(&id).unwrap().unwrap();
    assert_eq!(s.get_json("n").unwrap().as_deref(), Some("1600"));
}

#[test]
fn destroy_is_final_for_a_handle_loaded_earlier() {
    let bucket = bucket();
    let store = store(&bucket);
    let mut s = store.create();
    s.set_json("k", "1").unwrap();
    let id = s.id();
    let mut slow = store.load(&id).unwrap().unwrap();
    s.destroy().unwrap();
    assert_eq!(slow.set_json("k", "2"), Err(Error::NotFound));
    assert_eq!(slow.get_json("k"), Err(Error::NotFound));
    assert!(store.load(&id).unwrap().is_none());
    assert!(listed(&store).is_empty());
}

#[test]
fn regenerate_moves_the_data_and_kills_the_old_id() {
    let bucket = bucket();
    let store = store(&bucket);
    let mut s = store.create();
    s.set_json("k", "\"v\"").unwrap();
    let old = s.id();
    let mut slow = store.load(&old).unwrap().unwrap();
    s.regenerate().unwrap();
    let new = s.id();
    assert_ne!(old, new);
    assert!(store.load(&old).unwrap().is_none());
    assert_eq!(slow.get_json("k"), Err(Error::NotFound));
    let mut moved = store.load(&new).unwrap().unwrap();
    assert_eq!(moved.get_json("k").unwrap().as_deref(), Some("\"v\""));
    assert_eq!(listed(&store).len(), 1);
}

#[test]
fn an_emptied_session_is_deleted() {
    let bucket = bucket();
    let store = store(&bucket);
    let mut s = store.create();
    s.set_json("k", "1").unwrap();
    let id = s.id();
    assert!(s.remove("k").unwrap());
    assert!(store.load(&id).unwrap().is_none());
    assert!(listed(&store).is_empty());
}

#[test]
fn sweep_deletes_expired_sessions_page_by_page() {
    let bucket = bucket();
    let store = store(&bucket);
    // More sessions than one page of the listing holds.
    let (mut expiring, mut kept) = (Vec::new(), Vec::new());
    for i in 0..150 {
        let mut s = store.create();
        s.set_json("i", &i.to_string()).unwrap();
        if i % 3 == 0 {
            s.set_expiry(Overrides {
                idle_timeout_s: Some(1),
                ..Overrides::default()
            })
            .unwrap();
            expiring.push(s.id());
        } else {
            kept.push(s.id());
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (mut examined, mut deleted, mut calls) = (0, 0, 0);
    let mut cursor = None;
    loop {
        let p = store.sweep(cursor.as_deref(), 40).unwrap();
        assert!(p.examined <= 40);
        examined += p.examined;
        deleted += p.deleted;
        calls += 1;
        cursor = p.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(examined, 150);
    assert_eq!(deleted as usize, expiring.len());
    assert!(calls >= 4, "{calls} calls");
    for id in &expiring {
        assert!(store.load(id).unwrap().is_none());
    }
    for id in &kept {
        assert!(store.load(id).unwrap().is_some());
    }
    assert_eq!(listed(&store).len(), kept.len());
}

#[test]
fn a_malformed_cursor_is_invalid_value() {
    let store = store(&bucket());
    for bad in ["", "00/zz", "kv/x/0/"] {
        assert!(
            matches!(store.sweep(Some(bad), 1), Err(Error::InvalidValue(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn max_live_sessions_counts_across_stores() {
    let bucket = bucket();
    let open = || {
        let mut cfg = StoreConfig::new(&bucket);
        cfg.max_live_sessions = Some(3);
        Store::open(cfg).unwrap()
    };
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut s = open().create();
        s.set_json("k", "1").unwrap();
        ids.push(s.id());
    }
    let mut fourth = open().create();
    match fourth.set_json("k", "1") {
        Err(Error::TooLarge {
            limit: LimitKind::LiveSessions,
            max: 3,
            actual: 4,
        }) => {}
        other => panic!("{other:?}"),
    }
    // Writes to existing sessions are never refused for it.
    let mut first = open().load(&ids[0]).unwrap().unwrap();
    first.set_json("more", "2").unwrap();
    first.destroy().unwrap();
    fourth.set_json("k", "1").unwrap();
    // A full sweep pass leaves the count at what it saw.
    let store = open();
    let mut cursor = None;
    loop {
        cursor = store.sweep(cursor.as_deref(), 2).unwrap().cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut fifth = open().create();
    assert!(matches!(
        fifth.set_json("k", "1"),
        Err(Error::TooLarge { actual: 4, .. })
    ));
}

#[test]
fn a_sweep_pass_counts_only_the_sessions_it_leaves() {
    let bucket = bucket();
    let open = || {
        let mut cfg = StoreConfig::new(&bucket);
        cfg.max_live_sessions = Some(3);
        Store::open(cfg).unwrap()
    };
    for i in 0..3 {
        let mut s = open().create();
        s.set_json("k", "1").unwrap();
        if i > 0 {
            s.set_expiry(Overrides {
                idle_timeout_s: Some(1),
                ..Overrides::default()
            })
            .unwrap();
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The pass deletes two expired sessions (each giving its slot back) and
    // then resets the count to the one it left, not to the three it saw.
    let store = open();
    let (mut cursor, mut deleted) = (None, 0);
    loop {
        let p = store.sweep(cursor.as_deref(), 1).unwrap();
        deleted += p.deleted;
        cursor = p.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(deleted, 2);
    for _ in 0..2 {
        open().create().set_json("k", "1").unwrap();
    }
    assert!(matches!(
        open().create().set_json("k", "1"),
        Err(Error::TooLarge {
            limit: LimitKind::LiveSessions,
            actual: 4,
            ..
        })
    ));
}
