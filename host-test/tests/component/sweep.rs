//! `store.sweep`, through the component, on a fake clock: exactly the expired
//! sessions are deleted among thousands, a pass resumes across many small
//! calls in fresh instances, wrong modification-time hints never delete a live
//! session, and nothing but session files is ever touched.

use host_test::fixtures::{finish, Env};
use sha2::{Digest, Sha256};
use sqlite_sessions_host::{
    default_config, Config, Error, ExpirySettings, FakeClock, RequestOptions,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T0: u64 = 1_800_000_000;

/// An `Env` on tmpfs when there is one: these tests write thousands of files.
fn fast_env(config: Config) -> Env {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    Env::in_dir(dir, config)
}

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

/// Creates `n` sessions at the clock's time, each holding `i = <its index>`;
/// those for which `short(i)` get a 100 s idle timeout (so they expire while
/// the others, at the default 24 h, live on). Returns the ids in order.
fn create_many(
    env: &Env,
    clock: &FakeClock,
    n: usize,
    short: impl Fn(usize) -> bool,
) -> Vec<String> {
    let (mut req, store) = clocked(env, clock);
    let ids = (0..n)
        .map(|i| {
            let s = req.store(&store).create().unwrap();
            if short(i) {
                req.session(&s)
                    .set_expiry(ExpirySettings {
                        idle_timeout_seconds: Some(100),
                        absolute_timeout_seconds: None,
                        persistent_cookie: None,
                    })
                    .unwrap()
                    .unwrap();
            }
            req.session(&s)
                .set_json("i", &i.to_string())
                .unwrap()
                .unwrap();
            let id = req.session(&s).id().unwrap();
            // Dropping the handle writes the expiry hint into the file's mtime.
            req.drop_session(s).unwrap();
            id
        })
        .collect();
    req.drop_store(store).unwrap();
    ids
}

/// The file of session `id` relative to the directory, computed independently
/// of the component: `<shard>/<sha256(uuid bytes)>.db`, no file-name secret.
fn file_of(id: &str) -> PathBuf {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    PathBuf::from(&digest[..2]).join(format!("{digest}.db"))
}

fn sweep(
    env: &Env,
    clock: &FakeClock,
    cursor: Option<&str>,
    budget: u32,
) -> Result<sqlite_sessions_host::SweepProgress, Error> {
    let (mut req, store) = clocked(env, clock);
    let got = req.store(&store).sweep(cursor, budget).unwrap();
    req.drop_store(store).unwrap();
    got
}

/// Runs a whole pass in slices of `budget`, each in a fresh instance as a host
/// with a per-request limit would; returns (calls, examined, deleted).
fn full_pass(env: &Env, clock: &FakeClock, budget: u32) -> (usize, u64, u64) {
    let (mut calls, mut examined, mut deleted) = (0, 0u64, 0u64);
    let mut cursor: Option<String> = None;
    loop {
        let p = sweep(env, clock, cursor.as_deref(), budget).unwrap();
        calls += 1;
        examined += u64::from(p.examined);
        deleted += u64::from(p.deleted);
        match p.cursor {
            Some(c) => cursor = Some(c),
            None => return (calls, examined, deleted),
        }
        assert!(calls < 1_000_000, "the pass does not terminate");
    }
}

fn set_mtime(path: &Path, at: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn is_short(i: usize) -> bool {
    // An irregular subset, about a fifth, spread over every shard.
    (i * 7919) % 23 < 5
}

#[test]
fn thousands_of_sessions_exactly_the_expired_go_in_resumable_slices() {
    const N: usize = 3000;
    const BUDGET: u32 = 37;
    let env = fast_env(default_config());
    let clock = FakeClock::at_unix_secs(T0);
    let ids = create_many(&env, &clock, N, is_short);
    let expired: BTreeSet<PathBuf> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| is_short(*i))
        .map(|(_, id)| file_of(id))
        .collect();
    let live: BTreeSet<PathBuf> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_short(*i))
        .map(|(_, id)| file_of(id))
        .collect();
    assert!(expired.len() > 500 && live.len() > 2000);
    let all: BTreeSet<PathBuf> = env.session_files().into_iter().collect();
    assert_eq!(
        all,
        &expired | &live,
        "file names are not what the ids hash to"
    );

    // 200 s later the short-lived sessions have expired (100 s idle).
    clock.advance(Duration::from_secs(200));

    // One pass in small slices, each in a fresh instance.
    let mut cursor: Option<String> = None;
    let (mut calls, mut examined, mut deleted) = (0usize, 0u64, 0u64);
    let mut last_cursor = String::new();
    loop {
        let p = sweep(&env, &clock, cursor.as_deref(), BUDGET).unwrap();
        calls += 1;
        assert!(p.examined <= BUDGET);
        examined += u64::from(p.examined);
        deleted += u64::from(p.deleted);
        let Some(c) = p.cursor else { break };
        // A slice that stops early has examined its whole budget, and the
        // cursor only moves forward.
        assert_eq!(p.examined, BUDGET);
        assert!(c > last_cursor, "cursor went back: {c} after {last_cursor}");
        let truly_left = N as u64 - examined;
        if truly_left >= 600 {
            // The estimate extrapolates from the shards listed so far.
            let est = p.remaining_estimate as f64;
            assert!(
                est > truly_left as f64 * 0.5 && est < truly_left as f64 * 2.0,
                "remaining-estimate {est} vs {truly_left} left"
            );
        }
        assert!(p.remaining_estimate > 0);
        last_cursor = c.clone();
        cursor = Some(c);
        assert!(calls <= N, "the pass does not terminate");
    }
    assert_eq!(
        examined, N as u64,
        "every session file examined exactly once"
    );
    assert_eq!(deleted, expired.len() as u64);
    assert_eq!(calls, N.div_ceil(BUDGET as usize));
    // Exactly the expired files are gone (checked on the file system, before
    // any load could delete an expired session by itself).
    let left: BTreeSet<PathBuf> = env.session_files().into_iter().collect();
    assert_eq!(left, live);

    // A second pass, in one call: nothing more to delete.
    let p = sweep(&env, &clock, None, 10_000).unwrap();
    assert_eq!(
        (p.cursor, p.examined, p.deleted),
        (None, live.len() as u32, 0)
    );

    // Every live session still loads, with its own data.
    let (mut req, store) = clocked(&env, &clock);
    for (i, id) in ids.iter().enumerate() {
        let found = req.store(&store).load(id).unwrap().unwrap();
        match found {
            Some(s) => {
                assert!(!is_short(i), "expired session {i} still loads");
                assert_eq!(
                    req.session(&s).get_json("i").unwrap(),
                    Ok(Some(i.to_string()))
                );
                req.drop_session(s).unwrap();
            }
            None => assert!(is_short(i), "live session {i} was lost"),
        }
    }
    req.drop_store(store).unwrap();
}

