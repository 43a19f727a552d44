//! What the counting wrappers borrow from a store's data.

use wasmtime::component::{HasData, ResourceTable};
use wasmtime_wasi::WasiCtx;

use super::counter::HostCallCounter;

/// What the counting wrappers borrow from a store's data for one call: the
/// WASI context and resource table that wasmtime-wasi's implementation uses,
/// and the counter to bump.
pub struct HostCallsView<'a> {
    /// The store's WASI context (the same one its `WasiView` lends).
    pub ctx: &'a mut WasiCtx,
    /// The store's resource table (the same one its `WasiView` lends).
    pub table: &'a mut ResourceTable,
    /// The counters of this store.
    pub counter: &'a mut HostCallCounter,
}

/// The [`HasData`] of the counted interfaces: their host data is a
/// [`HostCallsView`].
pub(super) struct Counting;

impl HasData for Counting {
    type Data<'a> = HostCallsView<'a>;
}
