//! Side-by-side benchmark of the session cycle: the component inside wasmtime
//! versus the same storage core compiled natively, in one run (these 2-core
//! machines are noisy, so only same-run ratios mean much), followed by the
//! deterministic metric: WASI host calls per operation.
//!
//! The cycle is what one HTTP request does: (fresh pooled instance +) open the
//! store, load an existing session, get one key, set one key, drop.
//!
//! Sections:
//! 1. Cycle time, wasm (host calls counted and not) and native, per directory.
//!    The counted and uncounted runs alternate iteration by iteration, so the
//!    "counting overhead" row compares like with like.
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
//!
//! Usage: `bench [--iters N] [--dir PATH]... [--trace] [--sweep-sessions N]
//! [--sweep-budget B] [--many-files N,N,...] [--threads T,T,...]
//! [--scaling-secs S] [--live-instances N]` (default: /dev/shm and the system
//! temp directory, 1000 cycle iterations per row; the per-operation rows use
//! N/4; the sweep uses the first directory, 10,000 sessions and a budget of
//! 1000 per call; `--sweep-sessions 0` skips it). `--trace` adds every host
//! call of one cycle, in order, with its arguments (paths, offsets, handles)
//! and result.
//!
//! Sections 5 to 7 use the first directory. `--many-files` lists the
//! directory sizes of section 5 (default `1000,100000`; `1000000` works: its
//! fillers take about 8 s to create and 7 s to delete on tmpfs), each
//! measured with the smaller of `--iters` and 400 loads per row; `--threads`
//! the thread counts of section 6 (default `1,2,4`; the one-session row uses
//! the largest), `--scaling-secs` how long each of its rows runs (default 2);
//! `--live-instances` the instances of section 7 (default 1000). For each,
//! `0` skips the section.

