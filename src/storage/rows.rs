//! A session's rows: one per key, values as CBOR blobs. The running totals
//! in `Meta` are kept here, so quotas are checked before anything is written.

use super::meta::Meta;
use super::sql::{with_value, PUT};
use crate::error::Result;
use crate::limits::Limits;
use rusqlite::{params, Connection, OptionalExtension};

/// The value under `key`.
pub fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    with_value(conn, key, |v| v.map(<[u8]>::to_vec))
}

pub fn contains(conn: &Connection, key: &str) -> Result<bool> {
    with_value(conn, key, |v| v.is_some())
}

pub fn keys(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM kv WHERE key <> '' ORDER BY key")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores `val` under `key`, keeping the totals and enforcing the limits
/// before anything is written.
pub fn put(
    conn: &Connection,
    meta: &mut Meta,
    limits: &Limits,
    key: &str,
    val: &[u8],
) -> Result<()> {
    let old_len = with_value(conn, key, |v| v.map(|v| v.len() as u64))?;
    let entry = |len: u64| key.len() as u64 + len;
    let key_count = meta.key_count + u64::from(old_len.is_none());
    let total_bytes = meta.total_bytes - old_len.map_or(0, entry) + entry(val.len() as u64);
    limits.check_totals(key_count, total_bytes)?;
    conn.prepare_cached(PUT)?.execute(params![key, val])?;
    meta.key_count = key_count;
    meta.total_bytes = total_bytes;
    Ok(())
}

/// Removes `key`, returning the value it held.
pub fn take(conn: &Connection, meta: &mut Meta, key: &str) -> Result<Option<Vec<u8>>> {
    let old: Option<Vec<u8>> = conn
        .prepare_cached("DELETE FROM kv WHERE key = ?1 RETURNING val")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    if let Some(val) = &old {
        meta.key_count -= 1;
        meta.total_bytes -= (key.len() + val.len()) as u64;
    }
    Ok(old)
}

/// Removes every key.
pub fn clear(conn: &Connection, meta: &mut Meta) -> Result<()> {
    conn.prepare_cached("DELETE FROM kv WHERE key <> ''")?
        .execute([])?;
    meta.key_count = 0;
    meta.total_bytes = 0;
    Ok(())
}

/// Records activity.
pub fn touch(meta: &mut Meta, now_ms: i64) {
    meta.timing.last_access_ms = now_ms;
}
