//! Side-by-side benchmark of the session cycle: the component inside wasmtime
//! versus the same storage core compiled natively, in one run (these 2-core
//! machines are noisy, so only same-run ratios mean much), followed by the
//! deterministic metric: WASI host calls per operation.
//!
//! The cycle is what one HTTP request does: (fresh pooled instance +) open the
//! store, load an existing session, get one key, set one key, drop.
//!
//! Sections:
//! 1. Cycle time, wasm (host calls counted and not, fresh instances and
//!    instances reused) and native, per directory.
//!    The variants take turns in blocks of iterations, so the "counting
//!    overhead" row compares like with like.
//! 2. Host calls per operation, each step measured in isolation on an existing
//!    session (first directory, fixed wall clock), with its mean time, the
//!    get/load cost of a 1,000-key × 1 KiB session against a 1-key one, and
//!    each instance's peak linear memory.
//! 3. The per-function breakdown of those calls.
//! 4. Sweep throughput: session files examined per second by `store.sweep`
//!    inside wasmtime, run as a host would (a fresh instance per call, a
//!    budget per call), first with correct expiry hints (1% expired), then
//!    with every hint stale so that every file is opened.
//! 5. Load latency against the number of session files in the directory
//!    (1,000, 100,000, ...): a few real sessions among empty filler files
//!    named like session files, wasm and native, each N against the first.
//! 6. Concurrency scaling: the cycle on 1, 2 and 4 host threads, each on its
//!    own session, then all on one session; wasm and native; throughput,
//!    latency, speed-up against the first row, and `busy` answers.
//! 7. Host memory: the whole process's resident set (VmRSS) before and with
//!    1,000 live instances, each holding an open store and a loaded session.
//! 8. The key-value backend: the cycle of the store's key-value build over a
//!    redis-server and a three-master Redis cluster on loopback (started for
//!    the run), beside the directory build on the run's directories; then
//!    the round trips to Redis of each step (a load is one, a write two).
//! 9. Requests per second of the edge demo's page through `edge-server`,
//!    measured with ApacheBench (`ab`, from apache2-utils): one server on a
//!    directory, one and two servers sharing one Redis, two sharing the
//!    cluster; new visitors, and one returning visitor whose counter must
//!    come out exact.
//! 10. With `--juicefs`: several hosts sharing one directory. The cycle with
//!     `shared-directory` on a JuiceFS volume mounted twice (one mount, and
//!     alternating between the mounts), in three setups (the README's, JuiceFS's
//!     defaults, every kernel cache off), beside the first directory with and
//!     without `shared-directory`; filesystem calls and Redis commands per
//!     cycle. Needs `redis-server`, `juicefs` and FUSE (`make setup`).
//! 11. The same page under the real `wasmtime serve` (the wasmtime CLI),
//!     with fresh and with reused instances, beside `edge-server`: at
//!     concurrency 1 and 4, one shared session and one session per request;
//!     requests per second and the median and 99th percentile latency.
//!
//! `bench --help` lists the flags; BENCHMARKS.md shows the commands behind
//! its tables.

mod args;
mod cycle;
mod hosts;
mod http;
mod kv;
mod ops;
mod scale;
mod serve;
mod setup;
mod stats;
mod sweep;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use sqlite_sessions_host::Runtime;

/// Pool size of the bench's runtimes: room for section 6's threads, each
/// holding one instance at a time.
const MAX_INSTANCES: u32 = 16;