use anyhow::Context;
use sqlite_sessions::{Store, StoreConfig};
use sqlite_sessions_host::{
    Config, Durability, FakeClock, HostCallCounts, MemoryStats, Request, RequestOptions, Runtime,
    RuntimeOptions, SessionHandle, StoreHandle,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// The crate root is this file, so a plain `mod` would look in `src/bin/`,
// where cargo would also take it for a binary of its own.
#[path = "bench/scale.rs"]
mod scale;

/// Pool size of the bench's runtimes: room for section 6's threads, each
/// holding one instance at a time.
const MAX_INSTANCES: u32 = 16;

/// Keys and value size of the large session.
const BIG_KEYS: usize = 1000;
const VALUE_BYTES: usize = 1024;

fn main() -> anyhow::Result<()> {
    let Args {
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
    } = parse_args()?;
    let started = Instant::now();
    let stock = runtime(false)?;
    if profile_cycles > 0 {
        return profile(&stock, &dirs[0], profile_cycles);
    }
    let counted = runtime(true)?;

    println!(
        "session cycle: load existing + get + set, {iters} iterations per row, durability {:?}",
        durability()
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "workload", "mean µs", "p50 µs", "p95 µs"
    );
    let plain = runtime_with(false, MAX_INSTANCES, false)?;
    for base in &dirs {
        cycle_rows(base, iters, [&counted, &stock, &plain])?;
    }
    println!();
    println!(
        "new session: create + set (the file's first write) + drop, {iters} iterations per row"
    );
    for base in &dirs {
        create_rows(base, iters, [&stock, &plain])?;
    }

    let base = &dirs[0];
    let dir = tempfile::tempdir_in(base)?;
    let op_iters = (iters / 4).max(1);
    let ops = Ops::measure(&counted, dir.path(), op_iters)?;
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
        for (i, event) in trace_cycle(&counted, dir.path(), &ops.id)?
            .iter()
            .enumerate()
        {
            println!("{:>4} {event}", i + 1);
        }
    }
    if sweep_sessions > 0 {
        println!();
        sweep_bench(&stock, &dirs[0], sweep_sessions, sweep_budget)?;
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
    println!(
        "\nbench finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--durability`: applies to the wasm and the native store alike.
static DURABILITY: std::sync::OnceLock<Durability> = std::sync::OnceLock::new();

fn durability() -> Durability {
    *DURABILITY.get().unwrap_or(&Durability::PowerLoss)
}

fn bench_config() -> Config {
    let mut config = sqlite_sessions_host::default_config();
    config.durability = Some(durability());
    config
}

fn native_config(dir: &Path) -> anyhow::Result<StoreConfig> {
    let mut config = StoreConfig::new(dir.to_str().context("non-UTF-8 path")?);
    config.durability = match durability() {
        Durability::PowerLoss => sqlite_sessions::storage::Durability::PowerLoss,
        Durability::ProcessCrash => sqlite_sessions::storage::Durability::ProcessCrash,
    };
    Ok(config)
}

/// A runtime that counts host calls, or links stock wasmtime-wasi. Both share
/// every other setting, and the compiled-component cache.
fn runtime(count_host_calls: bool) -> anyhow::Result<Runtime> {
    runtime_with(count_host_calls, MAX_INSTANCES, true)
}

/// `--keep-resident BYTES`: the pooling allocator's resident memory per
/// instance slot (see `RuntimeOptions::keep_resident_bytes`).
static KEEP_RESIDENT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// [`runtime`] with a pool of `max_instances`, pre-initialised or not.
fn runtime_with(
    count_host_calls: bool,
    max_instances: u32,
    preinitialize: bool,
) -> anyhow::Result<Runtime> {
    let component = sqlite_sessions_artifacts::store()?;
    let defaults = RuntimeOptions::cached_beside(component);
    let keep_resident_bytes = *KEEP_RESIDENT.get().unwrap_or(&defaults.keep_resident_bytes);
    Runtime::from_file_with(
        component,
        RuntimeOptions {
            count_host_calls,
            max_instances,
            keep_resident_bytes,
            preinitialize,
            ..defaults
        },
    )
}

fn seed_session(runtime: &Runtime, dir: &Path) -> anyhow::Result<String> {
    let mut req = runtime.request(dir)?;
    let store = req.open_store(&bench_config())??;
    let s = req.store(&store).create()?;
    req.session(&s)
        .set_json("user", r#"{"name":"ada","roles":["admin"]}"#)??;
    req.session(&s).set_json("counter", "0")??;
    let id = req.session(&s).id()?;
    req.drop_session(s)?;
    req.drop_store(store)?;
    Ok(id)
}

/// The steps of the session cycle, in order. Every wasm cycle in this file
/// (timed, counted, traced, profiled) runs them through [`run_cycle`], so
/// they all measure the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Instantiate,
    Open,
    Load,
    Get,
    Set,
    Drop,
    Teardown,
}

impl Step {
    const ALL: [Step; 7] = [
        Step::Instantiate,
        Step::Open,
        Step::Load,
        Step::Get,
        Step::Set,
        Step::Drop,
        Step::Teardown,
    ];

    /// The step's row in the host-calls table.
    fn label(self) -> &'static str {
        match self {
            Step::Instantiate => "  instantiate",
            Step::Open => "  open store",
            Step::Load => "  load",
            Step::Get => "  get",
            Step::Set => "  set (after the get)",
            Step::Drop => "  drop session + store",
            Step::Teardown => "  drop the instance",
        }
    }
}

/// One session cycle: a fresh instance from `new_request`, open the store,
/// load `id`, get `user`, set `counter` to `counter`, drop the session and
/// the store, drop the instance. `after` runs as each step ends, with the
/// request (none after teardown).
fn run_cycle(
    new_request: impl FnOnce() -> anyhow::Result<Request>,
    config: &Config,
    id: &str,
    counter: &str,
    mut after: impl FnMut(Option<&mut Request>, Step),
) -> anyhow::Result<()> {
    let mut req = new_request()?;
    after(Some(&mut req), Step::Instantiate);
    let store = req.open_store(config)??;
    after(Some(&mut req), Step::Open);
    let s = req.store(&store).load(id)??.context("session vanished")?;
    after(Some(&mut req), Step::Load);
    req.session(&s).get("user")??.context("user missing")?;
    after(Some(&mut req), Step::Get);
    req.session(&s).set_json("counter", counter)??;
    after(Some(&mut req), Step::Set);
    req.drop_session(s)?;
    req.drop_store(store)?;
    after(Some(&mut req), Step::Drop);
    drop(req);
    after(None, Step::Teardown);
    Ok(())
}

fn one_wasm_cycle(
    runtime: &Runtime,
    dir: &Path,
    config: &Config,
    id: &str,
    i: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    run_cycle(
        || runtime.request(dir),
        config,
        id,
        &i.to_string(),
        |_, _| {},
    )?;
    Ok(start.elapsed())
}

/// One timed iteration of one variant (a cycle, or a load); its argument is
/// the iteration number.
type CycleFn<'a> = Box<dyn FnMut(usize) -> anyhow::Result<Duration> + 'a>;

/// Iterations of one variant in a row, in section 1.
const CYCLE_BLOCK: usize = 50;

/// Section 1 for one directory: five variants of the cycle in blocks of
/// [`CYCLE_BLOCK`] iterations, taking turns, so that the machine's noise
/// falls on all of them alike while each runs warm, as a server repeating
/// one kind of request does. (Interleaving single cycles instead made every
/// variant slower, native code most: about 1.8×, from cold caches.)
/// `runtimes` are the pre-initialised runtime with and without host-call
/// counting, and one not pre-initialised.
fn cycle_rows(base: &Path, iters: usize, runtimes: [&Runtime; 3]) -> anyhow::Result<()> {
    let [counted, stock, plain] = runtimes;
    let wasm_dir = tempfile::tempdir_in(base)?;
    let native_dir = tempfile::tempdir_in(base)?;
    let (wasm_dir, native_dir) = (wasm_dir.path(), native_dir.path());
    let config = bench_config();
    let id = seed_session(counted, wasm_dir)?;
    let native_config = native_config(native_dir)?;
    let native_id = seed_native(&native_config)?;
    let (config, id, native_config, native_id) = (&config, &id, &native_config, &native_id);
    let label = base.display();
    let variants: [(String, CycleFn); 5] = [
        (
            format!("wasm   {label}"),
            Box::new(move |i| one_wasm_cycle(counted, wasm_dir, config, id, i)),
        ),
        (
            format!("wasm   {label} (no counting)"),
            Box::new(move |i| one_wasm_cycle(stock, wasm_dir, config, id, i)),
        ),
        (
            format!("wasm   {label} (not pre-initialised)"),
            Box::new(move |i| one_wasm_cycle(plain, wasm_dir, config, id, i)),
        ),
        (
            format!("native {label}"),
            Box::new(move |i| one_native_cycle(native_config, native_id, i, false)),
        ),
        (
            format!("native {label} (connection afresh)"),
            Box::new(move |i| one_native_cycle(native_config, native_id, i, true)),
        ),
    ];
    let [wasm, no_counting, plain, native, native_afresh] = &run_variants(variants, iters)?;
    let ratio =
        |what: &str, a: &Stats, b: &Stats| a.ratio_to(b).print_ratio(&format!("{what} {label}"));
    // Same SQL work: both start with a compiled connection, or neither.
    ratio("ratio wasm/native", wasm, native);
    ratio("ratio, both compiling afresh", plain, native_afresh);
    ratio("ratio wasm/native compiling afresh", wasm, native_afresh);
    ratio("pre-initialised vs not", wasm, plain);
    println!(
        "{:<40} {:>+9.1}% (mean) {:>+7.1}% (p50)",
        format!("counting overhead {label}"),
        (wasm.mean / no_counting.mean - 1.0) * 100.0,
        (wasm.p50 / no_counting.p50 - 1.0) * 100.0
    );
    Ok(())
}

/// Runs `variants` in blocks of [`CYCLE_BLOCK`] iterations, taking turns,
/// prints a row for each and returns their statistics, in order.
fn run_variants<const N: usize>(
    mut variants: [(String, CycleFn); N],
    iters: usize,
) -> anyhow::Result<[Stats; N]> {
    let mut times: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(iters));
    let (mut done, mut block) = (0, 0);
    while done < iters {
        let len = CYCLE_BLOCK.min(iters - done);
        for k in 0..N {
            let v = (block + k) % N;
            for i in done..done + len {
                times[v].push((variants[v].1)(i)?);
            }
        }
        done += len;
        block += 1;
    }
    let stats = times.map(|t| Stats::of(&t));
    for ((name, _), st) in variants.iter().zip(&stats) {
        st.print(name);
    }
    Ok(stats)
}

/// The new-session cycle for one directory: fresh instance, open store,
/// create a session and write one key (which creates its file), drop; wasm
/// pre-initialised and not, natively with the thread's template (made once
/// by `template::prepare`, then each session's connection kept) and with a
/// connection opened afresh each time.
fn create_rows(base: &Path, iters: usize, runtimes: [&Runtime; 2]) -> anyhow::Result<()> {
    let [stock, plain] = runtimes;
    let wasm_dir = tempfile::tempdir_in(base)?;
    let native_dir = tempfile::tempdir_in(base)?;
    let (wasm_dir, native_dir) = (wasm_dir.path(), native_dir.path());
    let config = &bench_config();
    let native_config = &native_config(native_dir)?;
    let label = base.display();
    let wasm = |runtime: &Runtime, i: usize| -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut req = runtime.request(wasm_dir)?;
        let store = req.open_store(config)??;
        let s = req.store(&store).create()?;
        req.session(&s).set_json("counter", &i.to_string())??;
        req.drop_session(s)?;
        req.drop_store(store)?;
        drop(req);
        Ok(start.elapsed())
    };
    // The session image new files start from comes from `prepare` only (a
    // connection kept from a session has the schema compiled, not a clean
    // image), as in a pre-initialised instance; once per thread does. After
    // that each session's connection is kept for the next (even after an
    // `afresh` one), so the template is always there.
    sqlite_sessions::template::prepare()?;
    let native = |afresh: bool, i: usize| -> anyhow::Result<Duration> {
        if afresh {
            sqlite_sessions::template::discard();
        }
        let start = Instant::now();
        let store = Store::open(native_config.clone())?;
        let mut s = store.create();
        s.set_json("counter", &i.to_string())?;
        drop(s);
        drop(store);
        Ok(start.elapsed())
    };
    let variants: [(String, CycleFn); 4] = [
        (format!("wasm   {label}"), Box::new(move |i| wasm(stock, i))),
        (
            format!("wasm   {label} (not pre-initialised)"),
            Box::new(move |i| wasm(plain, i)),
        ),
        (
            format!("native {label}"),
            Box::new(move |i| native(false, i)),
        ),
        (
            format!("native {label} (connection afresh)"),
            Box::new(move |i| native(true, i)),
        ),
    ];
    let [wasm, plain, native, native_afresh] = &run_variants(variants, iters)?;
    let ratio =
        |what: &str, a: &Stats, b: &Stats| a.ratio_to(b).print_ratio(&format!("{what} {label}"));
    ratio("ratio wasm/native", wasm, native);
    ratio("ratio, both compiling afresh", plain, native_afresh);
    ratio("pre-initialised vs not", wasm, plain);
    Ok(())
}

