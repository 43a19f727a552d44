//! Instance reuse (`RuntimeOptions::max_instance_reuse_count`): an instance
//! serves several requests, and every guarantee of a fresh instance per
//! request still holds. Each test first checks that the instance really was
//! reused (`Request::instance_requests`), so none passes by falling back to
//! fresh instances.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use host_test::fixtures::{lock_path, Env};
use sqlite_sessions_host::{
    default_config, Config, Error, FakeClock, Request, RequestOptions, Runtime, RuntimeOptions,
    StoreHandle,
};

/// A runtime whose instances may serve up to `n` requests.
fn reusing(n: u32) -> Runtime {
    host_test::runtime_with(RuntimeOptions {
        max_instance_reuse_count: n,
        ..host_test::runtime_options()
    })
}

/// Shared by the tests that need no particular limit: each test uses its own
/// directory, and an instance only serves requests for the directory it
/// was made for.
fn shared() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| reusing(100_000))
}

fn open(rt: &Runtime, dir: &Path, cfg: &Config, options: RequestOptions) -> (Request, StoreHandle) {
    let mut req = rt.request_with(dir, options).unwrap();
    let store = req.open_store(cfg).unwrap().unwrap();
    (req, store)
}

/// One request that creates a session holding `key = json`; its instance
/// goes back to `rt`.
fn create(rt: &Runtime, dir: &Path, cfg: &Config, options: RequestOptions, key: &str) -> String {
    let (mut req, store) = open(rt, dir, cfg, options);
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json(key, "1").unwrap().unwrap();
    let id = req.session(&s).id().unwrap();
    finish(&mut req, store, s);
    rt.finish(req);
    id
}

fn finish(req: &mut Request, store: StoreHandle, s: sqlite_sessions_host::SessionHandle) {
    req.drop_session(s).unwrap();
    req.drop_store(store).unwrap();
}

#[test]
fn an_instance_serves_at_most_n_requests_and_only_for_its_directory_and_options() {
    let rt = reusing(3);
    let env = Env::new();
    let other = Env::new();
    let mut served = Vec::new();
    for _ in 0..7 {
        let mut req = rt.request(env.path()).unwrap();
        served.push(req.instance_requests());
        let store = req.open_store(&env.config).unwrap().unwrap();
        // The guest looks its directory up once per instance: a reused one
        // really is the same guest, not a fresh one counted as reused.
        let lookups = req.host_calls().get("get-directories");
        assert_eq!(
            lookups,
            u64::from(req.instance_requests() == 1),
            "{served:?}"
        );
        req.drop_store(store).unwrap();
        rt.finish(req);
    }
    assert_eq!(served, [1, 2, 3, 1, 2, 3, 1]);
    assert_eq!(rt.idle_instances(), 1);

    // Another directory, another clock or other options: a fresh instance.
    assert_eq!(rt.request(other.path()).unwrap().instance_requests(), 1);
    let clock = FakeClock::at_unix_secs(1_000_000);
    let with_clock = || RequestOptions {
        wall_clock: Some(clock.clone()),
        ..RequestOptions::default()
    };
    assert_eq!(
        rt.request_with(env.path(), with_clock())
            .unwrap()
            .instance_requests(),
        1
    );
    let read_only = RequestOptions {
        read_only: true,
        ..RequestOptions::default()
    };
    assert_eq!(
        rt.request_with(env.path(), read_only)
            .unwrap()
            .instance_requests(),
        1
    );
    // A clone of one clock is the same clock.
    rt.finish(rt.request_with(env.path(), with_clock()).unwrap());
    assert_eq!(
        rt.request_with(env.path(), with_clock())
            .unwrap()
            .instance_requests(),
        2
    );

    // The default: a fresh instance for every request.
    let fresh = host_test::runtime();
    for _ in 0..3 {
        let req = fresh.request(env.path()).unwrap();
        assert_eq!(req.instance_requests(), 1);
        fresh.finish(req);
    }
    assert_eq!(fresh.idle_instances(), 0);
}