#[test]
fn a_pass_survives_sessions_created_and_destroyed_between_slices() {
    const N: usize = 300;
    let env = fast_env(default_config());
    let clock = FakeClock::at_unix_secs(T0);
    let ids = create_many(&env, &clock, N, is_short);
    clock.advance(Duration::from_secs(200));
    let mut added = Vec::new();
    let mut cursor: Option<String> = None;
    let mut calls = 0;
    loop {
        let p = sweep(&env, &clock, cursor.as_deref(), 7).unwrap();
        calls += 1;
        // Between slices, other requests create and destroy sessions.
        added.push(env_create(&env, &clock, calls));
        if calls % 3 == 0 {
            let victim = &ids[calls * 5 % N];
            let (mut req, store) = clocked(&env, &clock);
            req.store(&store).destroy_id(victim).unwrap().unwrap();
            req.drop_store(store).unwrap();
        }
        match p.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(calls < 10 * N, "the pass does not terminate");
    }
    for (n, id) in &added {
        let (mut req, store) = clocked(&env, &clock);
        let s = req
            .store(&store)
            .load(id)
            .unwrap()
            .unwrap()
            .expect("new session swept");
        assert_eq!(
            req.session(&s).get_json("n").unwrap(),
            Ok(Some(n.to_string()))
        );
        finish(req, store, s);
    }
    // No expired session created before the pass survived it; every live one
    // not destroyed did.
    let files: BTreeSet<PathBuf> = env.session_files().into_iter().collect();
    for (i, id) in ids.iter().enumerate() {
        if is_short(i) {
            assert!(
                !files.contains(&file_of(id)),
                "expired session {i} survived the pass"
            );
        }
    }
    let destroyed: BTreeSet<usize> = (1..=calls)
        .filter(|c| c % 3 == 0)
        .map(|c| c * 5 % N)
        .collect();
    for (i, id) in ids.iter().enumerate() {
        if !is_short(i) && !destroyed.contains(&i) {
            assert!(files.contains(&file_of(id)), "live session {i} was deleted");
        }
    }
}

