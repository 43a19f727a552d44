//! Several hosts sharing one session directory on a real distributed
//! filesystem: a JuiceFS volume (metadata in a `redis-server` the test
//! starts, data in a local directory) mounted twice with FUSE. Each mount is
//! its own JuiceFS client with its own kernel caches, so to the store the
//! two mounts are two hosts.
//!
//! The documented configuration (README, "Several hosts, one directory"):
//! the volume formatted with `--trash-days 0`, each mount with
//! `--entry-cache 0 --dir-entry-cache 0` (and no negative entry cache),
//! every store with `shared-directory`. JuiceFS's own defaults (trash on,
//! 1 s name caches) are refused up front by `check-directory`; and even
//! with name caches on, writers lose nothing.
//!
//! Every test starts its own servers and stops them on drop, also when it
//! fails; the tests take turns (one volume at a time on a 2-core machine).
//! A missing `redis-server`, `juicefs` or `/dev/fuse` fails the test with
//! what to install: it never skips.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use edge_server::{EdgeServer, ServerOptions};
use host_test::fixtures::{integrity, lock_path, session_path};
use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::SET_COOKIE;
use reqwest::{redirect, Client, StatusCode, Url};
use sqlite_sessions_host::{default_config, Config, DirectoryCheck, Error, RequestOptions};
use test_servers::{FormatOptions, JuiceFs, MountOptions};

/// One volume at a time.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The mount options the README recommends: names looked up afresh, the
/// attribute cache left at JuiceFS's 1 s.
fn fresh_names() -> MountOptions {
    MountOptions {
        entry_cache: Duration::ZERO,
        dir_entry_cache: Duration::ZERO,
        negative_entry_cache: Duration::ZERO,
        ..MountOptions::default()
    }
}

/// A volume formatted with `format`, mounted twice with `mount`; the two
/// mount points ("host A", "host B"), each with a `sessions` directory.
fn two_hosts(format: &FormatOptions, mount: &MountOptions) -> (JuiceFs, PathBuf, PathBuf) {
    let mut volume = JuiceFs::start(format).unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<PathBuf> = volume
        .mount(2, mount)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|m| m.path().join("sessions"))
        .collect();
    std::fs::create_dir(&paths[0]).unwrap();
    assert!(paths[1].is_dir(), "host B sees the directory host A made");
    (volume, paths[0].clone(), paths[1].clone())
}

/// The store settings of every host in these tests.
fn shared_config() -> Config {
    Config {
        shared_directory: Some(true),
        busy_timeout_ms: Some(60_000),
        ..default_config()
    }
}

fn create_session(dir: &Path, config: &Config, entries: &[(&str, &str)]) -> String {
    host_test::runtime()
        .create_session(dir, RequestOptions::default(), config, entries)
        .unwrap()
}

fn get_json(dir: &Path, config: &Config, id: &str, key: &str) -> Option<String> {
    let mut req = host_test::runtime().request(dir).unwrap();
    let store = req.open_store(config).unwrap().unwrap();
    let s = req.store(&store).load(id).unwrap().unwrap()?;
    let v = req.session(&s).get_json(key).unwrap().unwrap();
    req.drop_session(s).unwrap();
    req.drop_store(store).unwrap();
    v
}

/// A `stress` child incrementing `n` of session `id` `count` times in
/// `dir`, waiting for `go` to exist before it starts.
fn stress(dir: &Path, id: &str, count: u32, go: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stress"))
        .arg("increment")
        .arg("--dir")
        .arg(dir)
        .args(["--id", id, "--key", "n", "--count", &count.to_string()])
        .args(["--busy-timeout-ms", "60000"])
        .arg("--wait-for")
        .arg(go)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Each value a `done` line of `stress` reports, by name.
fn field(line: &str, name: &str) -> u128 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        .parse()
        .unwrap()
}

