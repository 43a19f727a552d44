//! How a connection tells that the session file it holds was replaced,
//! natively on a local disk, including the case a trash creates: a replaced
//! file that stays linked elsewhere, so that its link count never drops.
//! (The same on a real distributed filesystem: `host-test`'s JuiceFS tests.)

use sqlite_sessions::layout::SessionFile;
use sqlite_sessions::{Error, SessionId, Store, StoreConfig};
use std::path::{Path, PathBuf};

fn store(dir: &Path) -> Store {
    Store::open(StoreConfig::new(dir.to_str().unwrap())).unwrap()
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
    let dir = tempfile::tempdir().unwrap();
    let trash = tempfile::tempdir().unwrap();
    let (a, b) = (store(dir.path()), store(dir.path()));
    let mut s = a.create();
    s.increment("n", 1).unwrap();
    let id = s.id();
    let path = file_of(dir.path(), &id);
    let mut on_a = a.load(&id).unwrap().unwrap();
    let mut on_b = b.load(&id).unwrap().unwrap();
    for round in 0..20u32 {
        // Each side writes over a version the other holds; every replaced
        // version stays linked in the trash.
        keep_in_trash(&path, trash.path(), 2 * round);
        on_b.increment("n", 1).unwrap();
        assert_eq!(
            on_a.get_json("n").unwrap().as_deref(),
            Some((2 * round + 2).to_string().as_str()),
            "a reader sees the new version at once"
        );
        keep_in_trash(&path, trash.path(), 2 * round + 1);
        on_a.increment("n", 1).unwrap();
    }
    assert_eq!(on_b.increment("n", 0).unwrap(), 41);
    // The trash did hold every replaced version, each still linked once.
    use std::os::unix::fs::MetadataExt;
    let first = std::fs::metadata(trash.path().join("0")).unwrap();
    assert_eq!(first.nlink(), 1);
}

#[test]
fn a_connection_holding_a_deleted_session_finds_it_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (store(dir.path()), store(dir.path()));
    let mut s = a.create();
    s.set_json("k", "1").unwrap();
    let id = s.id();
    let mut held = a.load(&id).unwrap().unwrap();
    assert!(b.destroy_id(&id).unwrap());
    assert_eq!(held.get_json("k"), Err(Error::NotFound));
    assert_eq!(held.set_json("k", "2"), Err(Error::NotFound));
    assert!(!file_of(dir.path(), &id).exists());
    assert!(a.load(&id).unwrap().is_none());
}
