//! `sessions-admin`: inspect and clean a session directory, or a
//! `wasi:keyvalue` bucket in Redis or Valkey (`--kv`, `--kv-cluster`).
//!
//! It runs the sqlite-sessions component itself (through the embedding
//! library's `Runtime`, one instance per invocation), so every rule is the
//! store's own: the same id parsing, id → file-name hashing, expiry
//! arithmetic and sweep.
//! Listings use the component's `admin` interface, which reads metadata
//! without counting as activity; deleting goes through `store.sweep` and
//! `store.destroy-id`, which never touch a file that is not a session of
//! this store.
//!
//! ```text
//! sessions-admin --dir ./sessions ls | show <id> | sweep | stats | destroy <id> | check
//! sessions-admin --kv redis://127.0.0.1:6379/ ls | ...
//! sessions-admin --kv-cluster redis://127.0.0.1:7000/,redis://127.0.0.1:7001/ ls | ...
//! ```
//!
//! Over Redis it runs the store's key-value build on the bucket the
//! application uses (`--bucket`, default `default`; `--kv-prefix` must
//! match the host's key prefix, default none).
//!
//! Exit codes: see [`exit`].

mod mounts;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sqlite_sessions_host::admin::{CheckResult, OtherEntry, OtherKind, SessionInfo};
use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions};
use sqlite_sessions_host::{
    default_config, DirectoryCheck, Error, FakeClock, Request, RequestOptions, Runtime,
    RuntimeOptions, SessionStorage, StoreHandle,
};

/// The process exit codes, so scripts can branch on what went wrong.
mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// A storage error, a session locked past the busy timeout, or a bug
    /// (the component trapped). The message says which.
    pub const FAILURE: u8 = 1;
    /// Bad arguments or store settings (clap also uses 2).
    pub const USAGE: u8 = 2;
    /// `show`/`destroy`: no session has this id.
    pub const NOT_FOUND: u8 = 3;
    /// `show`/`destroy`: the id is not a session id (a lowercase UUID v4).
    pub const INVALID_ID: u8 = 4;
    /// The session directory is missing or is not a directory (or, with
    /// `--kv`, the Redis URL is unusable).
    pub const BAD_DIRECTORY: u8 = 5;
    /// `ls`/`stats` finished, but the directory holds entries that are not
    /// sessions of this store (each was named on stderr and left alone).
    pub const FOREIGN_ENTRIES: u8 = 6;
    /// `check`: the directory, or its mount's settings, fail a property the
    /// store relies on (each failure was named, with what to change).
    pub const UNSAFE_DIRECTORY: u8 = 7;
}

#[derive(Parser)]
#[command(
    name = "sessions-admin",
    version,
    about = "Inspect and clean a sqlite-sessions directory, through the component itself.",
    after_help = "Exit codes: 0 ok, 1 storage error or bug, 2 usage, 3 no such session, \
                  4 invalid id, 5 missing or unusable directory (or Redis URL), 6 the \
                  directory holds entries that are not sessions (listed on stderr, left alone), \
                  7 `check` found the directory unsafe (each failure says what to change)."
)]
struct Cli {
    /// The session directory: the host directory the application preopens
    /// for the store.
    #[arg(long, default_value = "./sessions", conflicts_with_all = ["kv", "kv_cluster"])]
    dir: PathBuf,

    #[command(flatten)]
    kv: KvArgs,

    #[command(flatten)]
    store: StoreArgs,

    /// The component to run. Default: the one this binary was built with.
    #[arg(long, value_name = "WASM")]
    component: Option<PathBuf>,

    /// FOR TESTS ONLY: the wall-clock time (Unix milliseconds) the component
    /// sees, which decides what has expired. Hidden from --help; operators
    /// never need it.
    #[arg(long, hide = true, value_name = "MS")]
    now_ms: Option<u64>,

    #[command(subcommand)]
    command: Command,
}