/// One `stress` process per host, `per_host` increments each, started
/// together; checks the sum is exact and nothing failed.
fn increments_from_two_hosts(mount: &MountOptions, per_host: u32) {
    let _turn = turn();
    let (_volume, a, b) = two_hosts(&FormatOptions::default(), mount);
    let config = shared_config();
    let id = create_session(&a, &config, &[("n", "0")]);
    let signals = tempfile::tempdir().unwrap();
    let go = signals.path().join("go");
    let mut children: Vec<Child> = [&a, &b]
        .iter()
        .map(|dir| stress(dir, &id, per_host, &go, &["--shared-directory"]))
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for out in &mut outputs {
        assert_eq!(out.next().unwrap().unwrap(), "ready");
    }
    std::fs::write(&go, b"").unwrap();
    let done: Vec<String> = outputs
        .iter_mut()
        .map(|out| out.next().expect("a done line").unwrap())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a host's writer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let expected = 2 * i64::from(per_host);
    // Both hosts read the exact sum, once a name either may still cache
    // has expired (readers look nothing up afresh).
    std::thread::sleep(mount.entry_cache + mount.attr_cache / 2);
    assert_eq!(get_json(&a, &config, &id, "n"), Some(expected.to_string()));
    assert_eq!(get_json(&b, &config, &id, "n"), Some(expected.to_string()));
    let last = done.iter().map(|l| field(l, "last")).max();
    assert_eq!(last, Some(expected as u128));
    // The hosts really wrote at the same time.
    let latest_start = done.iter().map(|l| field(l, "start_ms")).max().unwrap();
    let earliest_end = done.iter().map(|l| field(l, "end_ms")).min().unwrap();
    assert!(latest_start < earliest_end, "the writers did not overlap");
    println!(
        "two hosts × {per_host} increments: exactly {expected}; {}",
        done.join("; ")
    );
}

/// The documented configuration: 2 hosts × 500 increments, exactly 1000.
#[test]
fn two_hosts_incrementing_one_session_lose_nothing() {
    increments_from_two_hosts(&fresh_names(), 500);
}

/// With JuiceFS's 1 s name caches (not recommended: readers may see an old
/// version for that long), writers still lose nothing: each looks the
/// session's name up afresh once it holds the lock.
#[test]
fn with_name_caches_on_writers_still_lose_nothing() {
    increments_from_two_hosts(&MountOptions::default(), 200);
}

/// JuiceFS's defaults (trash on, 1 s caches): `check-directory` refuses the
/// directory at `store.open`, with a typed error that says what to change,
/// before anything is written; the `stress` helper fails up front too.
#[test]
fn juicefs_defaults_are_refused_up_front_by_the_self_check() {
    let _turn = turn();
    let (volume, a, b) = two_hosts(&FormatOptions::juicefs_defaults(), &MountOptions::default());
    let checked = Config {
        check_directory: Some(true),
        ..shared_config()
    };
    for dir in [&a, &b] {
        let mut req = host_test::runtime().request(dir).unwrap();
        match req.open_store(&checked).unwrap() {
            Err(Error::UnsafeDirectory(problem)) => {
                assert_eq!(problem.check, DirectoryCheck::ReplacedLinkCount);
                assert!(
                    problem.message.contains("--trash-days 0"),
                    "says what to change: {}",
                    problem.message
                );
            }
            other => panic!("expected unsafe-directory, got {:?}", other.map(|_| ())),
        }
        // The probe left nothing behind, and nothing else was written.
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
    }
    // The admin report names every check: only the trash fails.
    let mut req = host_test::runtime().request(&a).unwrap();
    let store = req.open_store(&shared_config()).unwrap().unwrap();
    let report = req.admin(&store).check_directory().unwrap().unwrap();
    let failed: Vec<DirectoryCheck> = report
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.check)
        .collect();
    assert_eq!(failed, [DirectoryCheck::ReplacedLinkCount], "{report:?}");
    assert_eq!(report.len(), 6);
    req.drop_store(store).unwrap();
    // A request holds its preopened directory open: gone before the volume
    // is unmounted, or the mount stays busy.
    drop(req);

    // A writer process asked to check fails before its first write.
    let id = create_session(&a, &shared_config(), &[("n", "0")]);
    let signals = tempfile::tempdir().unwrap();
    let go = signals.path().join("go");
    let out = stress(
        &b,
        &id,
        10,
        &go,
        &["--shared-directory", "--check-directory"],
    )
    .wait_with_output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UnsafeDirectory") && stderr.contains("--trash-days 0"),
        "{stderr}"
    );
    assert_eq!(get_json(&a, &shared_config(), &id, "n"), Some("0".into()));

    // The documented configuration passes the same check.
    drop(volume);
    let (_volume, a, _b) = two_hosts(&FormatOptions::default(), &fresh_names());
    let mut req = host_test::runtime().request(&a).unwrap();
    let store = req.open_store(&checked).unwrap().unwrap();
    req.drop_store(store).unwrap();
}

