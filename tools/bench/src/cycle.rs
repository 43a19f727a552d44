//! Section 1, the session cycle's time, wasm against native; the
//! new-session cycle; and the cycle itself, which every other section runs.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlite_sessions::{Store, StoreConfig};
use sqlite_sessions_host::{Config, Request, Runtime, SessionStorage};

use crate::setup::{bench_config, native_config, seed_native, seed_session};
use crate::stats::Stats;

/// The steps of the session cycle, in order. Every wasm cycle of this tool
/// (timed, counted, traced, profiled) runs them through [`run_cycle`], so
/// they all measure the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Instantiate,
    Open,
    Load,
    Get,
    Set,
    Drop,
    Teardown,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Instantiate,
        Step::Open,
        Step::Load,
        Step::Get,
        Step::Set,
        Step::Drop,
        Step::Teardown,
    ];

    /// The step's row in the host-calls table.
    pub fn label(self) -> &'static str {
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

/// One session cycle: an instance from `new_request`, open the store,
/// load `id`, get `user`, set `counter` to `counter`, drop the session and
/// the store, end the request with `end` (which drops the instance or keeps
/// it for reuse). `after` runs as each step ends, with the request (none
/// after teardown).
pub fn run_cycle(
    new_request: impl FnOnce() -> anyhow::Result<Request>,
    end: impl FnOnce(Request),
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
    end(req);
    after(None, Step::Teardown);
    Ok(())
}

/// One cycle of `runtime` with its sessions in `storage` (a directory or
/// buckets), timed.
pub fn one_wasm_cycle(
    runtime: &Runtime,
    storage: impl Into<SessionStorage>,
    config: &Config,
    id: &str,
    i: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    run_cycle(
        || runtime.request(storage),
        |req| runtime.finish(req),
        config,
        id,
        &i.to_string(),
        |_, _| {},
    )?;
    Ok(start.elapsed())
}

/// One timed iteration of one variant (a cycle, or a load); its argument is
/// the iteration number.
pub type CycleFn<'a> = Box<dyn FnMut(usize) -> anyhow::Result<Duration> + 'a>;

/// Iterations of one variant in a row, in section 1.
const CYCLE_BLOCK: usize = 50;

/// Section 1 for one directory: five variants of the cycle in blocks of
/// [`CYCLE_BLOCK`] iterations, taking turns, so that the machine's noise
/// falls on all of them alike while each runs warm, as a server repeating
/// one kind of request does. (Interleaving single cycles instead made every
/// variant slower, native code most, from cold caches.)
/// `runtimes` are the pre-initialised runtime with and without host-call
/// counting, one not pre-initialised, and one that reuses instances.
pub fn cycle_rows(base: &Path, iters: usize, runtimes: [&Runtime; 4]) -> anyhow::Result<()> {
    let [counted, stock, plain, reused] = runtimes;
    let wasm_dir = tempfile::tempdir_in(base)?;
    let native_dir = tempfile::tempdir_in(base)?;
    let (wasm_dir, native_dir) = (wasm_dir.path(), native_dir.path());
    let config = bench_config();
    let id = seed_session(counted, wasm_dir)?;
    let native_config = native_config(native_dir)?;
    let native_id = seed_native(&native_config)?;
    let (config, id, native_config, native_id) = (&config, &id, &native_config, &native_id);
    let label = base.display();
    let variants: [(String, CycleFn); 6] = [
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
            format!("wasm   {label} (instance reused)"),
            Box::new(move |i| one_wasm_cycle(reused, wasm_dir, config, id, i)),
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
    let [wasm, no_counting, plain, reused, native, native_afresh] = &run_variants(variants, iters)?;
    let ratio =
        |what: &str, a: &Stats, b: &Stats| a.ratio_to(b).print_ratio(&format!("{what} {label}"));
    // Same SQL work: both start with a compiled connection, or neither.
    ratio("ratio wasm/native", wasm, native);
    ratio("ratio, both compiling afresh", plain, native_afresh);
    ratio("ratio wasm/native compiling afresh", wasm, native_afresh);
    ratio("pre-initialised vs not", wasm, plain);
    ratio("instance reused vs fresh", reused, no_counting);
    ratio("ratio wasm reused/native", reused, native);
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
pub fn run_variants<const N: usize>(
    variants: [(String, CycleFn); N],
    iters: usize,
) -> anyhow::Result<[Stats; N]> {
    let stats = run_variant_list(variants.into(), iters)?;
    stats
        .try_into()
        .map_err(|_| anyhow::anyhow!("one row of statistics per variant"))
}

/// [`run_variants`] for a list whose length is known only at run time.
pub fn run_variant_list(
    mut variants: Vec<(String, CycleFn)>,
    iters: usize,
) -> anyhow::Result<Vec<Stats>> {
    let n = variants.len();
    let mut times: Vec<Vec<Duration>> = (0..n).map(|_| Vec::with_capacity(iters)).collect();
    let (mut done, mut block) = (0, 0);
    while done < iters {
        let len = CYCLE_BLOCK.min(iters - done);
        for k in 0..n {
            let v = (block + k) % n;
            for i in done..done + len {
                times[v].push((variants[v].1)(i)?);
            }
        }
        done += len;
        block += 1;
    }
    let stats: Vec<Stats> = times.iter().map(|t| Stats::of(t)).collect();
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
pub fn create_rows(base: &Path, iters: usize, runtimes: [&Runtime; 2]) -> anyhow::Result<()> {
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

/// [`one_wasm_cycle`], natively: open, load, get, set, drop. The thread
/// keeps the last session's connection, compiled, for the next open
/// (`sqlite_sessions::template`), as a pre-initialised wasm instance starts
/// with one: the same SQL work. With `afresh`, it is discarded first
/// (outside the timing), so the open compiles, as in a wasm instance that is
/// not pre-initialised.
pub fn one_native_cycle(
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