/// The store settings that change what the CLI sees. They must match the
/// application's `config`: the timeouts decide what is expired, and the
/// file-name secret decides which file an id maps to.
#[derive(Args)]
struct StoreArgs {
    /// The application's `idle-timeout-seconds` [component default: 86400; 0 = off].
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// The application's `absolute-timeout-seconds` [component default: 2592000; 0 = off].
    #[arg(long, value_name = "SECONDS")]
    absolute_timeout: Option<u64>,
    /// A file holding the application's `file-name-secret` (raw bytes), if it sets one.
    #[arg(long, value_name = "PATH")]
    file_name_secret_file: Option<PathBuf>,
    /// How long to wait for a session another request holds locked [component default: 5000].
    #[arg(long, value_name = "MS")]
    busy_timeout_ms: Option<u32>,
    /// The application's `lock-lease-ms` [component default: 2000]: `sweep`
    /// watches a lock left without a session for this long before removing
    /// it, and `check` weighs cache timeouts against it.
    #[arg(long, value_name = "MS")]
    lock_lease_ms: Option<u32>,
}

/// A bucket in Redis or Valkey instead of a directory: the store's
/// key-value build runs on it.
#[derive(Args)]
struct KvArgs {
    /// The Redis or Valkey server holding the bucket, e.g. redis://127.0.0.1:6379/.
    #[arg(long, value_name = "URL", conflicts_with = "kv_cluster")]
    kv: Option<String>,
    /// A Redis or Valkey cluster holding the bucket: the URLs of some of its nodes.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',')]
    kv_cluster: Option<Vec<String>>,
    /// The bucket identifier the application opens (its `config.directory`).
    #[arg(long, default_value = "default")]
    bucket: String,
    /// The prefix the host puts before every key (default: none, as Spin does).
    #[arg(long, default_value = "", value_name = "PREFIX")]
    kv_prefix: String,
}

impl KvArgs {
    /// The buckets, if a server was named.
    fn buckets(&self) -> Outcome<Option<Buckets>> {
        let options = RedisOptions {
            key_prefix: self.kv_prefix.clone(),
            ..RedisOptions::default()
        };
        let bad = |e: sqlite_sessions_host::keyvalue::ConfigError| {
            Failure::new(exit::BAD_DIRECTORY, e.to_string())
        };
        let builder = Buckets::builder();
        let builder = match (&self.kv, &self.kv_cluster) {
            (Some(url), _) => builder.redis(&self.bucket, url, &options).map_err(bad)?,
            (None, Some(urls)) => {
                let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
                builder
                    .redis_cluster(&self.bucket, &nodes, &options)
                    .map_err(bad)?
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(builder.build()))
    }
}

#[derive(Subcommand)]
enum Command {
    /// List every session: file (a hash: ids cannot be shown), created, last
    /// access, expiry, key count and bytes. Read-only.
    Ls {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Session files read per component call.
        #[arg(long, default_value_t = 256)]
        budget: u32,
    },
    /// Print one session's keys and values as a JSON object on stdout
    /// (metadata on stderr). Read-only: not activity, and an expired session
    /// is shown, not deleted.
    Show {
        /// The session id (the cookie's value without any signature).
        id: String,
    },
    /// Delete expired sessions (the component's `store.sweep`), a slice of
    /// --budget files at a time, with a progress bar on long runs.
    Sweep {
        /// Session files examined per component call.
        #[arg(long, default_value_t = 100)]
        budget: u32,
    },
    /// Session count, keys, total bytes and the expired fraction. Read-only.
    Stats {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Session files read per component call.
        #[arg(long, default_value_t = 256)]
        budget: u32,
    },
    /// Delete the session with this id.
    Destroy {
        /// The session id.
        id: String,
    },
    /// Check that the directory does what the store relies on: the
    /// component's self-check of this host's mount (creates and removes a
    /// probe directory inside it; touches no session), then what the
    /// mount's settings say about several hosts sharing it (filesystem type,
    /// NFS options, a JuiceFS client's settings when readable, which needs
    /// root). Run it on every host. Exit code 7 when anything fails.
    Check {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Why the command stopped: a message for stderr and an exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// A trap or a failure of the embedding: always a bug or a broken setup.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::new(
            exit::FAILURE,
            format!("running the component failed: {e:#}"),
        )
    }
}

