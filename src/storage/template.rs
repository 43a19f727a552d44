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
//! one (`vfs::attach`). The next session an instance loads takes it, or
//! the next it creates, whose file then starts as a copy of the template's
//! (so creating a session runs no DDL either).
//!
//! A session's connection, once done with ([`Reusable`]'s drop), becomes the
//! template in turn (`vfs::detach`) instead of being closed, so that in a
//! long-lived instance (or natively) only the first session ever compiles
//! anything, and a short-lived one skips closing it.

use super::connect::{connect_uri, settings_of};
use super::sql::{GET, PUT};
use super::tx::WriteTx;
use super::{DbOptions, Durability, SCHEMA};
use crate::error::Result;
use crate::vfs::{self, AttachError};
use rusqlite::{Connection, OpenFlags};
use std::cell::RefCell;
use std::time::Duration;

thread_local! {
    /// One per thread: a connection is not `Send`, and a wasm instance has one
    /// thread.
    static TEMPLATE: RefCell<Option<Connection>> = const { RefCell::new(None) };
    /// The file of a session with no keys yet, as `prepare` made it: the
    /// first version of every session created through the template.
    static NEW_SESSION_IMAGE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Makes the template (replacing any there is). Touches no file and draws no
/// randomness, so it can run inside a pre-initialiser, whose snapshot must
/// hold no host resource and must not share random state between instances.
pub fn prepare() -> Result<()> {
    let conn = template_connection()?;
    let image = vfs::image_of(&conn);
    NEW_SESSION_IMAGE.with(|i| *i.borrow_mut() = image);
    TEMPLATE.with(|t| *t.borrow_mut() = Some(conn));
    Ok(())
}

/// Whether a template is waiting (for tests and the bench).
pub fn is_ready() -> bool {
    TEMPLATE.with(|t| t.borrow().is_some())
}

/// Drops the waiting template, if any, so that the next open compiles
/// afresh (for the bench's comparison).
pub fn discard() {
    TEMPLATE.with(|t| t.borrow_mut().take());
}

/// The template pointed at the session file at `path`: an existing one, or
/// (`new`) one not created yet, which then starts from the prepared schema
/// image so that creating it runs no DDL. `None` means: open the ordinary
/// way, which then also reports any error exactly as without a template. A
/// file that is not where expected (missing, or present for a new one), or
/// no image for a new one, keeps the template for the next open; any other
/// failure drops it.
pub(crate) fn take_attached(path: &str, opts: DbOptions, new: bool) -> Option<Connection> {
    NEW_SESSION_IMAGE.with(|image| {
        let image = image.borrow();
        let new_image = if new { Some(image.as_deref()?) } else { None };
        let conn = TEMPLATE.with(|t| t.borrow_mut().take())?;
        match attach_template(&conn, path, opts, new_image) {
            Ok(()) => Some(conn),
            Err(AttachError::Absent | AttachError::Exists) => {
                TEMPLATE.with(|t| *t.borrow_mut() = Some(conn));
                None
            }
            Err(AttachError::Failed) => None,
        }
    })
}

/// The template: an in-memory database given the
/// session schema exactly as `SessionDb::create_with` gives a new file (so
/// the two have the same schema cookie), with the hot statements compiled
/// into its statement cache.
fn template_connection() -> Result<Connection> {
    // Nothing here waits, leases or publishes: the template is in memory.
    let opts = DbOptions {
        busy_timeout_ms: 0,
        lock_lease_ms: 1,
        durability: Durability::ProcessCrash,
        shared_directory: false,
        expiry_hint: None,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    let conn = connect_uri(&vfs::template_uri(), flags, opts)?;
    // The journal is in memory (see `connect_uri`), so this transaction
    // draws no randomness for a journal nonce: the template must draw none,
    // because it may be snapshotted (see `template`).
    let tx = WriteTx::begin(&conn)?;
    tx.execute_batch(SCHEMA)?;
    tx.commit()?;
    for sql in [GET, PUT, "ROLLBACK"] {
        conn.prepare_cached(sql)?;
    }
    Ok(conn)
}

/// Points a template connection at the session file at `path` with the
/// settings `connect` would give it: an existing file, or (with
/// `new_image`) one to be created from that image (see `vfs::attach`).
fn attach_template(
    conn: &Connection,
    path: &str,
    opts: DbOptions,
    new_image: Option<&[u8]>,
) -> std::result::Result<(), vfs::AttachError> {
    // SQLite keeps the template's pages cached, and would notice the new
    // file only by its change counter, page count and freelist; a session
    // written in one commit has the same ones as the template. With no page
    // cached there is nothing to mistake (`tests/template.rs` shows the
    // difference).
    // SAFETY: the handle is live; the call only frees unused cache pages.
    unsafe { rusqlite::ffi::sqlite3_db_release_memory(conn.handle()) };
    vfs::attach(conn, path, settings_of(opts), new_image)?;
    conn.busy_timeout(Duration::from_millis(opts.busy_timeout_ms.into()))
        .map_err(|_| vfs::AttachError::Failed)
}

/// A session's connection. Dropped, it becomes the template for the next
/// open if there is none and it is idle (no transaction open); otherwise it
/// is closed.
pub struct Reusable(Option<Connection>);

impl Reusable {
    pub(crate) fn new(conn: Connection) -> Reusable {
        Reusable(Some(conn))
    }
}

impl std::ops::Deref for Reusable {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0
            .as_ref()
            .expect("a Reusable holds its connection until dropped")
    }
}

impl Drop for Reusable {
    fn drop(&mut self) {
        let Some(conn) = self.0.take() else { return };
        if !conn.is_autocommit() || vfs::detach(&conn).is_err() {
            return;
        }
        // Its cached pages stay until the next attach releases them (it
        // must, see `storage::attach_template`): releasing them here too
        // would be work done twice, and wasted in an instance about to end.
        // `try_with`: at thread exit the slot may already be gone, and the
        // connection is then simply closed.
        let _ = TEMPLATE.try_with(|t| {
            let mut slot = t.borrow_mut();
            if slot.is_none() {
                *slot = Some(conn);
            }
        });
    }
}
