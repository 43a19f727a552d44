//! Sections 5 to 7: how the request path scales with the size of the session
//! directory and with host threads, and what many live instances cost the
//! host in memory.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlite_sessions::layout::SessionFile;
use sqlite_sessions::SessionId;
use sqlite_sessions::{Store, StoreConfig};
use sqlite_sessions_host::{Config, Runtime};

use crate::cycle::{one_native_cycle, one_wasm_cycle, run_variants, CycleFn};
use crate::setup::{bench_config, finish, native_config, runtime_with, seed_native, seed_session};
use crate::stats::Stats;

/// Real sessions per directory in section 5, loaded round-robin: enough that
/// the loads do not all hit one file's cached path, few enough to seed fast.
const REAL_SESSIONS: usize = 16;

/// Section 5: load latency against the number of session files in the
/// directory.
///
/// A directory of N sessions is simulated by a few real sessions plus empty
/// filler files named exactly like session files (`<shard>/<64 hex>.db`).
/// `load` only ever opens its own session's path, so what N can change is
/// the path lookup in large shard directories (and the dentry cache), which
/// empty files exercise as well as full ones; seeding a million real
/// databases would take far longer than the measurement. Each directory is
/// fresh, measured wasm and native on the same files, then deleted.
pub fn many_files_bench(
    runtime: &Runtime,
    base: &Path,
    counts: &[usize],
    iters: usize,
) -> anyhow::Result<()> {
    println!(
        "load latency vs session files in the directory ({}, {REAL_SESSIONS} real sessions \
         loaded round-robin, the rest empty fillers; wasm: fresh instance + open + load + drop; \
         native: open + load + drop; {iters} loads per row, in turns of blocks, after one \
         warm-up load of each)",
        base.display()
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "workload", "mean µs", "p50 µs", "p95 µs"
    );
    let mut first: Option<(usize, Stats, Stats)> = None;
    for &n in counts {
        let dir = tempfile::tempdir_in(base)?;
        let ids = (0..REAL_SESSIONS.min(n))
            .map(|_| seed_session(runtime, dir.path()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let fillers = n - ids.len();
        let start = Instant::now();
        create_fillers(dir.path(), fillers)?;
        let fill_secs = start.elapsed().as_secs_f64();

        let [wasm, native] = load_rows(runtime, dir.path(), &ids, iters, n)?;
        match &first {
            None => first = Some((n, wasm, native)),
            Some((n0, wasm0, native0)) => {
                wasm.ratio_to(wasm0)
                    .print_ratio(&format!("  wasm   {n} / {n0} files"));
                native
                    .ratio_to(native0)
                    .print_ratio(&format!("  native {n} / {n0} files"));
            }
        }

        let start = Instant::now();
        dir.close()?;
        println!(
            "  ({fillers} fillers created in {fill_secs:.2} s, {:.0} files/s; \
             directory deleted in {:.2} s)",
            fillers as f64 / fill_secs.max(1e-9),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Creates `count` empty files named as the store names the files of new
/// random session ids (`SessionFile::for_id`). One thread, one `open(O_CREAT |
/// O_EXCL)` per file and nothing else: the other core is the bench's
/// neighbour's. `O_EXCL` means a name that exists (a real session's, or a
/// repeat) is drawn again rather than truncated.
fn create_fillers(dir: &Path, count: usize) -> anyhow::Result<()> {
    for shard in 0..=0xffu8 {
        std::fs::create_dir_all(dir.join(format!("{shard:02x}")))?;
    }
    let mut created = 0;
    while created < count {
        let file = SessionFile::for_id(&SessionId::generate(), None);
        let path = dir.join(&file.shard).join(&file.name);
        match std::fs::File::create_new(&path) {
            Ok(_) => created += 1,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    Ok(())
}

/// Wasm and native loads of `ids`, round-robin, after one discarded load of
/// each; the two take turns in blocks, as section 1's variants do (single
/// loads taking turns ran both cold). Prints a row for each.
fn load_rows(
    runtime: &Runtime,
    dir: &Path,
    ids: &[String],
    iters: usize,
    files: usize,
) -> anyhow::Result<[Stats; 2]> {
    let config = bench_config();
    let native = native_config(dir)?;
    for id in ids {
        one_wasm_load(runtime, dir, &config, id)?;
        one_native_load(&native, id)?;
    }
    let (config, native) = (&config, &native);
    let id = move |i: usize| ids[i % ids.len()].as_str();
    run_variants(
        [
            (
                format!("wasm   {files} files"),
                Box::new(move |i| one_wasm_load(runtime, dir, config, id(i))) as CycleFn,
            ),
            (
                format!("native {files} files"),
                Box::new(move |i| one_native_load(native, id(i))),
            ),
        ],
        iters,
    )
}

/// The cycle up to the load: fresh instance, open store, load, drop. No get
/// or set, so the time is that of finding and opening the session's file.
fn one_wasm_load(
    runtime: &Runtime,
    dir: &Path,
    config: &Config,
    id: &str,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut req = runtime.request(dir)?;
    let store = req.open_store(config)??;
    let s = req.store(&store).load(id)??.context("session vanished")?;
    finish(req, store, s)?;
    Ok(start.elapsed())
}

/// [`one_wasm_load`], natively: open, load, drop.
fn one_native_load(config: &StoreConfig, id: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let store = Store::open(config.clone())?;
    let s = store.load(id)?.context("session vanished")?;
    drop(s);
    drop(store);
    Ok(start.elapsed())
}

/// One cycle on session `id`, the `i`-th of its thread.
type Cycle<'a> = dyn Fn(&str, usize) -> anyhow::Result<Duration> + Sync + 'a;

/// Section 6: the cycle on several host threads at once.
///
/// Every thread runs the whole cycle of section 1 (fresh instance, open,
/// load, get, set, drop) back to back for `secs`, on its own session, then
/// all on one session, where they contend for its lock. The wasm threads
/// share one `Runtime` (as a server's request threads would), each holding
/// one pooled instance at a time. Wasm and native rows alternate, so both
/// see the same background load; the speed-up is each engine's throughput
/// over its first row's.
pub fn scaling_bench(
    runtime: &Runtime,
    base: &Path,
    threads: &[usize],
    secs: f64,
) -> anyhow::Result<()> {
    let most = threads.iter().copied().max().unwrap_or(1);
    let secs = Duration::from_secs_f64(secs);
    let wasm_dir = tempfile::tempdir_in(base)?;
    let native_dir = tempfile::tempdir_in(base)?;
    let config = bench_config();
    let native_cfg = native_config(native_dir.path())?;
    let wasm_ids = (0..most)
        .map(|_| seed_session(runtime, wasm_dir.path()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let native_ids = (0..most)
        .map(|_| seed_native(&native_cfg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let wasm = |id: &str, i| one_wasm_cycle(runtime, wasm_dir.path(), &config, id, i);
    let native = |id: &str, i| one_native_cycle(&native_cfg, id, i, false);

    println!(
        "concurrency scaling: the cycle (load + get + set; wasm with a fresh instance each) \
         back to back on host threads for {:.1} s per row ({}, {} cores available)",
        secs.as_secs_f64(),
        base.display(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<30} {:>7} {:>8} {:>10} {:>10} {:>10} {:>10} {:>8} {:>6}",
        "workload",
        "threads",
        "cycles",
        "cycles/s",
        "mean µs",
        "p95 µs",
        "max µs",
        "speed-up",
        "busy"
    );
    // The first row of each engine, whose throughput the others are
    // compared with.
    let mut base_rates: Option<(f64, f64)> = None;
    let rows = threads
        .iter()
        .map(|&t| (t, "distinct sessions", t))
        .chain([(most, "one session", 1)]);
    for (t, what, sessions) in rows {
        let w = run_threads(t, &wasm_ids[..sessions], secs, &wasm)?;
        let n = run_threads(t, &native_ids[..sessions], secs, &native)?;
        let (w0, n0) = *base_rates.get_or_insert((w.rate(), n.rate()));
        w.print(&format!("wasm   {what}"), t, w0);
        n.print(&format!("native {what}"), t, n0);
    }
    Ok(())
}

/// What the threads of one row did together.
struct ThreadRun {
    /// Every successful cycle's time.
    times: Vec<Duration>,
    /// Cycles that failed with `busy` (the session's lock stayed taken past
    /// the busy timeout).
    busy: usize,
    /// From the common start to the last thread's end.
    wall: Duration,
}

impl ThreadRun {
    fn rate(&self) -> f64 {
        self.times.len() as f64 / self.wall.as_secs_f64()
    }

    /// The row; the max shows the tail that a mean far above the p95 hides
    /// (waits for a session's lock).
    fn print(&self, label: &str, threads: usize, base_rate: f64) {
        let (mean, p95, max) = match self.times.iter().max() {
            None => ("-".into(), "-".into(), "-".into()),
            Some(max) => {
                let s = Stats::of(&self.times);
                let us = |x: f64| format!("{x:.1}");
                (us(s.mean), us(s.p95), us(max.as_secs_f64() * 1e6))
            }
        };
        println!(
            "{label:<30} {threads:>7} {:>8} {:>10.0} {mean:>10} {p95:>10} {max:>10} {:>7.2}× {:>6}",
            self.times.len(),
            self.rate(),
            self.rate() / base_rate,
            self.busy
        );
    }
}

/// Runs `cycle` back to back on `threads` threads for `secs`, thread `t` on
/// `ids[t % ids.len()]`, all released at once by a barrier.
fn run_threads(
    threads: usize,
    ids: &[String],
    secs: Duration,
    cycle: &Cycle<'_>,
) -> anyhow::Result<ThreadRun> {
    let barrier = Barrier::new(threads);
    let per_thread = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (id, barrier) = (&ids[t % ids.len()], &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    cycle_until(secs, id, cycle)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let mut run = ThreadRun {
        times: Vec::new(),
        busy: 0,
        wall: Duration::ZERO,
    };
    for (times, busy, wall) in per_thread {
        run.times.extend(times);
        run.busy += busy;
        run.wall = run.wall.max(wall);
    }
    Ok(run)
}

/// One thread's part of [`run_threads`]: its cycle times, its `busy`
/// failures and how long it ran.
fn cycle_until(
    secs: Duration,
    id: &str,
    cycle: &Cycle<'_>,
) -> anyhow::Result<(Vec<Duration>, usize, Duration)> {
    let start = Instant::now();
    let (mut times, mut busy) = (Vec::new(), 0);
    for i in 0.. {
        if start.elapsed() >= secs {
            break;
        }
        match cycle(id, i) {
            Ok(t) => times.push(t),
            Err(e) if is_busy(&e) => busy += 1,
            Err(e) => return Err(e),
        }
    }
    Ok((times, busy, start.elapsed()))
}

/// Whether `e` is the component's or the native core's `busy` answer.
fn is_busy(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<sqlite_sessions_host::Error>(),
        Some(sqlite_sessions_host::Error::Busy)
    ) || matches!(
        e.downcast_ref::<sqlite_sessions::Error>(),
        Some(sqlite_sessions::Error::Busy)
    )
}

/// Section 7: host memory with `n` live instances.
///
/// A runtime of its own, with a pool big enough for all of them. Each
/// instance opens the store and loads a session of its own, as `n`
/// concurrent requests in flight would, and all are held at once. The
/// figure is the whole process's resident set (VmRSS), so it includes what
/// wasmtime's pool, the instances' linear memories and tables, the WASI
/// contexts and SQLite's caches inside the guests actually touch, not the
/// address space reserved for them.
pub fn live_instances_bench(base: &Path, n: usize) -> anyhow::Result<()> {
    let rss_start = rss_kib("VmRSS")?;
    let pool = u32::try_from(n + 16).context("--live-instances too large")?;
    let runtime = runtime_with(false, pool, true)?;
    let rss_runtime = rss_kib("VmRSS")?;
    let dir = tempfile::tempdir_in(base)?;
    let ids = (0..n)
        .map(|_| seed_session(&runtime, dir.path()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = bench_config();

    let rss_before = rss_kib("VmRSS")?;
    let anon_before = rss_kib("RssAnon")?;
    let start = Instant::now();
    let mut live = Vec::with_capacity(n);
    for id in &ids {
        let mut req = runtime.request(dir.path())?;
        let store = req.open_store(&config)??;
        let s = req.store(&store).load(id)??.context("session vanished")?;
        live.push((req, store, s));
    }
    let create_secs = start.elapsed().as_secs_f64();
    let rss_live = rss_kib("VmRSS")?;
    let anon_live = rss_kib("RssAnon")?;
    let peaks: Vec<usize> = live
        .iter()
        .map(|(req, ..)| req.memory_stats().peak_bytes)
        .collect();
    for (req, store, s) in live {
        finish(req, store, s)?;
    }
    let rss_after = rss_kib("VmRSS")?;

    println!(
        "host memory with {n} live instances (each: fresh instance, open store, its own loaded \
         session; all held at once; VmRSS of the whole bench process, {})",
        base.display()
    );
    let row = |label: &str, kib: u64| println!("{label:<48} {kib:>10} KiB");
    row("VmRSS before creating the runtime", rss_start);
    row(
        &format!("VmRSS with the runtime (pool of {pool})"),
        rss_runtime,
    );
    row(&format!("VmRSS after seeding {n} sessions"), rss_before);
    row(&format!("VmRSS with {n} live instances"), rss_live);
    row("VmRSS after dropping them all", rss_after);
    let delta = rss_live.saturating_sub(rss_before);
    row(&format!("delta for {n} live instances"), delta);
    println!(
        "{:<48} {:>10.1} KiB",
        "delta per live instance",
        delta as f64 / n as f64
    );
    // Linear memories start as copy-on-write mappings of the module's
    // image, which VmRSS counts as shared or file pages until written.
    let anon = anon_live.saturating_sub(anon_before);
    println!(
        "{:<48} {:>10.1} KiB",
        "  of which anonymous (RssAnon), per instance",
        anon as f64 / n as f64
    );
    println!(
        "peak linear memory per instance: {} KiB (first), {} KiB (largest); \
         {n} instances created in {create_secs:.2} s",
        peaks[0] >> 10,
        peaks.iter().max().copied().unwrap_or(0) >> 10
    );
    Ok(())
}

/// One of this process's resident-set figures (`VmRSS`, `RssAnon`, ...),
/// from `/proc/self/status`.
fn rss_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}
