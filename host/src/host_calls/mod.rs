//! Counting the calls the guest makes into the WASI host.
//!
//! Every filesystem access of the component (SQLite's VFS) is a call into
//! wasmtime-wasi, and those calls are what a request costs. Their number is
//! a deterministic metric, unlike wall time on a noisy machine, so an
//! optimisation can be judged by it.
//!
//! How: [`add_to_linker`] first adds wasmtime-wasi's stock implementation of
//! every interface (`add_to_linker_sync`), then, with shadowing allowed,
//! redefines the counted interfaces with wrappers. Each wrapper implements
//! wasmtime-wasi's own generated `Host*` trait by bumping one counter and
//! delegating to wasmtime-wasi's implementation of the same trait, so
//! behaviour is unchanged. A count is one array increment; interfaces not
//! counted (`wasi:cli/exit`, terminals, sockets) stay stock.
//!
//! Optionally (off by default) the wrappers also record each call in order,
//! with its arguments and result ([`HostCallEvent`]), so a call can be traced
//! back to what caused it: which path, which offset, which error.
//!
//! Like wasmtime's own WASI crates, this never names a store type: any
//! store whose data holds a WASI context, a resource table and a
//! [`HostCallCounter`] can lend them as a [`HostCallsView`].

mod counter;
mod counts;
mod describe;
mod table;
mod view;
mod wrappers;

use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::{error as io_error, poll, streams};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
use wasmtime_wasi::WasiView;

pub use counter::{HostCallCounter, HostCallEvent};
pub use counts::HostCallCounts;
pub use table::{
    CLI_ENVIRONMENT, CLI_STDERR, CLI_STDIN, CLI_STDOUT, FS_PREOPENS, FS_TYPES, IO_ERROR, IO_POLL,
    IO_STREAMS, MONOTONIC_CLOCK, RANDOM, RANDOM_INSECURE, RANDOM_INSECURE_SEED, WALL_CLOCK,
};
pub use view::HostCallsView;

/// Adds WASI to `linker`: wasmtime-wasi's stock synchronous implementation,
/// with the counted interfaces replaced by counting wrappers around it.
///
/// `get` lends the wrappers the store data's context, table and counter:
///
/// ```
/// use sqlite_sessions_host::{HostCallCounter, HostCallsView};
/// use wasmtime::component::{Linker, ResourceTable};
/// use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
///
/// struct State {
///     ctx: WasiCtx,
///     table: ResourceTable,
///     calls: HostCallCounter,
/// }
///
/// impl WasiView for State {
///     fn ctx(&mut self) -> WasiCtxView<'_> {
///         WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
///     }
/// }
///
/// # fn main() -> wasmtime::Result<()> {
/// let engine = wasmtime::Engine::default();
/// let mut linker = Linker::<State>::new(&engine);
/// sqlite_sessions_host::host_calls::add_to_linker(&mut linker, |s: &mut State| HostCallsView {
///     ctx: &mut s.ctx,
///     table: &mut s.table,
///     counter: &mut s.calls,
/// })?;
/// # Ok(())
/// # }
/// ```
pub fn add_to_linker<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> HostCallsView<'_>,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let l = &mut *linker;
    fs::add_to_linker::<T, view::Counting>(l, get)?;
    filesystem::preopens::add_to_linker::<T, view::Counting>(l, get)?;
    streams::add_to_linker::<T, view::Counting>(l, get)?;
    poll::add_to_linker::<T, view::Counting>(l, get)?;
    io_error::add_to_linker::<T, view::Counting>(l, get)?;
    clocks::wall_clock::add_to_linker::<T, view::Counting>(l, get)?;
    clocks::monotonic_clock::add_to_linker::<T, view::Counting>(l, get)?;
    random::random::add_to_linker::<T, view::Counting>(l, get)?;
    random::insecure::add_to_linker::<T, view::Counting>(l, get)?;
    random::insecure_seed::add_to_linker::<T, view::Counting>(l, get)?;
    cli::environment::add_to_linker::<T, view::Counting>(l, get)?;
    cli::stdin::add_to_linker::<T, view::Counting>(l, get)?;
    cli::stdout::add_to_linker::<T, view::Counting>(l, get)?;
    cli::stderr::add_to_linker::<T, view::Counting>(l, get)?;
    linker.allow_shadowing(false);
    Ok(())
}
