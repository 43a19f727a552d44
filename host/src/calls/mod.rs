//! Typed calls of the component's exports on a [`Request`]: the `store`
//! and `session` resources of interface `sessions`, and interface `admin`.

mod admin;
mod handles;
mod session;
mod store;

use crate::bindings::exports::sqlite_sessions::store::sessions::{Config, Error};
use wasmtime::component::ResourceAny;

use crate::request::Request;

/// Calls the export `$field` (see `crate::exports`) of the request's
/// instance with the given arguments; evaluates to its one result as a
/// `wasmtime::Result`. A trap marks the instance as never to be reused.
macro_rules! call {
    ($req:expr, $field:ident $(, $arg:expr)*) => {{
        let req: &mut $crate::request::Request = &mut *$req;
        let (store, instance, exports) = req.parts_mut();
        let func = exports.$field(&mut *store, instance);
        let result = func.call(store, ($($arg,)*)).map(|(result,)| result);
        req.note_call(result.is_err());
        result
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
        if r.is_ok() {
            self.note_resource_created();
        }
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
        self.drop_resource(handle.resource())
    }

    /// Drops the `session` resource, running the guest's destructor.
    pub fn drop_session(&mut self, handle: SessionHandle) -> anyhow::Result<()> {
        self.drop_resource(handle.resource())
    }

    fn drop_resource(&mut self, resource: ResourceAny) -> anyhow::Result<()> {
        let (store, _, _) = self.parts_mut();
        let result = resource.resource_drop(store);
        self.note_call(result.is_err());
        if result.is_ok() {
            self.note_resource_dropped();
        }
        Ok(result?)
    }
}
