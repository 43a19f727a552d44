//! Runs a composed runner guest (guest + store, by `wac plug`) under
//! wasmtime: the host gives it WASI with the session directory preopened at
//! `/sessions`, calls its exported `run`, and returns the report.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The runner interface every guest exports (`polyglot/wit/runner.wit`).
const RUNNER_INTERFACE: &str = "sqlite-sessions:conformance/runner@0.1.0";

struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Calls `run(flow_json, "/sessions")` on a fresh instance of `composed`
/// whose `/sessions` is `dir`. The outer error is a trap or a failure to
/// instantiate; the inner one is the guest's own `err`.
pub fn run(composed: &Path, flow_json: &str, dir: &Path) -> anyhow::Result<Result<String, String>> {
    let engine = Engine::default();
    let started = Instant::now();
    let component = load_cached(&engine, composed)?;
    let loaded = started.elapsed();

    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stderr()
        .allow_blocking_current_thread(true)
        .preopened_dir(
            dir,
            sqlite_sessions_host::DEFAULT_GUEST_DIR,
            FsPerms::ReadWrite,
        )?;
    let mut store = Store::new(
        &engine,
        State {
            ctx: wasi.build(),
            table: ResourceTable::new(),
        },
    );
    let instance = linker.instantiate(&mut store, &component)?;
    let iface = instance
        .get_export_index(&mut store, None, RUNNER_INTERFACE)
        .ok_or_else(|| anyhow!("{} exports no {RUNNER_INTERFACE}", composed.display()))?;
    let run = instance
        .get_export_index(&mut store, Some(&iface), "run")
        .ok_or_else(|| anyhow!("{RUNNER_INTERFACE} has no `run`"))?;
    let run =
        instance.get_typed_func::<(&str, &str), (Result<String, String>,)>(&mut store, &run)?;
    let (result,) = run.call(
        &mut store,
        (flow_json, sqlite_sessions_host::DEFAULT_GUEST_DIR),
    )?;
    eprintln!(
        "{}: loaded in {:.1?}, ran in {:.1?}",
        composed.file_name().unwrap().to_string_lossy(),
        loaded,
        started.elapsed() - loaded
    );
    Ok(result)
}

/// Compiling an 18 MB Python component takes Cranelift a while, so the
/// compiled form is kept next to it, named by the engine's settings (the
/// `.wasm` name already hashes its inputs, see `polyglot/build.sh`).
fn load_cached(engine: &Engine, wasm: &Path) -> anyhow::Result<Component> {
    // Tests run in parallel and several use the same component: one
    // compiles, the others then find its cached form.
    static COMPILING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let cached = PathBuf::from(format!("{}.{:016x}.cwasm", wasm.display(), h.finish()));
    if cached.is_file() {
        // SAFETY: the file is wasmtime's own output, written below into
        // our git-ignored build directory under a name derived from the
        // exact input and engine; wasmtime still checks version and
        // settings, and any failure falls back to compiling.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(c);
        }
    }
    let component = Component::from_file(engine, wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling {}", wasm.display()))?;
    let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, component.serialize()?).is_ok() {
        let _ = std::fs::rename(&tmp, &cached);
    }
    Ok(component)
}