/// [`seed_session`], natively.
fn seed_native(config: &StoreConfig) -> anyhow::Result<String> {
    let store = Store::open(config.clone())?;
    let mut s = store.create();
    s.set_json("user", r#"{"name":"ada","roles":["admin"]}"#)?;
    s.set_json("counter", "0")?;
    Ok(s.id())
}

/// [`one_wasm_cycle`], natively: open, load, get, set, drop. The thread
/// keeps the last session's connection, compiled, for the next open
/// (`sqlite_sessions::template`), as a pre-initialised wasm instance starts
/// with one: the same SQL work. With `afresh`, it is discarded first
/// (outside the timing), so the open compiles, as in a wasm instance that is
/// not pre-initialised.
fn one_native_cycle(
    config: &StoreConfig,
    id: &str,
    i: usize,
    afresh: bool,
) -> anyhow::Result<Duration> {
    if afresh {
        sqlite_sessions::template::discard();
    }
    let start = Instant::now();
    let store = Store::open(config.clone())?;
    let mut s = store.load(id)?.context("session vanished")?;
    let user = s.get("user")?;
    s.set_json("counter", &i.to_string())?;
    drop(s);
    drop(store);
    let elapsed = start.elapsed();
    anyhow::ensure!(user.is_some(), "user vanished");
    Ok(elapsed)
}

/// One row of the host-calls table.
struct Row {
    label: String,
    calls: HostCallCounts,
    /// Mean time of the operation alone, if measured.
    mean_us: Option<f64>,
    memory: Option<MemoryStats>,
}

/// Every row of sections 2 and 3.
struct Ops {
    cycle: Row,
    /// The cycle's steps, counted and timed inside the cycle (they add up
    /// to it), indexed by `Step as usize`.
    steps: [Row; Step::ALL.len()],
    /// The same operations in isolation, each on a freshly loaded session.
    load: Row,
    get: Row,
    set: Row,
    load_small: Row,
    get_small: Row,
    load_big: Row,
    get_big: Row,
    deterministic: bool,
    /// The 2-key session the cycle uses.
    id: String,
}

/// A 1 KiB CBOR byte string (major type 2, 16-bit length), varied by `seed`.
fn kib_value(seed: usize) -> Vec<u8> {
    let mut v = vec![0x59, (VALUE_BYTES >> 8) as u8, VALUE_BYTES as u8];
    v.extend((0..VALUE_BYTES).map(|i| (i.wrapping_mul(31) ^ seed) as u8));
    v
}

struct Ctx<'a> {
    runtime: &'a Runtime,
    dir: &'a Path,
    clock: FakeClock,
    config: Config,
}

