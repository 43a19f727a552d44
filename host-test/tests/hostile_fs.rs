//! A hostile filesystem: a read-only directory, a full disk, and session
//! files truncated or overwritten by someone else. Each case must give a
//! typed error (never a trap), leave other sessions untouched, and leave the
//! damaged or refused session as it was when the cause goes away.
//!
//! The full-disk case mounts a 256 KiB tmpfs, which needs root (CI runs as
//! root on its machine); without it the test fails and says so.

use host_test::{default_config, Config, Error, Request, RequestOptions, Runtime, StoreHandle};
use sqlite_sessions::ids::{SessionFile, SessionId};
use sqlite_sessions::storage::{self, DbOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn config() -> Config {
    let mut cfg = default_config();
    // A write that fails mid-way leaves its lock for a breaker: keep that
    // wait short here.
    cfg.lock_lease_ms = Some(100);
    cfg.busy_timeout_ms = Some(5_000);
    cfg
}

fn file_of(dir: &Path, id: &str) -> PathBuf {
    let f = SessionFile::for_id(&SessionId::parse(id).unwrap(), None);
    dir.join(f.shard).join(f.name)
}

fn request(dir: &Path, read_only: bool) -> (Request, StoreHandle) {
    let mut req = Runtime::shared()
        .request_with(
            dir,
            RequestOptions {
                read_only,
                ..RequestOptions::default()
            },
        )
        .unwrap();
    let store = req.open_store(&config()).unwrap().unwrap();
    (req, store)
}

fn create(dir: &Path, key: &str, json: &str) -> String {
    let (mut req, store) = request(dir, false);
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json(key, json).unwrap().unwrap();
    req.session(&s).id().unwrap()
}

fn get(dir: &Path, id: &str, key: &str) -> Result<Option<String>, Error> {
    let (mut req, store) = request(dir, false);
    let Some(s) = req.store(&store).load(id).unwrap()? else {
        return Err(Error::NotFound);
    };
    req.session(&s).get_json(key).unwrap()
}

#[test]
fn a_read_only_directory_gives_typed_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let id = create(dir.path(), "a", "1");

    let (mut req, store) = request(dir.path(), true);
    // A load opens the session file for writing (it may record activity),
    // which a read-only directory refuses: typed.
    assert!(matches!(
        req.store(&store).load(&id).unwrap(),
        Err(Error::Storage(_))
    ));
    let fresh = req.store(&store).create().unwrap();
    assert!(matches!(
        req.session(&fresh).set_json("b", "2").unwrap(),
        Err(Error::Storage(_))
    ));
    drop(req);

    assert_eq!(get(dir.path(), &id, "a"), Ok(Some("1".into())));
    let shards: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(shards.len(), 1, "the refused create wrote nothing");
}

#[test]
fn damaged_session_files_give_typed_errors_and_spare_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = create(dir.path(), "k", "\"healthy\"");
    let damaged: Vec<(String, &str)> = ["garbage", "truncated", "empty", "header only"]
        .into_iter()
        .map(|how| (create(dir.path(), "k", "\"doomed\""), how))
        .collect();
    for (id, how) in &damaged {
        let path = file_of(dir.path(), id);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        let bytes = match *how {
            "garbage" => (0..len).map(|i| (i * 7 + 13) as u8).collect(),
            "truncated" => std::fs::read(&path).unwrap()[..len / 3].to_vec(),
            "empty" => Vec::new(),
            _ => std::fs::read(&path).unwrap()[..100].to_vec(),
        };
        std::fs::write(&path, bytes).unwrap();
    }
    for (id, how) in &damaged {
        // Typed: a storage error or "no such session", never a trap (the
        // outer `unwrap` in `get` would panic on one).
        match get(dir.path(), id, "k") {
            Err(Error::Storage(_)) | Err(Error::NotFound) | Ok(None) => {}
            other => panic!("{how}: {other:?}"),
        }
        // Writing to it fails typed as well, and does not hang on a lock.
        let (mut req, store) = request(dir.path(), false);
        if let Ok(Some(s)) = req.store(&store).load(id).unwrap() {
            assert!(
                req.session(&s).set_json("k2", "1").unwrap().is_err(),
                "{how}"
            );
        }
    }
    assert_eq!(
        get(dir.path(), &healthy, "k"),
        Ok(Some("\"healthy\"".into()))
    );
    // And new sessions still work next to the damaged files.
    let another = create(dir.path(), "x", "2");
    assert_eq!(get(dir.path(), &another, "x"), Ok(Some("2".into())));
}

/// A small tmpfs, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs failed ({status}); this test needs root"
        );
        SmallFs { dir }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_gives_typed_errors_and_loses_no_acknowledged_write() {
    let fs = SmallFs::mount("256k");
    let dir = fs.dir.path();
    let bystander = create(dir, "k", "\"safe\"");
    let id = create(dir, "k0", "0");
    let chunk = format!("\"{}\"", "x".repeat(16 * 1024));
    let mut acked = vec!["k0".to_string()];
    let mut full = None;
    for i in 1..64 {
        let (mut req, store) = request(dir, false);
        let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
        match req.session(&s).set_json(&format!("k{i}"), &chunk).unwrap() {
            Ok(()) => acked.push(format!("k{i}")),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    match full {
        Some(Error::Storage(msg)) => assert!(msg.contains("full"), "{msg}"),
        other => panic!("expected a storage error once the disk filled, got {other:?}"),
    }
    // Every acknowledged key is there and the file is sound; the bystander
    // is untouched.
    for key in &acked {
        assert!(get(dir, &id, key).unwrap().is_some(), "{key} lost");
    }
    let opts = DbOptions {
        busy_timeout_ms: 5_000,
        lock_lease_ms: 100,
        durability: Default::default(),
        expiry_hint: None,
    };
    let path = file_of(dir, &id);
    assert_eq!(
        storage::integrity_check(path.to_str().unwrap(), opts).unwrap(),
        "ok"
    );
    assert_eq!(get(dir, &bystander, "k"), Ok(Some("\"safe\"".into())));
    println!(
        "full disk: {} writes acknowledged before ENOSPC, all present, integrity ok",
        acked.len()
    );
}
