//! The linker against a real importer: the store's key-value build (the
//! artifacts crate's `store_kv`), whose imports must all match by name,
//! version and type.

use crate::keyvalue::{add_to_linker, Buckets, KeyValueCtx, KeyValueView};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// An embedder's state, as the module documentation shows it, plus WASI.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    kv: KeyValueCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn view(state: &mut State) -> KeyValueView<'_> {
    KeyValueView::new(&mut state.kv, &mut state.table)
}

fn kv_store_component(engine: &Engine) -> Component {
    let path = sqlite_sessions_artifacts::store_kv().unwrap_or_else(|e| panic!("{e}"));
    Component::from_file(engine, path).unwrap()
}

#[test]
fn the_key_value_store_component_instantiates() {
    // wasmtime 48 has no separate async configuration: these synchronous host functions serve
    // stores driven with `call` and with `call_async` alike.
    let engine = Engine::default();
    let component = kv_store_component(&engine);
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    add_to_linker(&mut linker, view).unwrap();
    let mut store = Store::new(
        &engine,
        State {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            kv: KeyValueCtx::new(Buckets::builder().memory("default").build()),
        },
    );
    linker.instantiate(&mut store, &component).unwrap();

    // Without the interfaces the same component does not instantiate.
    let mut bare = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut bare).unwrap();
    let missing = bare
        .instantiate(&mut store, &component)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("wasi:keyvalue/"), "{missing}");
}

#[test]
fn the_state_can_cross_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Buckets>();
    shareable::<KeyValueCtx>();
}