type Outcome<T = u8> = Result<T, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(&cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("sessions-admin: {}", f.message);
            f.code
        }
    };
    ExitCode::from(code)
}

fn run(cli: &Cli) -> Outcome {
    let mut admin = Admin::open(cli)?;
    let outcome = match &cli.command {
        Command::Ls { json, budget } => admin.ls(*json, *budget),
        Command::Show { id } => admin.show(id),
        Command::Sweep { budget } => admin.sweep(*budget),
        Command::Stats { json, budget } => admin.stats(*json, *budget),
        Command::Destroy { id } => admin.destroy(id),
        Command::Check { json } => admin.check(*json, cli.store.lock_lease_ms),
    };
    // Run the guest's destructor, as a host must.
    admin.req.drop_store(admin.store)?;
    outcome
}

/// One component instance with the store opened on the session directory
/// or bucket.
struct Admin {
    /// The directory or bucket, in words.
    place: String,
    /// The session directory; `None` on a bucket.
    dir: Option<PathBuf>,
    req: Request,
    store: StoreHandle,
}

impl Admin {
    fn open(cli: &Cli) -> Outcome<Admin> {
        let buckets = cli.kv.buckets()?;
        let mut config = default_config();
        let (storage, place): (SessionStorage, String) = match buckets {
            Some(buckets) => {
                config.directory = cli.kv.bucket.clone();
                let server = match (&cli.kv.kv, &cli.kv.kv_cluster) {
                    (Some(url), _) => url.clone(),
                    (None, urls) => format!(
                        "cluster {}",
                        urls.iter().flatten().cloned().collect::<Vec<_>>().join(",")
                    ),
                };
                (
                    buckets.into(),
                    format!("bucket {:?} on {server}", cli.kv.bucket),
                )
            }
            None => {
                check_directory(&cli.dir)?;
                ((&cli.dir).into(), cli.dir.display().to_string())
            }
        };
        config.idle_timeout_seconds = cli.store.idle_timeout;
        config.absolute_timeout_seconds = cli.store.absolute_timeout;
        config.busy_timeout_ms = cli.store.busy_timeout_ms;
        config.lock_lease_ms = cli.store.lock_lease_ms;
        if let Some(path) = &cli.store.file_name_secret_file {
            let secret = fs::read(path).map_err(|e| {
                Failure::new(
                    exit::USAGE,
                    format!("reading --file-name-secret-file {}: {e}", path.display()),
                )
            })?;
            config.file_name_secret = Some(secret);
        }

        let kv = storage.buckets().is_some();
        let runtime = match &cli.component {
            Some(path) => Runtime::from_file(path)?,
            None => {
                let built = if kv {
                    sqlite_sessions_artifacts::store_kv()
                } else {
                    sqlite_sessions_artifacts::store()
                }
                .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
                Runtime::from_file_with(built, RuntimeOptions::cached_beside(built))?
            }
        };
        if runtime.imports_keyvalue() != kv {
            return Err(Failure::new(
                exit::USAGE,
                if kv {
                    "--component is the directory build of the store; --kv needs its \
                     key-value build (sqlite_sessions_kv.wasm)"
                } else {
                    "--component is the key-value build of the store; pass --kv or \
                     --kv-cluster, or use its directory build (sqlite_sessions.wasm)"
                },
            ));
        }
        let options = RequestOptions {
            wall_clock: cli
                .now_ms
                .map(|ms| FakeClock::new(UNIX_EPOCH + Duration::from_millis(ms))),
            ..RequestOptions::default()
        };
        let mut req = runtime.request_with(storage, options)?;
        let store = req.open_store(&config)?.map_err(|e| match e {
            Error::Config(m) => Failure::new(exit::USAGE, format!("invalid store settings: {m}")),
            other => component_failure(other),
        })?;
        let dir = (!kv).then(|| cli.dir.clone());
        Ok(Admin {
            place,
            dir,
            req,
            store,
        })
    }