/// SIGKILL a writer on host A at a random moment mid-write; a writer on
/// host B takes its lock over within about one lease, and every write A
/// acknowledged is there.
#[test]
fn a_writer_killed_on_one_host_is_recovered_from_the_other() {
    let _turn = turn();
    let kills: u32 = std::env::var("SQLITE_SESSIONS_SHARED_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let lease_ms = 1_000u32;
    let (_volume, a, b) = two_hosts(&FormatOptions::default(), &fresh_names());
    let config = Config {
        lock_lease_ms: Some(lease_ms),
        busy_timeout_ms: Some(30_000),
        max_keys: Some(1_000_000), // as crash-writer
        ..shared_config()
    };
    let id = create_session(&a, &config, &[("seed", "0")]);
    let mut acked: BTreeSet<String> = BTreeSet::from(["seed".into()]);
    let mut next = 1u64;
    let mut rng = fastrand::Rng::with_seed(0x5eed_0f4a_11fe);
    let (mut worst_write, mut locks_left) = (Duration::ZERO, 0);
    for round in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg("--dir")
            .arg(&a)
            .args(["--id", &id, "--from", &next.to_string()])
            .args(["--lease-ms", &lease_ms.to_string(), "--shared-directory"])
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
        let Ok(first) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "round {round}: host A's writer never acknowledged a write ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // Mid-write: each write takes a few milliseconds on JuiceFS.
        std::thread::sleep(Duration::from_micros(rng.u64(..60_000)));
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
        if lock_path(&b, &id).exists() {
            locks_left += 1;
        }

        // Host B: everything A acknowledged is there, and B's write goes
        // through, taking over the lock A may have died holding.
        let mut req = host_test::runtime().request(&b).unwrap();
        let store = req.open_store(&config).unwrap().unwrap();
        let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
        let present: BTreeSet<String> = req
            .session(&s)
            .keys()
            .unwrap()
            .unwrap()
            .into_iter()
            .collect();
        assert!(
            acked.is_subset(&present),
            "round {round}: lost {:?}",
            acked.difference(&present).collect::<Vec<_>>()
        );
        let started = Instant::now();
        let marker = format!("b{round}");
        req.session(&s).set_json(&marker, "1").unwrap().unwrap();
        worst_write = worst_write.max(started.elapsed());
        acked.insert(marker);
        req.drop_session(s).unwrap();
        req.drop_store(store).unwrap();
        assert_eq!(integrity(&session_path(&b, &id)), "ok", "round {round}");
    }
    // Host A's view agrees with B's.
    let mut req = host_test::runtime().request(&a).unwrap();
    let store = req.open_store(&config).unwrap().unwrap();
    let s = req.store(&store).load(&id).unwrap().unwrap().unwrap();
    let on_a: BTreeSet<String> = req
        .session(&s)
        .keys()
        .unwrap()
        .unwrap()
        .into_iter()
        .collect();
    assert!(acked.is_subset(&on_a));
    assert!(
        worst_write < Duration::from_millis(u64::from(lease_ms) * 3 + 2000),
        "host B's write took {worst_write:?} to recover the lock (lease {lease_ms} ms)"
    );
    println!(
        "{kills} kills on host A, {locks_left} left the lock behind: {} acknowledged writes \
         all present on both hosts; host B's slowest write {worst_write:?} (lease {lease_ms} ms)",
        acked.len()
    );
}

