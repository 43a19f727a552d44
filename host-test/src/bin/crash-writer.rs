//! A victim for the SIGKILL test (`tests/crash_process.rs`): writes keys
//! `k<from>`, `k<from+1>`, … into one session, one fresh instance per write as
//! a server would, and prints `ack <n>` after each write the store confirmed.
//! The test kills it with SIGKILL at a random moment and then checks that
//! every acknowledged key survived and the file is sound.
//!
//! Usage: `crash-writer (--dir PATH | --kv URL | --kv-cluster URL,URL,...)
//! [--kv-prefix P] --id ID --from N [--lease-ms MS] [--shared-directory]`; with
//! `--kv` it runs the store's key-value build on the bucket `default`;
//! `--shared-directory` is for a directory several hosts share
//! (`tests/shared_dir.rs`).

use anyhow::{bail, Context};
use host_test::fixtures::{storage_from_flags, BUCKET};
use sqlite_sessions_host::{default_config, Runtime, RuntimeOptions};
use std::io::Write;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut dir = None;
    let (mut kv, mut cluster, mut prefix) = (None, None, String::new());
    let mut id = None;
    let mut from = 0u64;
    let mut lease_ms = 200u32;
    let mut shared_directory = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--kv" => kv = Some(value()?),
            "--kv-cluster" => cluster = Some(value()?),
            "--kv-prefix" => prefix = value()?,
            "--id" => id = Some(value()?),
            "--from" => from = value()?.parse()?,
            "--lease-ms" => lease_ms = value()?.parse()?,
            "--shared-directory" => shared_directory = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    let Some(id) = id else {
        bail!("usage: crash-writer (--dir PATH | --kv URL | --kv-cluster URLS) --id ID --from N [--lease-ms MS] [--shared-directory]");
    };
    let storage = storage_from_flags(dir, kv, cluster, prefix)?;
    let kv = storage.buckets().is_some();
    let component = if kv {
        sqlite_sessions_artifacts::store_kv()?
    } else {
        sqlite_sessions_artifacts::store()?
    };
    let runtime = Runtime::from_file_with(component, RuntimeOptions::cached_beside(component))?;
    let mut config = default_config();
    if kv {
        config.directory = BUCKET.to_owned();
    }
    config.lock_lease_ms = Some(lease_ms);
    config.busy_timeout_ms = Some(30_000);
    if shared_directory {
        config.shared_directory = Some(true);
    }
    // Every round adds keys; long runs pass the default 1,024.
    config.max_keys = Some(1_000_000);
    let mut out = std::io::stdout().lock();
    for n in from.. {
        let mut req = runtime.request(&storage)?;
        let store = req
            .open_store(&config)?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let session = req
            .store(&store)
            .load(&id)?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .context("the session is gone")?;
        req.session(&session)
            .set_json(&format!("k{n}"), &n.to_string())?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        writeln!(out, "ack {n}")?;
        out.flush()?;
    }
    Ok(())
}
