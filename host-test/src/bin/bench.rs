//! Side-by-side benchmark of the session cycle: the component inside wasmtime
//! versus the same storage core compiled natively, in one run (these 2-core
//! machines are noisy, so only same-run ratios mean much).
//!
//! The cycle is what one HTTP request does: (fresh pooled instance +) open the
//! store, load an existing session, get one key, set one key, drop.
//!
//! Usage: `bench [--iters N] [--dir PATH]...` (default: /dev/shm and the
//! system temp directory, 2000 iterations each).

use anyhow::Context;
use host_test::{default_config, Runtime};
use sqlite_sessions::{Store, StoreConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let (iters, dirs) = parse_args()?;
    let runtime = Runtime::new()?;
    println!("session cycle: load existing + get + set, {iters} iterations per row");
    println!("{:<34} {:>10} {:>10} {:>10}", "workload", "mean µs", "p50 µs", "p95 µs");
    for base in dirs {
        let wasm_dir = tempfile::tempdir_in(&base)?;
        let native_dir = tempfile::tempdir_in(&base)?;
        let label = base.display().to_string();
        let wasm = Stats::of(&wasm_cycle(&runtime, wasm_dir.path(), iters)?);
        let native = Stats::of(&native_cycle(native_dir.path(), iters)?);
        wasm.print(&format!("wasm   {label}"));
        native.print(&format!("native {label}"));
        println!("{:<34} {:>10.2}×", format!("ratio wasm/native {label}"), wasm.mean / native.mean);
    }
    Ok(())
}

fn wasm_cycle(runtime: &Runtime, dir: &Path, iters: usize) -> anyhow::Result<Vec<Duration>> {
    let config = default_config();
    let id = {
        let mut req = runtime.request(dir)?;
        let store = req.open_store(&config)??;
        let s = req.store(&store).create()?;
        req.session(&s).set_json("user", r#"{"name":"ada","roles":["admin"]}"#)??;
        req.session(&s).set_json("counter", "0")??;
        let id = req.session(&s).id()?;
        req.drop_session(s)?;
        req.drop_store(store)?;
        id
    };
    let mut times = Vec::with_capacity(iters);
    for i in 0..iters {
        let start = Instant::now();
        let mut req = runtime.request(dir)?;
        let store = req.open_store(&config)??;
        let s = req.store(&store).load(&id)??.context("session vanished")?;
        let user = req.session(&s).get("user")??;
        req.session(&s).set_json("counter", &i.to_string())??;
        req.drop_session(s)?;
        req.drop_store(store)?;
        drop(req);
        times.push(start.elapsed());
        assert!(user.is_some());
    }
    Ok(times)
}

fn native_cycle(dir: &Path, iters: usize) -> anyhow::Result<Vec<Duration>> {
    let config = StoreConfig::new(dir.to_str().context("non-UTF-8 path")?);
    let id = {
        let store = Store::open(config.clone())?;
        let mut s = store.create();
        s.set_json("user", r#"{"name":"ada","roles":["admin"]}"#)?;
        s.set_json("counter", "0")?;
        s.id()
    };
    let mut times = Vec::with_capacity(iters);
    for i in 0..iters {
        let start = Instant::now();
        let store = Store::open(config.clone())?;
        let mut s = store.load(&id)?.context("session vanished")?;
        let user = s.get("user")?;
        s.set_json("counter", &i.to_string())?;
        drop(s);
        drop(store);
        times.push(start.elapsed());
        assert!(user.is_some());
    }
    Ok(times)
}

struct Stats {
    mean: f64,
    p50: f64,
    p95: f64,
}

impl Stats {
    fn of(times: &[Duration]) -> Stats {
        let mut us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let pick = |q: f64| us[((us.len() - 1) as f64 * q) as usize];
        Stats { mean: us.iter().sum::<f64>() / us.len() as f64, p50: pick(0.5), p95: pick(0.95) }
    }

    fn print(&self, label: &str) {
        println!("{label:<34} {:>10.1} {:>10.1} {:>10.1}", self.mean, self.p50, self.p95);
    }
}

fn parse_args() -> anyhow::Result<(usize, Vec<PathBuf>)> {
    let mut iters = 2000;
    let mut dirs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iters" => iters = args.next().context("--iters needs a number")?.parse()?,
            "--dir" => dirs.push(args.next().context("--dir needs a path")?.into()),
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    if dirs.is_empty() {
        dirs = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    }
    Ok((iters, dirs))
}
