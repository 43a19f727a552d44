//! A hostile filesystem: a read-only directory (reads served, writes refused), a full disk, and session
//! files truncated or overwritten by someone else. Each case must give a
//! typed error (never a trap), leave other sessions untouched, and leave the
//! damaged or refused session as it was when the cause goes away.
//!
//! The full-disk case mounts a 256 KiB tmpfs, which needs root (CI runs as
//! root on its machine); without it the test fails and says so.

use host_test::fixtures::{integrity, session_path as file_of};
use sqlite_sessions_host::{
    default_config, Config, Error, FakeClock, Request, RequestOptions, StorageKind, StoreHandle,
};
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

fn request(dir: &Path) -> (Request, StoreHandle) {
    request_with(dir, RequestOptions::default())
}

fn request_with(dir: &Path, options: RequestOptions) -> (Request, StoreHandle) {
    let mut req = host_test::runtime().request_with(dir, options).unwrap();
    let store = req.open_store(&config()).unwrap().unwrap();
    (req, store)
}

fn create(dir: &Path, key: &str, json: &str) -> String {
    create_at(dir, &FakeClock::default(), key, json)
}

/// Creates a session holding `key`, as seen at `clock`'s time.
fn create_at(dir: &Path, clock: &FakeClock, key: &str, json: &str) -> String {
    let (mut req, store) = request_with(
        dir,
        RequestOptions {
            wall_clock: Some(clock.clone()),
            ..RequestOptions::default()
        },
    );
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json(key, json).unwrap().unwrap();
    req.session(&s).id().unwrap()
}

fn get(dir: &Path, id: &str, key: &str) -> Result<Option<String>, Error> {
    let (mut req, store) = request(dir);
    let Some(s) = req.store(&store).load(id).unwrap()? else {
        return Err(Error::NotFound);
    };
    req.session(&s).get_json(key).unwrap()
}

#[test]
fn a_read_only_directory_serves_reads_and_refuses_writes_typed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::default();
    let id = create_at(dir.path(), &clock, "a", "1");
    let before = snapshot(dir.path());

    let read_only = |clock: &FakeClock| {
        request_with(
            dir.path(),
            RequestOptions {
                read_only: true,
                wall_clock: Some(clock.clone()),
                ..RequestOptions::default()
            },
        )
    };
    // Reads need no write access: a session file is only ever read (a commit
    // renames a new file over it), so load and get work on a read-only
    // preopen.
    let (mut req, store) = read_only(&clock);
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    assert_eq!(req.session(&s).get_json("a").unwrap(), Ok(Some("1".into())));
    // Every kind of write is refused, typed: to a loaded session, to a new
    // one, and a destroy.
    // Not `busy`: retrying would never help.
    let refused = req.session(&s).set_json("a", "2").unwrap();
    assert!(
        matches!(&refused, Err(Error::Storage(f)) if f.kind == StorageKind::ReadOnly),
        "{refused:?}"
    );
    assert_eq!(req.session(&s).get_json("a").unwrap(), Ok(Some("1".into())));
    let fresh = req.store(&store).create().unwrap();
    assert!(matches!(
        req.session(&fresh).set_json("b", "2").unwrap(),
        Err(Error::Storage(f)) if f.kind == StorageKind::ReadOnly
    ));
    assert!(matches!(
        req.store(&store).destroy_id(&id).unwrap(),
        Err(Error::Storage(f)) if f.kind == StorageKind::ReadOnly
    ));
    drop(req);

    // A load that has to record activity (the last one is older than the
    // activity granularity) is a write too: refused, typed.
    clock.advance(std::time::Duration::from_secs(3600));
    let (mut req, store) = read_only(&clock);
    assert!(matches!(
        req.store(&store).load(&id).unwrap(),
        Err(Error::Storage(f)) if f.kind == StorageKind::ReadOnly
    ));
    drop(req);

    assert_eq!(
        snapshot(dir.path()),
        before,
        "nothing in the directory changed"
    );
    assert_eq!(get(dir.path(), &id, "a"), Ok(Some("1".into())));
}

/// Every entry under `dir` with its bytes (none for a directory), sorted:
/// equal snapshots mean nothing was created, removed or changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    host_test::fixtures::tree(dir)
        .into_iter()
        .map(|path| {
            let bytes = if path.is_dir() {
                Vec::new()
            } else {
                std::fs::read(&path).unwrap()
            };
            (path, bytes)
        })
        .collect()
}

#[test]
fn damaged_session_files_give_typed_errors_and_spare_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = create(dir.path(), "k", "\"healthy\"");
    let damaged: Vec<(String, &str)> = ["garbage", "truncated", "empty", "header only"]
        .into_iter()
        .map(|how| (create(dir.path(), "k", "\"doomed\""), how))
        .collect();
    let mut damaged_bytes = std::collections::HashMap::new();
    for (id, how) in &damaged {
        let path = file_of(dir.path(), id);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        let bytes = match *how {
            "garbage" => (0..len).map(|i| (i * 7 + 13) as u8).collect(),
            "truncated" => std::fs::read(&path).unwrap()[..len / 3].to_vec(),
            "empty" => Vec::new(),
            _ => std::fs::read(&path).unwrap()[..100].to_vec(),
        };
        std::fs::write(&path, &bytes).unwrap();
        damaged_bytes.insert(*how, bytes);
    }
    for (id, how) in &damaged {
        // Typed, and saying what is wrong; never a trap (the outer `unwrap`s
        // would panic on one), never "no such session" (the file is there).
        let (mut req, store) = request(dir.path());
        match req.store(&store).load(id).unwrap() {
            Err(Error::Storage(f))
                if f.kind == StorageKind::Corrupt
                    && f.message.contains("not a session database") => {}
            other => panic!("{how}: {:?}", other.map(|s| s.is_some())),
        }
        // Nothing was written over it: the damage stays for an operator to
        // inspect (`sessions-admin`), not silently replaced.
        assert_eq!(
            std::fs::read(file_of(dir.path(), id)).unwrap(),
            damaged_bytes[how],
            "{how}"
        );
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
        let (mut req, store) = request(dir);
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
        Some(Error::Storage(f)) => assert_eq!(f.kind, StorageKind::Full, "{}", f.message),
        other => panic!("expected a storage error once the disk filled, got {other:?}"),
    }
    // Every acknowledged key is there and the file is sound; the bystander
    // is untouched.
    for key in &acked {
        assert!(get(dir, &id, key).unwrap().is_some(), "{key} lost");
    }
    assert_eq!(integrity(&file_of(dir, &id)), "ok");
    assert_eq!(get(dir, &bystander, "k"), Ok(Some("\"safe\"".into())));
    println!(
        "full disk: {} writes acknowledged before ENOSPC, all present, integrity ok",
        acked.len()
    );
}
