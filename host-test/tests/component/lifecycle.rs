//! Sessions across requests: persistence, strict loading, emptying and
//! destroying, the Set-Cookie outcome of each, and expiry on a fake clock.

use host_test::fixtures::{finish, Env};
use host_test::Backend;
use sqlite_sessions_host::{default_config, Error, FakeClock, RequestOptions};
use std::time::{Duration, SystemTime};

fn writes_persist_across_fresh_instances_and_store_instances(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("a", "1");
    // A second request, in a new instance, adds a key; a third sees both.
    let (mut req, store, s) = env.load(&id).unwrap();
    assert!(!req.session(&s).is_new().unwrap());
    req.session(&s).set_json("b", "2").unwrap().unwrap();
    finish(req, store, s);
    assert_eq!(env.get_json(&id, "a").as_deref(), Some("1"));
    assert_eq!(env.get_json(&id, "b").as_deref(), Some("2"));

    // Two stores on the same directory in one instance, with interleaved handles.
    let (mut req, store1) = env.request();
    let store2 = req.open_store(&env.config).unwrap().unwrap();
    let s1 = req.store(&store1).load(&id).unwrap().unwrap().unwrap();
    let s2 = req.store(&store2).load(&id).unwrap().unwrap().unwrap();
    req.session(&s1).set_json("c", "3").unwrap().unwrap();
    req.session(&s2).set_json("d", "4").unwrap().unwrap();
    assert_eq!(
        req.session(&s2).get_json("c").unwrap(),
        Ok(Some("3".into()))
    );
    assert_eq!(
        req.session(&s1).get_json("d").unwrap(),
        Ok(Some("4".into()))
    );
    req.drop_session(s2).unwrap();
    req.drop_store(store2).unwrap();
    finish(req, store1, s1);
    assert_eq!(env.get_json(&id, "d").as_deref(), Some("4"));
}

fn load_is_strict_and_never_creates_files(backend: Backend) {
    let env = Env::on(backend);
    let unknown = uuid_v4();
    let (mut req, store) = env.request();
    assert!(req.store(&store).load(&unknown).unwrap().unwrap().is_none());
    assert!(req
        .store(&store)
        .load("not-an-id")
        .unwrap()
        .unwrap()
        .is_none());
    // load-or-create with an unknown id issues a *different* id (no fixation).
    let s = req
        .store(&store)
        .load_or_create(Some(&unknown))
        .unwrap()
        .unwrap();
    assert!(req.session(&s).is_new().unwrap());
    assert_ne!(req.session(&s).id().unwrap(), unknown);
    // Nothing stored, so no cookie and no file.
    assert_eq!(req.session(&s).cookie_value().unwrap(), None);
    finish(req, store, s);
    assert!(env.files().is_empty(), "{:?}", env.files());
}

fn load_or_create_loads_an_existing_session(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("k", "1");
    let (mut req, store) = env.request();
    let s = req
        .store(&store)
        .load_or_create(Some(&id))
        .unwrap()
        .unwrap();
    assert_eq!(req.session(&s).id().unwrap(), id);
    assert!(!req.session(&s).is_new().unwrap());
    assert_eq!(req.session(&s).get_json("k").unwrap(), Ok(Some("1".into())));
    // Nothing changed: the browser's cookie is already right.
    assert_eq!(req.session(&s).set_cookie().unwrap(), None);
    finish(req, store, s);
}

fn new_sessions_set_the_cookie_only_once_written(backend: Backend) {
    let env = Env::on(backend);
    let clock = FakeClock::at_unix_secs(T0);
    let (mut req, store) = clocked(&env, &clock);
    let s = req.store(&store).load_or_create(None).unwrap().unwrap();
    assert_eq!(req.session(&s).set_cookie().unwrap(), None);
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    let id = req.session(&s).id().unwrap();
    assert_eq!(req.session(&s).cookie_value().unwrap(), Some(id.clone()));
    let header = req.session(&s).set_cookie().unwrap().unwrap();
    assert!(header.starts_with(&format!("sid={id}")), "{header}");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=86400",
        "Expires=",
    ] {
        assert!(header.contains(attr), "{attr} missing in {header}");
    }
    finish(req, store, s);
    assert_eq!(env.session_files().len(), 1);
}