impl Ctx<'_> {
    fn request(&self) -> anyhow::Result<Request> {
        self.runtime.request_with(
            self.dir,
            RequestOptions {
                wall_clock: Some(self.clock.clone()),
                ..RequestOptions::default()
            },
        )
    }

    /// [`run_cycle`] on this context's fresh instances. It sets `counter` to
    /// the value it already has, so repeated cycles see identical files.
    fn run_cycle(
        &self,
        id: &str,
        after: impl FnMut(Option<&mut Request>, Step),
    ) -> anyhow::Result<()> {
        run_cycle(|| self.request(), &self.config, id, "0", after)
    }

    fn open(&self) -> anyhow::Result<(Request, StoreHandle)> {
        let mut req = self.request()?;
        let store = req.open_store(&self.config)??;
        Ok((req, store))
    }

    fn load(&self, id: &str) -> anyhow::Result<(Request, StoreHandle, SessionHandle)> {
        let (mut req, store) = self.open()?;
        let s = req.store(&store).load(id)??.context("session vanished")?;
        Ok((req, store, s))
    }

    /// A session of `keys` keys `k0000`... each holding 1 KiB.
    fn seed(&self, keys: usize) -> anyhow::Result<String> {
        let (mut req, store) = self.open()?;
        let s = req.store(&store).create()?;
        for k in 0..keys {
            req.session(&s).set(&format!("k{k:04}"), &kib_value(k))??;
        }
        let id = req.session(&s).id()?;
        finish(req, store, s)?;
        Ok(id)
    }

    /// Host calls and mean time of `load(id)` on an open store.
    fn load_row(&self, label: &str, id: &str, iters: usize) -> anyhow::Result<Row> {
        let (mut req, store) = self.open()?;
        let mut total = Duration::ZERO;
        let mut calls = None;
        for _ in 0..iters {
            req.reset_host_calls();
            let start = Instant::now();
            let s = req.store(&store).load(id)??.context("session vanished")?;
            total += start.elapsed();
            calls.get_or_insert_with(|| req.host_calls());
            req.drop_session(s)?;
        }
        let memory = req.memory_stats();
        req.drop_store(store)?;
        Ok(Row {
            label: label.into(),
            calls: calls.unwrap_or_default(),
            mean_us: Some(total.as_secs_f64() * 1e6 / iters as f64),
            memory: Some(memory),
        })
    }

    /// Host calls and mean time of `get(key)` on a loaded session.
    fn get_row(&self, label: &str, id: &str, key: &str, iters: usize) -> anyhow::Result<Row> {
        let (mut req, store, s) = self.load(id)?;
        let mut total = Duration::ZERO;
        let mut calls = None;
        for _ in 0..iters {
            req.reset_host_calls();
            let start = Instant::now();
            let v = req.session(&s).get(key)??;
            total += start.elapsed();
            anyhow::ensure!(v.is_some(), "{key} missing");
            calls.get_or_insert_with(|| req.host_calls());
        }
        let memory = req.memory_stats();
        finish(req, store, s)?;
        Ok(Row {
            label: label.into(),
            calls: calls.unwrap_or_default(),
            mean_us: Some(total.as_secs_f64() * 1e6 / iters as f64),
            memory: Some(memory),
        })
    }

    /// Host calls and mean time of `set(key, value)` replacing an existing
    /// value of the same size.
    fn set_row(&self, label: &str, id: &str, key: &str, iters: usize) -> anyhow::Result<Row> {
        let (mut req, store, s) = self.load(id)?;
        let mut total = Duration::ZERO;
        let mut calls = None;
        for i in 0..iters {
            // CBOR unsigned integers 0..=9 are one byte each.
            let value = [(i % 10) as u8];
            req.reset_host_calls();
            let start = Instant::now();
            req.session(&s).set(key, &value)??;
            total += start.elapsed();
            calls.get_or_insert_with(|| req.host_calls());
        }
        let memory = req.memory_stats();
        finish(req, store, s)?;
        Ok(Row {
            label: label.into(),
            calls: calls.unwrap_or_default(),
            mean_us: Some(total.as_secs_f64() * 1e6 / iters as f64),
            memory: Some(memory),
        })
    }
}

