//! The methods of the `store` resource.

use super::call;
use super::handles::{SessionHandle, StoreHandle};
use crate::bindings::exports::sqlite_sessions::store::sessions::{Error, SweepProgress};
use crate::request::Request;

/// The methods of one `store` resource. Made by [`Request::store`].
pub struct StoreRef<'a> {
    req: &'a mut Request,
    handle: StoreHandle,
}

/// Calls the method `$name` of this store's resource with the given
/// arguments; evaluates to its `wasmtime::Result`, which callers turn into
/// an `anyhow::Result` with `?`.
macro_rules! store_call {
    ($self:ident, $name:ident $(, $arg:expr)*) => {
        call!($self.req, $name, $self.handle.resource() $(, $arg)*)
    };
}

impl<'a> StoreRef<'a> {
    pub(super) fn new(req: &'a mut Request, handle: StoreHandle) -> Self {
        Self { req, handle }
    }

    /// The handle these calls go to.
    pub fn handle(&self) -> StoreHandle {
        self.handle
    }

    /// `store.load`.
    pub fn load(&mut self, id: &str) -> anyhow::Result<Result<Option<SessionHandle>, Error>> {
        let r = store_call!(self, load, id)?;
        if let Ok(Some(_)) = r {
            self.req.note_resource_created();
        }
        Ok(r.map(|s| s.map(SessionHandle::new)))
    }

    /// `store.create`.
    pub fn create(&mut self) -> anyhow::Result<SessionHandle> {
        let r = store_call!(self, create)?;
        self.req.note_resource_created();
        Ok(SessionHandle::new(r))
    }

    /// `store.load-or-create`.
    pub fn load_or_create(
        &mut self,
        cookie_value: Option<&str>,
    ) -> anyhow::Result<Result<SessionHandle, Error>> {
        let r = store_call!(self, load_or_create, cookie_value)?;
        if r.is_ok() {
            self.req.note_resource_created();
        }
        Ok(r.map(SessionHandle::new))
    }

    /// `store.cookie-value-from-header`.
    pub fn cookie_value_from_header(
        &mut self,
        cookie_header: &str,
    ) -> anyhow::Result<Option<String>> {
        Ok(store_call!(self, cookie_value_from_header, cookie_header)?)
    }

    /// `store.destroy-id`.
    pub fn destroy_id(&mut self, id: &str) -> anyhow::Result<Result<bool, Error>> {
        Ok(store_call!(self, destroy_id, id)?)
    }

    /// `store.sweep`.
    pub fn sweep(
        &mut self,
        cursor: Option<&str>,
        budget: u32,
    ) -> anyhow::Result<Result<SweepProgress, Error>> {
        Ok(store_call!(self, sweep, cursor, budget)?)
    }
}