fn emptied_session_deletes_its_file_and_the_cookie(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("only", "1");
    assert_eq!(env.session_files().len(), 1);
    let (mut req, store, s) = env.load(&id).unwrap();
    assert_eq!(req.session(&s).remove("only").unwrap(), Ok(true));
    assert!(env.session_files().is_empty());
    assert_eq!(req.session(&s).cookie_value().unwrap(), None);
    let header = req.session(&s).set_cookie().unwrap().unwrap();
    assert!(
        header.starts_with("sid=;") && header.contains("Max-Age=0"),
        "{header}"
    );
    // Writing again starts a new session under a new id; the old id stays dead.
    req.session(&s).set_json("again", "2").unwrap().unwrap();
    let new_id = req.session(&s).id().unwrap();
    assert_ne!(new_id, id);
    assert!(req
        .session(&s)
        .set_cookie()
        .unwrap()
        .unwrap()
        .starts_with(&format!("sid={new_id}")));
    finish(req, store, s);
    assert!(env.load(&id).is_none());
    assert_eq!(env.get_json(&new_id, "again").as_deref(), Some("2"));
}

fn clear_empties_and_deletes(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("a", "1");
    let (mut req, store, s) = env.load(&id).unwrap();
    req.session(&s).set_json("b", "2").unwrap().unwrap();
    req.session(&s).clear().unwrap().unwrap();
    assert_eq!(req.session(&s).len().unwrap(), Ok(0));
    assert_eq!(req.session(&s).keys().unwrap(), Ok(vec![]));
    assert!(req
        .session(&s)
        .set_cookie()
        .unwrap()
        .unwrap()
        .contains("Max-Age=0"));
    finish(req, store, s);
    assert!(env.load(&id).is_none());
    assert!(env.session_files().is_empty());
}

