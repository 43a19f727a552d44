//! SIGKILL of a host process mid-write. A child (`crash-writer`) writes keys
//! into one session, acknowledging each; we kill it at a random moment, then
//! check from this process that every acknowledged write is present, the file
//! passes `PRAGMA integrity_check`, and the lock it may have died holding is
//! broken within about one lease.
//!
//! `SQLITE_SESSIONS_KILLS` sets the number of kills (default 15 in CI).

use host_test::fixtures::{integrity, lock_path, session_path};
use sqlite_sessions_host::{default_config, RequestOptions};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn sigkilled_writers_lose_no_acknowledged_write() {
    let kills: u32 = std::env::var("SQLITE_SESSIONS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let lease_ms = 100u32;
    let dir = tempfile::tempdir().unwrap();
    let rt = host_test::runtime();
    let mut cfg = default_config();
    cfg.lock_lease_ms = Some(lease_ms);
    cfg.busy_timeout_ms = Some(30_000);
    cfg.max_keys = Some(1_000_000); // as crash-writer

    let id = rt
        .create_session(
            dir.path(),
            RequestOptions::default(),
            &cfg,
            &[("seed", "0")],
        )
        .unwrap();
    let file = session_path(dir.path(), &id);

    let mut acked: BTreeSet<String> = BTreeSet::from(["seed".into()]);
    let mut next = 1u64;
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let (mut locks_left, mut worst_read, mut worst_write) = (0u32, Duration::ZERO, Duration::ZERO);
    for round in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .args(["--dir", dir.path().to_str().unwrap(), "--id", &id])
            .args([
                "--from",
                &next.to_string(),
                "--lease-ms",
                &lease_ms.to_string(),
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

        let lock = lock_path(dir.path(), &id);
        if lock.exists() {
            locks_left += 1;
        }
        // A reader neither waits for the dead writer's lock nor takes it
        // over: the lock file stays exactly as the kill left it.
        let lock_state = || {
            let meta = std::fs::metadata(&lock).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        };
        let lock_before = lock_state();
        let started = Instant::now();
        let mut req = rt.request(dir.path()).unwrap();
        let store = req.open_store(&cfg).unwrap().unwrap();
        let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
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
            "round {round}: lost {:?}",
            acked.difference(&present).collect::<Vec<_>>()
        );
        // A writer takes a dead writer's lock over within about one lease.
        let started = Instant::now();
        let marker = format!("recovered{round}");
        req.session(&s).set_json(&marker, "1").unwrap().unwrap();
        worst_write = worst_write.max(started.elapsed());
        acked.insert(marker);
        drop(req);
        assert_eq!(integrity(&file), "ok", "round {round}");
    }
    assert!(
        worst_write < Duration::from_millis(u64::from(lease_ms) * 3 + 1000),
        "write recovery took {worst_write:?}"
    );
    assert!(
        worst_read < Duration::from_millis(u64::from(lease_ms) * 3 + 1000),
        "read recovery took {worst_read:?}"
    );
    println!(
        "SIGKILL faults: {kills} kills, {locks_left} left the lock behind, {} acknowledged \
         writes all present, worst recovery: read {worst_read:?}, write {worst_write:?} \
         (lease {lease_ms} ms), integrity ok",
        acked.len()
    );
}
