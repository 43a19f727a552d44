//! Section 10, several hosts sharing one directory: the session cycle on a
//! JuiceFS volume (metadata in a `redis-server` started here, data in a
//! local directory) mounted twice, each mount its own client with its own
//! kernel caches: two hosts. Rows: the cycle on one mount, and cycles
//! alternating between the two mounts (each request on the other host, so
//! each one finds the session last written elsewhere), for three setups of
//! the volume; beside them, in the same run, the cycle on the first
//! `--dir` with and without `shared-directory`. Then the deterministic
//! figures: filesystem calls per cycle, and Redis commands (metadata
//! operations of the JuiceFS clients) per cycle.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use sqlite_sessions_host::{Config, Runtime};
use test_servers::{FormatOptions, JuiceFs, MountOptions};

use crate::cycle::{one_wasm_cycle, run_cycle, run_variants, CycleFn};
use crate::setup::{bench_config, seed_session};

/// A JuiceFS setup: how the volume is formatted and mounted.
struct Setup {
    label: &'static str,
    format: FormatOptions,
    mount: MountOptions,
}

fn setups() -> [Setup; 3] {
    let zero = Duration::ZERO;
    [
        Setup {
            label: "JuiceFS documented",
            format: FormatOptions::default(),
            mount: MountOptions {
                entry_cache: zero,
                dir_entry_cache: zero,
                negative_entry_cache: zero,
                ..MountOptions::default()
            },
        },
        Setup {
            label: "JuiceFS defaults",
            format: FormatOptions::juicefs_defaults(),
            mount: MountOptions::default(),
        },
        Setup {
            label: "JuiceFS no caches",
            format: FormatOptions::default(),
            mount: MountOptions::no_kernel_caches(),
        },
    ]
}

/// One setup's volume, mounted twice, with a session seeded on it.
struct Hosts {
    label: &'static str,
    volume: JuiceFs,
    dirs: [PathBuf; 2],
    id: String,
}

impl Hosts {
    fn start(setup: &Setup, runtime: &Runtime) -> anyhow::Result<Hosts> {
        let mut volume = JuiceFs::start(&setup.format)?;
        let mounts = volume.mount(2, &setup.mount)?;
        let dirs = [0, 1].map(|i| mounts[i].path().join("sessions"));
        std::fs::create_dir(&dirs[0]).context("creating the session directory")?;
        let id = seed_session(runtime, &dirs[0])?;
        Ok(Hosts {
            label: setup.label,
            volume,
            dirs,
            id,
        })
    }

    /// The metadata engine's count of commands processed so far.
    fn redis_commands(&self) -> anyhow::Result<u64> {
        let client = redis::Client::open(self.volume.redis().url())?;
        let mut conn = client.get_connection()?;
        let info: String = redis::cmd("INFO").arg("stats").query(&mut conn)?;
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .context("no total_commands_processed in INFO stats")?
            .trim()
            .parse()
            .context("total_commands_processed")
    }
}

/// Section 10. `base` is the first `--dir`.
pub fn several_hosts_bench(
    stock: &Runtime,
    counted: &Runtime,
    base: &Path,
    iters: usize,
) -> anyhow::Result<()> {
    let shared = Config {
        shared_directory: Some(true),
        ..bench_config()
    };
    let one_host = bench_config();
    let local = tempfile::tempdir_in(base)?;
    let local = local.path();
    let local_id = seed_session(stock, local)?;
    let hosts = setups()
        .iter()
        .map(|setup| Hosts::start(setup, stock))
        .collect::<anyhow::Result<Vec<_>>>()?;

    println!(
        "several hosts: the cycle with shared-directory on a JuiceFS volume mounted twice, \
         {iters} iterations per row"
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "workload", "mean µs", "p50 µs", "p95 µs"
    );
    let (shared, one_host, local_id) = (&shared, &one_host, &local_id);
    let mut variants: Vec<(String, CycleFn)> = vec![
        (
            format!("{} one host", base.display()),
            Box::new(move |i| one_wasm_cycle(stock, local, one_host, local_id, i)),
        ),
        (
            format!("{} shared-directory", base.display()),
            Box::new(move |i| one_wasm_cycle(stock, local, shared, local_id, i)),
        ),
    ];
    for h in &hosts {
        let (dirs, id) = (&h.dirs, &h.id);
        variants.push((
            format!("{}, one mount", h.label),
            Box::new(move |i| one_wasm_cycle(stock, &dirs[0], shared, id, i)),
        ));
        variants.push((
            format!("{}, alternating", h.label),
            Box::new(move |i| one_wasm_cycle(stock, &dirs[i % 2], shared, id, i)),
        ));
    }
    let variants: [(String, CycleFn); 8] = variants
        .try_into()
        .map_err(|_| anyhow::anyhow!("eight variants"))?;
    let stats = run_variants(variants, iters)?;
    stats[1]
        .ratio_to(&stats[0])
        .print_ratio(&format!("shared-directory / one host {}", base.display()));

    println!();
    println!("per cycle: filesystem calls (counted), Redis commands (INFO stats, mean of 100)");
    let fs_calls = |dir: &Path, config: &Config, id: &str| -> anyhow::Result<u64> {
        let mut whole = 0;
        run_cycle(
            || counted.request(dir),
            |req| counted.finish(req),
            config,
            id,
            "1",
            |req, _| {
                if let Some(req) = req {
                    whole = req.host_calls().filesystem();
                }
            },
        )?;
        Ok(whole)
    };
    println!(
        "{:<40} {:>10}",
        format!("{} one host", base.display()),
        fs_calls(local, one_host, local_id)?
    );
    println!(
        "{:<40} {:>10}",
        format!("{} shared-directory", base.display()),
        fs_calls(local, shared, local_id)?
    );
    const REDIS_CYCLES: usize = 100;
    for h in &hosts {
        for (what, alternate) in [("one mount", false), ("alternating", true)] {
            let before = h.redis_commands()?;
            for i in 0..REDIS_CYCLES {
                let dir = &h.dirs[if alternate { i % 2 } else { 0 }];
                one_wasm_cycle(stock, dir, shared, &h.id, i)?;
            }
            // INFO itself counts as one command.
            let commands = h.redis_commands()? - before - 1;
            println!(
                "{:<40} {:>10} {:>10.1} Redis commands",
                format!("{}, {what}", h.label),
                fs_calls(&h.dirs[0], shared, &h.id)?,
                commands as f64 / REDIS_CYCLES as f64
            );
        }
    }
    Ok(())
}
