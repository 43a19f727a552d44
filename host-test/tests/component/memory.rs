//! A request's linear memory: the session cycle fits in the component's
//! initial memory (no `memory.grow`, each of which costs the host an
//! mprotect now and a reset later), and loading a large session holds its
//! file image once rather than in doubling buffers.

use host_test::fixtures::Env;
use sqlite_sessions_host::default_config;

#[test]
fn the_session_cycle_never_grows_memory() {
    let env = Env::new();
    let id = env.session_with("user", r#"{"name":"ada","roles":["admin"]}"#);
    let (mut req, store) = env.request();
    let initial = req.memory_stats();
    assert_eq!(initial.memories_created, 1, "{initial:?}");
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    assert!(req.session(&s).get("user").unwrap().unwrap().is_some());
    req.session(&s).set_json("counter", "1").unwrap().unwrap();
    assert_eq!(req.session(&s).take("absent").unwrap().unwrap(), None);
    req.drop_session(s).unwrap();
    req.drop_store(store).unwrap();
    let after = req.memory_stats();
    assert_eq!(after.grows, 0, "{after:?}");
    assert_eq!(after.peak_bytes, initial.peak_bytes, "{after:?}");
}

#[test]
fn a_large_session_is_loaded_into_one_buffer() {
    let env = Env::new();
    let value = format!("\"{}\"", "x".repeat(1000));
    let id = env.session_with("k0", &value);
    let (mut req, store) = env.request();
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    for i in 1..1000 {
        req.session(&s)
            .set_json(&format!("k{i}"), &value)
            .unwrap()
            .unwrap();
    }
    req.drop_session(s).unwrap();
    req.drop_store(store).unwrap();
    drop(req);
    let file_len = std::fs::metadata(host_test::fixtures::session_path(env.path(), &id))
        .unwrap()
        .len() as usize;
    assert!(file_len > 1 << 20, "{file_len}");

    // A fresh instance loads it and reads a key.
    let mut req = host_test::runtime().request(env.path()).unwrap();
    let store = req.open_store(&default_config()).unwrap().unwrap();
    let before = req.memory_stats().peak_bytes;
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    assert!(req.session(&s).get("k999").unwrap().unwrap().is_some());
    let grown = req.memory_stats().peak_bytes - before;
    req.drop_session(s).unwrap();
    req.drop_store(store).unwrap();
    // The image once, SQLite's page cache of what the get touched, and
    // slack: well under the two images (old and new buffer) a doubling
    // buffer holds while it grows.
    assert!(
        grown < 2 * file_len,
        "memory grew by {grown} bytes to load a {file_len}-byte session"
    );
}
