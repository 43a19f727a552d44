//! `redis-server` on loopback: one standalone server, or a small cluster.
//!
//! Each server runs in its own temporary directory without persistence,
//! is reached on 127.0.0.1 only, and is killed (and its directory removed)
//! when its handle is dropped, also while a failing test unwinds.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{io, Error, Result};
use crate::ports;
use crate::process::{self, POLL};

/// How long a server may take to answer PING after it is started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` waits after SIGTERM before it kills.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// New ports tried when another process takes ours between our check and
/// the server's bind.
const START_ATTEMPTS: usize = 5;
const INSTALL: &str = "apt-get install redis-server (Debian's package, which also ships redis-cli)";

fn tool(name: &'static str) -> Result<PathBuf> {
    process::on_path(name).ok_or(Error::Missing {
        what: name,
        detail: "not found on PATH".into(),
        install: INSTALL,
    })
}

/// One `redis-server` process on a loopback port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    binary: PathBuf,
    extra_args: Vec<OsString>,
    log: PathBuf,
    // Dropped last: the process is gone before its directory is removed.
    dir: TempDir,
}

impl RedisServer {
    /// Starts a standalone server on a free port and waits until it answers
    /// PING.
    pub fn start() -> Result<Self> {
        Self::start_with(Vec::new(), false)
    }

    fn start_with(extra_args: Vec<OsString>, cluster_bus: bool) -> Result<Self> {
        let binary = tool("redis-server")?;
        let dir = tempfile::Builder::new()
            .prefix("test-redis-")
            .tempdir()
            .map_err(io("creating a directory for redis-server"))?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            binary,
            extra_args,
            log: dir.path().join("redis.log"),
            dir,
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            server.port = if cluster_bus {
                ports::free_port_pair(10000)?
            } else {
                ports::free_port()?
            };
            // A fresh log per attempt, so "in use" is about this port.
            let _ = fs::remove_file(&server.log);
            match server.launch() {
                Ok(child) => {
                    server.child = Some(child);
                    return Ok(server);
                }
                Err(e) if server.port_was_taken() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(Error::NoFreePort {
            attempts: START_ATTEMPTS,
        }))
    }

    /// Spawns the server on `self.port` and waits until it answers PING.
    fn launch(&self) -> Result<Child> {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io(format!("opening {}", self.log.display())))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&self.log)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Errors before the log file is open (a bad argument) land here.
            .stderr(stderr);
        let mut child = command
            .spawn()
            .map_err(io(format!("starting {}", process::describe(&command))))?;
        let what = || format!("redis-server on 127.0.0.1:{}", self.port);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().map_err(io("waiting for redis-server"))? {
                return Err(Error::Exited {
                    what: what(),
                    status: status.to_string(),
                    log: self.log.clone(),
                    tail: process::tail(&self.log, 20),
                });
            }
            if ping(self.port).is_ok() {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                process::terminate(&mut child, STOP_GRACE);
                return Err(Error::NotReady {
                    what: what(),
                    timeout: READY_TIMEOUT,
                    log: self.log.clone(),
                    tail: process::tail(&self.log, 20),
                });
            }
            thread::sleep(POLL * 5);
        }
    }

    fn port_was_taken(&self) -> bool {
        fs::read_to_string(&self.log)
            .map(|log| log.contains("Address already in use"))
            .unwrap_or(false)
    }

    /// The loopback port it listens on; kept across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis://127.0.0.1:PORT/DB`, e.g. for a JuiceFS metadata engine.
    pub fn url_with_db(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// `127.0.0.1:PORT`, as `redis-cli --cluster` wants it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log (kept across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The process id while it runs, e.g. to pause it with SIGSTOP.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `redis-cli -p PORT ARGS...` against it (bounded by
    /// [`READY_TIMEOUT`]) and returns what it printed, e.g. `cli(&["DBSIZE"])`.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let cli = tool("redis-cli")?;
        let finished = process::run(
            Command::new(cli)
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(args),
            READY_TIMEOUT,
        )?;
        Ok(finished.output)
    }

    /// Whether the process is alive (it may still be starting).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Stops the server (SIGTERM, bounded; then SIGKILL). Its port and
    /// directory are kept for [`restart`](Self::restart). Does nothing if it
    /// is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, STOP_GRACE);
        }
    }

    /// Kills the server at once, as a crash would (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if it
    /// runs) and waits until it answers PING. Data is not kept: there is no
    /// persistence. Retries while the port is briefly unavailable, within
    /// the same bound as a first start.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                // The old process's port may linger for a moment.
                Err(Error::Exited { .. }) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // No persistence, so a kill loses nothing and never hangs.
        self.kill();
    }
}