fn env_create(env: &Env, clock: &FakeClock, n: usize) -> (usize, String) {
    let (mut req, store) = clocked(env, clock);
    let s = req.store(&store).create().unwrap();
    req.session(&s)
        .set_json("n", &n.to_string())
        .unwrap()
        .unwrap();
    let id = req.session(&s).id().unwrap();
    finish(req, store, s);
    (n, id)
}

/// The hint is only a hint: a wrong one never deletes a live session.
#[test]
fn wrong_mtime_hints_never_delete_a_live_session() {
    let env = fast_env(default_config());
    let clock = FakeClock::at_unix_secs(T0);
    // live[0..2] default 24 h idle; expired[0..2] 100 s idle.
    let live = create_many(&env, &clock, 2, |_| false);
    let expired = create_many(&env, &clock, 2, |_| true);
    let path = |id: &str| env.path().join(file_of(id));
    let live_expiry = UNIX_EPOCH + Duration::from_secs(T0 + 86_400);
    for id in &live {
        assert_eq!(mtime(&path(id)), live_expiry, "hint not written at drop");
    }
    clock.advance(Duration::from_secs(200));

    // A live session whose hint says "long expired" (someone touched the file
    // with an old time, or a backup restore did) ...
    set_mtime(&path(&live[0]), UNIX_EPOCH + Duration::from_secs(1_000));
    // ... and expired sessions whose hints say "far in the future" (the clock
    // was set back when they were written, or the timeouts were shortened
    // after): ten days from now.
    let bogus = UNIX_EPOCH + Duration::from_secs(T0 + 10 * 86_400);
    for id in &expired {
        set_mtime(&path(id), bogus);
    }

    let (calls, examined, deleted) = full_pass(&env, &clock, 1_000);
    assert_eq!((calls, examined, deleted), (1, 4, 0));
    // The live session with the past hint was opened, found alive, kept, and
    // its hint repaired to its real expiry.
    assert!(path(&live[0]).exists());
    assert_eq!(mtime(&path(&live[0])), live_expiry, "hint not repaired");
    assert!(path(&live[1]).exists());
    // The expired sessions with a future hint are skipped unopened: that is
    // the price of never opening files whose hint lies ahead. They are not
    // lost track of, though: they are never returned (load reads the real
    // expiry from the file and deletes them), and the sweep deletes them once
    // the bogus time has passed.
    assert!(path(&expired[0]).exists() && path(&expired[1]).exists());
    let (mut req, store) = clocked(&env, &clock);
    assert!(req
        .store(&store)
        .load(&expired[0])
        .unwrap()
        .unwrap()
        .is_none());
    req.drop_store(store).unwrap();
    assert!(
        !path(&expired[0]).exists(),
        "load left an expired session behind"
    );

    clock.set(bogus + Duration::from_secs(1));
    let (_, examined, deleted) = full_pass(&env, &clock, 1_000);
    assert_eq!((examined, deleted), (3, 3));
    assert!(!path(&expired[1]).exists());
    // Ten days on, the default 24 h idle timeout has run out for the live
    // ones too, so they go as well.
    assert!(!path(&live[0]).exists() && !path(&live[1]).exists());
}