/// Two edge servers, one per host, and one visitor with two tabs: two
/// concurrent clients sharing the session cookie, each alternating its
/// requests between the two servers. Every visit is counted exactly once,
/// no request fails, and the session cookie never changes.
#[test]
fn two_edge_servers_count_every_visit_once() {
    let _turn = turn();
    const VISITS_PER_CLIENT: usize = 60;
    let (_volume, a, b) = two_hosts(&FormatOptions::default(), &fresh_names());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), async {
            let compiled = edge_demo();
            let env = [("SESSIONS_SHARED_DIRECTORY", "1")];
            let mut servers = Vec::new();
            let mut urls = Vec::new();
            for dir in [&a, &b] {
                let server = compiled
                    .with_storage(dir.as_path())
                    .unwrap()
                    .with_env(&env)
                    .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                    .await
                    .unwrap();
                urls.push(Url::parse(&server.url()).unwrap());
                servers.push(server);
            }
            // The first visit, on host A, starts the session.
            let jar = Arc::new(Jar::default());
            let first = browser(&jar).get(urls[0].clone()).send().await.unwrap();
            assert_eq!(first.status(), StatusCode::OK);
            assert_eq!(visit_number(&first.text().await.unwrap()), 1);
            let sid = sid_of(&jar, &urls[0]).expect("a session cookie");

            let tab = |offset: usize| {
                let (jar, urls, sid) = (jar.clone(), urls.clone(), sid.clone());
                tokio::spawn(async move {
                    let client = browser(&jar);
                    let mut seen = Vec::new();
                    for i in 0..VISITS_PER_CLIENT {
                        let url = urls[(i + offset) % 2].clone();
                        let response = client.get(url.clone()).send().await.unwrap();
                        let status = response.status();
                        let new_cookie = response
                            .headers()
                            .get_all(SET_COOKIE)
                            .iter()
                            .map(|v| v.to_str().unwrap().to_owned())
                            .find(|c| !c.starts_with(&format!("sid={sid}")));
                        let body = response.text().await.unwrap();
                        assert_eq!(status, StatusCode::OK, "visit {i} on {url}: {body}");
                        assert_eq!(new_cookie, None, "visit {i} on {url}: a new session");
                        seen.push(visit_number(&body));
                    }
                    seen
                })
            };
            let (one, two) = tokio::join!(tab(0), tab(1));
            let mut numbers: Vec<u64> = one.unwrap().into_iter().chain(two.unwrap()).collect();
            numbers.sort_unstable();
            let expected: Vec<u64> = (2..=(1 + 2 * VISITS_PER_CLIENT as u64)).collect();
            assert_eq!(numbers, expected, "each visit counted exactly once");
            assert_eq!(sid_of(&jar, &urls[1]).as_deref(), Some(sid.as_str()));
            for server in servers {
                server.stop().await;
            }
        })
        .await
        .expect("the test ran past its deadline");
    });
}

/// The composed demo, compiled once.
fn edge_demo() -> &'static EdgeServer {
    static SERVER: OnceLock<EdgeServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let composed = sqlite_sessions_artifacts::edge_demo().unwrap_or_else(|e| panic!("{e}"));
        let options = ServerOptions::new(composed, std::env::temp_dir());
        EdgeServer::new(&options).expect("compiling the composed edge demo")
    })
}

/// A client with `jar`, no redirects followed, a timeout on every request.
fn browser(jar: &Arc<Jar>) -> Client {
    Client::builder()
        .cookie_provider(jar.clone())
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap()
}

/// The session cookie `jar` sends to `url`.
fn sid_of(jar: &Jar, url: &Url) -> Option<String> {
    let header = jar.cookies(url)?;
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix("sid="))
        .map(str::to_owned)
}

/// The visit number the demo's home page shows.
fn visit_number(body: &str) -> u64 {
    body.split("<strong id=\"visits\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no visit number in {body}"))
}
