//! The wit-bindgen layer: converts between WIT types and the storage core.
//! It holds no logic of its own, so the core stays testable natively.

use crate::config::StoreConfig;
use crate::cookies::{CookieSettings, Signer};
use crate::error::{Error, LimitKind, StorageKind};
use crate::expiry::ExpiryDefaults;
use crate::expiry::Overrides;
use crate::limits::Limits;
use crate::nested::Segment;
use crate::ops::{BatchError, Op, Outcome};
use crate::session::{Session, Store};
use crate::storage::Durability;
use std::cell::RefCell;

/// The `admin` interface's glue.
mod admin;

wit_bindgen::generate!({
    world: "session-store",
    path: "wit",
});

use exports::sqlite_sessions::store::sessions as api;

struct Component;

impl Guest for Component {
    fn wizer_initialize() {
        if let Err(e) = crate::storage::template::prepare() {
            // Only ever reached while pre-initialising (see the WIT): fail
            // that, loudly, rather than snapshot an instance without a
            // template.
            panic!("sqlite-sessions: preparing the template failed: {e}");
        }
    }
}

impl api::Guest for Component {
    type Store = StoreResource;
    type Session = SessionResource;
}

/// The `store` resource.
pub struct StoreResource(Store);

/// The `session` resource. WIT methods take `&self`, so the core session,
/// which mutates its connection state, sits in a `RefCell`.
pub struct SessionResource(RefCell<Session>);

type ApiResult<T> = Result<T, api::Error>;

impl api::GuestStore for StoreResource {
    fn open(cfg: api::Config) -> ApiResult<api::Store> {
        let store = Store::open(store_config(cfg)?)?;
        Ok(api::Store::new(StoreResource(store)))
    }

    fn load(&self, id: String) -> ApiResult<Option<api::Session>> {
        Ok(self.0.load(&id)?.map(wrap))
    }

    fn create(&self) -> api::Session {
        wrap(self.0.create())
    }

    fn load_or_create(&self, cookie_value: Option<String>) -> ApiResult<api::Session> {
        Ok(wrap(self.0.load_or_create(cookie_value.as_deref())?))
    }

    fn cookie_value_from_header(&self, cookie_header: String) -> Option<String> {
        self.0.cookie_value_from_header(&cookie_header)
    }

    fn destroy_id(&self, id: String) -> ApiResult<bool> {
        Ok(self.0.destroy_id(&id)?)
    }

    fn sweep(&self, cursor: Option<String>, budget: u32) -> ApiResult<api::SweepProgress> {
        let p = self.0.sweep(cursor.as_deref(), budget)?;
        Ok(api::SweepProgress {
            cursor: p.cursor,
            examined: p.examined,
            deleted: p.deleted,
            remaining_estimate: p.remaining_estimate,
        })
    }
}

fn wrap(session: Session) -> api::Session {
    api::Session::new(SessionResource(RefCell::new(session)))
}

impl SessionResource {
    fn with<T>(&self, f: impl FnOnce(&mut Session) -> crate::Result<T>) -> ApiResult<T> {
        Ok(f(&mut self.0.borrow_mut())?)
    }
}