fn finish(mut req: Request, store: StoreHandle, s: SessionHandle) -> anyhow::Result<()> {
    req.drop_session(s)?;
    req.drop_store(store)
}

/// Per-step counts and times of one full cycle (fresh instance ... drop).
struct CycleCounts {
    /// Host calls made in each step, indexed by `Step as usize`.
    calls: [HostCallCounts; Step::ALL.len()],
    /// How long each step took, indexed the same way.
    times: [Duration; Step::ALL.len()],
    whole: HostCallCounts,
    memory: MemoryStats,
}

fn counted_cycle(cx: &Ctx<'_>, id: &str) -> anyhow::Result<CycleCounts> {
    let mut calls: [HostCallCounts; Step::ALL.len()] = Default::default();
    let mut times = [Duration::ZERO; Step::ALL.len()];
    let (mut whole, mut memory) = (HostCallCounts::default(), None);
    let mut last = Instant::now();
    cx.run_cycle(id, |req, step| {
        let now = Instant::now();
        times[step as usize] = now - last;
        last = now;
        if let Some(req) = req {
            let so_far = req.host_calls();
            calls[step as usize] = so_far.since(&whole);
            whole = so_far;
            memory = Some(req.memory_stats());
        }
    })?;
    Ok(CycleCounts {
        calls,
        times,
        whole,
        memory: memory.context("the cycle ran no step")?,
    })
}

