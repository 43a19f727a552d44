//! Section 4: `store.sweep` throughput inside wasmtime.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlite_sessions::{Store, StoreConfig};
use sqlite_sessions_host::{FakeClock, RequestOptions, Runtime};

use crate::setup::bench_config;

/// Section 4: the sessions are seeded natively with the same storage core (same files,
/// same expiry hints), which is much faster than seeding through the
/// component and does not change what is measured. 1% get a 60 s idle
/// timeout, the rest the default 24 h; the sweep's guest clock is set an hour
/// ahead, so exactly that 1% has expired. Each call runs in a fresh instance
/// with `budget` files, as a host with a per-request limit (or a cron
/// trigger) would run it.
pub fn sweep_bench(
    runtime: &Runtime,
    base: &Path,
    sessions: usize,
    budget: u32,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(base)?;
    let seed_start = Instant::now();
    let expired = seed_for_sweep(dir.path(), sessions)?;
    eprintln!(
        "(seeded {sessions} sessions natively in {:.1} s)",
        seed_start.elapsed().as_secs_f64()
    );
    let clock = FakeClock::default();
    clock.advance(Duration::from_secs(3600));

    println!(
        "sweep throughput ({}, {sessions} session files, budget {budget} per call, fresh instance per call)",
        base.display()
    );
    println!(
        "{:<44} {:>6} {:>9} {:>8} {:>10} {:>14}",
        "pass", "calls", "examined", "deleted", "total ms", "examined/s"
    );
    let first = sweep_pass(runtime, dir.path(), &clock, budget)?;
    anyhow::ensure!(
        first.examined == sessions as u64 && first.deleted == expired as u64,
        "sweep examined {} and deleted {}; expected {sessions} and {expired}",
        first.examined,
        first.deleted
    );
    first.print(&format!("hints right, {expired} expired (1%)"));

    // Make every hint stale (a time in the past), so every file is opened.
    let past = std::time::UNIX_EPOCH + Duration::from_secs(1);
    for entry in walk_files(dir.path())? {
        std::fs::File::options()
            .write(true)
            .open(&entry)?
            .set_modified(past)?;
    }
    let stale = sweep_pass(runtime, dir.path(), &clock, budget)?;
    anyhow::ensure!(stale.deleted == 0, "a stale hint deleted a live session");
    stale.print("hints stale: every file opened, 0 expired");
    let repaired = sweep_pass(runtime, dir.path(), &clock, budget)?;
    repaired.print("after the stale pass repaired the hints");
    Ok(())
}

/// Seeds `n` sessions in `dir` natively; returns how many will have expired
/// an hour from now.
fn seed_for_sweep(dir: &Path, n: usize) -> anyhow::Result<usize> {
    let store = Store::open(StoreConfig::new(dir.to_str().context("non-UTF-8 path")?))?;
    let mut expired = 0;
    for i in 0..n {
        let mut s = store.create();
        if i % 100 == 0 {
            s.set_expiry(sqlite_sessions::Overrides {
                idle_timeout_s: Some(60),
                ..Default::default()
            })?;
            expired += 1;
        }
        s.set_json("user", r#"{"name":"ada"}"#)?;
        // Dropping the handle writes its expiry hint.
    }
    Ok(expired)
}

fn walk_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.extend(walk_files(&entry.path())?);
        } else if entry.path().extension().is_some_and(|e| e == "db") {
            out.push(entry.path());
        }
    }
    Ok(out)
}

struct SweepPass {
    calls: usize,
    examined: u64,
    deleted: u64,
    elapsed: Duration,
}

impl SweepPass {
    fn print(&self, label: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{label:<44} {:>6} {:>9} {:>8} {:>10.1} {:>14.0}",
            self.calls,
            self.examined,
            self.deleted,
            secs * 1e3,
            self.examined as f64 / secs
        );
    }
}

/// One whole pass, a fresh instance per call; the time includes
/// instantiation, `store.open` and dropping, as a host would pay them.
fn sweep_pass(
    runtime: &Runtime,
    dir: &Path,
    clock: &FakeClock,
    budget: u32,
) -> anyhow::Result<SweepPass> {
    let config = bench_config();
    let mut pass = SweepPass {
        calls: 0,
        examined: 0,
        deleted: 0,
        elapsed: Duration::ZERO,
    };
    let mut cursor: Option<String> = None;
    loop {
        let start = Instant::now();
        let mut req = runtime.request_with(
            dir,
            RequestOptions {
                wall_clock: Some(clock.clone()),
                ..RequestOptions::default()
            },
        )?;
        let store = req.open_store(&config)??;
        let p = req.store(&store).sweep(cursor.as_deref(), budget)??;
        req.drop_store(store)?;
        drop(req);
        pass.elapsed += start.elapsed();
        pass.calls += 1;
        pass.examined += u64::from(p.examined);
        pass.deleted += u64::from(p.deleted);
        match p.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(pass),
        }
    }
}
