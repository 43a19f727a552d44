//! The one error type of the storage core. It mirrors the WIT `error` variant
//! one-to-one, so the component glue converts without losing information.

pub use crate::vfs::DirectoryCheck;
use std::fmt;

/// Which configured limit a write would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    KeyBytes,
    ValueBytes,
    SessionBytes,
    KeysPerSession,
    /// `max-live-sessions`: stored sessions in the directory (see `live_count`).
    LiveSessions,
}

/// How the storage beneath failed (the WIT `storage-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// The storage refuses writes (read-only directory or mount, no write
    /// permission).
    ReadOnly,
    /// No space left, or a quota.
    Full,
    /// Stored data that is not a session database of this store.
    Corrupt,
    /// Any other failure of the filesystem or of SQLite.
    Io,
}

/// Why an operation failed. See `wit/store.wit` for the meaning of each case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    InvalidId,
    InvalidKey(String),
    InvalidValue(String),
    InvalidPath(String),
    NotJson(String),
    NotFound,
    TooLarge {
        limit: LimitKind,
        max: u64,
        actual: u64,
    },
    Busy,
    Storage {
        kind: StorageKind,
        message: String,
    },
    Config(String),
    /// The directory lacks a property the store relies on (found by the
    /// self-check); the message says what is wrong and what to change.
    UnsafeDirectory {
        check: DirectoryCheck,
        message: String,
    },
    NotAnInteger(String),
    Overflow,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidId => write!(f, "invalid session id"),
            Error::InvalidKey(m) => write!(f, "invalid key: {m}"),
            Error::InvalidValue(m) => write!(f, "invalid value: {m}"),
            Error::InvalidPath(m) => write!(f, "invalid path: {m}"),
            Error::NotJson(m) => write!(f, "value has no JSON form: {m}"),
            Error::NotFound => write!(f, "session not found"),
            Error::TooLarge { limit, max, actual } => {
                write!(f, "{limit:?} limit exceeded: {actual} > {max}")
            }
            Error::Busy => write!(f, "session is locked by another request"),
            Error::Storage { kind, message } => write!(f, "storage error ({kind:?}): {message}"),
            Error::Config(m) => write!(f, "invalid config: {m}"),
            Error::UnsafeDirectory { check, message } => {
                write!(f, "unsafe session directory ({check:?}): {message}")
            }
            Error::NotAnInteger(m) => write!(f, "stored value is not a 64-bit integer: {m}"),
            Error::Overflow => write!(f, "increment would overflow a signed 64-bit integer"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A `storage` error of `kind`.
    pub fn storage(kind: StorageKind, message: impl Into<String>) -> Error {
        Error::Storage {
            kind,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        let kind = match &e {
            rusqlite::Error::SqliteFailure(code, _) => {
                // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout is the
                // one storage failure a caller should branch on (retry
                // later), so it gets its own case.
                if matches!(code.code, C::DatabaseBusy | C::DatabaseLocked) {
                    return Error::Busy;
                }
                // The VFS refused to write because this request held the
                // lock longer than its lease allows: nothing was written,
                // retry.
                // Another writer published first and the caller did not run
                // the transaction again: busy as well.
                if code.extended_code == crate::vfs::LEASE_LAPSED
                    || code.extended_code == crate::vfs::CONFLICT
                {
                    return Error::Busy;
                }
                // The file was deleted since this connection last saw it:
                // the session was destroyed by another request.
                if code.extended_code == crate::vfs::VANISHED {
                    return Error::NotFound;
                }
                match code.code {
                    C::ReadOnly | C::PermissionDenied => StorageKind::ReadOnly,
                    C::DiskFull => StorageKind::Full,
                    C::DatabaseCorrupt | C::NotADatabase => StorageKind::Corrupt,
                    _ => StorageKind::Io,
                }
            }
            _ => StorageKind::Io,
        };
        Error::storage(kind, e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::PermissionDenied | K::ReadOnlyFilesystem => StorageKind::ReadOnly,
            K::StorageFull | K::QuotaExceeded => StorageKind::Full,
            _ => StorageKind::Io,
        };
        Error::storage(kind, e.to_string())
    }
}