    /// Every session and every other entry, one `list-sessions` slice at a time.
    fn list_all(&mut self, budget: u32) -> Outcome<(Vec<SessionInfo>, Vec<OtherEntry>)> {
        let (mut sessions, mut others) = (Vec::new(), Vec::new());
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .req
                .admin(&self.store)
                .list_sessions(cursor.as_deref(), budget)?
                .map_err(component_failure)?;
            sessions.extend(page.sessions);
            others.extend(page.others);
            cursor = page.cursor;
            if cursor.is_none() {
                return Ok((sessions, others));
            }
        }
    }

    fn ls(&mut self, json: bool, budget: u32) -> Outcome {
        let (sessions, others) = self.list_all(budget)?;
        if json {
            let value = serde_json::json!({
                "sessions": sessions.iter().map(info_json).collect::<Vec<_>>(),
                "others": others.iter().map(other_json).collect::<Vec<_>>(),
            });
            println!("{value:#}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{:<70}  {:<20}  {:<20}  {:<20}  {:<7}  {:>5}  {:>10}",
                "FILE", "CREATED", "LAST ACCESS", "EXPIRES", "STATE", "KEYS", "BYTES"
            );
            for s in &sessions {
                let _ = writeln!(
                    out,
                    "{:<70}  {:<20}  {:<20}  {:<20}  {:<7}  {:>5}  {:>10}",
                    s.file,
                    timestamp(s.created_ms),
                    timestamp(s.last_access_ms),
                    s.expires_at_ms.map_or("never".into(), timestamp),
                    if s.expired { "expired" } else { "live" },
                    s.key_count,
                    s.total_bytes
                );
            }
            let expired = sessions.iter().filter(|s| s.expired).count();
            let _ = writeln!(out, "{} session(s), {expired} expired", sessions.len());
        }
        Ok(self.report_others(&others))
    }

    fn stats(&mut self, json: bool, budget: u32) -> Outcome {
        let (sessions, others) = self.list_all(budget)?;
        let count = sessions.len() as u64;
        let expired = sessions.iter().filter(|s| s.expired).count() as u64;
        let fraction = if count == 0 {
            0.0
        } else {
            expired as f64 / count as f64
        };
        let keys: u64 = sessions.iter().map(|s| u64::from(s.key_count)).sum();
        let total_bytes: u64 = sessions.iter().map(|s| s.total_bytes).sum();
        let file_bytes: u64 = sessions.iter().map(|s| s.file_bytes).sum();
        if json {
            let value = serde_json::json!({
                "sessions": count,
                "expired": expired,
                "expired_fraction": fraction,
                "keys": keys,
                "total_bytes": total_bytes,
                "file_bytes": file_bytes,
                "other_entries": others.len(),
            });
            println!("{value:#}");
        } else {
            println!("sessions        {count}");
            println!("expired         {expired} ({:.1}%)", fraction * 100.0);
            println!("keys            {keys}");
            println!("total bytes     {total_bytes} (keys and values)");
            println!("file bytes      {file_bytes} (on disk)");
            println!("other entries   {}", others.len());
        }
        Ok(self.report_others(&others))
    }

    fn show(&mut self, id: &str) -> Outcome {
        let dump = self
            .req
            .admin(&self.store)
            .inspect(id)?
            .map_err(component_failure)?
            .ok_or_else(|| not_found(id))?;
        // The component's own JSON text for each value, so numbers come out
        // exactly as the application's `get-json` would return them.
        let mut out = String::from("{");
        let mut not_json = Vec::new();
        for (i, e) in dump.entries.iter().enumerate() {
            let value = match &e.json {
                Some(text) => text.clone(),
                None => {
                    not_json.push(e.key.as_str());
                    serde_json::json!({ "$cbor_hex": hex(&e.value) }).to_string()
                }
            };
            let sep = if i == 0 { "" } else { "," };
            out += &format!(
                "{sep}\n  {}: {value}",
                serde_json::Value::from(e.key.as_str())
            );
        }
        out += if dump.entries.is_empty() { "}" } else { "\n}" };
        println!("{out}");

        let i = &dump.info;
        eprintln!(
            "session file {}: created {}, last access {}, {} {}, {} key(s), {} bytes",
            i.file,
            timestamp(i.created_ms),
            timestamp(i.last_access_ms),
            if i.expired { "EXPIRED at" } else { "expires" },
            i.expires_at_ms.map_or("never".into(), timestamp),
            i.key_count,
            i.total_bytes,
        );
        if i.expired {
            eprintln!("note: the next sweep, or the application's next load of it, deletes it");
        }
        if !not_json.is_empty() {
            eprintln!(
                "note: no JSON form, shown as {{\"$cbor_hex\": ...}}: {}",
                not_json.join(", ")
            );
        }
        Ok(exit::OK)
    }

    fn destroy(&mut self, id: &str) -> Outcome {
        let destroyed = self
            .req
            .store(&self.store)
            .destroy_id(id)?
            .map_err(component_failure)?;
        if !destroyed {
            return Err(not_found(id));
        }
        println!("destroyed session {id}");
        Ok(exit::OK)
    }

    fn sweep(&mut self, budget: u32) -> Outcome {
        let started = Instant::now();
        let (mut examined, mut deleted, mut slices) = (0u64, 0u64, 0u32);
        let mut cursor: Option<String> = None;
        // Created only once a pass needs a second slice, so short runs stay
        // quiet; indicatif draws nothing when stderr is not a terminal.
        let mut bar: Option<ProgressBar> = None;
        loop {
            let p = self
                .req
                .store(&self.store)
                .sweep(cursor.as_deref(), budget)?
                .map_err(component_failure)?;
            slices += 1;
            examined += u64::from(p.examined);
            deleted += u64::from(p.deleted);
            cursor = p.cursor;
            if cursor.is_none() {
                break;
            }
            let (length, message) = (
                examined + p.remaining_estimate,
                format!("{deleted} deleted"),
            );
            match &bar {
                Some(bar) => {
                    bar.set_length(length);
                    bar.set_message(message);
                    bar.set_position(examined);
                }
                None => {
                    bar = Some(
                        progress_bar(length)
                            .with_message(message)
                            .with_position(examined),
                    )
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        println!(
            "swept {}: deleted {deleted} expired session(s), examined {examined} session \
             file(s) in {slices} slice(s), {:.2?}",
            self.place,
            started.elapsed()
        );
        Ok(exit::OK)
    }

    fn check(&mut self, json: bool, lease_ms: Option<u32>) -> Outcome {
        let Some(dir) = self.dir.clone() else {
            return Err(Failure::new(
                exit::USAGE,
                "check is for a session directory: a bucket's compare-and-swap needs no \
                 filesystem semantics checked",
            ));
        };
        let results = self
            .req
            .admin(&self.store)
            .check_directory()?
            .map_err(component_failure)?;
        let lease = Duration::from_millis(lease_ms.unwrap_or(DEFAULT_LEASE_MS).into());
        let mount = mounts::mount_of(&dir).map_err(|e| {
            Failure::new(
                exit::FAILURE,
                format!("reading /proc/self/mountinfo for {}: {e}", dir.display()),
            )
        })?;
        let findings = mount
            .as_ref()
            .map(|m| mounts::findings(m, lease))
            .unwrap_or_default();
        let failures = results.iter().filter(|r| !r.passed).count()
            + findings
                .iter()
                .filter(|f| f.level == mounts::Level::Fail)
                .count();
        if json {
            let value = serde_json::json!({
                "directory": dir.display().to_string(),
                "mount": mount.as_ref().map(|m| serde_json::json!({
                    "point": m.point.display().to_string(),
                    "type": m.fstype,
                    "source": m.source,
                })),
                "checks": results.iter().map(|r| serde_json::json!({
                    "check": check_name(r.check),
                    "passed": r.passed,
                    "detail": r.detail,
                })).collect::<Vec<_>>(),
                "mount_settings": findings.iter().map(|f| serde_json::json!({
                    "setting": f.name,
                    "level": level_name(f.level),
                    "detail": f.detail,
                })).collect::<Vec<_>>(),
                "failures": failures,
            });
            println!("{value:#}");
        } else {
            print_check(&dir, mount.as_ref(), &results, &findings);
        }
        if failures == 0 {
            return Ok(exit::OK);
        }
        eprintln!(
            "sessions-admin: {failures} problem(s) in {}: see each FAIL above for what to change",
            dir.display()
        );
        Ok(exit::UNSAFE_DIRECTORY)
    }

    /// Names every entry that is not a live session on stderr; the exit code
    /// is `FOREIGN_ENTRIES` if any is not ours at all.
    fn report_others(&self, others: &[OtherEntry]) -> u8 {
        let mut foreign = 0;
        for o in others {
            let (level, what) = match &o.kind {
                OtherKind::ForeignName => ("warning", "not a file this store writes".to_string()),
                OtherKind::NotASession(m) => (
                    "warning",
                    format!("named like a session file, but not a session database ({m})"),
                ),
                OtherKind::Companion => (
                    "note",
                    "lock file of a session, an old SQLite journal (one that stays is a crash \
                     leftover), or the live-session counter"
                        .to_string(),
                ),
                OtherKind::Busy => (
                    "note",
                    "session locked by another request past the busy timeout; not read".to_string(),
                ),
                OtherKind::Destroyed => (
                    "note",
                    "destroyed session not yet unlinked; the next sweep removes it".to_string(),
                ),
            };
            if level == "warning" {
                foreign += 1;
            }
            eprintln!("{level}: {}: {what}; left alone", o.file);
        }
        if foreign == 0 {
            return exit::OK;
        }
        eprintln!(
            "sessions-admin: {foreign} entr{} in {} {} not session files of this store \
             (nothing was changed)",
            if foreign == 1 { "y" } else { "ies" },
            self.place,
            if foreign == 1 { "is" } else { "are" },
        );
        exit::FOREIGN_ENTRIES
    }
}

/// The component's default `lock-lease-ms`.
const DEFAULT_LEASE_MS: u32 = 2000;

fn check_name(check: DirectoryCheck) -> &'static str {
    match check {
        DirectoryCheck::ExclusiveCreate => "exclusive-create",
        DirectoryCheck::ReplacedIdentity => "replaced-identity",
        DirectoryCheck::ReplacedLinkCount => "replaced-link-count",
        DirectoryCheck::RenamedInWhole => "renamed-in-whole",
        DirectoryCheck::ExactMtime => "exact-mtime",
        DirectoryCheck::Listing => "listing",
    }
}

fn level_name(level: mounts::Level) -> &'static str {
    match level {
        mounts::Level::Ok => "ok",
        mounts::Level::Note => "note",
        mounts::Level::Fail => "FAIL",
    }
}