#[test]
fn nothing_of_one_request_is_seen_by_the_next_on_the_same_instance() {
    let rt = shared();
    let env = Env::new();
    let mut first = default_config();
    first.cookie.name = Some("first".into());
    first.max_keys = Some(1);
    let mut second = default_config();
    second.cookie.name = Some("second".into());

    let (mut req, store) = open(rt, env.path(), &first, RequestOptions::default());
    let s = req.store(&store).load_or_create(None).unwrap().unwrap();
    req.session(&s)
        .set_json("user", r#""ada""#)
        .unwrap()
        .unwrap();
    let over = req.session(&s).set_json("two", "2").unwrap();
    assert!(matches!(over, Err(Error::TooLarge(_))), "{over:?}");
    let first_id = req.session(&s).id().unwrap();
    finish(&mut req, store, s);
    rt.finish(req);

    let (mut req, store) = open(rt, env.path(), &second, RequestOptions::default());
    assert_eq!(req.instance_requests(), 2);
    // No cookie: a new session, not the previous request's.
    let s = req.store(&store).load_or_create(None).unwrap().unwrap();
    assert!(req.session(&s).is_new().unwrap());
    let second_id = req.session(&s).id().unwrap();
    assert_ne!(second_id, first_id);
    assert_eq!(req.session(&s).keys().unwrap(), Ok(vec![]));
    // This request's store settings, not the last one's.
    req.session(&s).set_json("a", "1").unwrap().unwrap();
    req.session(&s).set_json("b", "2").unwrap().unwrap();
    let cookie = req.session(&s).set_cookie().unwrap().unwrap();
    assert!(cookie.starts_with("second="), "{cookie}");
    finish(&mut req, store, s);
    rt.finish(req);

    // A request that keeps its resources keeps the instance from reuse.
    let (mut req, store) = open(rt, env.path(), &second, RequestOptions::default());
    assert_eq!(req.instance_requests(), 3);
    let s = req.store(&store).load(&first_id).unwrap().unwrap().unwrap();
    assert_eq!(
        req.session(&s).keys().unwrap(),
        Ok(vec!["user".to_string()])
    );
    rt.finish(req);
    let req = rt.request(env.path()).unwrap();
    assert_eq!(req.instance_requests(), 1);
    // So does one that is dropped instead of finished.
    drop(req);
    assert_eq!(rt.request(env.path()).unwrap().instance_requests(), 1);
}

#[test]
fn expiry_is_honoured_on_a_reused_instance() {
    let rt = shared();
    let env = Env::new();
    let mut cfg = default_config();
    cfg.idle_timeout_seconds = Some(600);
    cfg.activity_granularity_seconds = Some(60);
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let options = || RequestOptions {
        wall_clock: Some(clock.clone()),
        ..RequestOptions::default()
    };
    let id = create(rt, env.path(), &cfg, options(), "user");

    let load = |expect_served: u32| {
        let (mut req, store) = open(rt, env.path(), &cfg, options());
        assert_eq!(req.instance_requests(), expect_served);
        let found = req.store(&store).load(&id).unwrap().unwrap();
        if let Some(s) = found {
            req.drop_session(s).unwrap();
        }
        req.drop_store(store).unwrap();
        rt.finish(req);
        found.is_some()
    };
    clock.advance(Duration::from_secs(500));
    assert!(load(2), "alive inside the idle window");
    // The load above was activity; the window now runs from it.
    clock.advance(Duration::from_secs(500));
    assert!(load(3), "a read renews the window");
    clock.advance(Duration::from_secs(601));
    assert!(!load(4), "expired on the instance that loaded it before");
    assert!(!load(5));
}

#[test]
fn destroy_by_one_request_holds_against_a_slow_request_on_another_instance() {
    let rt = shared();
    let env = Env::new();
    let cfg = &env.config;
    let id = create(rt, env.path(), cfg, RequestOptions::default(), "user");
    // Two instances, both having served a request that loaded the session.
    let (mut a, a_store) = open(rt, env.path(), cfg, RequestOptions::default());
    let (mut b, b_store) = open(rt, env.path(), cfg, RequestOptions::default());
    assert_eq!((a.instance_requests(), b.instance_requests()), (2, 1));
    for (req, store) in [(&mut a, a_store), (&mut b, b_store)] {
        let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
        finish(req, store, s);
    }
    rt.finish(a);
    rt.finish(b);

    // The slow request on one instance holds the session...
    let (mut slow, slow_store) = open(rt, env.path(), cfg, RequestOptions::default());
    let slow_s = slow.store(&slow_store).load(&id).unwrap().unwrap().unwrap();
    // ...while logout on the other destroys it.
    let (mut req, store) = open(rt, env.path(), cfg, RequestOptions::default());
    assert!(slow.instance_requests() >= 2 && req.instance_requests() >= 2);
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    req.session(&s).destroy().unwrap().unwrap();
    finish(&mut req, store, s);
    rt.finish(req);
    assert_eq!(
        slow.session(&slow_s)
            .set_json("user", r#""mallory""#)
            .unwrap(),
        Err(Error::NotFound)
    );
    assert_eq!(
        slow.session(&slow_s).get_json("user").unwrap(),
        Err(Error::NotFound)
    );
    finish(&mut slow, slow_store, slow_s);
    rt.finish(slow);

    // Neither instance, each of which had the session open, brings it back.
    let (mut x, x_store) = open(rt, env.path(), cfg, RequestOptions::default());
    let (mut y, y_store) = open(rt, env.path(), cfg, RequestOptions::default());
    assert!(x.instance_requests() >= 3 && y.instance_requests() >= 3);
    for (req, store) in [(&mut x, x_store), (&mut y, y_store)] {
        assert!(req.store(&store).load(&id).unwrap().unwrap().is_none());
        req.drop_store(store).unwrap();
    }
    assert!(env.session_files().is_empty());
}

#[test]
fn the_lock_and_its_lease_work_as_on_fresh_instances() {
    let rt = shared();
    let env = Env::new();
    let mut cfg = default_config();
    cfg.lock_lease_ms = Some(60_000);
    cfg.busy_timeout_ms = Some(150);
    let id = create(rt, env.path(), &cfg, RequestOptions::default(), "a");

    // Another writer holds the lock (a live one: the lease is long).
    std::fs::File::create_new(lock_path(env.path(), &id)).unwrap();
    let (mut req, store) = open(rt, env.path(), &cfg, RequestOptions::default());
    assert_eq!(req.instance_requests(), 2);
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    let started = Instant::now();
    assert_eq!(
        req.session(&s).set_json("b", "2").unwrap(),
        Err(Error::Busy)
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    finish(&mut req, store, s);
    rt.finish(req);
    std::fs::remove_file(lock_path(env.path(), &id)).unwrap();

    // The next request on the same instance writes, and leaves no lock.
    let (mut req, store) = open(rt, env.path(), &cfg, RequestOptions::default());
    assert_eq!(req.instance_requests(), 3);
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    assert_eq!(req.session(&s).get_json("b").unwrap(), Ok(None));
    req.session(&s).set_json("b", "2").unwrap().unwrap();
    finish(&mut req, store, s);
    rt.finish(req);
    assert!(!lock_path(env.path(), &id).exists());

    // A lock left behind by a writer that died is broken after its lease,
    // and not before, by a reused instance too.
    cfg.lock_lease_ms = Some(200);
    cfg.busy_timeout_ms = Some(5_000);
    std::fs::File::create_new(lock_path(env.path(), &id)).unwrap();
    let (mut req, store) = open(rt, env.path(), &cfg, RequestOptions::default());
    assert_eq!(req.instance_requests(), 4);
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    let started = Instant::now();
    req.session(&s).set_json("c", "3").unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    finish(&mut req, store, s);
    rt.finish(req);
    assert!(!lock_path(env.path(), &id).exists());
    assert_eq!(env.get_json(&id, "c").as_deref(), Some("3"));
}

#[test]
fn memory_stays_bounded_over_two_thousand_requests_on_one_instance() {
    let rt = shared();
    let env = Env::new();
    let id = create(
        rt,
        env.path(),
        &env.config,
        RequestOptions::default(),
        "user",
    );
    let mut peak_early = 0;
    for i in 0..2_000u32 {
        let (mut req, store) = open(rt, env.path(), &env.config, RequestOptions::default());
        assert_eq!(req.instance_requests(), i + 2);
        let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
        assert_eq!(
            req.session(&s).get_json("user").unwrap(),
            Ok(Some("1".into()))
        );
        req.session(&s)
            .set_json("counter", &i.to_string())
            .unwrap()
            .unwrap();
        // A new session too, so that creating and dropping sessions on the
        // instance is covered as well as loading one.
        let new = req.store(&store).create().unwrap();
        req.session(&new).set_json("n", "1").unwrap().unwrap();
        req.session(&new).destroy().unwrap().unwrap();
        req.drop_session(new).unwrap();
        finish(&mut req, store, s);
        if i == 20 {
            peak_early = req.peak_memory_bytes();
        }
        if i == 1_999 {
            // One wasm page of slack: a leak of even a few hundred bytes a
            // request would have grown the memory by many pages.
            let peak = req.peak_memory_bytes();
            assert!(peak <= peak_early + 65_536, "{peak_early} -> {peak}");
        }
        rt.finish(req);
    }
    assert_eq!(env.get_json(&id, "counter").as_deref(), Some("1999"));
    assert_eq!(env.session_files().len(), 1);
}

#[test]
fn a_trapped_instance_is_never_reused() {
    let rt = host_test::runtime_with(RuntimeOptions {
        max_instance_reuse_count: 100,
        consume_fuel: true,
        ..host_test::runtime_options()
    });
    let env = Env::new();
    let req = rt.request(env.path()).unwrap();
    rt.finish(req);
    assert_eq!(rt.idle_instances(), 1);

    // Too little fuel to open the store: the guest traps, holding nothing.
    let starved = RequestOptions {
        fuel: Some(1),
        ..RequestOptions::default()
    };
    let mut req = rt.request_with(env.path(), starved).unwrap();
    assert_eq!(req.instance_requests(), 2);
    assert!(req.open_store(&env.config).is_err());
    assert!(req.has_failed());
    rt.finish(req);
    assert_eq!(rt.idle_instances(), 0);

    // The next request gets a fresh instance, and it works.
    let (mut req, store) = open(&rt, env.path(), &env.config, RequestOptions::default());
    assert_eq!(req.instance_requests(), 1);
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    // The fuel budget is per request: a reused instance starts with a new one.
    finish(&mut req, store, s);
    rt.finish(req);
    let budget = RequestOptions {
        fuel: Some(5_000_000),
        ..RequestOptions::default()
    };
    let mut req = rt.request_with(env.path(), budget).unwrap();
    assert_eq!(req.instance_requests(), 2);
    assert_eq!(req.store_mut().get_fuel().unwrap(), 5_000_000);
}
