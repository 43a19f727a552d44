//! Section 9: requests per second of the edge demo's page (`GET /`, which
//! loads the session and increments its visit counter) through the
//! `edge-server` example, measured with ApacheBench (`ab`, Debian's
//! apache2-utils) on loopback: one server on a session directory, one and
//! two servers sharing one Redis, and two sharing a Redis cluster. The
//! servers run in this process, each with its own engine, compiled
//! component and Redis connections, as separate hosts would.
//!
//! Two kinds of traffic: new visitors (no cookie: every request creates a
//! session) and one returning visitor (every request, on every server, the
//! same session: they all contend for its compare-and-swap). After the
//! returning visitor's run the session's counter must equal the requests
//! made, or the bench fails.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use edge_server::{EdgeServer, RunningServer, ServerOptions};
use sqlite_sessions_host::SessionStorage;

use crate::kv::Servers;

/// The longest one `ab` run may take before it is killed.
const AB_TIMEOUT: Duration = Duration::from_secs(300);

/// Section 9.
pub fn http_bench(
    servers: &Servers,
    dir: &Path,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let ab = which("ab").context(
        "`ab` (ApacheBench) is not on PATH: `apt-get install apache2-utils` (`make setup` \
         installs it), or skip this section with --http-requests 0",
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sessions = tempfile::tempdir_in(dir)?;
    let demo = sqlite_sessions_artifacts::edge_demo()?;
    let demo_kv = sqlite_sessions_artifacts::edge_demo_kv()?;

    let start = |component: &Path, storage: SessionStorage| -> anyhow::Result<RunningServer> {
        let mut options = ServerOptions::new(component, storage);
        options.addr.set_port(0);
        options.inherit_stderr = false;
        let server = EdgeServer::new(&options)?;
        runtime.block_on(server.bind(options.addr))
    };
    let dir_server = start(demo, sessions.path().into())?;
    let redis: Vec<RunningServer> = (0..2)
        .map(|_| start(demo_kv, servers.redis_buckets("bench-http:")?.into()))
        .collect::<anyhow::Result<_>>()?;
    let cluster: Vec<RunningServer> = (0..2)
        .map(|_| start(demo_kv, servers.cluster_buckets("bench-http:")?.into()))
        .collect::<anyhow::Result<_>>()?;

    println!(
        "the edge demo's page (GET /: load the session, increment its counter) through \
         edge-server, {requests} requests per row with `ab -c {concurrency}` per server (a connection per request)"
    );
    println!("{:<44} {:>10} {:>12}", "setup", "requests/s", "mean ms/req");
    let rows: [(&str, Vec<SocketAddr>); 4] = [
        ("directory, 1 server", vec![dir_server.local_addr()]),
        ("redis, 1 server", vec![redis[0].local_addr()]),
        (
            "redis, 2 servers",
            redis.iter().map(RunningServer::local_addr).collect(),
        ),
        (
            "redis cluster, 2 servers",
            cluster.iter().map(RunningServer::local_addr).collect(),
        ),
    ];
    for (label, addrs) in &rows {
        let new = load(&ab, addrs, None, requests, concurrency)?;
        new.print(&format!("{label}, new visitors"));
        let cookie = first_visit(addrs[0])?;
        let returning = load(&ab, addrs, Some(&cookie), requests, concurrency)?;
        returning.print(&format!("{label}, one returning visitor"));
        // Every request was counted once, whichever server it reached.
        let visits = visits(addrs[addrs.len() - 1], &cookie)?;
        let expected = returning.requests as u64 + 2;
        if visits != expected {
            bail!("{label}: the counter is {visits} after {expected} visits: updates were lost");
        }
    }

    for server in [dir_server].into_iter().chain(redis).chain(cluster) {
        runtime.block_on(server.stop());
    }
    Ok(())
}

/// What one row's `ab` runs did together.
struct Load {
    requests: usize,
    wall: Duration,
}

impl Load {
    fn print(&self, label: &str) {
        let secs = self.wall.as_secs_f64();
        println!(
            "{label:<44} {:>10.0} {:>12.2}",
            self.requests as f64 / secs,
            secs * 1e3 / self.requests as f64
        );
    }
}

/// `requests` requests of `GET /`, split evenly over the servers at
/// `addrs`, one `ab` process each, all at once; fails if any request failed
/// or was not answered 200.
fn load(
    ab: &Path,
    addrs: &[SocketAddr],
    cookie: Option<&str>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Load> {
    let each = (requests / addrs.len()).max(concurrency);
    let started = Instant::now();
    let children = addrs
        .iter()
        .map(|addr| {
            let mut cmd = Command::new(ab);
            // -l: the page differs from one response to the next (the counter).
            cmd.args(["-q", "-l", "-s", "30"]).args([
                "-n",
                &each.to_string(),
                "-c",
                &concurrency.to_string(),
            ]);
            if let Some(cookie) = cookie {
                cmd.args(["-C", cookie]);
            }
            cmd.arg(format!("http://{addr}/"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting ab")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for child in children {
        AbReport::wait(child, each)?;
    }
    Ok(Load {
        requests: each * addrs.len(),
        wall: started.elapsed(),
    })
}

/// What one `ab` run printed, once it is known to have made every request
/// and had every one answered 200.
pub(crate) struct AbReport {
    text: String,
}

impl AbReport {
    /// Waits for `child` (a running `ab`); fails unless it made `requests`
    /// requests, none failed and all were answered 200.
    pub(crate) fn wait(child: std::process::Child, requests: usize) -> anyhow::Result<Self> {
        let out = wait_bounded(child)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "ab failed ({}): {}{}",
                out.status,
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let report = AbReport { text };
        let complete = report
            .field("Complete requests:")
            .context("ab printed no request count")?;
        let failed = report.field("Failed requests:").unwrap_or(0.0);
        let non_2xx = report.field("Non-2xx responses:").unwrap_or(0.0);
        if complete != requests as f64 || failed != 0.0 || non_2xx != 0.0 {
            bail!(
                "ab: {complete} complete, {failed} failed, {non_2xx} not 200:\n{}",
                report.text
            );
        }
        Ok(report)
    }

    /// The number `ab` printed after `name`, e.g. `"Requests per second:"`.
    pub(crate) fn field(&self, name: &str) -> Option<f64> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    }
}

pub(crate) fn wait_bounded(mut child: std::process::Child) -> anyhow::Result<std::process::Output> {
    let deadline = Instant::now() + AB_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("ab did not finish within {AB_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

/// One `GET /` with `cookie` (if any) over a fresh connection: the response
/// head and body.
fn get(addr: SocketAddr, cookie: Option<&str>) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// A first visit: the `sid=...` cookie the server set.
pub(crate) fn first_visit(addr: SocketAddr) -> anyhow::Result<String> {
    let response = get(addr, None)?;
    response
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().map(str::to_owned))?
        })
        .with_context(|| format!("no Set-Cookie in:\n{response}"))
}

/// One more visit with `cookie`: the visit number the page shows.
pub(crate) fn visits(addr: SocketAddr, cookie: &str) -> anyhow::Result<u64> {
    let response = get(addr, Some(cookie))?;
    let marker = "<strong id=\"visits\">";
    let start = response
        .find(marker)
        .with_context(|| format!("no visit counter in:\n{response}"))?
        + marker.len();
    let end = start
        + response[start..]
            .find('<')
            .context("unterminated counter")?;
    Ok(response[start..end].parse()?)
}

/// The first executable `name` on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
