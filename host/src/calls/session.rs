//! The methods of the `session` resource.

use wasmtime::component::ResourceAny;

use super::handles::SessionHandle;
use crate::bindings::exports::sqlite_sessions::store::sessions::{
    BatchError, BatchOp, BatchResult, Error, ExpirySettings, GuestSession, PathSegment,
};
use crate::request::Request;

/// The methods of one `session` resource. Made by [`Request::session`].
pub struct SessionRef<'a> {
    req: &'a mut Request,
    handle: SessionHandle,
}

impl<'a> SessionRef<'a> {
    pub(super) fn new(req: &'a mut Request, handle: SessionHandle) -> Self {
        Self { req, handle }
    }
}

/// Calls the generated `GuestSession::<call>` on this session's resource
/// with the given arguments, converted to `anyhow::Result`.
macro_rules! session_call {
    ($self:ident, $name:ident $(, $arg:expr)*) => {{
        let (store, instance) = $self.req.parts_mut();
        let guest: GuestSession<'_> = instance.sqlite_sessions_store_sessions().session();
        Ok(guest.$name(store, $self.handle.resource() $(, $arg)*)?)
    }};
}

/// One wrapper per WIT function of `session`; `$ret` is the WIT result type.
macro_rules! session_methods {
    ($(
        $(#[$doc:meta])*
        fn $name:ident => $call:ident($($arg:ident: $ty:ty),*) -> $ret:ty;
    )*) => {
        impl SessionRef<'_> {
            /// The handle these calls go to.
            pub fn handle(&self) -> SessionHandle {
                self.handle
            }

            $(
                $(#[$doc])*
                pub fn $name(&mut self $(, $arg: $ty)*) -> anyhow::Result<$ret> {
                    session_call!(self, $call $(, $arg)*)
                }
            )*
        }
    };
}

session_methods! {
    /// `session.id`.
    fn id => call_id() -> String;
    /// `session.is-new`.
    fn is_new => call_is_new() -> bool;
    /// `session.regenerate`.
    fn regenerate => call_regenerate() -> Result<(), Error>;
    /// `session.set-expiry`.
    fn set_expiry => call_set_expiry(settings: ExpirySettings) -> Result<(), Error>;
    /// `session.expires-at`.
    fn expires_at => call_expires_at() -> Result<Option<u64>, Error>;
    /// `session.get`.
    fn get => call_get(key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// `session.get-json`.
    fn get_json => call_get_json(key: &str) -> Result<Option<String>, Error>;
    /// `session.set-json`.
    fn set_json => call_set_json(key: &str, json: &str) -> Result<(), Error>;
    /// `session.remove`.
    fn remove => call_remove(key: &str) -> Result<bool, Error>;
    /// `session.take`.
    fn take => call_take(key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// `session.take-json`.
    fn take_json => call_take_json(key: &str) -> Result<Option<String>, Error>;
    /// `session.contains`.
    fn contains => call_contains(key: &str) -> Result<bool, Error>;
    /// `session.keys`.
    fn keys => call_keys() -> Result<Vec<String>, Error>;
    /// `session.len`.
    fn len => call_len() -> Result<u32, Error>;
    /// `session.clear`.
    fn clear => call_clear() -> Result<(), Error>;
    /// `session.destroy`.
    fn destroy => call_destroy() -> Result<(), Error>;
    /// `session.set-in-json`.
    fn set_in_json => call_set_in_json(key: &str, path: &[PathSegment], json: &str) -> Result<(), Error>;
    /// `session.remove-in`.
    fn remove_in => call_remove_in(key: &str, path: &[PathSegment]) -> Result<bool, Error>;
    /// `session.append-json`.
    fn append_json => call_append_json(key: &str, json: &str) -> Result<u32, Error>;
    /// `session.increment`.
    fn increment => call_increment(key: &str, delta: i64) -> Result<i64, Error>;
    /// `session.batch`.
    fn batch => call_batch(ops: &[BatchOp]) -> Result<Vec<BatchResult>, BatchError>;
    /// `session.cookie-value`.
    fn cookie_value => call_cookie_value() -> Option<String>;
    /// `session.set-cookie`.
    fn set_cookie => call_set_cookie() -> Option<String>;
}

/// The WIT functions that take a `value`. bindgen! types a `value` parameter
/// as `&Vec<u8>` (because `value` is a named alias of `list<u8>`), which
/// would force callers to allocate; these re-type the same export with
/// `&[u8]`, which lowers to `list<u8>` identically.
impl SessionRef<'_> {
    /// `session.set`.
    pub fn set(&mut self, key: &str, value: &[u8]) -> anyhow::Result<Result<(), Error>> {
        let (store, instance) = self.req.parts_mut();
        let guest = instance.sqlite_sessions_store_sessions().session();
        let func = guest
            .func_set()
            .func()
            .typed::<(ResourceAny, &str, &[u8]), (Result<(), Error>,)>(&*store)?;
        Ok(func.call(store, (self.handle.resource(), key, value))?.0)
    }

    /// `session.set-in`.
    pub fn set_in(
        &mut self,
        key: &str,
        path: &[PathSegment],
        value: &[u8],
    ) -> anyhow::Result<Result<(), Error>> {
        let (store, instance) = self.req.parts_mut();
        let guest = instance.sqlite_sessions_store_sessions().session();
        let func = guest
            .func_set_in()
            .func()
            .typed::<(ResourceAny, &str, &[PathSegment], &[u8]), (Result<(), Error>,)>(&*store)?;
        Ok(func
            .call(store, (self.handle.resource(), key, path, value))?
            .0)
    }

    /// `session.append`.
    pub fn append(&mut self, key: &str, value: &[u8]) -> anyhow::Result<Result<u32, Error>> {
        let (store, instance) = self.req.parts_mut();
        let guest = instance.sqlite_sessions_store_sessions().session();
        let func = guest
            .func_append()
            .func()
            .typed::<(ResourceAny, &str, &[u8]), (Result<u32, Error>,)>(&*store)?;
        Ok(func.call(store, (self.handle.resource(), key, value))?.0)
    }

    /// `session.compare-and-swap`.
    pub fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> anyhow::Result<Result<bool, Error>> {
        let (store, instance) = self.req.parts_mut();
        let guest = instance.sqlite_sessions_store_sessions().session();
        let func =
            guest.func_compare_and_swap().func().typed::<(
                ResourceAny,
                &str,
                Option<&[u8]>,
                Option<&[u8]>,
            ), (Result<bool, Error>,)>(&*store)?;
        Ok(func
            .call(store, (self.handle.resource(), key, expected, new))?
            .0)
    }
}
