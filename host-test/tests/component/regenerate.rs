//! `session.regenerate`, through the component: the data moves to a new id,
//! the old id is dead for every request (including ones that loaded it
//! earlier), the absolute timeout keeps counting from the original creation,
//! the cookie changes, and concurrent requests never see the session under
//! both ids or under neither.

use host_test::fixtures::{finish, Env};
use host_test::Backend;
use sqlite_sessions_host::{default_config, Error, FakeClock, RequestOptions, SessionHandle};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::RwLock;
use std::time::{Duration, UNIX_EPOCH};

const T0: u64 = 1_800_000_000;

fn data_moves_to_the_new_id_and_the_old_id_is_dead(backend: Backend) {
    let env = Env::on(backend);
    let old = env.session_with("user", r#""ada""#);
    {
        let (mut req, store, s) = env.load(&old).unwrap();
        req.session(&s).set_json("cart", "[1,2]").unwrap().unwrap();
        finish(req, store, s);
    }
    // A slower request loaded the session before the login that regenerates it.
    let (mut slow, slow_store, slow_s) = env.load(&old).unwrap();
    assert_eq!(
        slow.session(&slow_s).get_json("user").unwrap(),
        Ok(Some(r#""ada""#.into()))
    );

    let (mut req, store, s) = env.load(&old).unwrap();
    assert_eq!(req.session(&s).cookie_value().unwrap(), Some(old.clone()));
    assert_eq!(req.session(&s).set_cookie().unwrap(), None);
    req.session(&s).regenerate().unwrap().unwrap();
    let new = req.session(&s).id().unwrap();
    assert_ne!(new, old);
    assert_eq!(new.len(), 36);
    // The same handle keeps working, on the new id, with all the data.
    assert_eq!(
        req.session(&s).keys().unwrap(),
        Ok(vec!["cart".to_string(), "user".to_string()])
    );
    req.session(&s)
        .set_json("role", r#""admin""#)
        .unwrap()
        .unwrap();
    // The response must carry the new id.
    assert_eq!(req.session(&s).cookie_value().unwrap(), Some(new.clone()));
    let header = req.session(&s).set_cookie().unwrap().expect("a new cookie");
    let cookie = cookie::Cookie::parse(header.as_str()).unwrap();
    assert_eq!((cookie.name(), cookie.value()), ("sid", new.as_str()));
    assert!(cookie.max_age().is_some_and(|a| a.whole_seconds() > 0));
    finish(req, store, s);

    // Another request finds everything under the new id, nothing under the old.
    assert_eq!(env.get_json(&new, "user").as_deref(), Some(r#""ada""#));
    assert_eq!(env.get_json(&new, "cart").as_deref(), Some("[1,2]"));
    assert_eq!(env.get_json(&new, "role").as_deref(), Some(r#""admin""#));
    assert!(env.load(&old).is_none());
    let (mut req, store) = env.request();
    assert_eq!(req.store(&store).destroy_id(&old).unwrap(), Ok(false));
    let fresh = req
        .store(&store)
        .load_or_create(Some(&old))
        .unwrap()
        .unwrap();
    assert!(req.session(&fresh).is_new().unwrap());
    assert_ne!(req.session(&fresh).id().unwrap(), old);
    finish(req, store, fresh);

    // The slower request's handle on the old id is dead for reads and writes,
    // and its late writes land nowhere.
    let mut stale = slow.session(&slow_s);
    assert_eq!(stale.get_json("user").unwrap(), Err(Error::NotFound));
    assert_eq!(
        stale.set_json("user", r#""mallory""#).unwrap(),
        Err(Error::NotFound)
    );
    assert_eq!(stale.append_json("log", "1").unwrap(), Err(Error::NotFound));
    assert_eq!(stale.regenerate().unwrap(), Err(Error::NotFound));
    finish(slow, slow_store, slow_s);
    assert!(env.load(&old).is_none());
    assert_eq!(env.get_json(&new, "user").as_deref(), Some(r#""ada""#));
    assert_eq!(env.get_json(&new, "log"), None);
    // The old file is gone: one session, one file.
    assert_eq!(env.session_files().len(), 1, "{:?}", env.files());
}

fn regenerate_keeps_the_creation_time(backend: Backend) {
    let mut config = default_config();
    config.idle_timeout_seconds = Some(600);
    config.absolute_timeout_seconds = Some(1000);
    let env = Env::with_config_on(backend, config);
    let clock = FakeClock::at_unix_secs(T0);
    let clocked = || {
        env.request_with(RequestOptions {
            wall_clock: Some(clock.clone()),
            ..Default::default()
        })
    };
    let (mut req, store) = clocked();
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    let old = req.session(&s).id().unwrap();
    finish(req, store, s);

    clock.advance(Duration::from_secs(500));
    let (mut req, store) = clocked();
    let s = req.store(&store).load(&old).unwrap().unwrap().unwrap();
    req.session(&s).regenerate().unwrap().unwrap();
    let new = req.session(&s).id().unwrap();
    // Idle would allow until T0 + 1100; the absolute limit from the original
    // creation (T0 + 1000) still wins.
    assert_eq!(
        req.session(&s).expires_at().unwrap(),
        Ok(Some((T0 + 1000) * 1000))
    );
    let header = req.session(&s).set_cookie().unwrap().unwrap();
    let cookie = cookie::Cookie::parse(header.as_str()).unwrap();
    assert_eq!(cookie.value(), new);
    assert_eq!(cookie.max_age().map(|a| a.whole_seconds()), Some(500));
    finish(req, store, s);

    let alive_at = |secs: u64| {
        clock.set(UNIX_EPOCH + Duration::from_secs(secs));
        let (mut req, store) = clocked();
        let found = req.store(&store).load(&new).unwrap().unwrap();
        let alive = found.is_some();
        if let Some(s) = found {
            req.drop_session(s).unwrap();
        }
        req.drop_store(store).unwrap();
        alive
    };
    assert!(alive_at(T0 + 999));
    assert!(
        !alive_at(T0 + 1000),
        "regenerate extended the absolute timeout"
    );
}

fn regenerate_before_the_first_write_only_picks_a_new_id(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    let first = req.session(&s).id().unwrap();
    req.session(&s).regenerate().unwrap().unwrap();
    let second = req.session(&s).id().unwrap();
    assert_ne!(first, second);
    assert!(env.files().is_empty());
    assert_eq!(req.session(&s).set_cookie().unwrap(), None);
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    assert_eq!(req.session(&s).id().unwrap(), second);
    // Destroyed sessions cannot be regenerated back to life.
    req.session(&s).destroy().unwrap().unwrap();
    assert_eq!(req.session(&s).regenerate().unwrap(), Err(Error::NotFound));
    finish(req, store, s);
    assert!(env.session_files().is_empty());
}

/// The chain of ids one session has had: `ids[k]` is its id after `k`
/// regenerations. An id is appended only after the `regenerate` that made it
/// has returned (that is the earliest any request could know it, as with a
/// browser receiving the new cookie).
struct Chain {
    ids: RwLock<Vec<String>>,
    /// How many regenerations have begun: bumped just before the regenerator
    /// calls `regenerate` on `ids[started - 1]`.
    started: AtomicUsize,
    done: AtomicBool,
}

impl Chain {
    /// The newest published id and its index.
    fn latest(&self) -> (usize, String) {
        let ids = self.ids.read().unwrap();
        (ids.len() - 1, ids[ids.len() - 1].clone())
    }
}

/// What observers saw.
#[derive(Default, Debug)]
struct Seen {
    alive: usize,
    /// The newest published id was already dead: a regeneration from it had
    /// begun and (atomically) replaced it.
    replaced: usize,
    stale_checks: usize,
}

/// Atomicity, as other requests can observe it.
///
/// Nobody but the regenerating request can know the new id before
/// `regenerate` returns, so "never both, never neither" comes down to what
/// requests holding published ids see. With `ids` published only after each
/// `regenerate` returned, and `started` bumped before each began, every
/// observation must satisfy:
///
/// 1. Never neither: loading the newest published id `ids[p]` finds the
///    session, with its data (`gen == p`), unless a regeneration from
///    `ids[p]` had already begun (`started > p`, read after the load). A
///    session that vanished with no regeneration in progress, or a failed
///    regeneration that left no live id, breaks this.
/// 2. Never both: every older id `ids[q]`, `q < p`, loads as none: its
///    regeneration returned before `ids[p]` was published.
/// 3. The old id is dead for earlier handles too: a handle an observer loaded
///    on `ids[q]` gets `not-found` on reads and writes once a later id is
///    published, and its writes do not reach the live session.
///
/// Each observer runs in its own instance, as concurrent requests do, against
/// the same directory; loads, regenerations and writes interleave freely.
fn regenerate_is_atomic_for_concurrent_observers(backend: Backend) {
    const ROUNDS: usize = 40;
    const OBSERVERS: usize = 3;
    let env = Env::on(backend);
    let first = env.session_with("user", r#""ada""#);
    {
        let (mut req, store, s) = env.load(&first).unwrap();
        req.session(&s).set_json("gen", "0").unwrap().unwrap();
        finish(req, store, s);
    }
    let chain = Chain {
        ids: RwLock::new(vec![first]),
        started: AtomicUsize::new(0),
        done: AtomicBool::new(false),
    };

    let seen: Vec<Seen> = std::thread::scope(|scope| {
        let regenerator = scope.spawn(|| {
            for k in 0..ROUNDS {
                let (_, id) = chain.latest();
                let (mut req, store, s) = env.load(&id).expect("the newest id must load");
                chain.started.store(k + 1, SeqCst);
                req.session(&s).regenerate().unwrap().unwrap();
                let new = req.session(&s).id().unwrap();
                req.session(&s)
                    .set_json("gen", &(k + 1).to_string())
                    .unwrap()
                    .unwrap();
                finish(req, store, s);
                chain.ids.write().unwrap().push(new);
            }
            chain.done.store(true, SeqCst);
        });
        let observers: Vec<_> = (0..OBSERVERS)
            .map(|_| scope.spawn(|| observe(&env, &chain)))
            .collect();
        regenerator.join().unwrap();
        observers.into_iter().map(|o| o.join().unwrap()).collect()
    });

    let ids = chain.ids.into_inner().unwrap();
    assert_eq!(ids.len(), ROUNDS + 1);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id was issued twice");
    for old in &ids[..ROUNDS] {
        assert!(env.load(old).is_none(), "{old} is still alive");
    }
    let last = &ids[ROUNDS];
    assert_eq!(env.get_json(last, "user").as_deref(), Some(r#""ada""#));
    assert_eq!(env.get_json(last, "gen"), Some(ROUNDS.to_string()));
    assert_eq!(env.session_files().len(), 1, "{:?}", env.files());
    for s in &seen {
        assert!(s.alive > 0, "an observer never saw the session: {seen:?}");
    }
    let total: usize = seen.iter().map(|s| s.alive + s.replaced).sum();
    assert!(
        total >= ROUNDS,
        "too few observations to mean much: {seen:?}"
    );
    eprintln!("observations: {seen:?}");
}

fn observe(env: &Env, chain: &Chain) -> Seen {
    let mut req = host_test::runtime_for(env.backend())
        .request(env.storage())
        .unwrap();
    let store = req.open_store(&env.config).unwrap().unwrap();
    let mut seen = Seen::default();
    let mut held: Option<(usize, SessionHandle)> = None;
    while !chain.done.load(SeqCst) {
        let (p, id) = chain.latest();
        match req.store(&store).load(&id).unwrap() {
            Ok(Some(s)) => {
                let mut sess = req.session(&s);
                assert_eq!(sess.id().unwrap(), id);
                // Reads after the load: a regeneration that starts in between
                // makes this handle stale, which is `not-found`, never other
                // data.
                let user = sess.get_json("user").unwrap();
                let gen = sess.get_json("gen").unwrap();
                match (user, gen) {
                    (Ok(user), Ok(gen)) => {
                        assert_eq!(user.as_deref(), Some(r#""ada""#), "data of {id}");
                        assert_eq!(gen, Some(p.to_string()), "data of {id}");
                    }
                    (Err(Error::NotFound), _) | (_, Err(Error::NotFound)) => {
                        assert!(chain.started.load(SeqCst) > p, "{id} vanished")
                    }
                    other => panic!("{other:?}"),
                }
                seen.alive += 1;
                if held.is_none() {
                    held = Some((p, s));
                } else {
                    req.drop_session(s).unwrap();
                }
            }
            Ok(None) => {
                assert!(
                    chain.started.load(SeqCst) > p,
                    "neither id alive: {id} (#{p}) is gone but no regeneration from it began"
                );
                seen.replaced += 1;
            }
            Err(e) => panic!("load({id}): {e:?}"),
        }
        // Never both: the previous id died before this one was published.
        if p > 0 {
            let prev = chain.ids.read().unwrap()[p - 1].clone();
            let found = req.store(&store).load(&prev).unwrap().unwrap();
            assert!(found.is_none(), "both {prev} (#{}) and #{p} alive", p - 1);
        }
        // A handle loaded on an id that has since been replaced is dead.
        if let Some((q, h)) = held {
            let (p_now, _) = chain.latest();
            if p_now > q {
                let mut sess = req.session(&h);
                assert_eq!(sess.get_json("user").unwrap(), Err(Error::NotFound));
                assert_eq!(
                    sess.set_json("user", r#""mallory""#).unwrap(),
                    Err(Error::NotFound)
                );
                req.drop_session(h).unwrap();
                held = None;
                seen.stale_checks += 1;
            }
        }
    }
    if let Some((_, h)) = held {
        req.drop_session(h).unwrap();
    }
    req.drop_store(store).unwrap();
    seen
}

host_test::on_every_backend!(
    data_moves_to_the_new_id_and_the_old_id_is_dead,
    regenerate_keeps_the_creation_time,
    regenerate_before_the_first_write_only_picks_a_new_id,
    regenerate_is_atomic_for_concurrent_observers,
);