fn print_check(
    dir: &Path,
    mount: Option<&mounts::Mount>,
    results: &[CheckResult],
    findings: &[mounts::Finding],
) {
    let mut out = std::io::stdout().lock();
    let _ = match mount {
        Some(m) => writeln!(
            out,
            "{}: {} ({}) mounted on {}",
            dir.display(),
            m.fstype,
            m.source,
            m.point.display()
        ),
        None => writeln!(
            out,
            "{}: on no mount listed in /proc/self/mountinfo",
            dir.display()
        ),
    };
    let _ = writeln!(out, "this host's mount, as the component finds it:");
    for r in results {
        let level = if r.passed { "ok" } else { "FAIL" };
        let _ = writeln!(out, "  {level:<5} {:<20} {}", check_name(r.check), r.detail);
    }
    if !findings.is_empty() {
        let _ = writeln!(out, "the mount's settings, for several hosts sharing it:");
        for f in findings {
            let _ = writeln!(
                out,
                "  {:<5} {:<20} {}",
                level_name(f.level),
                f.name,
                f.detail
            );
        }
    }
}

/// Checked before loading the component, for a clear message: the store
/// itself would only say that the preopen failed.
fn check_directory(dir: &Path) -> Outcome<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Failure::new(
            exit::BAD_DIRECTORY,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::new(
            exit::BAD_DIRECTORY,
            format!("session directory {} does not exist", dir.display()),
        )),
        Err(e) => Err(Failure::new(
            exit::BAD_DIRECTORY,
            format!("cannot use session directory {}: {e}", dir.display()),
        )),
    }
}