/// Requests per instance in section 1's reused-instance row
/// (`RuntimeOptions::max_instance_reuse_count`).
const REUSE_COUNT: u32 = 1000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = args::parse()?;
    let (many_files, threads) = (args.many_files().to_vec(), args.threads().to_vec());
    let durability = args.durability();
    let args::Args {
        iters,
        dirs,
        trace,
        sweep_sessions,
        sweep_budget,
        scaling_secs,
        live_instances,
        profile_cycles,
        keep_resident,
        kv_iters,
        http_requests,
        http_concurrency,
        juicefs,
        serve_requests,
        component,
        ..
    } = args;
    setup::init(durability, keep_resident, component);
    let kv_iters = kv_iters.unwrap_or(iters);
    let started = Instant::now();
    if profile_cycles > 0 {
        // One slot: the cycles run one at a time, and a pool's address-space
        // reservation of several slots is more than valgrind can map.
        let runtime = setup::runtime_with(false, 1, true)?;
        return profile(&runtime, &dirs[0], profile_cycles);
    }
    let stock = setup::runtime(false)?;
    let counted = setup::runtime(true)?;

    println!(
        "session cycle: load existing + get + set, {iters} iterations per row, durability {:?}",
        setup::durability()
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "workload", "mean µs", "p50 µs", "p95 µs"
    );
    let plain = setup::runtime_with(false, MAX_INSTANCES, false)?;
    let reused = setup::runtime_reusing(false, MAX_INSTANCES, true, REUSE_COUNT)?;
    for base in &dirs {
        cycle::cycle_rows(base, iters, [&counted, &stock, &plain, &reused])?;
    }
    println!();
    println!(
        "new session: create + set (the file's first write) + drop, {iters} iterations per row"
    );
    for base in &dirs {
        cycle::create_rows(base, iters, [&stock, &plain])?;
    }

    let base = &dirs[0];
    let dir = tempfile::tempdir_in(base)?;
    let op_iters = (iters / 4).max(1);
    let ops = ops::Ops::measure(&counted, dir.path(), op_iters)?;
    println!();
    println!(
        "host calls per operation ({}, fixed wall clock; times: mean of {op_iters})",
        base.display()
    );
    ops.print();
    println!();
    println!("host calls by function: one cycle, its steps, the isolated set, and a get from the 1000-key session");
    ops.print_breakdown();
    if trace {
        println!();
        println!("trace of one cycle (#n = host resource handle)");
        for (i, event) in ops::trace_cycle(&counted, dir.path(), &ops.id)?
            .iter()
            .enumerate()
        {
            println!("{:>4} {event}", i + 1);
        }
    }
    if sweep_sessions > 0 {
        println!();
        sweep::sweep_bench(&stock, &dirs[0], sweep_sessions, sweep_budget)?;
    }
    if !many_files.is_empty() {
        println!();
        scale::many_files_bench(&stock, &dirs[0], &many_files, iters.min(400))?;
    }
    if !threads.is_empty() {
        println!();
        scale::scaling_bench(&stock, &dirs[0], &threads, scaling_secs)?;
    }
    if live_instances > 0 {
        println!();
        scale::live_instances_bench(&dirs[0], live_instances)?;
    }
    if kv_iters > 0 || http_requests > 0 {
        let servers = kv::Servers::start()?;
        if kv_iters > 0 {
            println!();
            kv::kv_bench(&stock, &dirs, &servers, kv_iters)?;
        }
        if http_requests > 0 {
            println!();
            http::http_bench(&servers, &dirs[0], http_requests, http_concurrency)?;
        }
    }
    if juicefs {
        println!();
        hosts::several_hosts_bench(&stock, &counted, &dirs[0], iters)?;
    }
    if serve_requests > 0 {
        println!();
        serve::serve_bench(&dirs[0], serve_requests)?;
    }
    println!(
        "\nbench finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Nothing but `cycles` wasm cycles (stock wasmtime-wasi), so that a
/// profiler sees only them: `SQLITE_SESSIONS_PERFMAP=1 perf record -g bench
/// --profile-cycles 5000`.
fn profile(runtime: &Runtime, base: &Path, cycles: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(base)?;
    let config = setup::bench_config();
    let id = setup::seed_session(runtime, dir.path())?;
    let started = Instant::now();
    for i in 0..cycles {
        cycle::one_wasm_cycle(runtime, dir.path(), &config, &id, i)?;
    }
    let mean = started.elapsed().as_secs_f64() * 1e6 / cycles as f64;
    println!("{cycles} wasm cycles, mean {mean:.1} µs");
    Ok(())
}
