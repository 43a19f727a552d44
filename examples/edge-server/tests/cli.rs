//! The `edge-server` binary itself: its usage, and serving a component
//! named by a relative path. Every wait is bounded and the server is killed
//! when the test ends, also when it fails.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Compiling the composed demo with Cranelift, cold, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(180);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn edge_server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-server"))
}

#[test]
fn help_prints_the_usage_and_every_flag() {
    let out = edge_server().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Usage: edge-server"), "{help}");
    for flag in [
        "--port",
        "--dir",
        "--component",
        "--max-instance-reuse-count",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = edge_server().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn a_reuse_count_of_zero_is_a_usage_error() {
    let out = edge_server()
        .args(["--max-instance-reuse-count", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-instance-reuse-count"), "{stderr}");
}

/// Kills the server when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_relative_component_path_is_served() {
    let work = tempfile::tempdir().unwrap();
    let demo = sqlite_sessions_artifacts::edge_demo().unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(demo, work.path().join("demo.wasm")).unwrap();
    let mut server = Server(
        edge_server()
            .args([
                "--component",
                "demo.wasm",
                "--dir",
                "sessions",
                "--port",
                "0",
            ])
            .current_dir(work.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let url = announced_url(&mut server.0);
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("not an http URL: {url}"));

    let response = get(addr, "/");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("id=\"visits\">1<"), "{response}");
    // The relative paths were taken relative to the working directory: the
    // session and the compile cache are there.
    assert!(count_files(&work.path().join("sessions")) == 1);
    assert!(work.path().join("wasmtime-cache").is_dir());
}

/// The URL from the server's "Edge demo: <url>" line, within [`STARTUP`].
fn announced_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("Edge demo: ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    match rx.recv_timeout(STARTUP) {
        Ok(url) => url,
        Err(_) => {
            let status = child.try_wait().unwrap();
            panic!("edge-server announced no URL within {STARTUP:?} (exit status: {status:?})")
        }
    }
}

/// A whole HTTP/1.1 response to `GET path`, the connection closed after it.
fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            n += count_files(&entry.path());
        } else {
            n += 1;
        }
    }
    n
}