fn not_found(id: &str) -> Failure {
    Failure::new(
        exit::NOT_FOUND,
        format!(
            "no session with id {id} (destroyed, emptied or swept; if the application sets \
             a file-name-secret, pass it with --file-name-secret-file)"
        ),
    )
}

/// The component's typed errors, as messages and exit codes.
fn component_failure(e: Error) -> Failure {
    match e {
        Error::InvalidId => Failure::new(
            exit::INVALID_ID,
            "invalid session id: expected a lowercase UUID v4 such as \
             1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        ),
        Error::Busy => Failure::new(
            exit::FAILURE,
            "a session stayed locked by another request past the busy timeout; retry later",
        ),
        Error::Storage(f) => Failure::new(
            exit::FAILURE,
            format!("storage error ({:?}): {}", f.kind, f.message),
        ),
        Error::Config(m) => Failure::new(exit::USAGE, format!("invalid store settings: {m}")),
        Error::UnsafeDirectory(p) => Failure::new(
            exit::UNSAFE_DIRECTORY,
            format!("unsafe directory ({}): {}", check_name(p.check), p.message),
        ),
        Error::InvalidValue(m) => Failure::new(exit::USAGE, format!("invalid argument: {m}")),
        other => Failure::new(exit::FAILURE, format!("unexpected error: {other:?}")),
    }
}

fn progress_bar(length: u64) -> ProgressBar {
    ProgressBar::new(length).with_style(
        ProgressStyle::with_template(
            "sweeping {bar:40} {pos}/~{len} session files, {msg} ({elapsed})",
        )
        .expect("a valid progress template"),
    )
}

fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn info_json(s: &SessionInfo) -> serde_json::Value {
    serde_json::json!({
        "file": s.file,
        "created_ms": s.created_ms,
        "last_access_ms": s.last_access_ms,
        "expires_at_ms": s.expires_at_ms,
        "expired": s.expired,
        "key_count": s.key_count,
        "total_bytes": s.total_bytes,
        "file_bytes": s.file_bytes,
    })
}

fn other_json(o: &OtherEntry) -> serde_json::Value {
    let (kind, message) = match &o.kind {
        OtherKind::ForeignName => ("foreign-name", None),
        OtherKind::Companion => ("companion", None),
        OtherKind::NotASession(m) => ("not-a-session", Some(m.as_str())),
        OtherKind::Busy => ("busy", None),
        OtherKind::Destroyed => ("destroyed", None),
    };
    serde_json::json!({ "file": o.file, "kind": kind, "message": message })
}
