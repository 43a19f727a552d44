//! The command line (see the crate docs for the flags).

use std::path::PathBuf;

use anyhow::Context as _;
use sqlite_sessions_host::Durability;

use crate::MAX_INSTANCES;

/// What the command line asked for.
pub struct Args {
    pub iters: usize,
    pub dirs: Vec<PathBuf>,
    pub trace: bool,
    pub sweep_sessions: usize,
    pub sweep_budget: u32,
    /// Section 5's directory sizes; empty skips it.
    pub many_files: Vec<usize>,
    /// Section 6's thread counts; empty skips it.
    pub threads: Vec<usize>,
    pub scaling_secs: f64,
    /// Section 7's instances; 0 skips it.
    pub live_instances: usize,
    /// `--profile-cycles N`: only run N wasm cycles, for `perf record`.
    pub profile_cycles: usize,
    /// `--durability`: for the wasm and the native store alike.
    pub durability: Durability,
    /// `--keep-resident BYTES`: the pooling allocator's resident memory per
    /// instance slot (`RuntimeOptions::keep_resident_bytes`).
    pub keep_resident: Option<usize>,
    /// Section 8's cycles per row; 0 skips it.
    pub kv_iters: usize,
    /// Section 9's requests per row; 0 skips it.
    pub http_requests: usize,
    /// Section 9's `ab -c` per server.
    pub http_concurrency: usize,
    /// Section 10's requests per row; 0 skips it.
    pub serve_requests: usize,
}

/// The arguments of this process.
pub fn parse() -> anyhow::Result<Args> {
    let mut iters = 1000;
    let mut dirs = Vec::new();
    let mut trace = false;
    let mut sweep_sessions = 10_000;
    let mut sweep_budget = 1000;
    let mut many_files = vec![1000, 100_000];
    let mut threads = vec![1, 2, 4];
    let mut scaling_secs: f64 = 2.0;
    let mut live_instances = 1000;
    let mut profile_cycles = 0;
    let mut durability = Durability::PowerLoss;
    let mut keep_resident = None;
    let mut kv_iters = None;
    let mut http_requests = 2000;
    let mut http_concurrency = 4;
    let mut serve_requests = 2000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iters" => iters = parse_value(args.next(), "--iters")?,
            "--dir" => dirs.push(args.next().context("--dir needs a path")?.into()),
            "--trace" => trace = true,
            "--durability" => {
                durability = match args.next().as_deref() {
                    Some("power-loss") => Durability::PowerLoss,
                    Some("process-crash") => Durability::ProcessCrash,
                    _ => anyhow::bail!("--durability takes power-loss or process-crash"),
                };
            }
            "--sweep-sessions" => sweep_sessions = parse_value(args.next(), "--sweep-sessions")?,
            "--sweep-budget" => sweep_budget = parse_value(args.next(), "--sweep-budget")?,
            "--many-files" => many_files = parse_list(args.next(), "--many-files")?,
            "--threads" => threads = parse_list(args.next(), "--threads")?,
            "--scaling-secs" => scaling_secs = parse_value(args.next(), "--scaling-secs")?,
            "--profile-cycles" => profile_cycles = parse_value(args.next(), "--profile-cycles")?,
            "--keep-resident" => {
                keep_resident = Some(parse_value(args.next(), "--keep-resident")?);
            }
            "--live-instances" => live_instances = parse_value(args.next(), "--live-instances")?,
            "--kv-iters" => kv_iters = Some(parse_value(args.next(), "--kv-iters")?),
            "--http-requests" => http_requests = parse_value(args.next(), "--http-requests")?,
            "--http-concurrency" => {
                http_concurrency = parse_value(args.next(), "--http-concurrency")?;
            }
            "--serve-requests" => serve_requests = parse_value(args.next(), "--serve-requests")?,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    anyhow::ensure!(iters > 0, "--iters must be at least 1");
    anyhow::ensure!(sweep_budget > 0, "--sweep-budget must be at least 1");
    anyhow::ensure!(
        http_concurrency > 0,
        "--http-concurrency must be at least 1"
    );
    anyhow::ensure!(
        scaling_secs > 0.0 && scaling_secs.is_finite(),
        "--scaling-secs must be a positive number"
    );
    anyhow::ensure!(
        threads.iter().all(|&t| t <= MAX_INSTANCES as usize),
        "--threads: at most {MAX_INSTANCES} (the bench runtime's pool)"
    );
    if dirs.is_empty() {
        dirs = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    }
    Ok(Args {
        iters,
        dirs,
        trace,
        sweep_sessions,
        sweep_budget,
        many_files,
        threads,
        scaling_secs,
        live_instances,
        profile_cycles,
        durability,
        keep_resident,
        kv_iters: kv_iters.unwrap_or(iters),
        http_requests,
        http_concurrency,
        serve_requests,
    })
}

/// The number after `flag`; an error names the flag.
fn parse_value<T>(arg: Option<String>, flag: &str) -> anyhow::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let arg = arg.with_context(|| format!("{flag} needs a number"))?;
    arg.parse().with_context(|| format!("{flag}: {arg:?}"))
}

/// A comma-separated list of counts, e.g. `1000,100000`; zeros and empty
/// items are dropped, so `0` or `""` gives an empty list (section skipped).
fn parse_list(arg: Option<String>, flag: &str) -> anyhow::Result<Vec<usize>> {
    let arg = arg.with_context(|| format!("{flag} needs a comma-separated list of numbers"))?;
    let mut list = Vec::new();
    for item in arg.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let n: usize = item.parse().with_context(|| format!("{flag}: {item:?}"))?;
        if n > 0 {
            list.push(n);
        }
    }
    Ok(list)
}
