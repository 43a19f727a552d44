//! The wit-bindgen layer: converts between WIT types and the storage core.
//! It holds no logic of its own, so the core stays testable natively.

use crate::expiry::Overrides;
use crate::ops::BatchError;
use crate::session::Session;
use crate::store::Store;
use std::cell::RefCell;

/// The `admin` interface's glue.
mod admin;
/// WIT types to and from the core's.
mod convert;

use convert::{batch_op, batch_result, segments, store_config};

#[cfg(not(feature = "kv"))]
wit_bindgen::generate!({
    world: "session-store",
    path: "wit",
});

// The key-value world imports `wasi:keyvalue`, whose bindings the VFS's
// backend already generated: reuse them.
#[cfg(feature = "kv")]
wit_bindgen::generate!({
    world: "session-store-kv",
    path: "wit",
    with: {
        "wasi:keyvalue/store@0.2.0-draft2": crate::vfs::kv::wasi_keyvalue::store,
        "wasi:keyvalue/atomics@0.2.0-draft2": crate::vfs::kv::wasi_keyvalue::atomics,
        "wasi:keyvalue/batch@0.2.0-draft2": crate::vfs::kv::wasi_keyvalue::batch,
    },
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

export!(Component);
