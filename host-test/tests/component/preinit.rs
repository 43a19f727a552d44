//! The pre-initialised component (`sqlite_sessions_host::preinit`, the
//! component's `wizer-initialize` export and `template` module), against the
//! same component not pre-initialised: the same answers, less work for the
//! first session an instance opens, and no state shared between instances.

use host_test::fixtures::finish;
use sqlite_sessions_host::{
    default_config, Request, RequestOptions, Runtime, RuntimeOptions, StoreHandle,
};
use std::path::Path;
use std::sync::OnceLock;

/// Fuel-metered runtimes, pre-initialised and not, sharing the compiled
/// component cache of the other tests.
fn runtime(preinitialize: bool) -> &'static Runtime {
    static PRE: OnceLock<Runtime> = OnceLock::new();
    static PLAIN: OnceLock<Runtime> = OnceLock::new();
    let cell = if preinitialize { &PRE } else { &PLAIN };
    cell.get_or_init(|| {
        host_test::runtime_with(RuntimeOptions {
            consume_fuel: true,
            preinitialize,
            ..host_test::runtime_options()
        })
    })
}

/// A metered request's options: enough fuel never to run out.
fn metered() -> RequestOptions {
    RequestOptions {
        fuel: Some(u64::MAX / 2),
        ..Default::default()
    }
}

fn request(rt: &Runtime, dir: &Path) -> (Request, StoreHandle) {
    let mut req = rt.request_with(dir, metered()).unwrap();
    let store = req.open_store(&default_config()).unwrap().unwrap();
    (req, store)
}

fn fuel_left(req: &mut Request) -> u64 {
    req.store_mut().get_fuel().unwrap()
}

/// A session holding `user` and `n`, made by `rt`.
fn seed(rt: &Runtime, dir: &Path) -> String {
    let entries = [("user", r#"{"name":"ada"}"#), ("n", "1")];
    rt.create_session(dir, metered(), &default_config(), &entries)
        .unwrap()
}

/// Fuel burned by a fresh instance's `load`, `get` and `set` of `id`.
fn first_request_fuel(rt: &Runtime, dir: &Path, id: &str) -> [u64; 3] {
    let (mut req, store) = request(rt, dir);
    let t0 = fuel_left(&mut req);
    let s = req.store(&store).load(id).unwrap().unwrap().unwrap();
    let t1 = fuel_left(&mut req);
    let user = req.session(&s).get_json("user").unwrap().unwrap();
    let t2 = fuel_left(&mut req);
    req.session(&s).set_json("n", "2").unwrap().unwrap();
    let t3 = fuel_left(&mut req);
    assert_eq!(user.as_deref(), Some(r#"{"name":"ada"}"#));
    finish(req, store, s);
    [t0 - t1, t1 - t2, t2 - t3]
}

#[test]
fn the_first_load_of_an_instance_skips_sql_compilation() {
    let dir = tempfile::tempdir().unwrap();
    let id = seed(runtime(false), dir.path());
    // Fuel counts wasm instructions, so unlike time it is exact.
    let pre = first_request_fuel(runtime(true), dir.path(), &id);
    let plain = first_request_fuel(runtime(false), dir.path(), &id);
    eprintln!("fuel load/get/set: pre-initialised {pre:?}, not {plain:?}");
    // Without the template, the load reads the schema and compiles its
    // statements; with it, neither.
    assert!(
        pre[0] * 3 < plain[0],
        "load: {} pre-initialised vs {} not",
        pre[0],
        plain[0]
    );
    // The set's statements were compiled into the template too.
    assert!(pre[2] < plain[2], "set: {} vs {}", pre[2], plain[2]);
}

/// Fuel burned by a fresh instance creating a session with one key.
fn create_fuel(rt: &Runtime, dir: &Path) -> u64 {
    let (mut req, store) = request(rt, dir);
    let t0 = fuel_left(&mut req);
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("n", "1").unwrap().unwrap();
    let t1 = fuel_left(&mut req);
    finish(req, store, s);
    t0 - t1
}

#[test]
fn creating_a_session_starts_from_the_prepared_schema() {
    let dir = tempfile::tempdir().unwrap();
    let pre = create_fuel(runtime(true), dir.path());
    let plain = create_fuel(runtime(false), dir.path());
    eprintln!("fuel create + set: pre-initialised {pre}, not {plain}");
    // Without the template the first write creates the table, compiling
    // and running the DDL and every statement; with it, the new file starts
    // as a copy of the prepared schema.
    assert!(
        pre * 2 < plain,
        "create: {pre} pre-initialised vs {plain} not"
    );
}

#[test]
fn pre_initialised_and_plain_instances_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let script = |rt: &Runtime, id: &str| -> Vec<String> {
        let (mut req, store) = request(rt, dir.path());
        let mut out = Vec::new();
        // A missing session first, then the real one (that a miss keeps the
        // template for the next open is `tests/template.rs`'s to show).
        let missing = "0".repeat(id.len());
        out.push(format!("{:?}", req.store(&store).load(&missing).unwrap()));
        let s = req.store(&store).load(id).unwrap().unwrap().unwrap();
        let mut sess = req.session(&s);
        out.push(format!("{:?}", sess.keys().unwrap()));
        out.push(format!("{:?}", sess.get_json("user").unwrap()));
        out.push(format!("{:?}", sess.increment("n", 5).unwrap()));
        out.push(format!("{:?}", sess.remove("n").unwrap()));
        out.push(format!("{:?}", sess.set_json("n", "1").unwrap()));
        out.push(format!("{:?}", sess.len().unwrap()));
        // A second session in the same instance opens the ordinary way.
        let other = req.store(&store).create().unwrap();
        req.session(&other).set_json("k", "[1]").unwrap().unwrap();
        out.push(format!("{:?}", req.session(&other).get_json("k").unwrap()));
        req.session(&other).destroy().unwrap().unwrap();
        req.drop_session(other).unwrap();
        finish(req, store, s);
        out
    };
    let id_pre = seed(runtime(true), dir.path());
    let id_plain = seed(runtime(false), dir.path());
    let pre = script(runtime(true), &id_pre);
    let plain = script(runtime(false), &id_plain);
    assert_eq!(pre, plain);
    assert_eq!(pre[1], r#"Ok(["n", "user"])"#);
    assert_eq!(pre[3], "Ok(6)");
}

#[test]
fn pre_initialised_instances_share_no_random_state() {
    // Session ids come from `wasi:random`, which the snapshot never saw (the
    // pre-initialiser traps on it): two instances of one snapshot, started
    // alike, still draw different ids.
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..2).map(|_| seed(runtime(true), dir.path())).collect();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[0].len(), ids[1].len());
}