#[test]
fn nothing_but_session_files_is_ever_touched() {
    let env = fast_env(default_config());
    let clock = FakeClock::at_unix_secs(T0);
    let ids = create_many(&env, &clock, 30, |_| true);
    let hex64 = |first: &str| format!("{first}{}", "0".repeat(64 - first.len()));
    let shard_of_first = file_of(&ids[0]).parent().unwrap().to_path_buf();
    let shard = shard_of_first.to_str().unwrap().to_string();
    let foreign_files: Vec<PathBuf> = vec![
        "notes.txt".into(),
        "live-count.db".into(),
        format!("{}.db", hex64("ab")).into(), // a session-like name outside any shard
        format!("{shard}/notes.txt").into(),
        format!("{shard}/{}.db-journal", hex64(&shard)).into(),
        format!("{shard}/{}.db", hex64(&format!("{shard}ab")).to_uppercase()).into(),
        format!("{shard}/{}.db.bak", hex64(&shard)).into(),
        format!("{shard}/{}.db", &hex64(&shard)[..63]).into(),
        // The right pattern in the wrong shard.
        format!(
            "{shard}/{}.db",
            hex64(if shard == "ff" { "fe" } else { "ff" })
        )
        .into(),
        format!("{shard}/sub/{}.db", hex64(&shard)).into(),
        "zz/keep.db".into(),
    ];
    // A file with a session's exact name but not a database: examined, never
    // deleted (the sweep cannot read an expiry from it).
    let impostor = PathBuf::from(format!("{shard}/{}.db", hex64(&format!("{shard}1"))));
    // A directory with a session's name.
    let dir_impostor = env
        .path()
        .join(format!("{shard}/{}.db", hex64(&format!("{shard}2"))));
    for f in foreign_files.iter().chain([&impostor]) {
        let p = env.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"not a session").unwrap();
        // Hints far in the past: a sweep that trusted names alone would open
        // and delete them.
        set_mtime(&p, UNIX_EPOCH + Duration::from_secs(1));
    }
    std::fs::create_dir_all(&dir_impostor).unwrap();

    // Every session has expired.
    clock.advance(Duration::from_secs(200));
    // With a budget of 1, each call's cursor names the one file it examined.
    // (The call that completes the pass returns no cursor, so the last file
    // goes unnamed: `unnamed` is 0 or 1.)
    let mut examined = Vec::new();
    let mut deleted = 0;
    let mut cursor: Option<String> = None;
    let unnamed = loop {
        let p = sweep(&env, &clock, cursor.as_deref(), 1).unwrap();
        deleted += p.deleted;
        match p.cursor {
            Some(c) => {
                assert_eq!(p.examined, 1);
                examined.push(PathBuf::from(&c));
                cursor = Some(c);
            }
            None => break p.examined as usize,
        }
    };
    assert_eq!(deleted, 30);
    let mut sessions: Vec<PathBuf> = ids.iter().map(|id| file_of(id)).collect();
    sessions.push(impostor.clone());
    sessions.sort();
    let dir_name = dir_impostor.strip_prefix(env.path()).unwrap().to_path_buf();
    let without_dir: Vec<PathBuf> = examined
        .iter()
        .filter(|p| **p != dir_name)
        .cloned()
        .collect();
    // The 30 sessions and the impostor file, in order, each exactly once. (A
    // directory with a session's name is skipped by its listed type; should a
    // platform not report the type, it is opened, fails, and is left alone,
    // which the checks below cover.)
    assert!(
        sessions.starts_with(&without_dir) && without_dir.len() + unnamed >= sessions.len(),
        "examined {examined:#?} + {unnamed} unnamed; expected {sessions:#?}"
    );
    assert!(examined.len() + unnamed <= sessions.len() + 1);
    if examined.len() + unnamed > sessions.len() {
        eprintln!("note: the directory impostor was examined (no type in the listing)");
    }
    for f in foreign_files.iter().chain([&impostor]) {
        assert_eq!(
            std::fs::read(env.path().join(f)).unwrap(),
            b"not a session",
            "{f:?} touched"
        );
    }
    assert!(dir_impostor.is_dir());
    for id in &ids {
        assert!(!env.path().join(file_of(id)).exists());
    }
}

