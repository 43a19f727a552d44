//! Section 11: the edge demo's page (`GET /`) under the real `wasmtime
//! serve` (the wasmtime 48 CLI, `.ci/setup.sh` installs it), with a fresh
//! instance per request (its default for a WASIp2 component) and with
//! instances reused (`--max-instance-reuse-count`), beside `edge-server`
//! (in this process, pooled instances, fresh and reused the same way), all
//! on one session directory each. ApacheBench at concurrency 1 and 4, with one
//! shared session (one cookie on every request) and with many sessions (no
//! cookie: every request creates its own); requests per second, and the
//! median and 99th percentile latency from `ab -e`.
//!
//! After each shared-session row the session's counter must equal the
//! requests made, or the bench fails.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use edge_server::{EdgeServer, ServerOptions};
use test_servers::{ServeOptions, WasmtimeServe};

use crate::http::{first_visit, visits, which, AbReport};

/// Requests one instance serves in the reuse rows: the whole row, so that
/// a row measures reuse rather than instance turnover.
const REUSE: u32 = 100_000;
const CONCURRENCY: [usize; 2] = [1, 4];

/// Section 11.
pub fn serve_bench(dir: &Path, requests: usize) -> anyhow::Result<()> {
    let ab = which("ab").context(
        "`ab` (ApacheBench) is not on PATH: `apt-get install apache2-utils` (`make setup` \
         installs it), or skip this section with --serve-requests 0",
    )?;
    let demo = sqlite_sessions_artifacts::edge_demo()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let edge_server = |reuse: u32| -> anyhow::Result<_> {
        let sessions = tempfile::tempdir_in(dir)?;
        let mut options = ServerOptions::new(demo, sessions.path());
        options.addr.set_port(0);
        options.inherit_stderr = false;
        options.max_instance_reuse_count = reuse;
        let server = runtime.block_on(EdgeServer::new(&options)?.bind(options.addr))?;
        Ok((server, sessions))
    };
    let (edge, _edge_dir) = edge_server(1)?;
    let (edge_reused, _edge_reused_dir) = edge_server(REUSE)?;

    let serve = |reuse: Option<u32>| -> anyhow::Result<(WasmtimeServe, tempfile::TempDir)> {
        let sessions = tempfile::tempdir_in(dir)?;
        let mut options = ServeOptions::new(demo);
        options.dir = Some((sessions.path().to_owned(), "/sessions".into()));
        options.max_instance_reuse_count = reuse;
        Ok((WasmtimeServe::start(&options)?, sessions))
    };
    let (fresh, _fresh_dir) = serve(None)?;
    let (reused, _reused_dir) = serve(Some(REUSE))?;

    println!(
        "the edge demo's page (GET /: load or create the session, increment its counter), \
         {requests} requests per row (`ab -l`, a connection per request), sessions in {}",
        dir.display()
    );
    println!("(instance reuse: --max-instance-reuse-count {REUSE})");
    println!(
        "{:<36} {:<14} {:>2} {:>10} {:>8} {:>8}",
        "server", "sessions", "c", "requests/s", "p50 ms", "p99 ms"
    );
    let servers = [
        ("edge-server, fresh instances", edge.url()),
        ("edge-server, instance reuse", edge_reused.url()),
        ("wasmtime serve, fresh instances", fresh.url()),
        ("wasmtime serve, instance reuse", reused.url()),
    ];
    for (label, url) in &servers {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("not a loopback URL: {url}"))?;
        for concurrency in CONCURRENCY {
            let cookie = first_visit(addr)?;
            let shared = ab_run(&ab, dir, url, Some(&cookie), requests, concurrency)?;
            shared.print(label, "one shared", concurrency);
            let counted = visits(addr, &cookie)?;
            if counted != requests as u64 + 2 {
                bail!(
                    "{label}: the counter is {counted} after {} visits: updates were lost",
                    requests + 2
                );
            }
            let many = ab_run(&ab, dir, url, None, requests, concurrency)?;
            many.print(label, "one each", concurrency);
        }
    }
    runtime.block_on(edge.stop());
    runtime.block_on(edge_reused.stop());
    Ok(())
}

/// One `ab` run's figures.
struct Run {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Run {
    fn print(&self, server: &str, sessions: &str, concurrency: usize) {
        println!(
            "{server:<36} {sessions:<14} {concurrency:>2} {:>10.0} {:>8.2} {:>8.2}",
            self.per_sec, self.p50_ms, self.p99_ms
        );
    }
}

/// `requests` requests of `GET /` at `url` with `ab -c concurrency`; fails
/// if any failed or was not answered 200.
fn ab_run(
    ab: &Path,
    dir: &Path,
    url: &str,
    cookie: Option<&str>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Run> {
    let scratch = tempfile::tempdir_in(dir)?;
    let csv = scratch.path().join("percentiles.csv");
    let mut cmd = Command::new(ab);
    // -l: the page differs from one response to the next (the counter);
    // -e: the percentiles in milliseconds with decimals, where the summary
    // prints whole milliseconds.
    cmd.args(["-q", "-l", "-s", "30", "-n"])
        .arg(requests.to_string())
        .arg("-c")
        .arg(concurrency.to_string())
        .arg("-e")
        .arg(&csv);
    if let Some(cookie) = cookie {
        cmd.args(["-C", cookie]);
    }
    let child = cmd
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ab")?;
    let per_sec = AbReport::wait(child, requests)?
        .field("Requests per second:")
        .context("ab printed no rate")?;
    let percentiles = std::fs::read_to_string(&csv).context("reading ab's percentiles")?;
    let percentile = |p: u32| -> anyhow::Result<f64> {
        percentiles
            .lines()
            .find_map(|l| {
                let (pct, ms) = l.split_once(',')?;
                (pct.trim().parse::<u32>().ok()? == p).then(|| ms.trim().parse().ok())?
            })
            .with_context(|| format!("no {p}th percentile in ab's CSV:\n{percentiles}"))
    };
    Ok(Run {
        per_sec,
        p50_ms: percentile(50)?,
        p99_ms: percentile(99)?,
    })
}
