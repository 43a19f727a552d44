//! What only the key-value build has, over a real Redis (standalone and
//! cluster): each session is one SQLite image under its hashed key, what a
//! load and a write cost in round trips, no filesystem call at all, the
//! bucket as `config.directory`, a sweep that walks the bucket's key pages
//! resumably within its budget, and a Redis that goes away: typed `storage`
//! errors, never a trap or a wrong answer, and service again once it is back.
//!
//! The promises both builds share run on every backend in the other modules
//! (`on_every_backend!`).

use host_test::fixtures::{finish, session_path, Env, BUCKET};
use host_test::Backend;
use sqlite_sessions_host::{
    default_config, Error, ExpirySettings, FakeClock, RequestOptions, StorageFailure, StorageKind,
};
use std::collections::BTreeSet;
use std::time::Duration;
use test_servers::{RedisCluster, RedisServer};

const T0: u64 = 1_800_000_000;

/// The key is the file name a directory would use (a hash, never the id),
/// the value the very SQLite database a file would hold: the native store
/// reads it from a plain directory.
fn a_session_is_one_sqlite_image_under_its_hashed_key(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("user", r#""ada""#);
    let keys = env.files();
    let dir = tempfile::tempdir().unwrap();
    let expected = session_path(dir.path(), &id);
    let expected = expected.strip_prefix(dir.path()).unwrap();
    assert_eq!(keys, vec![expected.to_path_buf()], "one key per session");
    assert!(!keys[0].to_string_lossy().contains(&id));
    let image = env.raw(&keys[0]).unwrap();
    assert!(
        image.starts_with(b"SQLite format 3\0"),
        "{:?}",
        &image[..16]
    );

    let copy = env.as_directory();
    let native = sqlite_sessions::Store::open(sqlite_sessions::StoreConfig::new(
        copy.path().to_str().unwrap(),
    ))
    .unwrap();
    let mut s = native.load(&id).unwrap().expect("the image is a session");
    assert_eq!(s.get_json("user").unwrap().as_deref(), Some(r#""ada""#));
}

/// A load is one round trip (one `get`), a write two (the compare-and-swap
/// reads, then swaps), a read after the load one (is the image current?);
/// opening the store and the bucket costs none.
fn a_load_is_one_round_trip_and_a_write_two(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("n", "0");
    // Warm: the host's connection pool and the server's script cache.
    for _ in 0..2 {
        let (mut req, store, s) = env.load(&id).unwrap();
        req.session(&s).increment("n", 1).unwrap().unwrap();
        finish(req, store, s);
    }

    let (mut req, store) = env.request();
    let mut last = req.keyvalue_traffic();
    let mut cost = |req: &sqlite_sessions_host::Request, what: &str| {
        let now = req.keyvalue_traffic();
        assert_eq!(now.connects, last.connects, "{what} opened a connection");
        let n = now.round_trips - last.round_trips;
        last = now;
        n
    };
    assert_eq!(cost(&req, "open"), 0, "opening the store");
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    assert_eq!(cost(&req, "load"), 1, "load");
    req.session(&s).get("n").unwrap().unwrap();
    assert_eq!(cost(&req, "get"), 1, "get");
    req.session(&s).increment("n", 1).unwrap().unwrap();
    assert_eq!(cost(&req, "increment"), 2, "increment");
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    assert_eq!(cost(&req, "set"), 2, "set");
    finish(req, store, s);
}

/// The key-value build imports `wasi:filesystem` (SQLite's built-in unix VFS
/// is compiled in, for files that are not sessions) but never calls it.
fn no_filesystem_call_is_made(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("a", "1").unwrap().unwrap();
    req.session(&s).increment("n", 1).unwrap().unwrap();
    req.session(&s).regenerate().unwrap().unwrap();
    let id = req.session(&s).id().unwrap();
    finish(req, store, s);
    let (mut req, store, s) = env.load(&id).unwrap();
    req.session(&s).get("a").unwrap().unwrap();
    req.session(&s).destroy().unwrap().unwrap();
    let p = req.store(&store).sweep(None, 100).unwrap().unwrap();
    assert!(p.cursor.is_none());
    let calls = req.host_calls();
    finish(req, store, s);
    assert!(calls.clocks() > 0, "the counter counts: {calls:?}");
    assert_eq!(calls.filesystem(), 0, "{calls:?}");
    assert!(env.files().is_empty(), "{:?}", env.files());
}

/// `config.directory` names a bucket the host declares; anything else is a
/// `config` error at `store.open`.
fn the_directory_setting_names_a_declared_bucket(backend: Backend) {
    let env = Env::on(backend);
    let mut req = host_test::runtime_kv().request(env.storage()).unwrap();
    for bad in ["", "a/b", "/sessions", "not-declared"] {
        let mut c = env.config.clone();
        c.directory = bad.into();
        match req.open_store(&c).unwrap() {
            Err(Error::Config(m)) => assert!(m.starts_with("directory:"), "{bad:?}: {m}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(req.open_store(&env.config).unwrap().is_ok());
}

/// A sweep slice examines at most its budget of sessions, a pass resumes from
/// any instance with the cursor, spans several `list-keys` pages, deletes
/// exactly the expired sessions, and never touches a key that is not a
/// session's.
fn sweep_walks_the_bucket_page_by_page(backend: Backend) {
    let mut config = default_config();
    config.idle_timeout_seconds = Some(600);
    let env = Env::with_config_on(backend, config);
    let clock = FakeClock::at_unix_secs(T0);
    let clocked = || {
        env.request_with(RequestOptions {
            wall_clock: Some(clock.clone()),
            ..Default::default()
        })
    };
    let (mut expiring, mut kept) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..60 {
        let (mut req, store) = clocked();
        let s = req.store(&store).create().unwrap();
        if i % 2 == 0 {
            req.session(&s)
                .set_expiry(ExpirySettings {
                    idle_timeout_seconds: Some(0),
                    absolute_timeout_seconds: Some(0),
                    persistent_cookie: None,
                })
                .unwrap()
                .unwrap();
        }
        req.session(&s)
            .set_json("i", &i.to_string())
            .unwrap()
            .unwrap();
        let id = req.session(&s).id().unwrap();
        finish(req, store, s);
        if i % 2 == 0 { &mut kept } else { &mut expiring }.insert(id);
    }
    // Keys the store must leave alone, including ones shaped almost like
    // sessions'.
    let strangers = [
        "notes.txt",
        "ab/short.db",
        &format!("zz/{}.db", "0".repeat(64)),
    ];
    for k in strangers {
        env.put_raw(k, b"not a session");
    }
    clock.advance(Duration::from_secs(601));

    let budget = 7;
    let (mut examined, mut deleted, mut slices, mut mid_listing) = (0u32, 0u32, 0u32, false);
    let mut cursor: Option<String> = None;
    loop {
        let (mut req, store) = clocked();
        let p = req
            .store(&store)
            .sweep(cursor.as_deref(), budget)
            .unwrap()
            .unwrap();
        req.drop_store(store).unwrap();
        assert!(p.examined <= budget, "{p:?}");
        slices += 1;
        assert!(slices < 1000, "the pass does not end");
        examined += p.examined;
        deleted += p.deleted;
        // A cursor carrying the store's position in its key listing: the
        // pass is part-way through the bucket's pages.
        mid_listing |= p.cursor.as_deref().is_some_and(|c| c.contains(";+"));
        match p.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // Redis SCAN may hand a key out twice (while its table grows, as other
    // tests fill the shared server); each is judged again, never deleted
    // twice.
    assert!(examined >= 60, "{examined}");
    assert_eq!(deleted, 30);
    assert!(slices >= 60 / budget, "{slices} slices");
    assert!(mid_listing, "the pass never spanned two list-keys pages");
    for id in &expiring {
        assert!(env.load(id).is_none(), "{id} expired but survived");
    }
    for id in &kept {
        assert!(env.get_json(id, "i").is_some(), "{id} was deleted");
    }
    assert_eq!(env.session_files().len(), 30);
    for k in strangers {
        assert_eq!(env.raw(k).as_deref(), Some(&b"not a session"[..]), "{k}");
    }

    // Bad arguments are typed errors.
    let (mut req, store) = clocked();
    for (cursor, budget) in [(Some("kv;x;;"), 1), (Some("00/abc"), 1), (None, 0)] {
        assert!(
            matches!(
                req.store(&store).sweep(cursor, budget).unwrap(),
                Err(Error::InvalidValue(_))
            ),
            "{cursor:?} {budget}"
        );
    }
    req.drop_store(store).unwrap();
}

host_test::on_kv_backends!(
    a_session_is_one_sqlite_image_under_its_hashed_key,
    a_load_is_one_round_trip_and_a_write_two,
    no_filesystem_call_is_made,
    the_directory_setting_names_a_declared_bucket,
    sweep_walks_the_bucket_page_by_page,
);

/// The directory build given buckets, and the key-value build given a
/// directory: each fails to open its store with a `config` error.
#[test]
fn a_build_given_the_other_storage_says_so_at_open() {
    let kv = Env::on(Backend::Redis);
    let dir = Env::new();
    let mut req = host_test::runtime().request(kv.storage()).unwrap();
    assert!(matches!(
        req.open_store(&dir.config).unwrap(),
        Err(Error::Config(_))
    ));
    let mut req = host_test::runtime_kv().request(dir.storage()).unwrap();
    assert!(matches!(
        req.open_store(&kv.config).unwrap(),
        Err(Error::Config(_))
    ));
    assert!(!host_test::runtime().imports_keyvalue());
    assert!(host_test::runtime_kv().imports_keyvalue());
}

/// Every call the application makes about session `id`, whose Redis is
/// unreachable: each answers `storage` (kind `io`), none traps, none answers
/// as if the session were missing. With `whole_bucket`, also the calls that
/// touch the bucket at large (a sweep, a new session's first write).
fn every_call_is_a_storage_error(env: &Env, id: &str, whole_bucket: bool) {
    let storage_error = |what: &str, e: Error| match e {
        Error::Storage(StorageFailure {
            kind: StorageKind::Io,
            message,
        }) => assert!(!message.is_empty(), "{what}"),
        other => panic!("{what}: expected a storage error, got {other:?}"),
    };
    let (mut req, store) = env.request();
    storage_error("load", req.store(&store).load(id).unwrap().unwrap_err());
    storage_error(
        "load-or-create",
        req.store(&store)
            .load_or_create(Some(id))
            .unwrap()
            .unwrap_err(),
    );
    storage_error(
        "destroy-id",
        req.store(&store).destroy_id(id).unwrap().unwrap_err(),
    );
    if !whole_bucket {
        req.drop_store(store).unwrap();
        return;
    }
    storage_error(
        "sweep",
        req.store(&store).sweep(None, 10).unwrap().unwrap_err(),
    );
    let fresh = req.store(&store).create().unwrap();
    storage_error(
        "first write",
        req.session(&fresh).set_json("k", "1").unwrap().unwrap_err(),
    );
    storage_error(
        "increment",
        req.session(&fresh).increment("n", 1).unwrap().unwrap_err(),
    );
    finish(req, store, fresh);
}

/// Stopped, then restarted on the same port (empty: the test servers keep
/// no data), then paused with SIGSTOP and resumed (data intact): typed
/// errors while it is away, service as soon as it is back, and never a
/// wrong answer.
#[test]
fn a_redis_that_goes_away_gives_storage_errors_and_service_resumes() {
    let mut server = RedisServer::start().unwrap();
    let mut config = default_config();
    config.busy_timeout_ms = Some(2_000);
    let env = Env::on_servers(Backend::Redis, vec![server.url()], config);
    let id = env.session_with("n", "1");
    // A request that loaded the session before the server went away.
    let (mut held, held_store, held_s) = env.load(&id).unwrap();

    server.stop();
    every_call_is_a_storage_error(&env, &id, true);
    assert!(matches!(
        held.session(&held_s).get_json("n").unwrap(),
        Err(Error::Storage(_))
    ));
    assert!(matches!(
        held.session(&held_s).set_json("n", "2").unwrap(),
        Err(Error::Storage(_))
    ));

    server.restart().unwrap();
    // Without persistence the restarted server is empty: the session is
    // gone, and says so; new sessions work at once, on new connections.
    assert!(env.load(&id).is_none());
    assert_eq!(
        held.session(&held_s).get_json("n").unwrap(),
        Err(Error::NotFound)
    );
    finish(held, held_store, held_s);
    let id = env.session_with("n", "1");
    assert_eq!(env.get_json(&id, "n").as_deref(), Some("1"));

    // Paused: requests time out (bounded by the host's response timeout) as
    // storage errors; resumed, the data is exactly as it was.
    let pid = server.pid().unwrap().to_string();
    let signal = |sig: &str| {
        assert!(std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let paused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        every_call_is_a_storage_error(&env, &id, true)
    }));
    signal("-CONT");
    paused.unwrap();
    assert_eq!(env.get_json(&id, "n").as_deref(), Some("1"));
    let (mut req, store, s) = env.load(&id).unwrap();
    assert_eq!(req.session(&s).increment("n", 1).unwrap(), Ok(2));
    finish(req, store, s);
    assert_eq!(env.session_files().len(), 1);
}

/// One master of a cluster stopped: sessions whose keys it serves get typed
/// errors; once it is back (and the cluster agrees), they are served again.
#[test]
fn a_stopped_cluster_master_gives_storage_errors_until_it_is_back() {
    let mut cluster = RedisCluster::start().unwrap();
    let env = Env::on_servers(Backend::Cluster, cluster.urls(), default_config());
    // Sessions spread over the masters; keep creating until a few are on
    // master 1 (each lands there with probability about a third).
    let mut master1 = redis::Client::open(cluster.urls()[1].as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut on_master1 = |id: &str| {
        let dir = tempfile::tempdir().unwrap();
        let rel = session_path(dir.path(), id);
        let key = format!(
            "{}{}",
            env.prefix(),
            rel.strip_prefix(dir.path()).unwrap().display()
        );
        match redis::cmd("EXISTS").arg(&key).query::<i64>(&mut master1) {
            Ok(1) => true,
            // Another master's key.
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved) => false,
            other => panic!("EXISTS {key} on master 1: {other:?}"),
        }
    };
    let (mut ids, mut on_victim) = (Vec::new(), Vec::new());
    while on_victim.len() < 2 {
        assert!(ids.len() < 200, "no session landed on master 1");
        let id = env.session_with("n", "1");
        if on_master1(&id) {
            on_victim.push(id.clone());
        }
        ids.push(id);
    }
    let victim_id = on_victim[0].clone();

    cluster.node_mut(1).unwrap().stop();
    every_call_is_a_storage_error(&env, &victim_id, false);

    cluster.node_mut(1).unwrap().restart().unwrap();
    cluster.wait_until_ok().unwrap();
    // The restarted master lost its keys (no persistence): its sessions are
    // gone, the others intact, and new writes succeed again.
    assert!(env.load(&victim_id).is_none());
    for id in ids.iter().filter(|id| !on_victim.contains(id)) {
        assert_eq!(env.get_json(id, "n").as_deref(), Some("1"), "{id}");
    }
    let id = env.session_with("n", "7");
    assert_eq!(env.get_json(&id, "n").as_deref(), Some("7"));
}

/// A bucket is what `config.directory` names, so the name in the tests'
/// config must be the declared one.
#[test]
fn the_tests_open_the_declared_bucket() {
    let env = Env::on(Backend::Redis);
    assert_eq!(env.config.directory, BUCKET);
    let ids: Vec<&str> = env.storage().buckets().unwrap().identifiers().collect();
    assert_eq!(ids, [BUCKET]);
}