#[test]
fn locks_left_by_writers_that_died_creating_a_session_are_removed() {
    const LEASE: Duration = Duration::from_millis(400);
    let env = fast_env(Config {
        lock_lease_ms: Some(LEASE.as_millis() as u32),
        ..default_config()
    });
    let clock = FakeClock::at_unix_secs(T0);
    let live = create_many(&env, &clock, 1, |_| false).remove(0);
    let live_file = env.path().join(file_of(&live));
    let shard = live_file.parent().unwrap().to_path_buf();
    let shard_name = shard.file_name().unwrap().to_str().unwrap().to_string();
    let lock_named =
        |c: char| shard.join(format!("{shard_name}{}.db.lock", c.to_string().repeat(62)));
    // What a writer that died (or lapsed) creating a session leaves: its
    // lock, holding a half-written first version, and no session file.
    // Its mtime was stamped by its host's clock, which may be far from the
    // sweeper's: only whether it changes counts.
    let plant = |file: &Path, stamped: SystemTime| {
        std::fs::write(file, b"SQLite format 3\0 half written").unwrap();
        set_mtime(file, stamped);
    };
    let dead = lock_named('a');
    plant(&dead, SystemTime::now() - Duration::from_secs(3600));
    // Stamped by a host whose clock runs a year ahead: dead all the same.
    let dead_ahead = lock_named('b');
    plant(
        &dead_ahead,
        SystemTime::now() + Duration::from_secs(365 * 86_400),
    );
    // A creator at work, whose clock runs a year behind: its mtime looks
    // ancient, but it renews (touches) its lock every eighth of a lease.
    let alive = lock_named('c');
    let behind = SystemTime::now() - Duration::from_secs(365 * 86_400);
    plant(&alive, behind);
    // A lock beside an existing session belongs to its breakers, and a file
    // not named after a session is not the sweep's at all.
    let beside_live = PathBuf::from(format!("{}.lock", live_file.display()));
    plant(&beside_live, SystemTime::now() - Duration::from_secs(3600));
    let foreign = shard.join("notes.txt.lock");
    plant(&foreign, SystemTime::now() - Duration::from_secs(3600));

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renewer = {
        let (stop, alive) = (stop.clone(), alive.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                set_mtime(&alive, behind + Duration::from_millis(n));
                std::thread::sleep(LEASE / 8);
            }
        })
    };
    let started = std::time::Instant::now();
    let (calls, examined, deleted) = full_pass(&env, &clock, 1_000);
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    renewer.join().unwrap();
    assert_eq!(
        (calls, examined, deleted),
        (1, 1, 0),
        "orphans are not sessions"
    );
    // Judged by watching for a whole lease, within one slice, and no longer.
    assert!(took >= LEASE, "judged after {took:?}, lease {LEASE:?}");
    assert!(took < LEASE * 4 + Duration::from_secs(2), "took {took:?}");
    assert!(!dead.exists(), "the dead creator's lock is removed");
    assert!(!dead_ahead.exists(), "whatever clock stamped it");
    assert!(alive.exists(), "a lock that changes is left");
    assert!(beside_live.exists() && foreign.exists());
    // The break directories it held while taking them over are gone.
    let breaks: Vec<_> = std::fs::read_dir(&shard)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".lock-break"))
        .map(|e| e.file_name())
        .collect();
    assert!(breaks.is_empty(), "{breaks:?}");

    // Once its creator stops, the next pass (here in slices of one) takes
    // it too.
    full_pass(&env, &clock, 1);
    assert!(!alive.exists());
    assert!(beside_live.exists() && foreign.exists());
    assert!(live_file.exists());
}

#[test]
fn bad_cursors_and_budgets_are_invalid_value() {
    let env = Env::new();
    let clock = FakeClock::at_unix_secs(T0);
    let id = env.session_with("k", "1");
    let good = format!("{}", file_of(&id).display());
    for bad in [
        "",
        "/",
        "zz/x",
        "../../etc/passwd",
        "00/notes.txt",
        "0/0.db",
        &good.to_uppercase(),
        &format!("{good}/x"),
    ] {
        assert!(
            matches!(
                sweep(&env, &clock, Some(bad), 10),
                Err(Error::InvalidValue(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        sweep(&env, &clock, None, 0),
        Err(Error::InvalidValue(_))
    ));
    // A cursor resumes after the file it names: here, the only one.
    let p = sweep(&env, &clock, Some(&good), 10).unwrap();
    assert_eq!((p.cursor, p.examined), (None, 0));
    assert!(env.load(&id).is_some());
}
