//! Real servers for tests, started by the tests themselves on loopback:
//!
//! - [`RedisServer`]: Debian's `redis-server` without persistence, on a free
//!   port, stoppable and restartable on the same port.
//! - [`RedisCluster`]: three masters created with `redis-cli --cluster create`.
//! - [`JuiceFs`]: a JuiceFS volume (metadata in a [`RedisServer`], data in a
//!   local directory) mounted several times with FUSE, one mount per
//!   simulated host.
//! - [`WasmtimeServe`]: the real `wasmtime serve` (the wasmtime CLI)
//!   serving a `wasi:http` component with a preopened directory.
//!
//! Every wait is bounded, every failure names what went wrong with the tail
//! of the server's log, and a missing tool or facility is an error that says
//! what to install, never a silent skip. Handles stop their processes,
//! unmount and remove their directories on drop, also while a failing test
//! unwinds. Keep handles in locals (or a fixture struct), not in statics:
//! statics are never dropped.

mod error;
mod juicefs;
mod ports;
mod process;
mod redis;
mod wasmtime;

pub use crate::redis::{
    RedisCluster, RedisServer, CLUSTER_MASTERS, CLUSTER_OK_TIMEOUT, READY_TIMEOUT,
};
pub use error::{Error, Result};
pub use juicefs::{juicefs_binary, FormatOptions, JuiceFs, Mount, MountOptions, MOUNT_TIMEOUT};
pub use ports::{free_port, free_port_pair};
pub use wasmtime::{wasmtime_binary, ServeOptions, WasmtimeServe, SERVE_READY_TIMEOUT};
