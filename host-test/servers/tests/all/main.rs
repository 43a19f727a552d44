//! The crate's own tests: every server is really started, checked from the
//! outside, and gone afterwards.

mod cluster;
mod juicefs;
mod redis_server;

use std::net::TcpStream;
use std::time::Duration;

/// Whether anything accepts connections on a loopback port.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

fn mounted(path: &std::path::Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(path.to_str().unwrap()))
}
