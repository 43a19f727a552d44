//! How a connection tells that the session file it holds was replaced,
//! natively on a local disk, including the case a trash creates: a replaced
//! file that stays linked elsewhere, so that its link count never drops.
//! (The same on a real distributed filesystem: `host-test`'s JuiceFS tests.)

use sqlite_sessions::layout::SessionFile;
use sqlite_sessions::{Durability, Error, SessionId, Store, StoreConfig};
use std::path::{Path, PathBuf};

fn store(dir: &Path, shared: bool) -> Store {
    let mut cfg = StoreConfig::new(dir.to_str().unwrap());
    cfg.shared_directory = shared;
    Store::open(cfg).unwrap()
}

fn file_of(dir: &Path, id: &str) -> PathBuf {
    let f = SessionFile::for_id(&SessionId::parse(id).unwrap(), None);
    dir.join(f.shard).join(f.name)
}

/// Keeps the file now at `path` linked under `trash`, as JuiceFS's trash
/// keeps every replaced file: after the next commit its link count is still
/// 1, not 0.
fn keep_in_trash(path: &Path, trash: &Path, n: u32) {
    std::fs::create_dir_all(trash).unwrap();
    std::fs::hard_link(path, trash.join(n.to_string())).unwrap();
}

#[test]
fn a_replaced_file_kept_linked_by_a_trash_is_still_noticed() {
    for shared in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let trash = tempfile::tempdir().unwrap();
        let (a, b) = (store(dir.path(), shared), store(dir.path(), shared));
        let mut s = a.create();
        s.increment("n", 1).unwrap();
        let id = s.id();
        let path = file_of(dir.path(), &id);
        let mut on_a = a.load(&id).unwrap().unwrap();
        let mut on_b = b.load(&id).unwrap().unwrap();
        for round in 0..20u32 {
            // Each side writes over a version the other holds; every
            // replaced version stays linked in the trash.
            keep_in_trash(&path, trash.path(), 2 * round);
            on_b.increment("n", 1).unwrap();
            assert_eq!(
                on_a.get_json("n").unwrap().as_deref(),
                Some((2 * round + 2).to_string().as_str()),
                "a reader sees the new version at once (shared: {shared})"
            );
            keep_in_trash(&path, trash.path(), 2 * round + 1);
            on_a.increment("n", 1).unwrap();
        }
        assert_eq!(on_b.increment("n", 0).unwrap(), 41, "shared: {shared}");
        // The trash did hold every replaced version, each still linked once.
        use std::os::unix::fs::MetadataExt;
        let first = std::fs::metadata(trash.path().join("0")).unwrap();
        assert_eq!(first.nlink(), 1);
    }
}

#[test]
fn a_writer_holding_a_deleted_session_finds_it_gone_and_leaves_no_file() {
    for shared in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (store(dir.path(), shared), store(dir.path(), shared));
        let mut s = a.create();
        s.set_json("k", "1").unwrap();
        let id = s.id();
        let mut held = a.load(&id).unwrap().unwrap();
        assert!(b.destroy_id(&id).unwrap());
        assert_eq!(held.set_json("k", "2"), Err(Error::NotFound));
        assert_eq!(held.get_json("k"), Err(Error::NotFound));
        let path = file_of(dir.path(), &id);
        assert!(!path.exists(), "no probe left behind (shared: {shared})");
        assert!(!PathBuf::from(format!("{}.lock", path.display())).exists());
        assert!(a.load(&id).unwrap().is_none());
    }
}

#[test]
fn an_empty_file_at_a_sessions_name_is_no_session() {
    // What a reader may meet for a moment while a shared-directory writer
    // probes the name of a session deleted under it.
    let dir = tempfile::tempdir().unwrap();
    let a = store(dir.path(), true);
    let mut s = a.create();
    s.set_json("k", "1").unwrap();
    let id = s.id();
    let path = file_of(dir.path(), &id);
    std::fs::write(&path, b"").unwrap();
    assert!(a.load(&id).unwrap().is_none());
}

#[test]
fn a_shared_directory_refuses_durability_process_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path().to_str().unwrap());
    cfg.shared_directory = true;
    cfg.durability = Durability::ProcessCrash;
    match Store::open(cfg.clone()) {
        Err(Error::Config(m)) => {
            assert!(m.starts_with("durability:"), "{m}");
            assert!(m.contains("power-loss"), "says what to change: {m}");
        }
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
    cfg.shared_directory = false;
    assert!(Store::open(cfg).is_ok(), "one host may skip the fsync");
}

#[test]
fn the_self_check_passes_a_local_directory_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path().to_str().unwrap());
    cfg.check_directory = true;
    let store = Store::open(cfg).unwrap();
    let report = store.check_directory().unwrap();
    assert_eq!(report.len(), 6);
    assert!(report.iter().all(|r| r.passed), "{report:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
