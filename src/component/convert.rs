//! Conversions between the WIT types and the core's: config in, errors,
//! paths and batches both ways. Exhaustive matches, so a new case on either
//! side fails to compile until it is mapped.

use super::api;
use crate::config::StoreConfig;
use crate::cookies::{CookieSettings, Signer};
use crate::error::{DirectoryCheck, Error, LimitKind, StorageKind};
use crate::expiry::ExpiryDefaults;
use crate::limits::Limits;
use crate::nested::Segment;
use crate::ops::{Op, Outcome};
use crate::storage::Durability;

pub(super) fn segments(path: Vec<api::PathSegment>) -> Vec<Segment> {
    path.into_iter()
        .map(|s| match s {
            api::PathSegment::Key(k) => Segment::Key(k),
            api::PathSegment::Index(i) => Segment::Index(i),
        })
        .collect()
}

pub(super) fn batch_op(op: api::BatchOp) -> Op {
    match op {
        api::BatchOp::Set(kv) => Op::Set {
            key: kv.key,
            value: kv.value,
        },
        api::BatchOp::Remove(key) => Op::Remove { key },
        api::BatchOp::SetIn(x) => Op::SetIn {
            key: x.key,
            path: segments(x.path),
            value: x.value,
        },
        api::BatchOp::RemoveIn(x) => Op::RemoveIn {
            key: x.key,
            path: segments(x.path),
        },
        api::BatchOp::Append(kv) => Op::Append {
            key: kv.key,
            value: kv.value,
        },
        api::BatchOp::Increment(x) => Op::Increment {
            key: x.key,
            delta: x.delta,
        },
    }
}

pub(super) fn batch_result(outcome: Outcome) -> api::BatchResult {
    match outcome {
        Outcome::Set => api::BatchResult::Set,
        Outcome::Remove(found) => api::BatchResult::Remove(found),
        Outcome::SetIn => api::BatchResult::SetIn,
        Outcome::RemoveIn(removed) => api::BatchResult::RemoveIn(removed),
        Outcome::Append(len) => api::BatchResult::Append(len),
        Outcome::Increment(sum) => api::BatchResult::Increment(sum),
    }
}

pub(super) fn store_config(cfg: api::Config) -> crate::Result<StoreConfig> {
    let defaults = StoreConfig::new("");
    let limits = Limits::default();
    let expiry = ExpiryDefaults::default();
    let cookie = CookieSettings::default();
    let c = cfg.cookie;
    Ok(StoreConfig {
        limits: Limits {
            max_key_bytes: cfg.max_key_bytes.unwrap_or(limits.max_key_bytes),
            max_value_bytes: cfg.max_value_bytes.unwrap_or(limits.max_value_bytes),
            max_session_bytes: cfg.max_session_bytes.unwrap_or(limits.max_session_bytes),
            max_keys: cfg.max_keys.unwrap_or(limits.max_keys),
        },
        expiry: ExpiryDefaults {
            idle_timeout_s: cfg.idle_timeout_seconds.unwrap_or(expiry.idle_timeout_s),
            absolute_timeout_s: cfg
                .absolute_timeout_seconds
                .unwrap_or(expiry.absolute_timeout_s),
            activity_granularity_s: cfg
                .activity_granularity_seconds
                .unwrap_or(expiry.activity_granularity_s),
        },
        max_live_sessions: cfg.max_live_sessions,
        busy_timeout_ms: cfg.busy_timeout_ms.unwrap_or(defaults.busy_timeout_ms),
        lock_lease_ms: cfg.lock_lease_ms.unwrap_or(defaults.lock_lease_ms),
        durability: cfg.durability.map_or(defaults.durability, |d| match d {
            api::Durability::PowerLoss => Durability::PowerLoss,
            api::Durability::ProcessCrash => Durability::ProcessCrash,
        }),
        shared_directory: cfg.shared_directory.unwrap_or(defaults.shared_directory),
        check_directory: cfg.check_directory.unwrap_or(defaults.check_directory),
        file_name_secret: cfg.file_name_secret,
        signer: Signer::new(cfg.signing_keys.unwrap_or_default())?,
        cookie: CookieSettings {
            name: c.name.unwrap_or(cookie.name),
            path: c.path.unwrap_or(cookie.path),
            domain: c.domain.or(cookie.domain),
            secure: c.secure.unwrap_or(cookie.secure),
            http_only: c.http_only.unwrap_or(cookie.http_only),
            same_site: c.same_site.map_or(cookie.same_site, |s| match s {
                api::SameSite::Strict => cookie::SameSite::Strict,
                api::SameSite::Lax => cookie::SameSite::Lax,
                api::SameSite::None => cookie::SameSite::None,
            }),
            persistent: c.persistent.unwrap_or(cookie.persistent),
        },
        directory: cfg.directory,
    })
}

impl From<Error> for api::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidId => api::Error::InvalidId,
            Error::InvalidKey(m) => api::Error::InvalidKey(m),
            Error::InvalidValue(m) => api::Error::InvalidValue(m),
            Error::InvalidPath(m) => api::Error::InvalidPath(m),
            Error::NotJson(m) => api::Error::NotJson(m),
            Error::NotFound => api::Error::NotFound,
            Error::TooLarge { limit, max, actual } => api::Error::TooLarge(api::LimitExceeded {
                limit: match limit {
                    LimitKind::KeyBytes => api::LimitKind::KeyBytes,
                    LimitKind::ValueBytes => api::LimitKind::ValueBytes,
                    LimitKind::SessionBytes => api::LimitKind::SessionBytes,
                    LimitKind::KeysPerSession => api::LimitKind::KeysPerSession,
                    LimitKind::LiveSessions => api::LimitKind::LiveSessions,
                },
                max,
                actual,
            }),
            Error::Busy => api::Error::Busy,
            Error::Storage { kind, message } => api::Error::Storage(api::StorageFailure {
                kind: match kind {
                    StorageKind::ReadOnly => api::StorageKind::ReadOnly,
                    StorageKind::Full => api::StorageKind::Full,
                    StorageKind::Corrupt => api::StorageKind::Corrupt,
                    StorageKind::Io => api::StorageKind::Io,
                },
                message,
            }),
            Error::Config(m) => api::Error::Config(m),
            Error::UnsafeDirectory { check, message } => {
                api::Error::UnsafeDirectory(api::DirectoryProblem {
                    check: directory_check(check),
                    message,
                })
            }
            Error::NotAnInteger(m) => api::Error::NotAnInteger(m),
            Error::Overflow => api::Error::Overflow,
        }
    }
}

pub(super) fn directory_check(check: DirectoryCheck) -> api::DirectoryCheck {
    match check {
        DirectoryCheck::ExclusiveCreate => api::DirectoryCheck::ExclusiveCreate,
        DirectoryCheck::ReplacedIdentity => api::DirectoryCheck::ReplacedIdentity,
        DirectoryCheck::ReplacedLinkCount => api::DirectoryCheck::ReplacedLinkCount,
        DirectoryCheck::RenamedInWhole => api::DirectoryCheck::RenamedInWhole,
        DirectoryCheck::ExactMtime => api::DirectoryCheck::ExactMtime,
        DirectoryCheck::Listing => api::DirectoryCheck::Listing,
    }
}
