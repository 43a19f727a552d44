//! Sections 2 and 3: host calls per operation, with each operation's mean
//! time and peak linear memory, and their breakdown by function.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlite_sessions_host::{
    Config, FakeClock, HostCallCounts, MemoryStats, Request, RequestOptions, Runtime,
    SessionHandle, StoreHandle,
};

use crate::cycle::{self, Step};
use crate::setup::{bench_config, finish, SEED};

/// Keys and value size of the large session.
const BIG_KEYS: usize = 1000;
const VALUE_BYTES: usize = 1024;

/// One row of the host-calls table.
struct Row {
    label: String,
    calls: HostCallCounts,
    /// Mean time of the operation alone, if measured.
    mean_us: Option<f64>,
    memory: Option<MemoryStats>,
}

/// Every row of sections 2 and 3.
pub struct Ops {
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
    pub id: String,
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
    /// A request at this context's fixed wall clock.
    fn options(&self) -> RequestOptions {
        RequestOptions {
            wall_clock: Some(self.clock.clone()),
            ..RequestOptions::default()
        }
    }

    fn request(&self) -> anyhow::Result<Request> {
        self.runtime.request_with(self.dir, self.options())
    }

    /// [`cycle::run_cycle`] on this context's fresh instances. It sets `counter` to
    /// the value it already has, so repeated cycles see identical files.
    fn run_cycle(
        &self,
        id: &str,
        after: impl FnMut(Option<&mut Request>, Step),
    ) -> anyhow::Result<()> {
        cycle::run_cycle(|| self.request(), drop, &self.config, id, "0", after)
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
pub fn trace_cycle(runtime: &Runtime, dir: &Path, id: &str) -> anyhow::Result<Vec<String>> {
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
    pub fn measure(runtime: &Runtime, dir: &Path, iters: usize) -> anyhow::Result<Ops> {
        let cx = Ctx {
            runtime,
            dir,
            clock: FakeClock::default(),
            config: bench_config(),
        };
        let id = runtime.create_session(dir, cx.options(), &cx.config, SEED)?;

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

    pub fn print(&self) {
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

    pub fn print_breakdown(&self) {
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
