//! The prepared template connection (`sqlite_sessions::template`), natively:
//! a session opened through it reads and writes exactly what an ordinary
//! connection would, including sessions whose file header matches the
//! template's (a session written in one commit), and a missing session
//! leaves the template for the next open.

use sqlite_sessions::layout::SessionFile;
use sqlite_sessions::SessionId;
use sqlite_sessions::{template, Store, StoreConfig};

fn store(dir: &std::path::Path) -> Store {
    Store::open(StoreConfig::new(dir.to_str().unwrap())).unwrap()
}

/// A new session holding `pairs` (key, JSON), each written in a commit of
/// its own; its id.
fn seed(store: &Store, pairs: &[(&str, &str)]) -> String {
    let mut s = store.create();
    for (key, json) in pairs {
        s.set_json(key, json).unwrap();
    }
    s.id()
}

/// Where the store keeps session `id`'s file under `dir`.
fn file_of(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    let f = SessionFile::for_id(&SessionId::parse(id).unwrap(), None);
    dir.join(f.shard).join(f.name)
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
    let id = seed(&store, &[("user", r#"{"name":"ada"}"#)]);

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
        s.set_json(&format!("k{i}"), &i.to_string()).unwrap();
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
    let id = seed(&store, &[("a", "1")]);

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
        .map(|i| seed(&store, &[("i", &i.to_string())]))
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

/// The session files under `dir` (`<shard>/<name>`), sorted.
fn session_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir).unwrap().flatten() {
        if shard.file_type().unwrap().is_dir() {
            for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// Schema, user_version and integrity of a file, read with SQLite's own VFS.
fn layout(path: &std::path::Path) -> (Vec<(String, String, String)>, i64, String) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, ifnull(sql, '') FROM sqlite_master ORDER BY name")
        .unwrap();
    let schema = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let integrity = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (schema, version, integrity)
}

#[test]
fn a_session_created_through_the_template_is_laid_out_like_any_other() {
    let dir = scratch("create");
    let store = store(&dir);

    template::prepare().unwrap();
    let mut s = store.create();
    s.set_json("a", "1").unwrap();
    assert!(!template::is_ready(), "the creation took the template");
    let through_template = s.id();
    drop(s);

    template::discard();
    let ordinary = seed(&store, &[("a", "1")]);
    assert_eq!(session_files(&dir).len(), 2);

    let a = layout(&file_of(&dir, &through_template));
    let b = layout(&file_of(&dir, &ordinary));
    assert_eq!(a, b);
    assert_eq!(a.1, 2, "user_version");
    assert_eq!(a.2, "ok");
    template::discard();
    for id in [&through_template, &ordinary] {
        let mut s = store.load(id).unwrap().unwrap();
        assert_eq!(s.get_json("a").unwrap().as_deref(), Some("1"));
        assert_eq!(s.len().unwrap(), 1);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn regenerate_copies_into_a_file_created_through_the_template() {
    let dir = scratch("regenerate");
    let store = store(&dir);
    let old = seed(&store, &[("user", r#""ada""#), ("n", "7")]);

    let mut s = store.load(&old).unwrap().unwrap();
    template::prepare().unwrap();
    // The copy takes the template; the old session's connection, done
    // with, then becomes the next one.
    s.regenerate().unwrap();
    let new = s.id();
    assert_ne!(new, old);
    drop(s);
    assert!(store.load(&old).unwrap().is_none());
    let mut s = store.load(&new).unwrap().unwrap();
    assert_eq!(s.get_json("user").unwrap().as_deref(), Some(r#""ada""#));
    assert_eq!(s.get_json("n").unwrap().as_deref(), Some("7"));
    assert_eq!(session_files(&dir), vec![file_of(&dir, &new)]);
    std::fs::remove_dir_all(&dir).unwrap();
}
