//! Typed calls of the component's exports on a [`Request`]: the `store`
//! and `session` resources of interface `sessions`, and interface `admin`.

mod admin;
mod handles;
mod session;
mod store;

use crate::bindings::exports::sqlite_sessions::store::sessions::{Config, Error};
use crate::request::Request;

/// Calls the export `$field` (see `crate::exports`) of the request's
/// instance with the given arguments; evaluates to its one result as a
/// `wasmtime::Result`.
macro_rules! call {
    ($req:expr, $field:ident $(, $arg:expr)*) => {{
        let (store, instance, exports) = $req.parts_mut();
        let func = exports.$field(&mut *store, instance);
        func.call(store, ($($arg,)*)).map(|(result,)| result)
    }};
}
use call;

pub use admin::AdminRef;
pub use handles::{SessionHandle, StoreHandle};
pub use session::SessionRef;
pub use store::StoreRef;

impl Request {
    /// `store.open`.
    pub fn open_store(&mut self, cfg: &Config) -> anyhow::Result<Result<StoreHandle, Error>> {
        let r = call!(self, open, cfg)?;
        Ok(r.map(StoreHandle::new))
    }

    /// Calls on an open `store`.
    pub fn store(&mut self, handle: &StoreHandle) -> StoreRef<'_> {
        StoreRef::new(self, *handle)
    }

    /// Calls on a `session`.
    pub fn session(&mut self, handle: &SessionHandle) -> SessionRef<'_> {
        SessionRef::new(self, *handle)
    }

    /// Calls of the `admin` interface on an open `store`.
    pub fn admin(&mut self, store: &StoreHandle) -> AdminRef<'_> {
        AdminRef::new(self, *store)
    }

    /// Drops the `store` resource, running the guest's destructor.
    pub fn drop_store(&mut self, handle: StoreHandle) -> anyhow::Result<()> {
        let (store, _, _) = self.parts_mut();
        Ok(handle.resource().resource_drop(store)?)
    }

    /// Drops the `session` resource, running the guest's destructor.
    pub fn drop_session(&mut self, handle: SessionHandle) -> anyhow::Result<()> {
        let (store, _, _) = self.parts_mut();
        Ok(handle.resource().resource_drop(store)?)
    }
}
