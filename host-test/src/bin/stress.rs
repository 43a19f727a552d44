//! Drives the component from its own OS process, for the cross-process
//! concurrency test (`tests/component/concurrency.rs`) and for manual runs.
//!
//! Usage:
//!
//! ```text
//! stress increment (--dir D | --kv URL | --kv-cluster URL,URL,...) [--kv-prefix P]
//!        --id ID --count N [--key K] [--busy-timeout-ms MS] [--wait-for PATH]
//!        [--shared-directory] [--check-directory]
//! ```
//!
//! Loads session `ID` (which must exist) from directory `D` (or from the
//! bucket `default` in Redis, with the store's key-value build) and increments
//! `K` (default `n`) `N` times by 1, retrying `busy` answers. With
//! `--wait-for`, it prints `ready` once the instance is up and the session
//! loaded, then waits until `PATH` exists before starting, so that a test can
//! start several processes at the same moment. `--shared-directory` and
//! `--check-directory` set the store's settings of those names (several
//! hosts, each process playing one). At the end it prints one line:
//! `done last=<value> busy_retries=<n> elapsed_ms=<ms> start_ms=<unix ms> end_ms=<unix ms>`.

use anyhow::{bail, Context as _};
use host_test::fixtures::{storage_from_flags, BUCKET};
use host_test::stress;
use sqlite_sessions_host::{default_config, Runtime, RuntimeOptions, SessionStorage};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Args {
    storage: SessionStorage,
    id: String,
    key: String,
    count: u32,
    busy_timeout_ms: u32,
    wait_for: Option<PathBuf>,
    shared_directory: bool,
    check_directory: bool,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let kv = args.storage.buckets().is_some();
    let component = if kv {
        sqlite_sessions_artifacts::store_kv()?
    } else {
        sqlite_sessions_artifacts::store()?
    };
    let runtime = Runtime::from_file_with(component, RuntimeOptions::cached_beside(component))?;
    let mut config = default_config();
    config.busy_timeout_ms = Some(args.busy_timeout_ms);
    if kv {
        config.directory = BUCKET.to_owned();
    }
    if args.shared_directory {
        config.shared_directory = Some(true);
    }
    if args.check_directory {
        config.check_directory = Some(true);
    }
    let mut start_ms = 0;
    let run = stress::increment_worker(
        &runtime,
        &args.storage,
        &config,
        &args.id,
        &args.key,
        args.count,
        || {
            if let Some(go) = &args.wait_for {
                println!("ready");
                let _ = std::io::stdout().flush();
                while !go.exists() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            start_ms = unix_ms();
        },
    )?;
    println!(
        "done last={} busy_retries={} elapsed_ms={} start_ms={start_ms} end_ms={}",
        run.last,
        run.busy_retries,
        run.elapsed.as_millis(),
        unix_ms()
    );
    Ok(())
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    match it.next().as_deref() {
        Some("increment") => {}
        other => bail!("usage: stress increment (--dir D | --kv URL | --kv-cluster URLS) [--kv-prefix P] --id ID --count N [--key K] [--busy-timeout-ms MS] [--wait-for PATH] [--shared-directory] [--check-directory] (got {other:?})"),
    }
    let (mut dir, mut id, mut count) = (None, None, None);
    let (mut kv, mut cluster, mut prefix) = (None, None, String::new());
    let mut key = "n".to_string();
    let mut busy_timeout_ms = 60_000;
    let mut wait_for = None;
    let (mut shared_directory, mut check_directory) = (false, false);
    while let Some(flag) = it.next() {
        let switch = match flag.as_str() {
            "--shared-directory" => Some(&mut shared_directory),
            "--check-directory" => Some(&mut check_directory),
            _ => None,
        };
        if let Some(switch) = switch {
            *switch = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value)),
            "--kv" => kv = Some(value),
            "--kv-cluster" => cluster = Some(value),
            "--kv-prefix" => prefix = value,
            "--id" => id = Some(value),
            "--count" => count = Some(value.parse().context("--count")?),
            "--key" => key = value,
            "--busy-timeout-ms" => busy_timeout_ms = value.parse().context("--busy-timeout-ms")?,
            "--wait-for" => wait_for = Some(PathBuf::from(value)),
            other => bail!("unknown flag {other}"),
        }
    }
    let storage = storage_from_flags(dir, kv, cluster, prefix)?;
    Ok(Args {
        storage,
        id: id.context("--id is required")?,
        key,
        count: count.context("--count is required")?,
        busy_timeout_ms,
        wait_for,
        shared_directory,
        check_directory,
    })
}
