//! The `sessions-admin` binary, run for real against a session directory
//! prepared through the component on a fake clock: two sessions idle since
//! T0 (expired by `NOW_MS`), two recent ones, and one that never expires.
//! The commands every place supports (`ls`, `show`, `stats`, `sweep`,
//! `destroy`) run on a directory and, with `--kv`/`--kv-cluster`, on a
//! bucket in a real Redis, standalone and cluster.

use host_test::fixtures::{cbor, finish, Env};
use host_test::Backend;
use serde_json::{json, Value};
use sqlite_sessions_host::{Error, ExpirySettings, FakeClock, RequestOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const T0_MS: u64 = 1_800_000_000_000;
const DAY_MS: u64 = 86_400_000;
/// Two days and an hour after T0: the default 24 h idle timeout has expired
/// the sessions last used at T0, not those created at T0 + 2 days.
const NOW_MS: u64 = T0_MS + 2 * DAY_MS + 3_600_000;

/// One session the fixture made, and what the store must say about it.
#[derive(Clone, Debug)]
struct Made {
    id: String,
    /// `<shard>/<hash>.db`.
    file: String,
    created_ms: u64,
    expired: bool,
    never_expires: bool,
    /// Key → value as JSON (`None`: stored as raw CBOR, no JSON form).
    data: Vec<(&'static str, Value)>,
    total_bytes: u64,
}

struct Fixture {
    env: Env,
    ada: Made,
    cart: Made,
    carol: Made,
    dave: Made,
    keeper: Made,
}

impl Fixture {
    fn new() -> Self {
        Self::on(Backend::Dir)
    }

    fn on(backend: Backend) -> Self {
        let env = Env::on(backend);
        let ada = make(
            &env,
            T0_MS,
            &[("user", json!("ada")), ("n", json!(1))],
            false,
        );
        let cart = make(&env, T0_MS, &[("cart", json!([1, 2, 3]))], false);
        let carol = make(&env, T0_MS + 2 * DAY_MS, &[("user", json!("carol"))], false);
        let dave = make(
            &env,
            T0_MS + 2 * DAY_MS,
            &[("flags", json!({"beta": true})), ("blob", Value::Null)],
            false,
        );
        let keeper = make(&env, T0_MS, &[("k", json!("v"))], true);
        Fixture {
            env,
            ada,
            cart,
            carol,
            dave,
            keeper,
        }
    }

    fn all(&self) -> [&Made; 5] {
        [&self.ada, &self.cart, &self.carol, &self.dave, &self.keeper]
    }

    fn dir(&self) -> &Path {
        self.env.path()
    }

    fn session_files(&self) -> Vec<String> {
        rel_strings(self.env.session_files())
    }
}

/// Creates a session at `at_ms` through the component. A `Value::Null` entry
/// is stored as the CBOR byte string h'0102', which has no JSON form.
fn make(env: &Env, at_ms: u64, data: &[(&'static str, Value)], never_expires: bool) -> Made {
    let before = rel_strings(env.session_files());
    let clock = FakeClock::at_unix_secs(at_ms / 1000);
    let (mut req, store) = env.request_with(RequestOptions {
        wall_clock: Some(clock),
        ..Default::default()
    });
    let s = req.store(&store).create().unwrap();
    if never_expires {
        req.session(&s)
            .set_expiry(ExpirySettings {
                idle_timeout_seconds: Some(0),
                absolute_timeout_seconds: Some(0),
                persistent_cookie: None,
            })
            .unwrap()
            .unwrap();
    }
    let mut total_bytes = 0;
    for (key, value) in data {
        let bytes = if value.is_null() {
            raw_blob()
        } else {
            cbor(&value.to_string())
        };
        req.session(&s).set(key, &bytes).unwrap().unwrap();
        total_bytes += (key.len() + bytes.len()) as u64;
    }
    let id = req.session(&s).id().unwrap();
    finish(req, store, s);
    let after = rel_strings(env.session_files());
    let new: Vec<_> = after.iter().filter(|f| !before.contains(f)).collect();
    assert_eq!(new.len(), 1, "{before:?} -> {after:?}");
    Made {
        id,
        file: new[0].clone(),
        created_ms: at_ms,
        expired: !never_expires && at_ms + DAY_MS <= NOW_MS,
        never_expires,
        data: data.to_vec(),
        total_bytes,
    }
}

/// CBOR byte string h'0102'.
fn raw_blob() -> Vec<u8> {
    vec![0x42, 0x01, 0x02]
}

fn rel_strings(paths: Vec<PathBuf>) -> Vec<String> {
    paths
        .into_iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect()
}

/// The outcome of one run of the binary.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// The flags that name `env`'s directory or bucket.
fn place(env: &Env) -> Vec<String> {
    let urls = env.server_urls();
    let prefix = ["--kv-prefix".to_owned(), env.prefix().to_owned()];
    match env.backend() {
        Backend::Dir => vec!["--dir".to_owned(), env.path().display().to_string()],
        Backend::Redis => [vec!["--kv".to_owned(), urls[0].clone()], prefix.to_vec()].concat(),
        Backend::Cluster => [
            vec!["--kv-cluster".to_owned(), urls.join(",")],
            prefix.to_vec(),
        ]
        .concat(),
    }
}

/// Runs `sessions-admin <env's place> --now-ms NOW_MS <args>`.
fn admin(env: &Env, args: &[&str]) -> Run {
    admin_at(env, NOW_MS, args)
}

fn admin_at(env: &Env, now_ms: u64, args: &[&str]) -> Run {
    run_admin(&place(env), now_ms, args)
}

/// Runs `sessions-admin --dir <dir> --now-ms NOW_MS <args>`, on any path.
fn admin_in(dir: &Path, args: &[&str]) -> Run {
    run_admin(
        &["--dir".to_owned(), dir.display().to_string()],
        NOW_MS,
        args,
    )
}

fn run_admin(place: &[String], now_ms: u64, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sessions-admin"))
        .args(place)
        .arg("--now-ms")
        .arg(now_ms.to_string())
        .args(args)
        .output()
        .expect("running sessions-admin");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `ls --json`'s sessions by file.
fn listed(run: &Run) -> BTreeMap<String, Value> {
    assert_eq!(run.code, 0, "{run:?}");
    run.json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["file"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

fn ls_shows_every_session_with_its_metadata(backend: Backend) {
    let fx = Fixture::on(backend);
    let run = admin(&fx.env, &["ls", "--json"]);
    let listed = listed(&run);
    assert_eq!(run.json()["others"], json!([]));
    assert_eq!(listed.len(), 5, "{listed:#?}");
    for made in fx.all() {
        let s = &listed[&made.file];
        assert_eq!(s["created_ms"], json!(made.created_ms), "{made:?}");
        // Never loaded again since creation.
        assert_eq!(s["last_access_ms"], json!(made.created_ms), "{made:?}");
        let expires = (!made.never_expires).then_some(made.created_ms + DAY_MS);
        assert_eq!(s["expires_at_ms"], json!(expires), "{made:?}");
        assert_eq!(s["expired"], json!(made.expired), "{made:?}");
        assert_eq!(s["key_count"], json!(made.data.len()), "{made:?}");
        assert_eq!(s["total_bytes"], json!(made.total_bytes), "{made:?}");
        let on_disk = fx.env.raw(&made.file).unwrap().len();
        assert_eq!(s["file_bytes"], json!(on_disk), "{made:?}");
    }

    // A budget of one file per component call walks to the same listing
    // (in another order, maybe: a bucket's keys come in no fixed order).
    let paged = admin(&fx.env, &["ls", "--json", "--budget", "1"]);
    assert_eq!(self::listed(&paged), listed);
    assert_eq!(paged.json()["others"], json!([]));

    let table = admin(&fx.env, &["ls"]);
    assert_eq!(table.code, 0, "{table:?}");
    for made in fx.all() {
        let line = table
            .stdout
            .lines()
            .find(|l| l.starts_with(&made.file))
            .unwrap_or_else(|| panic!("{} missing in\n{}", made.file, table.stdout));
        assert_eq!(line.contains(" expired "), made.expired, "{line}");
        assert_eq!(line.contains(" never "), made.never_expires, "{line}");
        // Ids never appear: file names are hashes.
        assert!(!table.stdout.contains(&made.id));
    }
    assert!(
        table.stdout.contains("5 session(s), 2 expired"),
        "{}",
        table.stdout
    );
    // Listing changed nothing: the expired sessions are still there.
    assert_eq!(fx.session_files().len(), 5);
}

fn show_prints_the_values_as_json_and_touches_nothing(backend: Backend) {
    let fx = Fixture::on(backend);
    let run = admin(&fx.env, &["show", &fx.carol.id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json(), json!({"user": "carol"}));
    assert!(run.stderr.contains(&fx.carol.file), "{}", run.stderr);

    // A value without a JSON form is shown as its CBOR, and named.
    let run = admin(&fx.env, &["show", &fx.dave.id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.json(),
        json!({"blob": {"$cbor_hex": "420102"}, "flags": {"beta": true}})
    );
    assert!(run.stderr.contains("blob"), "{}", run.stderr);

    // An expired session is shown, not deleted.
    let run = admin(&fx.env, &["show", &fx.ada.id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json(), json!({"n": 1, "user": "ada"}));
    assert!(run.stderr.contains("EXPIRED"), "{}", run.stderr);

    // Showing is not activity: hours later (past the 60 s activity
    // granularity, where a `load` would record an access) the last access
    // is still the creation time, and the expired session is still there.
    let later = NOW_MS + 3_600_000;
    assert_eq!(admin_at(&fx.env, later, &["show", &fx.carol.id]).code, 0);
    let listed = listed(&admin_at(&fx.env, later, &["ls", "--json"]));
    assert_eq!(
        listed[&fx.carol.file]["last_access_ms"],
        json!(fx.carol.created_ms)
    );
    assert!(listed.contains_key(&fx.ada.file));
}

fn stats_counts_sessions_bytes_and_the_expired_fraction(backend: Backend) {
    let fx = Fixture::on(backend);
    let run = admin(&fx.env, &["stats", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let file_bytes: u64 = fx
        .all()
        .iter()
        .map(|m| fx.env.raw(&m.file).unwrap().len() as u64)
        .sum();
    assert_eq!(
        run.json(),
        json!({
            "sessions": 5,
            "expired": 2,
            "expired_fraction": 0.4,
            "keys": fx.all().iter().map(|m| m.data.len()).sum::<usize>(),
            "total_bytes": fx.all().iter().map(|m| m.total_bytes).sum::<u64>(),
            "file_bytes": file_bytes,
            "other_entries": 0,
        })
    );
    let text = admin(&fx.env, &["stats"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.contains("sessions        5"), "{}", text.stdout);
    assert!(
        text.stdout.contains("expired         2 (40.0%)"),
        "{}",
        text.stdout
    );

    // An empty directory has nothing expired, rather than a division by zero.
    let empty = Env::on(backend);
    let run = admin(&empty, &["stats", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["sessions"], json!(0));
    assert_eq!(run.json()["expired_fraction"], json!(0.0));
}

fn sweep_deletes_exactly_the_expired_sessions(backend: Backend) {
    let fx = Fixture::on(backend);
    // Two files per component call: the 5 files take 3 slices.
    let run = admin(&fx.env, &["sweep", "--budget", "2"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The progress bar draws only on a terminal: piped output stays clean.
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // A bucket's key listing may hand a session out twice (Redis SCAN
    // does, while its table grows); each is still judged, and deleted, once.
    let swept = if backend.is_kv() {
        "deleted 2 expired session(s), examined "
    } else {
        "deleted 2 expired session(s), examined 5 session file(s) in 3 slice(s)"
    };
    assert!(run.stdout.contains(swept), "{}", run.stdout);
    let mut left = fx.session_files();
    left.sort();
    let mut live = vec![
        fx.carol.file.clone(),
        fx.dave.file.clone(),
        fx.keeper.file.clone(),
    ];
    live.sort();
    assert_eq!(left, live);
    // The survivors are intact, as the component sees them.
    let clock = FakeClock::at_unix_secs(NOW_MS / 1000);
    for made in [&fx.carol, &fx.dave, &fx.keeper] {
        let (mut req, store) = fx.env.request_with(RequestOptions {
            wall_clock: Some(clock.clone()),
            ..Default::default()
        });
        let s = req.store(&store).load(&made.id).unwrap().unwrap();
        let s = s.unwrap_or_else(|| panic!("{made:?} was swept"));
        assert_eq!(req.session(&s).len().unwrap(), Ok(made.data.len() as u32));
        finish(req, store, s);
    }
    // A second pass finds nothing more to do.
    let again = admin(&fx.env, &["sweep"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("deleted 0 expired session(s), examined "),
        "{}",
        again.stdout
    );
}

fn destroy_deletes_one_session_and_show_then_fails(backend: Backend) {
    let fx = Fixture::on(backend);
    let run = admin(&fx.env, &["destroy", &fx.carol.id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(fx.env.raw(&fx.carol.file).is_none());
    assert_eq!(fx.session_files().len(), 4);

    let show = admin(&fx.env, &["show", &fx.carol.id]);
    assert_eq!(show.code, 3, "{show:?}");
    assert!(show.stdout.is_empty(), "{show:?}");
    assert!(
        show.stderr.contains("no session with id"),
        "{}",
        show.stderr
    );
    let again = admin(&fx.env, &["destroy", &fx.carol.id]);
    assert_eq!(again.code, 3, "{again:?}");

    // Malformed ids are refused before they go near a path.
    for bad in ["../../etc/passwd", "NOT-AN-ID", &fx.ada.id.to_uppercase()] {
        for cmd in ["show", "destroy"] {
            let run = admin(&fx.env, &[cmd, bad]);
            assert_eq!(run.code, 4, "{cmd} {bad}: {run:?}");
            assert!(run.stderr.contains("invalid session id"), "{}", run.stderr);
        }
    }
    // Nothing else was deleted.
    assert_eq!(fx.session_files().len(), 4);
}

#[test]
fn a_missing_or_non_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-sessions");
    for cmd in [&["ls"][..], &["sweep"], &["stats"], &["show", "x"]] {
        let run = admin_in(&missing, cmd);
        assert_eq!(run.code, 5, "{cmd:?}: {run:?}");
        assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
        assert!(run.stderr.contains("no-such-sessions"), "{}", run.stderr);
    }
    // Not created as a side effect.
    assert!(!missing.exists());

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let run = admin_in(&file, &["ls"]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("is not a directory"), "{}", run.stderr);
}

#[test]
fn entries_that_are_not_sessions_are_reported_and_survive() {
    let fx = Fixture::new();
    let dir = fx.dir();
    // A foreign file and directory at the top level, one inside a shard, a
    // file named like a session that is not a database, and a journal
    // whose database is gone.
    let hash = |c: char| format!("cd{}", c.to_string().repeat(62));
    let strays: Vec<(String, &[u8])> = vec![
        ("notes.txt".into(), b"operator notes"),
        ("backup/old.db".into(), b"an old backup"),
        ("ab/README".into(), b"not a session"),
        (format!("cd/{}.db", hash('e')), b"definitely not SQLite"),
        (format!("cd/{}.db-journal", hash('f')), b"leftover"),
    ];
    for (rel, contents) in &strays {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
    }

    let run = admin(&fx.env, &["ls", "--json"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert_eq!(run.json()["sessions"].as_array().unwrap().len(), 5);
    let others: BTreeMap<String, String> = run.json()["others"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["file"].as_str().unwrap().to_string(),
                o["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("notes.txt".to_string(), "foreign-name"),
        ("backup".to_string(), "foreign-name"),
        ("ab/README".to_string(), "foreign-name"),
        (format!("cd/{}.db", hash('e')), "not-a-session"),
        (format!("cd/{}.db-journal", hash('f')), "companion"),
    ]
    .into_iter()
    .map(|(f, k)| (f, k.to_string()))
    .collect();
    assert_eq!(others, expected);
    for name in ["notes.txt", "backup", "ab/README", "not a session database"] {
        assert!(run.stderr.contains(name), "{name} in {}", run.stderr);
    }
    assert!(run.stderr.contains("4 entries"), "{}", run.stderr);

    // Paging reports each entry exactly once.
    let paged = admin(&fx.env, &["ls", "--json", "--budget", "1"]);
    assert_eq!(paged.code, 6, "{paged:?}");
    assert_eq!(paged.json(), run.json());

    let stats = admin(&fx.env, &["stats", "--json"]);
    assert_eq!(stats.code, 6, "{stats:?}");
    assert_eq!(stats.json()["sessions"], json!(5));
    assert_eq!(stats.json()["other_entries"], json!(5));

    // The sweep deletes the expired sessions and nothing else.
    let sweep = admin(&fx.env, &["sweep", "--budget", "1"]);
    assert_eq!(sweep.code, 0, "{sweep:?}");
    assert!(
        sweep.stdout.contains("deleted 2 expired session(s)"),
        "{}",
        sweep.stdout
    );
    for (rel, contents) in &strays {
        assert_eq!(
            std::fs::read(dir.join(rel)).unwrap(),
            *contents,
            "{rel} was touched"
        );
    }
    assert!(!dir.join(&fx.ada.file).exists());
    assert!(!dir.join(&fx.cart.file).exists());
    assert!(dir.join(&fx.carol.file).exists());
}

/// The `admin` interface itself, below the CLI: bad slices are typed
/// errors, and the listing walks the directory exactly as the sweep does.
#[test]
fn the_admin_interface_refuses_bad_slices_and_shares_the_sweep_cursor() {
    let fx = Fixture::new();
    let (mut req, store) = fx.env.request();
    let mut admin = req.admin(&store);
    assert!(matches!(
        admin.list_sessions(None, 0).unwrap(),
        Err(Error::InvalidValue(_))
    ));
    for bad in ["../x", "zz/notes.txt", ""] {
        assert!(
            matches!(
                admin.list_sessions(Some(bad), 1).unwrap(),
                Err(Error::InvalidValue(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        admin
            .inspect("00000000-0000-4000-8000-000000000000")
            .unwrap(),
        Ok(None)
    );
    assert_eq!(admin.inspect("nope").unwrap(), Err(Error::InvalidId));

    // A sweep slice's cursor resumes a listing where the sweep stopped.
    let first = req.store(&store).sweep(None, 2).unwrap().unwrap();
    assert_eq!(first.examined, 2);
    let rest = req
        .admin(&store)
        .list_sessions(first.cursor.as_deref(), 100)
        .unwrap()
        .unwrap();
    assert_eq!(rest.sessions.len(), 3);
    assert_eq!(rest.cursor, None);
    let mut all: Vec<String> = fx.all().iter().map(|m| m.file.clone()).collect();
    all.sort();
    assert_eq!(
        rest.sessions
            .iter()
            .map(|s| s.file.clone())
            .collect::<Vec<_>>(),
        all[2..].to_vec()
    );
    req.drop_store(store).unwrap();
}

host_test::on_every_backend!(
    ls_shows_every_session_with_its_metadata,
    show_prints_the_values_as_json_and_touches_nothing,
    stats_counts_sessions_bytes_and_the_expired_fraction,
    sweep_deletes_exactly_the_expired_sessions,
    destroy_deletes_one_session_and_show_then_fails,
);

/// A directory needs the directory build, a bucket the key-value build:
/// the other one is refused up front with a usage error, as are both
/// places at once.
#[test]
fn the_build_must_match_the_place() {
    let with = |env: &Env, component: &Path| {
        let args = ["--component".to_owned(), component.display().to_string()];
        run_admin(&[place(env), args.to_vec()].concat(), NOW_MS, &["ls"])
    };
    let bucket = Env::on(Backend::Redis);
    let run = with(&bucket, host_test::component());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("key-value build"), "{}", run.stderr);
    let dir = Env::new();
    let run = with(&dir, host_test::component_kv());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--kv"), "{}", run.stderr);

    let both = [
        "--dir".to_owned(),
        dir.path().display().to_string(),
        "--kv".to_owned(),
        bucket.server_urls()[0].clone(),
    ];
    let run = run_admin(&both, NOW_MS, &["ls"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[test]
fn check_passes_a_local_directory_and_leaves_it_as_it_was() {
    let fx = Fixture::new();
    let before = fx.session_files();
    let run = admin_in(fx.dir(), &["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    for check in [
        "exclusive-create",
        "replaced-identity",
        "replaced-link-count",
        "renamed-in-whole",
        "exact-mtime",
        "listing",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.trim_start().starts_with("ok") && l.contains(check)),
            "{check}: {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("local filesystem"), "{}", run.stdout);
    let json = admin_in(fx.dir(), &["check", "--json"]).json();
    assert_eq!(json["failures"], 0);
    assert_eq!(json["checks"].as_array().unwrap().len(), 6);
    // The probe is gone and every session is as it was.
    assert_eq!(fx.session_files(), before);
    assert!(std::fs::read_dir(fx.dir()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".sessions-check")));
}

/// JuiceFS's defaults, on a real volume: the component's check finds the
/// trash, and (run as root, as CI is) the client's settings show the name
/// caches too; exit code 7, each failure saying what to change.
#[test]
fn check_finds_what_is_wrong_with_juicefs_defaults() {
    use test_servers::{FormatOptions, JuiceFs, MountOptions};
    let mut volume =
        JuiceFs::start(&FormatOptions::juicefs_defaults()).unwrap_or_else(|e| panic!("{e}"));
    let mount = volume
        .mount(1, &MountOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))[0]
        .path()
        .to_owned();
    let run = admin_in(&mount, &["check"]);
    assert_eq!(run.code, 7, "{run:?}");
    let failed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("FAIL"))
        .collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("replaced-link-count") && l.contains("--trash-days 0")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("fuse.juicefs"), "{}", run.stdout);
    let is_root = std::fs::read(mount.join(".config")).is_ok();
    if is_root {
        for setting in ["trash", "entry-cache", "dir-entry-cache", "attr-cache"] {
            assert!(
                failed
                    .iter()
                    .any(|l| l.split_whitespace().nth(1) == Some(setting)),
                "{setting}: {}",
                run.stdout
            );
        }
    } else {
        assert!(run.stdout.contains("only root can"), "{}", run.stdout);
    }
    assert!(run.stderr.contains("problem(s)"), "{}", run.stderr);
    drop(volume);
}
