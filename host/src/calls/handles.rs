//! The owned resources a request's typed calls return and take.

use wasmtime::component::ResourceAny;

/// An owned `store` resource of the request's instance.
///
/// Valid only in the [`Request`] that returned it, until
/// [`Request::drop_store`].
///
/// [`Request`]: crate::Request
/// [`Request::drop_store`]: crate::Request::drop_store
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreHandle(ResourceAny);

/// An owned `session` resource of the request's instance.
///
/// Valid only in the [`Request`] that returned it, until
/// [`Request::drop_session`].
///
/// [`Request`]: crate::Request
/// [`Request::drop_session`]: crate::Request::drop_session
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionHandle(ResourceAny);

impl StoreHandle {
    pub(super) fn new(resource: ResourceAny) -> Self {
        Self(resource)
    }

    /// The underlying Wasmtime resource.
    pub fn resource(self) -> ResourceAny {
        self.0
    }
}

impl SessionHandle {
    pub(super) fn new(resource: ResourceAny) -> Self {
        Self(resource)
    }

    /// The underlying Wasmtime resource.
    pub fn resource(self) -> ResourceAny {
        self.0
    }
}
