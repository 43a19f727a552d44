//! Free loopback ports, found by binding port 0 and letting go.
//!
//! Another process can take a port between our release and the server's
//! bind; the servers in this crate detect that ("Address already in use"
//! in their log) and start again on a new port.

use std::net::{Ipv4Addr, TcpListener};

use crate::error::{Error, Result};

const ATTEMPTS: usize = 64;

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    for _ in 0..ATTEMPTS {
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
            if let Ok(addr) = listener.local_addr() {
                return Ok(addr.port());
            }
        }
    }
    Err(Error::NoFreePort { attempts: ATTEMPTS })
}

/// A loopback port `p` such that `p` and `p + offset` were both free a
/// moment ago (Redis cluster nodes listen on `p` and on their bus port
/// `p + 10000`).
pub fn free_port_pair(offset: u16) -> Result<u16> {
    for _ in 0..ATTEMPTS {
        let Ok(first) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = first.local_addr().map(|a| a.port()) else {
            continue;
        };
        let Some(second) = port.checked_add(offset) else {
            continue;
        };
        // Both held at once, so neither check can be fooled by the other.
        if TcpListener::bind((Ipv4Addr::LOCALHOST, second)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::NoFreePort { attempts: ATTEMPTS })
}