/// Every host call of one cycle, in order, with step markers.
fn trace_cycle(runtime: &Runtime, dir: &Path, id: &str) -> anyhow::Result<Vec<String>> {
    let cx = Ctx {
        runtime,
        dir,
        clock: FakeClock::default(),
        config: bench_config(),
    };
    let mut out = Vec::new();
    cx.run_cycle(id, |req, step| {
        let Some(req) = req else { return };
        if step == Step::Instantiate {
            req.trace_host_calls(true);
            return;
        }
        out.push(format!("---- {}", step.label().trim()));
        out.extend(req.take_host_call_trace().iter().map(ToString::to_string));
    })?;
    Ok(out)
}

impl Ops {
    fn measure(runtime: &Runtime, dir: &Path, iters: usize) -> anyhow::Result<Ops> {
        let cx = Ctx {
            runtime,
            dir,
            clock: FakeClock::default(),
            config: bench_config(),
        };
        let id = {
            let (mut req, store) = cx.open()?;
            let s = req.store(&store).create()?;
            req.session(&s)
                .set_json("user", r#"{"name":"ada","roles":["admin"]}"#)??;
            req.session(&s).set_json("counter", "0")??;
            let id = req.session(&s).id()?;
            finish(req, store, s)?;
            id
        };

        // The cycle, counted twice to check determinism, then timed.
        let first = counted_cycle(&cx, &id)?;
        let second = counted_cycle(&cx, &id)?;
        let deterministic = first.whole == second.whole;
        // Each step timed inside the cycle, so the steps add up to it.
        let mut step_totals = [Duration::ZERO; Step::ALL.len()];
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let cycle = counted_cycle(&cx, &id)?;
            total += start.elapsed();
            for (sum, t) in step_totals.iter_mut().zip(cycle.times) {
                *sum += t;
            }
        }
        let mean_us = |d: Duration| d.as_secs_f64() * 1e6 / iters as f64;
        let cycle_us = mean_us(total);
        let step_us = step_totals.map(mean_us);

        let cycle = Row {
            label: "cycle (instantiate → drop)".into(),
            calls: first.whole.clone(),
            mean_us: Some(cycle_us),
            memory: Some(first.memory),
        };
        let steps = Step::ALL.map(|step| Row {
            label: step.label().into(),
            calls: first.calls[step as usize].clone(),
            mean_us: Some(step_us[step as usize]),
            memory: None,
        });

        let load = cx.load_row("load (isolated, 2-key session)", &id, iters)?;
        let get = cx.get_row("get (isolated, 2-key session)", &id, "user", iters)?;
        let set = cx.set_row("set (isolated, 2-key session)", &id, "counter", iters)?;

        let small = cx.seed(1)?;
        let seed_start = Instant::now();
        let big = cx.seed(BIG_KEYS)?;
        let seed_secs = seed_start.elapsed().as_secs_f64();
        eprintln!("(seeded the {BIG_KEYS}-key session in {seed_secs:.1} s)");
        let load_small = cx.load_row("load, 1-key × 1 KiB", &small, iters)?;
        let load_big = cx.load_row("load, 1000-key × 1 KiB", &big, iters)?;
        let get_small = cx.get_row("get, 1-key × 1 KiB", &small, "k0000", iters)?;
        let get_big = cx.get_row("get, 1000-key × 1 KiB", &big, "k0500", iters)?;

        Ok(Ops {
            cycle,
            steps,
            load,
            get,
            set,
            load_small,
            get_small,
            load_big,
            get_big,
            deterministic,
            id,
        })
    }

