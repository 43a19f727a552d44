//! Pre-initialisation: runs the component's `wizer-initialize` export once
//! and snapshots the instance with `wasmtime-wizer`, so that every instance
//! of the snapshot starts with what that export prepared (a session
//! connection with its schema read and statements compiled, see the
//! component's `template` module) instead of redoing it per request.
//!
//! A snapshot copies the instance's memory, so it must not capture anything
//! that has to differ between instances or that lives in the host: random
//! state (std's hash keys, SQLite's PRNG) and host resources (open files).
//! The pre-initialising instance therefore gets no preopened directory, and
//! every `wasi:random` function traps there, so a component whose
//! initialisation reaches for randomness fails here, at build time, instead
//! of shipping keys shared by every instance. The key-value build's
//! `wasi:keyvalue` is linked with no bucket declared, so no bucket handle
//! (a resource no later instance would have) can end up in a snapshot:
//! opening one fails, and so does the initialisation that tries.

use anyhow::Context as _;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::random;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wizer::Wizer;

use crate::keyvalue::{Buckets, KeyValueCtx, KeyValueView};

/// The export the pre-initialiser runs (and removes from the snapshot).
pub const INIT_EXPORT: &str = "wizer-initialize";

/// The component `wasm` (bytes of a component) after running its
/// [`INIT_EXPORT`] once: the same component with its memory and globals as
/// the export left them.
///
/// Callable from anywhere, async code included: wasmtime-wizer is async, and
/// this drives it to completion in a thread of its own, on wasmtime-wasi's
/// runtime.
pub fn preinitialize(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| snapshot(wasm))
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the pre-initialiser panicked")))
    })
}

fn snapshot(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    let engine = Engine::new(&Config::new())?;
    let mut linker = Linker::<InitState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    linker.allow_shadowing(true);
    random::random::add_to_linker::<InitState, NoRandom>(&mut linker, |_| NoRandom)?;
    random::insecure::add_to_linker::<InitState, NoRandom>(&mut linker, |_| NoRandom)?;
    random::insecure_seed::add_to_linker::<InitState, NoRandom>(&mut linker, |_| NoRandom)?;
    linker.allow_shadowing(false);
    crate::keyvalue::add_to_linker(&mut linker, |s: &mut InitState| {
        KeyValueView::new(&mut s.kv, &mut s.table)
    })?;

    let state = InitState {
        // No preopens, environment or arguments: nothing of this machine
        // ends up in the snapshot.
        ctx: WasiCtxBuilder::new().build(),
        table: ResourceTable::new(),
        kv: KeyValueCtx::new(Buckets::default()),
    };
    let mut store = Store::new(&engine, state);
    // `in_tokio` blocks this thread (one without a runtime of its own, see
    // `preinitialize`) on wasmtime-wasi's runtime, which its async WASI
    // implementation needs.
    let (snapshot, _) = in_tokio(
        Wizer::new()
            .init_func(INIT_EXPORT)
            // Removing the export leaves a dangling core export in a Rust
            // component (wasmtime's FIXME #13186, as in wizer's own
            // `rust_regex` test); kept, calling it again only spends time
            // (see the WIT).
            .keep_init_func(true)
            .run_component(&mut store, wasm, async |store, component| {
                linker.instantiate_async(store, component).await
            }),
    )
    .map_err(anyhow::Error::from)
    .context("pre-initialising the component (its `wizer-initialize` export)")?;
    Ok(snapshot)
}

struct InitState {
    ctx: WasiCtx,
    table: ResourceTable,
    /// No bucket: `store.open` answers `no-such-store` to every identifier.
    kv: KeyValueCtx,
}

impl WasiView for InitState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// `wasi:random` for the pre-initialising instance: every call traps.
struct NoRandom;

impl HasData for NoRandom {
    type Data<'a> = NoRandom;
}

fn refuse<T>() -> wasmtime::Result<T> {
    Err(wasmtime::format_err!(
        "the component drew randomness while pre-initialising; a snapshot \
         would share it between every instance"
    ))
}

impl random::random::Host for NoRandom {
    fn get_random_bytes(&mut self, _len: u64) -> wasmtime::Result<Vec<u8>> {
        refuse()
    }
    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        refuse()
    }
}

impl random::insecure::Host for NoRandom {
    fn get_insecure_random_bytes(&mut self, _len: u64) -> wasmtime::Result<Vec<u8>> {
        refuse()
    }
    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        refuse()
    }
}

impl random::insecure_seed::Host for NoRandom {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        refuse()
    }
}
