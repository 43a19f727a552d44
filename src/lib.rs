//! sqlite-sessions: server-side web sessions, one SQLite file per session and
//! one row per key, shipped as a WebAssembly component.
//!
//! The storage core (everything but `component`) is plain Rust and builds
//! natively too; `component` is the thin wit-bindgen layer that exports it as
//! the `sqlite-sessions:store/sessions` interface.

pub mod admin;
pub mod codec;
pub mod config;
pub mod cookies;
pub mod error;
pub mod expiry;
pub mod ids;
pub mod live_count;
pub mod nested;
pub mod ops;
pub mod session;
pub mod storage;
pub mod sweep;
pub mod template;
mod vfs;

#[cfg(target_arch = "wasm32")]
mod component;

pub use config::StoreConfig;
pub use error::{Error, LimitKind, Result};
pub use nested::Segment;
pub use session::{Session, Store};
