//! A connection prepared ahead of time: a session schema already read and
//! the hot statements already compiled, waiting to be pointed at the first
//! session file a request opens.
//!
//! Why: a fresh component instance per request parses a session's schema
//! and compiles every statement it runs afresh, and that SQL compilation is
//! the largest part of a request's CPU time in wasm (`BENCHMARKS.md`). A
//! host that pre-initialises the component (`wasmtime-wizer`, see the
//! `wizer-initialize` export) runs [`prepare`] once, at build time, and every
//! instance then starts with the work done. Without a snapshot nothing calls
//! [`prepare`], and every connection is opened the ordinary way.
//!
//! The template is a database in memory (`vfs::template_uri`) with exactly
//! the schema a session file gets, made by the same statements in the same
//! transaction shape, so its schema cookie matches every session file's and
//! SQLite keeps its compiled statements when the connection is pointed at
//! one (`vfs::attach`). It is used once: the first `storage::open` of an
//! instance takes it.

use crate::error::Result;
use crate::storage::{self, DbOptions};
use rusqlite::Connection;
use std::cell::RefCell;

thread_local! {
    /// One per thread: a connection is not `Send`, and a wasm instance has one
    /// thread.
    static TEMPLATE: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// Makes the template (replacing any there is). Touches no file and draws no
/// randomness, so it can run inside a pre-initialiser, whose snapshot must
/// hold no host resource and must not share random state between instances.
pub fn prepare() -> Result<()> {
    let conn = storage::template_connection()?;
    TEMPLATE.with(|t| *t.borrow_mut() = Some(conn));
    Ok(())
}

/// Whether a template is waiting (for tests and the bench).
pub fn is_ready() -> bool {
    TEMPLATE.with(|t| t.borrow().is_some())
}

/// The template pointed at the existing session file at `path`, if there is
/// a template and the file is there. `None` means: open the ordinary way
/// (which then also reports any error, exactly as without a template). A
/// missing file keeps the template for the instance's next open; any other
/// failure drops it.
pub(crate) fn take_attached(path: &str, opts: DbOptions) -> Option<Connection> {
    let conn = TEMPLATE.with(|t| t.borrow_mut().take())?;
    match storage::attach_template(&conn, path, opts) {
        Ok(()) => Some(conn),
        Err(crate::vfs::AttachError::Absent) => {
            TEMPLATE.with(|t| *t.borrow_mut() = Some(conn));
            None
        }
        Err(crate::vfs::AttachError::Failed(_)) => None,
    }
}
