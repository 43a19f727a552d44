//! The wasm artifacts of this repository, built by this crate's build
//! script: the store component, the edge demo's app, and the two composed
//! with `wac plug`; each of them twice, for a session directory and for
//! `wasi:keyvalue` (the `*_kv` functions). This crate is only their paths, so a host, a tool or a
//! test depends on it to find them and never needs to know how they are
//! built.
//!
//! A build that failed (say, a missing C toolchain for the bundled SQLite)
//! does not fail the crates that depend on this one: [`store`],
//! [`edge_app`], [`edge_demo`] and their `_kv` twins return it as an [`Unavailable`] error,
//! naming what is missing, when the artifact is asked for.
//!
//! ```no_run
//! let store = sqlite_sessions_artifacts::store()?;
//! println!("{}", store.display());
//! # Ok::<(), sqlite_sessions_artifacts::Unavailable>(())
//! ```

use std::fmt;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The store component (`sqlite_sessions.wasm`, world `session-store`).
pub fn store() -> Result<&'static Path, Unavailable> {
    checked("the store component", STORE_PATH, STORE_ERROR)
}

/// The edge demo's app alone (`edge_app.wasm`), which still imports the
/// store's interface.
pub fn edge_app() -> Result<&'static Path, Unavailable> {
    checked("the edge demo's app", APP_PATH, APP_ERROR)
}

/// The app with the store plugged in (`edge_demo.wasm`): its only imports
/// are WASI's, and it exports `wasi:http/incoming-handler`.
pub fn edge_demo() -> Result<&'static Path, Unavailable> {
    checked("the composed edge demo", COMPOSED_PATH, COMPOSED_ERROR)
}

/// The store component over `wasi:keyvalue` (`sqlite_sessions_kv.wasm`,
/// world `session-store-kv`, built with the `kv` feature).
pub fn store_kv() -> Result<&'static Path, Unavailable> {
    checked(
        "the key-value store component",
        STORE_KV_PATH,
        STORE_KV_ERROR,
    )
}

/// The edge demo's app built to open the bucket `default` instead of the
/// directory `/sessions` (`edge_app_kv.wasm`); it still imports the store's
/// interface.
pub fn edge_app_kv() -> Result<&'static Path, Unavailable> {
    checked("the edge demo's key-value app", APP_KV_PATH, APP_KV_ERROR)
}

/// [`edge_app_kv`] with [`store_kv`] plugged in (`edge_demo_kv.wasm`): it
/// imports WASI and `wasi:keyvalue`, and exports
/// `wasi:http/incoming-handler`.
pub fn edge_demo_kv() -> Result<&'static Path, Unavailable> {
    checked(
        "the composed key-value edge demo",
        COMPOSED_KV_PATH,
        COMPOSED_KV_ERROR,
    )
}

fn checked(
    what: &'static str,
    path: &'static str,
    error: Option<&'static str>,
) -> Result<&'static Path, Unavailable> {
    let path = Path::new(path);
    let reason = match error {
        Some(e) => e.to_owned(),
        None if !path.is_file() => format!(
            "{} was built but is gone (a cleaned target directory?); rebuild to make it again",
            path.display()
        ),
        None => return Ok(path),
    };
    Err(Unavailable { what, reason })
}

/// An artifact that is not there, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    what: &'static str,
    reason: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} was not built: {}", self.what, self.reason)
    }
}

impl std::error::Error for Unavailable {}
