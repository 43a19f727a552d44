//! The prepared template connection (`sqlite_sessions::template`), natively:
//! a session opened through it reads and writes exactly what an ordinary
//! connection would, including sessions whose file header matches the
//! template's (a session written in one commit), and a missing session
//! leaves the template for the next open.

use sqlite_sessions::{template, Store, StoreConfig};

fn store(dir: &std::path::Path) -> Store {
    Store::open(StoreConfig::new(dir.to_str().unwrap())).unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("template-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_session_written_in_one_commit_reads_back_through_the_template() {
    let dir = scratch("one-commit");
    let store = store(&dir);
    // One commit: schema, the value and the meta row together, so the file's
    // change counter, page count and freelist equal the template's.
    let mut s = store.create();
    s.set_json("user", r#"{"name":"ada"}"#).unwrap();
    let id = s.id();
    drop(s);

    template::prepare().unwrap();
    assert!(template::is_ready());
    let mut s = store.load(&id).unwrap().expect("the session exists");
    assert!(!template::is_ready(), "the load took the template");
    assert_eq!(
        s.get_json("user").unwrap().as_deref(),
        Some(r#"{"name":"ada"}"#)
    );
    assert_eq!(s.keys().unwrap(), vec!["user".to_string()]);

    // Writes through the template publish like any other.
    s.set_json("n", "1").unwrap();
    assert_eq!(s.increment("n", 41).unwrap(), 42);
    drop(s);
    let mut again = store.load(&id).unwrap().unwrap();
    assert_eq!(again.get_json("n").unwrap().as_deref(), Some("42"));
    assert_eq!(again.len().unwrap(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_session_with_many_commits_reads_back_through_the_template() {
    let dir = scratch("many-commits");
    let store = store(&dir);
    let mut s = store.create();
    for i in 0..50 {
        s.set_json(&format!("k{i}"), &format!("{i}")).unwrap();
    }
    let id = s.id();
    drop(s);

    template::prepare().unwrap();
    let mut s = store.load(&id).unwrap().unwrap();
    assert!(!template::is_ready());
    assert_eq!(s.len().unwrap(), 50);
    assert_eq!(s.get_json("k37").unwrap().as_deref(), Some("37"));
    assert!(s.remove("k0").unwrap());
    drop(s);
    assert_eq!(store.load(&id).unwrap().unwrap().len().unwrap(), 49);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_session_leaves_the_template_for_the_next_open() {
    let dir = scratch("missing");
    let store = store(&dir);
    let mut s = store.create();
    s.set_json("a", "1").unwrap();
    let id = s.id();
    drop(s);

    template::prepare().unwrap();
    let absent = "0".repeat(id.len());
    assert!(store.load(&absent).unwrap().is_none());
    assert!(template::is_ready(), "a miss does not use up the template");
    let mut s = store.load(&id).unwrap().unwrap();
    assert!(!template::is_ready());
    assert_eq!(s.get_json("a").unwrap().as_deref(), Some("1"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_destroyed_session_is_not_found_through_the_template() {
    let dir = scratch("destroyed");
    let store = store(&dir);
    let mut s = store.create();
    s.set_json("a", "1").unwrap();
    let id = s.id();
    s.destroy().unwrap();
    drop(s);

    template::prepare().unwrap();
    assert!(store.load(&id).unwrap().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_finished_session_connection_becomes_the_next_template() {
    let dir = scratch("reuse");
    let store = store(&dir);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let mut s = store.create();
            s.set_json("i", &i.to_string()).unwrap();
            s.id()
        })
        .collect();
    template::discard();
    assert!(!template::is_ready());
    // The first load opens the ordinary way; once dropped, its connection
    // waits for the next load, which reads that session, not the last one.
    for _round in 0..2 {
        for (i, id) in ids.iter().enumerate() {
            let mut s = store.load(id).unwrap().unwrap();
            assert!(!template::is_ready());
            assert_eq!(s.get_json("i").unwrap(), Some(i.to_string()));
            s.set_json("seen", "true").unwrap();
            drop(s);
            assert!(template::is_ready(), "the connection was kept");
        }
    }
    // A destroyed session's connection is kept too, and the next load of
    // that id through it finds nothing.
    let mut s = store.load(&ids[0]).unwrap().unwrap();
    s.destroy().unwrap();
    drop(s);
    assert!(template::is_ready());
    assert!(store.load(&ids[0]).unwrap().is_none());
    assert_eq!(
        store
            .load(&ids[1])
            .unwrap()
            .unwrap()
            .get_json("seen")
            .unwrap()
            .as_deref(),
        Some("true")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
