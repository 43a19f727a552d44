//! One component instance with the store opened, and the commands that
//! read or delete sessions.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use sqlite_sessions_host::admin::{OtherEntry, OtherKind, SessionInfo};
use sqlite_sessions_host::{
    default_config, Error, FakeClock, Request, RequestOptions, Runtime, RuntimeOptions,
    SessionStorage, StoreHandle,
};

use crate::cli::Cli;
use crate::failure::{component_failure, exit, not_found, Failure, Outcome};
use crate::output::{hex, info_json, other_json, progress_bar, timestamp};
use indicatif::ProgressBar;

/// One component instance with the store opened on the session directory
/// or bucket.
pub(crate) struct Admin {
    /// The directory or bucket, in words.
    pub(crate) place: String,
    /// The session directory; `None` on a bucket.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) req: Request,
    pub(crate) store: StoreHandle,
}

impl Admin {
    pub(crate) fn open(cli: &Cli) -> Outcome<Admin> {
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
    pub(crate) fn list_all(&mut self, budget: u32) -> Outcome<(Vec<SessionInfo>, Vec<OtherEntry>)> {
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

    pub(crate) fn ls(&mut self, json: bool, budget: u32) -> Outcome {
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

    pub(crate) fn stats(&mut self, json: bool, budget: u32) -> Outcome {
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

    pub(crate) fn show(&mut self, id: &str) -> Outcome {
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

    pub(crate) fn destroy(&mut self, id: &str) -> Outcome {
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

    pub(crate) fn sweep(&mut self, budget: u32) -> Outcome {
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

    /// Names every entry that is not a live session on stderr; the exit code
    /// is `FOREIGN_ENTRIES` if any is not ours at all.
    pub(crate) fn report_others(&self, others: &[OtherEntry]) -> u8 {
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

/// Checked before loading the component, for a clear message: the store
/// itself would only say that the preopen failed.
pub(crate) fn check_directory(dir: &Path) -> Outcome<()> {
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
