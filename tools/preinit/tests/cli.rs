//! The `preinit` binary, run for real: it writes the pre-initialised store
//! and, with `--edge-demo`, the edge demo composed with it.

use std::path::Path;
use std::process::Command;

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// The names `path`'s component imports and exports.
fn interfaces(engine: &Engine, path: &Path) -> (Vec<String>, Vec<String>) {
    let component = Component::from_file(engine, path)
        .unwrap_or_else(|e| panic!("{} is not a component: {e:#}", path.display()));
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
    let exports = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    (imports, exports)
}

#[test]
fn edge_demo_plugs_the_pre_initialised_store_into_the_app() {
    let out = tempfile::tempdir().unwrap();
    let store = out.path().join("store.preinit.wasm");
    let composed = out.path().join("demo.preinit.wasm");
    let run = Command::new(env!("CARGO_BIN_EXE_preinit"))
        .arg("--edge-demo")
        .arg(&composed)
        .arg(&store)
        .output()
        .expect("running preinit");
    assert!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(stdout.contains("pre-initialised"), "{stdout}");
    assert!(stdout.contains(&composed.display().to_string()), "{stdout}");

    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).unwrap();
    // The store exports the sessions interface; the composed demo no
    // longer imports it (the store is plugged in) and serves HTTP.
    let (_, store_exports) = interfaces(&engine, &store);
    assert!(
        store_exports
            .iter()
            .any(|e| e.starts_with("sqlite-sessions:store/sessions")),
        "{store_exports:?}"
    );
    let (imports, exports) = interfaces(&engine, &composed);
    assert!(
        !imports.iter().any(|i| i.starts_with("sqlite-sessions:")),
        "{imports:?}"
    );
    assert!(
        exports
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler")),
        "{exports:?}"
    );
    // The snapshot, not the store as built, went in.
    let built = std::fs::read(sqlite_sessions_artifacts::store().unwrap()).unwrap();
    assert_ne!(std::fs::read(&store).unwrap(), built);
}

#[test]
fn a_missing_output_is_a_usage_error() {
    let run = Command::new(env!("CARGO_BIN_EXE_preinit"))
        .arg("--edge-demo")
        .output()
        .expect("running preinit");
    assert!(!run.status.success());
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("--edge-demo needs a path"), "{stderr}");
}
