//! The command line: `bench --help` prints it.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use sqlite_sessions_host::Durability;

use crate::MAX_INSTANCES;

/// Side-by-side benchmark of the sqlite-sessions component in wasmtime and
/// the same storage core compiled natively (BENCHMARKS.md).
///
/// Sections, in order: the session cycle (wasm and native), host calls per
/// operation, sweep throughput, load latency against the number of session
/// files, concurrency scaling, host memory with many live instances, the
/// key-value build over Redis, the demo over HTTP, and (with --juicefs)
/// several hosts on one JuiceFS volume. A
/// section whose count is 0 (or an empty list) is skipped. Sections after
/// the host-call tables use the first directory.
#[derive(Parser)]
#[command(name = "bench", version)]
pub struct Args {
    /// Cycle iterations per row; the per-operation rows use a quarter.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(usize))]
    pub iters: usize,

    /// A directory to measure in (repeatable). Created if missing.
    /// Default: /dev/shm and the system temporary directory.
    #[arg(long = "dir", value_name = "PATH")]
    pub dirs: Vec<PathBuf>,

    /// Print every host call of one cycle, in order, with its arguments
    /// and result.
    #[arg(long)]
    pub trace: bool,

    /// For the wasm and the native store alike.
    #[arg(long, value_enum, default_value = "power-loss")]
    durability: DurabilityArg,

    /// Session files of the sweep section (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    pub sweep_sessions: usize,

    /// Sessions examined per `store.sweep` call.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub sweep_budget: u32,

    /// Directory sizes of the many-files section, comma-separated
    /// ("" or 0 skips it; 1000000 works and prints how long its fillers took).
    #[arg(long, default_value = "1000,100000", value_name = "N,N,...")]
    many_files: Counts,

    /// Thread counts of the scaling section ("" skips it); its one-session
    /// row uses the largest.
    #[arg(long, default_value = "1,2,4", value_name = "T,T,...")]
    threads: Counts,

    /// How long each scaling row runs, in seconds.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    pub scaling_secs: f64,

    /// Live instances of the memory section (0 skips it).
    #[arg(long, default_value_t = 1000)]
    pub live_instances: usize,

    /// The pooling allocator's resident memory per instance slot
    /// (`RuntimeOptions::keep_resident_bytes`).
    #[arg(long, value_name = "BYTES")]
    pub keep_resident: Option<usize>,

    /// Only run N wasm cycles, for a profiler:
    /// `SQLITE_SESSIONS_PERFMAP=1 perf record -g bench --profile-cycles 5000`.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub profile_cycles: usize,

    /// The store component to measure. Default: the one this binary was
    /// built with.
    #[arg(long, value_name = "WASM")]
    pub component: Option<PathBuf>,

    /// Cycles per row of the key-value section, over Redis (0 skips it).
    /// Default: --iters.
    #[arg(long, value_name = "N")]
    pub kv_iters: Option<usize>,

    /// Requests per row of the HTTP section (0 skips it).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub http_requests: usize,

    /// The HTTP section's `ab -c` per server.
    #[arg(long, default_value_t = 4, value_name = "C", value_parser = clap::value_parser!(usize))]
    pub http_concurrency: usize,

    /// Requests per row of the section under the real `wasmtime serve`
    /// (0 skips it).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub serve_requests: usize,

    /// Also measure several hosts sharing one directory on a JuiceFS volume
    /// mounted twice (needs redis-server, juicefs and FUSE: make setup).
    #[arg(long)]
    pub juicefs: bool,
}

impl Args {
    pub fn durability(&self) -> Durability {
        match self.durability {
            DurabilityArg::PowerLoss => Durability::PowerLoss,
            DurabilityArg::ProcessCrash => Durability::ProcessCrash,
        }
    }

    pub fn many_files(&self) -> &[usize] {
        &self.many_files.0
    }

    pub fn threads(&self) -> &[usize] {
        &self.threads.0
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    PowerLoss,
    ProcessCrash,
}

/// A comma-separated list of counts, e.g. `1000,100000`; zeros and empty
/// items are dropped, so `0` or `""` gives an empty list.
#[derive(Clone, Debug)]
struct Counts(Vec<usize>);

impl FromStr for Counts {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut list = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let n: usize = item.parse().with_context(|| format!("{item:?}"))?;
            if n > 0 {
                list.push(n);
            }
        }
        Ok(Counts(list))
    }
}

/// The arguments of this process, checked; `--help` and bad arguments exit
/// here with clap's message.
pub fn parse() -> anyhow::Result<Args> {
    let mut args = Args::parse();
    anyhow::ensure!(args.iters > 0, "--iters must be at least 1");
    anyhow::ensure!(
        args.scaling_secs > 0.0 && args.scaling_secs.is_finite(),
        "--scaling-secs must be a positive number"
    );
    anyhow::ensure!(
        args.threads().iter().all(|&t| t <= MAX_INSTANCES as usize),
        "--threads: at most {MAX_INSTANCES} (the bench runtime's pool)"
    );
    if args.dirs.is_empty() {
        args.dirs = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    }
    for dir in &args.dirs {
        ensure_dir(dir)?;
    }
    Ok(args)
}

/// Creates `dir` if it is missing (saying so); fails if it is something
/// other than a directory.
fn ensure_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        anyhow::bail!("--dir {}: not a directory", dir.display());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--dir {}: creating it", dir.display()))?;
    eprintln!("bench: created {}", dir.display());
    Ok(())
}
