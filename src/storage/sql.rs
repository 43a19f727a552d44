//! The statements every session operation is built from, and the one way
//! a value is read without copying it out of SQLite.

use crate::error::Result;
use rusqlite::Connection;

/// The statements of the hot path: a request's load, get and set use only
/// these two (plus transaction control), each compiled once per instance.
pub(super) const GET: &str = "SELECT val FROM kv WHERE key = ?1";
pub(super) const PUT: &str = "INSERT OR REPLACE INTO kv (key, val) VALUES (?1, ?2)";

/// Runs `f` on the value under `key` without copying it out of SQLite.
pub(super) fn with_value<T>(
    conn: &Connection,
    key: &str,
    f: impl FnOnce(Option<&[u8]>) -> T,
) -> Result<T> {
    Ok(with_value_raw(conn, key, f)?)
}

/// `with_value` with SQLite's own error, for callers that classify it.
pub(super) fn with_value_raw<T>(
    conn: &Connection,
    key: &str,
    f: impl FnOnce(Option<&[u8]>) -> T,
) -> rusqlite::Result<T> {
    let mut stmt = conn.prepare_cached(GET)?;
    let mut rows = stmt.query([key])?;
    Ok(match rows.next()? {
        Some(row) => f(Some(
            row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?,
        )),
        None => f(None),
    })
}