fn destroy_is_final_for_every_handle(backend: Backend) {
    let env = Env::on(backend);
    let id = env.session_with("user", r#""ada""#);

    // A slow request loads the session before logout...
    let (mut slow, slow_store, slow_s) = env.load(&id).unwrap();
    assert_eq!(
        slow.session(&slow_s).get_json("user").unwrap(),
        Ok(Some(r#""ada""#.into()))
    );

    // ...logout destroys it...
    let (mut req, store, s) = env.load(&id).unwrap();
    req.session(&s).destroy().unwrap().unwrap();
    assert_eq!(req.session(&s).get("user").unwrap(), Err(Error::NotFound));
    assert_eq!(
        req.session(&s).set_json("x", "1").unwrap(),
        Err(Error::NotFound)
    );
    assert_eq!(req.session(&s).destroy().unwrap(), Err(Error::NotFound));
    let header = req.session(&s).set_cookie().unwrap().unwrap();
    assert!(header.contains("Max-Age=0"), "{header}");
    finish(req, store, s);

    // ...and the slow request's late writes fail instead of resurrecting it.
    assert_eq!(
        slow.session(&slow_s)
            .set_json("user", r#""mallory""#)
            .unwrap(),
        Err(Error::NotFound)
    );
    assert_eq!(
        slow.session(&slow_s).append_json("_flashes", "1").unwrap(),
        Err(Error::NotFound)
    );
    assert_eq!(
        slow.session(&slow_s).get_json("user").unwrap(),
        Err(Error::NotFound)
    );
    finish(slow, slow_store, slow_s);
    assert!(env.load(&id).is_none());
    assert!(env.session_files().is_empty());
}

fn destroying_a_never_written_session_is_a_no_op(backend: Backend) {
    let env = Env::on(backend);
    let (mut req, store) = env.request();
    let s = req.store(&store).create().unwrap();
    req.session(&s).destroy().unwrap().unwrap();
    assert_eq!(req.session(&s).set_cookie().unwrap(), None);
    finish(req, store, s);
    assert!(env.files().is_empty());
}

// ---- expiry, on an injected wall clock ----

const T0: u64 = 1_800_000_000;

fn clocked(
    env: &Env,
    clock: &FakeClock,
) -> (
    sqlite_sessions_host::Request,
    sqlite_sessions_host::StoreHandle,
) {
    env.request_with(RequestOptions {
        wall_clock: Some(clock.clone()),
        ..Default::default()
    })
}

fn create_at(env: &Env, clock: &FakeClock) -> String {
    let (mut req, store) = clocked(env, clock);
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    let id = req.session(&s).id().unwrap();
    finish(req, store, s);
    id
}

fn load_at(env: &Env, clock: &FakeClock, id: &str) -> Option<Option<String>> {
    let (mut req, store) = clocked(env, clock);
    let s = req.store(&store).load(id).unwrap().unwrap()?;
    let cookie = req.session(&s).set_cookie().unwrap();
    finish(req, store, s);
    Some(cookie)
}

fn idle_timeout_expires_and_reads_count_as_activity(backend: Backend) {
    let mut config = default_config();
    config.idle_timeout_seconds = Some(600);
    config.activity_granularity_seconds = Some(60);
    let env = Env::with_config_on(backend, config);
    let clock = FakeClock::at_unix_secs(T0);
    let id = create_at(&env, &clock);

    // Each load within the idle window keeps it alive, for far longer than 600 s.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(500));
        let cookie = load_at(&env, &clock, &id).expect("still alive");
        // Activity moved the expiry, so the persistent cookie is refreshed.
        assert!(cookie.unwrap().contains("Max-Age=600"));
    }
    clock.advance(Duration::from_secs(600));
    assert_eq!(load_at(&env, &clock, &id), None);
    // Expired sessions are deleted when found.
    assert!(env.session_files().is_empty());
}

fn activity_is_written_at_most_once_per_granularity(backend: Backend) {
    let mut config = default_config();
    config.idle_timeout_seconds = Some(600);
    config.activity_granularity_seconds = Some(60);
    let env = Env::with_config_on(backend, config);
    let clock = FakeClock::at_unix_secs(T0);
    let id = create_at(&env, &clock);
    let file = env.session_files()[0].clone();
    let before = env.raw(&file).unwrap();
    clock.advance(Duration::from_secs(59));
    // Within the granularity: no write, and no cookie refresh either.
    assert_eq!(load_at(&env, &clock, &id), Some(None));
    assert_eq!(
        env.raw(&file).unwrap(),
        before,
        "a read inside the granularity wrote"
    );
    clock.advance(Duration::from_secs(1));
    assert!(load_at(&env, &clock, &id).unwrap().is_some());
    assert_ne!(
        env.raw(&file).unwrap(),
        before,
        "activity past the granularity was not recorded"
    );
}

fn absolute_timeout_wins_over_activity(backend: Backend) {
    let mut config = default_config();
    config.idle_timeout_seconds = Some(600);
    config.absolute_timeout_seconds = Some(1000);
    let env = Env::with_config_on(backend, config);
    let clock = FakeClock::at_unix_secs(T0);
    let id = create_at(&env, &clock);
    clock.advance(Duration::from_secs(500));
    let cookie = load_at(&env, &clock, &id).unwrap().unwrap();
    // 500 s left until the absolute limit, less than the idle window.
    assert!(cookie.contains("Max-Age=500"), "{cookie}");
    clock.advance(Duration::from_secs(499));
    assert!(load_at(&env, &clock, &id).is_some());
    clock.advance(Duration::from_secs(1));
    assert_eq!(load_at(&env, &clock, &id), None);
}

fn browser_session_cookie_has_no_lifetime_but_server_still_expires(backend: Backend) {
    let mut config = default_config();
    config.cookie.persistent = Some(false);
    config.idle_timeout_seconds = Some(100);
    let env = Env::with_config_on(backend, config);
    let clock = FakeClock::at_unix_secs(T0);
    let (mut req, store) = clocked(&env, &clock);
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("k", "1").unwrap().unwrap();
    let id = req.session(&s).id().unwrap();
    let header = req.session(&s).set_cookie().unwrap().unwrap();
    assert!(
        !header.contains("Max-Age") && !header.contains("Expires"),
        "{header}"
    );
    finish(req, store, s);
    clock.advance(Duration::from_secs(99));
    // Refreshing a browser-session cookie is pointless: no header.
    assert_eq!(load_at(&env, &clock, &id), Some(None));
    clock.advance(Duration::from_secs(100));
    assert_eq!(load_at(&env, &clock, &id), None);
}

fn timeouts_can_be_turned_off(backend: Backend) {
    let mut config = default_config();
    config.idle_timeout_seconds = Some(0);
    config.absolute_timeout_seconds = Some(0);
    let env = Env::with_config_on(backend, config);
    let clock = FakeClock::at_unix_secs(T0);
    let id = create_at(&env, &clock);
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    assert_eq!(load_at(&env, &clock, &id), Some(None));
}

fn uuid_v4() -> String {
    // Any well-formed v4 id the store never issued.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        (nanos as u32),
        (nanos as u64) & 0xffff_ffff_ffff
    )
}

host_test::on_every_backend!(
    writes_persist_across_fresh_instances_and_store_instances,
    load_is_strict_and_never_creates_files,
    load_or_create_loads_an_existing_session,
    new_sessions_set_the_cookie_only_once_written,
    emptied_session_deletes_its_file_and_the_cookie,
    clear_empties_and_deletes,
    destroy_is_final_for_every_handle,
    destroying_a_never_written_session_is_a_no_op,
    idle_timeout_expires_and_reads_count_as_activity,
    activity_is_written_at_most_once_per_granularity,
    absolute_timeout_wins_over_activity,
    browser_session_cookie_has_no_lifetime_but_server_still_expires,
    timeouts_can_be_turned_off,
);