const IO_TIMEOUT: Duration = Duration::from_millis(500);

fn connection(port: u16) -> Result<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let connection = client.get_connection_with_timeout(IO_TIMEOUT)?;
    connection.set_read_timeout(Some(IO_TIMEOUT))?;
    connection.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(connection)
}

fn ping(port: u16) -> Result<()> {
    let reply: String = redis::cmd("PING").query(&mut connection(port)?)?;
    if reply == "PONG" {
        Ok(())
    } else {
        Err(
            redis::RedisError::from((redis::ErrorKind::Client, "unexpected PING reply", reply))
                .into(),
        )
    }
}

fn cluster_info(port: u16) -> Result<String> {
    Ok(redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut connection(port)?)?)
}

/// A Redis cluster of masters without replicas, created with
/// `redis-cli --cluster create`. Every node is a [`RedisServer`]; dropping
/// the cluster stops them all.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// How many masters [`RedisCluster::start`] creates (the least `redis-cli
/// --cluster create` accepts).
pub const CLUSTER_MASTERS: usize = 3;
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the nodes may take to agree that the cluster is up.
pub const CLUSTER_OK_TIMEOUT: Duration = Duration::from_secs(20);

impl RedisCluster {
    /// Starts three cluster-enabled nodes (each port `p` with bus port
    /// `p + 10000` free), creates the cluster, and waits until every node
    /// reports `cluster_state:ok`.
    pub fn start() -> Result<Self> {
        let cli = tool("redis-cli")?;
        let nodes = (0..CLUSTER_MASTERS)
            .map(|_| {
                RedisServer::start_with(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ]
                    .map(OsString::from)
                    .to_vec(),
                    true,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let cluster = RedisCluster { nodes };
        process::run(
            Command::new(cli)
                .args(["--cluster", "create"])
                .args(cluster.nodes.iter().map(RedisServer::addr))
                .args(["--cluster-replicas", "0", "--cluster-yes"]),
            CREATE_TIMEOUT,
        )?;
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// Waits until every running node reports `cluster_state:ok`, at most
    /// [`CLUSTER_OK_TIMEOUT`] (e.g. after restarting a node).
    pub fn wait_until_ok(&self) -> Result<()> {
        let deadline = Instant::now() + CLUSTER_OK_TIMEOUT;
        for node in &self.nodes {
            loop {
                let info = cluster_info(node.port);
                if matches!(&info, Ok(text) if text.contains("cluster_state:ok")) {
                    break;
                }
                if Instant::now() >= deadline {
                    let last = match info {
                        Ok(text) => text,
                        Err(e) => e.to_string(),
                    };
                    return Err(Error::NotReady {
                        what: format!(
                            "cluster node {} (CLUSTER INFO: {})",
                            node.addr(),
                            last.trim()
                        ),
                        timeout: CLUSTER_OK_TIMEOUT,
                        log: node.log.clone(),
                        tail: process::tail(&node.log, 20),
                    });
                }
                thread::sleep(POLL * 5);
            }
        }
        Ok(())
    }

    /// `redis://127.0.0.1:PORT/` of every node, as a cluster client takes
    /// them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One node, e.g. to stop and restart it in a fault test.
    pub fn node_mut(&mut self, index: usize) -> Option<&mut RedisServer> {
        self.nodes.get_mut(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_an_error_that_says_what_to_install() {
        let error = tool("redis-server-that-is-not-installed").unwrap_err();
        assert!(matches!(error, Error::Missing { .. }));
        let message = error.to_string();
        assert!(
            message.contains("redis-server-that-is-not-installed"),
            "{message}"
        );
        assert!(
            message.contains("apt-get install redis-server"),
            "{message}"
        );
    }

    #[test]
    fn a_server_that_cannot_start_fails_with_its_log() {
        let bad = vec!["--no-such-directive".into(), "1".into()];
        let error = match RedisServer::start_with(bad, false) {
            Ok(_) => panic!("redis-server accepted a bad directive"),
            Err(e) => e,
        };
        assert!(matches!(error, Error::Exited { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("exited early"), "{message}");
        assert!(message.contains("no-such-directive"), "{message}");
    }
}