impl api::GuestSession for SessionResource {
    fn id(&self) -> String {
        self.0.borrow().id()
    }
    fn is_new(&self) -> bool {
        self.0.borrow().is_new()
    }
    fn regenerate(&self) -> ApiResult<()> {
        self.with(|s| s.regenerate())
    }
    fn set_expiry(&self, settings: api::ExpirySettings) -> ApiResult<()> {
        self.with(|s| {
            s.set_expiry(Overrides {
                idle_timeout_s: settings.idle_timeout_seconds,
                absolute_timeout_s: settings.absolute_timeout_seconds,
                persistent_cookie: settings.persistent_cookie,
            })
        })
    }
    fn expires_at(&self) -> ApiResult<Option<u64>> {
        self.with(|s| s.expires_at().map(|at| at.map(|ms| ms.max(0) as u64)))
    }
    fn get(&self, key: String) -> ApiResult<Option<Vec<u8>>> {
        self.with(|s| s.get(&key))
    }
    fn get_json(&self, key: String) -> ApiResult<Option<String>> {
        self.with(|s| s.get_json(&key))
    }
    fn set(&self, key: String, value: Vec<u8>) -> ApiResult<()> {
        self.with(|s| s.set(&key, &value))
    }
    fn set_json(&self, key: String, json: String) -> ApiResult<()> {
        self.with(|s| s.set_json(&key, &json))
    }
    fn remove(&self, key: String) -> ApiResult<bool> {
        self.with(|s| s.remove(&key))
    }
    fn take(&self, key: String) -> ApiResult<Option<Vec<u8>>> {
        self.with(|s| s.take(&key))
    }
    fn take_json(&self, key: String) -> ApiResult<Option<String>> {
        self.with(|s| s.take_json(&key))
    }
    fn contains(&self, key: String) -> ApiResult<bool> {
        self.with(|s| s.contains(&key))
    }
    fn keys(&self) -> ApiResult<Vec<String>> {
        self.with(|s| s.keys())
    }
    fn len(&self) -> ApiResult<u32> {
        self.with(|s| s.len())
    }
    fn clear(&self) -> ApiResult<()> {
        self.with(|s| s.clear())
    }
    fn destroy(&self) -> ApiResult<()> {
        self.with(|s| s.destroy())
    }
    fn set_in(&self, key: String, path: Vec<api::PathSegment>, value: Vec<u8>) -> ApiResult<()> {
        self.with(|s| s.set_in(&key, &segments(path), &value))
    }
    fn set_in_json(&self, key: String, path: Vec<api::PathSegment>, json: String) -> ApiResult<()> {
        self.with(|s| s.set_in_json(&key, &segments(path), &json))
    }
    fn remove_in(&self, key: String, path: Vec<api::PathSegment>) -> ApiResult<bool> {
        self.with(|s| s.remove_in(&key, &segments(path)))
    }
    fn append(&self, key: String, value: Vec<u8>) -> ApiResult<u32> {
        self.with(|s| s.append(&key, &value))
    }
    fn append_json(&self, key: String, json: String) -> ApiResult<u32> {
        self.with(|s| s.append_json(&key, &json))
    }
    fn increment(&self, key: String, delta: i64) -> ApiResult<i64> {
        self.with(|s| s.increment(&key, delta))
    }
    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> ApiResult<bool> {
        self.with(|s| s.compare_and_swap(&key, expected.as_deref(), new.as_deref()))
    }
    fn batch(&self, ops: Vec<api::BatchOp>) -> Result<Vec<api::BatchResult>, api::BatchError> {
        let ops = ops.into_iter().map(batch_op).collect();
        match self.0.borrow_mut().batch(ops) {
            Ok(outcomes) => Ok(outcomes.into_iter().map(batch_result).collect()),
            Err(BatchError { index, error }) => Err(api::BatchError {
                index,
                error: error.into(),
            }),
        }
    }
    fn cookie_value(&self) -> Option<String> {
        self.0.borrow().cookie_value()
    }
    fn set_cookie(&self) -> Option<String> {
        self.0.borrow().set_cookie()
    }
}

fn segments(path: Vec<api::PathSegment>) -> Vec<Segment> {
    path.into_iter()
        .map(|s| match s {
            api::PathSegment::Key(k) => Segment::Key(k),
            api::PathSegment::Index(i) => Segment::Index(i),
        })
        .collect()
}

fn batch_op(op: api::BatchOp) -> Op {
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

fn batch_result(outcome: Outcome) -> api::BatchResult {
    match outcome {
        Outcome::Set => api::BatchResult::Set,
        Outcome::Remove(found) => api::BatchResult::Remove(found),
        Outcome::SetIn => api::BatchResult::SetIn,
        Outcome::RemoveIn(removed) => api::BatchResult::RemoveIn(removed),
        Outcome::Append(len) => api::BatchResult::Append(len),
        Outcome::Increment(sum) => api::BatchResult::Increment(sum),
    }
}

fn store_config(cfg: api::Config) -> crate::Result<StoreConfig> {
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
            Error::NotAnInteger(m) => api::Error::NotAnInteger(m),
            Error::Overflow => api::Error::Overflow,
        }
    }
}

export!(Component);
