//! SIGKILL of a host process mid-write. A child (`crash-writer`) writes keys
//! into one session, acknowledging each; we kill it at a random moment, then
//! check from this process that every acknowledged write is present and the
//! session's database passes `PRAGMA integrity_check`.
//!
//! In a directory the child may die holding the session's lock file: a
//! reader must neither wait for it nor touch it, and the next writer breaks
//! it within about one lease. Over Redis (standalone and cluster) there is
//! no lock to leave behind: a commit is one compare-and-swap, applied whole
//! or not at all, so the next write goes through at once.
//!
//! `SQLITE_SESSIONS_KILLS` sets the number of kills per backend (default 15
//! in CI).

use host_test::fixtures::{integrity, lock_path, session_path, Env};
use host_test::Backend;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LEASE_MS: u32 = 100;

fn sigkilled_writers_lose_no_acknowledged_write(backend: Backend) {
    let kills: u32 = std::env::var("SQLITE_SESSIONS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut cfg = sqlite_sessions_host::default_config();
    cfg.lock_lease_ms = Some(LEASE_MS);
    cfg.busy_timeout_ms = Some(30_000);
    cfg.max_keys = Some(1_000_000); // as crash-writer
    let env = Env::with_config_on(backend, cfg);
    let id = env.session_with("seed", "0");
    let urls = env.server_urls().to_vec();

    let mut acked: BTreeSet<String> = BTreeSet::from(["seed".into()]);
    let mut next = 1u64;
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let (mut locks_left, mut worst_read, mut worst_write) = (0u32, Duration::ZERO, Duration::ZERO);
    for round in 0..kills {
        let mut writer = Command::new(env!("CARGO_BIN_EXE_crash-writer"));
        match backend {
            Backend::Dir => writer.arg("--dir").arg(env.path()),
            Backend::Redis => writer.args(["--kv", &urls[0]]),
            Backend::Cluster => writer.args(["--kv-cluster", &urls.join(",")]),
        };
        let mut child = writer
            .args(["--kv-prefix", env.prefix(), "--id", &id])
            .args([
                "--from",
                &next.to_string(),
                "--lease-ms",
                &LEASE_MS.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        // Let it get going (its first ack), then kill it 0–40 ms later.
        let Ok(first) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "round {round}: the child never acknowledged a write ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::thread::sleep(Duration::from_micros(rng.u64(..40_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut last = first;
        acked.insert(format!("k{first}"));
        for n in rx.try_iter() {
            acked.insert(format!("k{n}"));
            last = n;
        }
        next = last + 2; // skip the key that may have been in flight

        // In a directory: a reader neither waits for the dead writer's lock
        // nor takes it over; the lock file stays exactly as the kill left it.
        let lock = (backend == Backend::Dir).then(|| lock_path(env.path(), &id));
        let lock_state = || {
            let meta = std::fs::metadata(lock.as_ref()?).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        };
        if lock_state().is_some() {
            locks_left += 1;
        }
        let lock_before = lock_state();
        let started = Instant::now();
        let (mut req, store, s) = env.load(&id).expect("the session survives");
        let present: BTreeSet<String> = req
            .session(&s)
            .keys()
            .unwrap()
            .unwrap()
            .into_iter()
            .collect();
        worst_read = worst_read.max(started.elapsed());
        assert_eq!(lock_state(), lock_before, "a read touched the lock");
        assert!(
            acked.is_subset(&present),
            "round {round} ({}): lost {:?}",
            backend.name(),
            acked.difference(&present).collect::<Vec<_>>()
        );
        // A writer goes on at once (a bucket), or takes a dead writer's lock
        // over within about one lease (a directory).
        let started = Instant::now();
        let marker = format!("recovered{round}");
        req.session(&s).set_json(&marker, "1").unwrap().unwrap();
        worst_write = worst_write.max(started.elapsed());
        acked.insert(marker);
        host_test::fixtures::finish(req, store, s);
        let copy = env.as_directory();
        let file = session_path(copy.path(), &id);
        assert_eq!(integrity(&file), "ok", "round {round} ({})", backend.name());
    }
    assert!(
        worst_write < Duration::from_millis(u64::from(LEASE_MS) * 3 + 1000),
        "write recovery took {worst_write:?}"
    );
    assert!(
        worst_read < Duration::from_millis(u64::from(LEASE_MS) * 3 + 1000),
        "read recovery took {worst_read:?}"
    );
    if backend.is_kv() {
        assert_eq!(
            env.files().len(),
            1,
            "a bucket keeps the session and nothing else: {:?}",
            env.files()
        );
    }
    println!(
        "SIGKILL faults ({}): {kills} kills, {locks_left} left a lock behind, {} acknowledged \
         writes all present, worst recovery: read {worst_read:?}, write {worst_write:?} \
         (lease {LEASE_MS} ms), integrity ok",
        backend.name(),
        acked.len()
    );
}

host_test::on_every_backend!(sigkilled_writers_lose_no_acknowledged_write);