    fn rows(&self) -> impl Iterator<Item = &Row> {
        std::iter::once(&self.cycle).chain(&self.steps).chain([
            &self.load,
            &self.get,
            &self.set,
            &self.load_small,
            &self.load_big,
            &self.get_small,
            &self.get_big,
        ])
    }

    fn step(&self, step: Step) -> &Row {
        &self.steps[step as usize]
    }

    fn print(&self) {
        println!(
            "{:<32} {:>6} {:>5} {:>5} {:>6} {:>6} {:>4} {:>10} {:>9}",
            "operation", "total", "fs", "io", "clocks", "random", "cli", "mean µs", "peak mem"
        );
        for r in self.rows() {
            let c = &r.calls;
            println!(
                "{:<32} {:>6} {:>5} {:>5} {:>6} {:>6} {:>4} {:>10} {:>9}",
                r.label,
                c.total,
                c.filesystem(),
                c.io(),
                c.clocks(),
                c.random(),
                c.cli(),
                r.mean_us.map_or("-".into(), |us| format!("{us:.1}")),
                r.memory
                    .map_or("-".into(), |m| format!("{} KiB", m.peak_bytes >> 10)),
            );
        }
        let ratio = |a: &Row, b: &Row, what: &str| {
            let calls = a.calls.total as f64 / b.calls.total.max(1) as f64;
            let time = match (a.mean_us, b.mean_us) {
                (Some(x), Some(y)) if y > 0.0 => format!("{:.2}×", x / y),
                _ => "-".into(),
            };
            println!("{what:<32} {calls:>6.2}× calls {time:>13} time");
        };
        ratio(
            &self.load_big,
            &self.load_small,
            "ratio load 1000-key/1-key",
        );
        ratio(&self.get_big, &self.get_small, "ratio get 1000-key/1-key");
        ratio(&self.get, &self.load, "ratio get/load (2-key)");
        if let Some(m) = self.cycle.memory {
            println!(
                "peak linear memory per instance, cycle: {} KiB ({} memory, {} grows)",
                m.peak_bytes >> 10,
                m.memories_created,
                m.grows
            );
        }
        if let Some(m) = self.get_big.memory {
            println!(
                "peak linear memory per instance, load + gets of the 1000-key session: {} KiB",
                m.peak_bytes >> 10
            );
        }
        println!(
            "host calls deterministic across two identical cycles: {}",
            if self.deterministic { "yes" } else { "NO" }
        );
    }

    fn print_breakdown(&self) {
        let cols: [(&str, &Row); 8] = [
            ("cycle", &self.cycle),
            ("open", self.step(Step::Open)),
            ("load", self.step(Step::Load)),
            ("get", self.step(Step::Get)),
            ("set", self.step(Step::Set)),
            ("drop", self.step(Step::Drop)),
            ("set-iso", &self.set),
            ("get1000", &self.get_big),
        ];
        let mut names: Vec<&'static str> = cols
            .iter()
            .flat_map(|(_, r)| r.calls.by_function.keys().copied())
            .collect();
        names.sort();
        names.dedup();
        names.sort_by_key(|n| {
            (
                std::cmp::Reverse(self.cycle.calls.get(n)),
                std::cmp::Reverse(self.get_big.calls.get(n)),
            )
        });
        print!("{:<46}", "function");
        for (h, _) in &cols {
            print!(" {h:>7}");
        }
        println!();
        for n in names {
            print!("{n:<46}");
            for (_, r) in &cols {
                print!(" {:>7}", r.calls.get(n));
            }
            println!();
        }
        print!("{:<46}", "total");
        for (_, r) in &cols {
            print!(" {:>7}", r.calls.total);
        }
        println!();
    }
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
        Stats {
            mean: us.iter().sum::<f64>() / us.len() as f64,
            p50: pick(0.5),
            p95: pick(0.95),
        }
    }

    fn print(&self, label: &str) {
        println!(
            "{label:<40} {:>10.1} {:>10.1} {:>10.1}",
            self.mean, self.p50, self.p95
        );
    }
    /// Each figure over the same figure of `base`.
    fn ratio_to(&self, base: &Stats) -> Stats {
        Stats {
            mean: self.mean / base.mean,
            p50: self.p50 / base.p50,
            p95: self.p95 / base.p95,
        }
    }

    /// A row of [`Stats::ratio_to`] figures, in the columns of [`Stats::print`].
    fn print_ratio(&self, label: &str) {
        println!(
            "{label:<40} {:>9.2}× {:>9.2}× {:>9.2}×",
            self.mean, self.p50, self.p95
        );
    }
}

