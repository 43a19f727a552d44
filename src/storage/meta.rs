//! The reserved row that holds a session's metadata, and the `destroyed`
//! flag in it.
//!
//! Why the flag: a slower request may still hold a connection to a session
//! that a logout has just destroyed. Destroy first commits `destroyed` and
//! only then unlinks the file; every transaction checks the flag (and the VFS
//! reports a file deleted under a connection), so a write that arrives late
//! fails with `not-found` instead of vanishing (the shape of Rack
//! CVE-2025-46336).

use super::sql::{with_value_raw, PUT};
use super::SCHEMA_VERSION;
use crate::error::{Error, Result, StorageKind};
use crate::expiry::{Overrides, Timing};
use rusqlite::{params, Connection};

/// The row that holds the session's `Meta` (see `MetaRecord`). Keys must be
/// non-empty (`Limits::check_key`), so no user key can be this one.
pub(super) const META_KEY: &str = "";

/// The `meta` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub timing: Timing,
    pub overrides: Overrides,
    pub key_count: u64,
    pub total_bytes: u64,
}

/// The meta row as stored: eight little-endian i64s, in this order.
struct MetaRecord;

impl MetaRecord {
    const LEN: usize = 8 * 8;

    fn encode(meta: &Meta, destroyed: bool) -> [u8; MetaRecord::LEN] {
        let opt = |v: Option<u64>| v.map_or(-1, |v| v.min(i64::MAX as u64) as i64);
        let o = &meta.overrides;
        let fields: [i64; 8] = [
            meta.timing.created_ms,
            meta.timing.last_access_ms,
            meta.key_count as i64,
            meta.total_bytes as i64,
            opt(o.idle_timeout_s),
            opt(o.absolute_timeout_s),
            o.persistent_cookie.map_or(-1, i64::from),
            i64::from(destroyed),
        ];
        let mut out = [0; MetaRecord::LEN];
        for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }

    /// The meta and the destroyed flag, or `None` for bytes this store did
    /// not write.
    fn decode(bytes: &[u8]) -> Option<(Meta, bool)> {
        if bytes.len() != MetaRecord::LEN {
            return None;
        }
        let f = |i: usize| i64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        let opt = |v: i64| u64::try_from(v).ok();
        let meta = Meta {
            timing: Timing {
                created_ms: f(0),
                last_access_ms: f(1),
            },
            key_count: u64::try_from(f(2)).ok()?,
            total_bytes: u64::try_from(f(3)).ok()?,
            overrides: Overrides {
                idle_timeout_s: opt(f(4)),
                absolute_timeout_s: opt(f(5)),
                persistent_cookie: match f(6) {
                    -1 => None,
                    v => Some(v != 0),
                },
            },
        };
        Some((meta, f(7) != 0))
    }
}

/// The meta row of a session that still exists, or `not-found`.
pub(super) fn live_meta(conn: &Connection) -> Result<Meta> {
    let record = with_value_raw(conn, META_KEY, |bytes| bytes.map(MetaRecord::decode))
        .map_err(not_a_session)?;
    match record {
        Some(Some((meta, false))) => Ok(meta),
        // A destroyed session is gone.
        Some(Some((_, true))) => Err(Error::NotFound),
        Some(None) => Err(corrupt("bad meta row")),
        // A file without the row is not one this store wrote.
        None => Err(corrupt("no meta row")),
    }
}

fn corrupt(what: &str) -> Error {
    Error::storage(
        StorageKind::Corrupt,
        format!("not a session database (schema version {SCHEMA_VERSION} expected): {what}"),
    )
}

/// A file whose schema we cannot read was not written by this store (or was
/// damaged): say so, as `corrupt`, instead of surfacing "no such table".
/// Failures of the storage itself (I/O, busy) keep their own kind.
pub(super) fn not_a_session(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let storage_failed = matches!(
        e.sqlite_error_code(),
        Some(
            C::SystemIoFailure
                | C::CannotOpen
                | C::DiskFull
                | C::ReadOnly
                | C::PermissionDenied
                | C::DatabaseBusy
                | C::DatabaseLocked
        )
    );
    match Error::from(e) {
        Error::Storage { message, .. } if !storage_failed => corrupt(&message),
        other => other,
    }
}

/// Writes the meta row; `destroyed` marks the session gone for every other
/// connection once committed.
pub(super) fn save_meta(conn: &Connection, meta: &Meta, destroyed: bool) -> Result<()> {
    conn.prepare_cached(PUT)?
        .execute(params![META_KEY, &MetaRecord::encode(meta, destroyed)[..]])?;
    Ok(())
}
