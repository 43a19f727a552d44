//! The methods of the `session` resource.

use super::call;
use super::handles::SessionHandle;
use crate::bindings::exports::sqlite_sessions::store::sessions::{
    BatchError, BatchOp, BatchResult, Error, ExpirySettings, PathSegment,
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

/// One wrapper per WIT function of `session`; `$ret` is the WIT result type.
macro_rules! session_methods {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;
    )*) => {
        impl SessionRef<'_> {
            /// The handle these calls go to.
            pub fn handle(&self) -> SessionHandle {
                self.handle
            }

            $(
                $(#[$doc])*
                pub fn $name(&mut self $(, $arg: $ty)*) -> anyhow::Result<$ret> {
                    Ok(call!(self.req, $name, self.handle.resource() $(, $arg)*)?)
                }
            )*
        }
    };
}

session_methods! {
    /// `session.id`.
    fn id() -> String;
    /// `session.is-new`.
    fn is_new() -> bool;
    /// `session.regenerate`.
    fn regenerate() -> Result<(), Error>;
    /// `session.set-expiry`.
    fn set_expiry(settings: ExpirySettings) -> Result<(), Error>;
    /// `session.expires-at`.
    fn expires_at() -> Result<Option<u64>, Error>;
    /// `session.get`.
    fn get(key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// `session.get-json`.
    fn get_json(key: &str) -> Result<Option<String>, Error>;
    /// `session.set-json`.
    fn set_json(key: &str, json: &str) -> Result<(), Error>;
    /// `session.remove`.
    fn remove(key: &str) -> Result<bool, Error>;
    /// `session.take`.
    fn take(key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// `session.take-json`.
    fn take_json(key: &str) -> Result<Option<String>, Error>;
    /// `session.contains`.
    fn contains(key: &str) -> Result<bool, Error>;
    /// `session.keys`.
    fn keys() -> Result<Vec<String>, Error>;
    /// `session.len`.
    fn len() -> Result<u32, Error>;
    /// `session.clear`.
    fn clear() -> Result<(), Error>;
    /// `session.destroy`.
    fn destroy() -> Result<(), Error>;
    /// `session.set-in-json`.
    fn set_in_json(key: &str, path: &[PathSegment], json: &str) -> Result<(), Error>;
    /// `session.remove-in`.
    fn remove_in(key: &str, path: &[PathSegment]) -> Result<bool, Error>;
    /// `session.append-json`.
    fn append_json(key: &str, json: &str) -> Result<u32, Error>;
    /// `session.increment`.
    fn increment(key: &str, delta: i64) -> Result<i64, Error>;
    /// `session.batch`.
    fn batch(ops: &[BatchOp]) -> Result<Vec<BatchResult>, BatchError>;
    /// `session.cookie-value`.
    fn cookie_value() -> Option<String>;
    /// `session.set-cookie`.
    fn set_cookie() -> Option<String>;
    /// `session.set`.
    fn set(key: &str, value: &[u8]) -> Result<(), Error>;
    /// `session.set-in`.
    fn set_in(key: &str, path: &[PathSegment], value: &[u8]) -> Result<(), Error>;
    /// `session.append`.
    fn append(key: &str, value: &[u8]) -> Result<u32, Error>;
    /// `session.compare-and-swap`.
    fn compare_and_swap(key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool, Error>;
}