struct Args {
    iters: usize,
    dirs: Vec<PathBuf>,
    trace: bool,
    sweep_sessions: usize,
    sweep_budget: u32,
    /// Section 5's directory sizes; empty skips it.
    many_files: Vec<usize>,
    /// Section 6's thread counts; empty skips it.
    threads: Vec<usize>,
    scaling_secs: f64,
    /// Section 7's instances; 0 skips it.
    live_instances: usize,
    /// `--profile-cycles N`: only run N wasm cycles, for `perf record`.
    profile_cycles: usize,
}

fn parse_args() -> anyhow::Result<Args> {
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
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iters" => iters = parse_value(args.next(), "--iters")?,
            "--dir" => dirs.push(args.next().context("--dir needs a path")?.into()),
            "--trace" => trace = true,
            "--durability" => {
                let d = match args.next().as_deref() {
                    Some("power-loss") => Durability::PowerLoss,
                    Some("process-crash") => Durability::ProcessCrash,
                    _ => anyhow::bail!("--durability takes power-loss or process-crash"),
                };
                DURABILITY.set(d).ok();
            }
            "--sweep-sessions" => sweep_sessions = parse_value(args.next(), "--sweep-sessions")?,
            "--sweep-budget" => sweep_budget = parse_value(args.next(), "--sweep-budget")?,
            "--many-files" => many_files = parse_list(args.next(), "--many-files")?,
            "--threads" => threads = parse_list(args.next(), "--threads")?,
            "--scaling-secs" => scaling_secs = parse_value(args.next(), "--scaling-secs")?,
            "--profile-cycles" => profile_cycles = parse_value(args.next(), "--profile-cycles")?,
            "--keep-resident" => {
                KEEP_RESIDENT
                    .set(parse_value(args.next(), "--keep-resident")?)
                    .ok();
            }
            "--live-instances" => live_instances = parse_value(args.next(), "--live-instances")?,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    anyhow::ensure!(iters > 0, "--iters must be at least 1");
    anyhow::ensure!(sweep_budget > 0, "--sweep-budget must be at least 1");
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
    })
}

/// Nothing but `cycles` wasm cycles (stock wasmtime-wasi), so that a
/// profiler sees only them: `SQLITE_SESSIONS_PERFMAP=1 perf record -g bench
/// --profile-cycles 5000`.
fn profile(runtime: &Runtime, base: &Path, cycles: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(base)?;
    let config = bench_config();
    let id = seed_session(runtime, dir.path())?;
    let started = Instant::now();
    for i in 0..cycles {
        one_wasm_cycle(runtime, dir.path(), &config, &id, i)?;
    }
    let mean = started.elapsed().as_secs_f64() * 1e6 / cycles as f64;
    println!("{cycles} wasm cycles, mean {mean:.1} µs");
    Ok(())
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

/// Section 4: `store.sweep` throughput inside wasmtime.
///
/// The sessions are seeded natively with the same storage core (same files,
/// same expiry hints), which is much faster than seeding through the
/// component and does not change what is measured. 1% get a 60 s idle
/// timeout, the rest the default 24 h; the sweep's guest clock is set an hour
/// ahead, so exactly that 1% has expired. Each call runs in a fresh instance
/// with `budget` files, as a host with a per-request limit (or a cron
/// trigger) would run it.
fn sweep_bench(runtime: &Runtime, base: &Path, sessions: usize, budget: u32) -> anyhow::Result<()> {
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
            s.set_expiry(sqlite_sessions::expiry::Overrides {
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
