//! Builds the edge demo's app (`examples/edge-app`) and the store for
//! `wasm32-wasip2`, composes them with `wac plug` into one component, and
//! writes their paths to `$OUT_DIR/paths.rs`.
//!
//! Like `host-test/build.rs` (wasmtime's `test-programs/artifacts` pattern),
//! it runs a nested `cargo build` in `<outer target>/component`. It builds
//! the store with exactly host-test's command and environment, so the two
//! build scripts share one build of it instead of each invalidating the
//! other's; the app is a separate invocation so that its dependencies'
//! features never unify with the store's. The nested build's inputs (target,
//! profile, C toolchain, scrubbed environment) come from the one copy in
//! `build-support/nested_cargo.rs`, for the same reason.
//!
//! The composed file lands next to its inputs, at
//! `<outer target>/component/wasm32-wasip2/component/edge_demo.wasm`, a stable
//! path for `wasmtime serve`. `wac` comes from `$WAC` or `PATH`
//! (`cargo install wac-cli --version ^0.12 --locked`; `.ci/setup.sh` does it).
//! `SQLITE_SESSIONS_SKIP_COMPONENT_BUILD=1` skips all of this, as it does for
//! host-test, and leaves the paths empty.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../../build-support/nested_cargo.rs"]
mod nested_cargo;
use nested_cargo::{
    cargo_build, component_target_dir, C_TOOLCHAIN, PROFILE, SKIP_VAR, STORE_INPUTS, TARGET,
};

const WAC_VAR: &str = "WAC";
const WAC_INSTALL: &str = "cargo install wac-cli --version ^0.12 --locked";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("edge-artifacts lives in <workspace>/examples/")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    for rel in STORE_INPUTS.iter().chain(&["examples/edge-app"]) {
        println!("cargo:rerun-if-changed={}", workspace.join(rel).display());
    }
    for var in [SKIP_VAR, WAC_VAR] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for (var, _) in C_TOOLCHAIN {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let paths = if env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
        println!("cargo:warning={SKIP_VAR}=1: the edge demo was not built");
        Paths::default()
    } else {
        let target_dir = component_target_dir(&out_dir);
        let release = target_dir.join(TARGET).join(PROFILE);
        build(&workspace, &target_dir, "sqlite-sessions");
        build(&workspace, &target_dir, "edge-app");
        let paths = Paths {
            store: release.join("sqlite_sessions.wasm"),
            app: release.join("edge_app.wasm"),
            composed: release.join("edge_demo.wasm"),
        };
        for built in [&paths.store, &paths.app] {
            assert!(
                built.is_file(),
                "the build succeeded but {} is missing",
                built.display()
            );
        }
        wac_plug(&paths);
        paths
    };
    fs::write(out_dir.join("paths.rs"), paths.to_rust())
        .expect("failed to write $OUT_DIR/paths.rs");
}

#[derive(Default)]
struct Paths {
    store: PathBuf,
    app: PathBuf,
    composed: PathBuf,
}

impl Paths {
    fn to_rust(&self) -> String {
        let s = |p: &Path| -> String {
            p.to_str()
                .expect("the target directory path must be UTF-8")
                .to_owned()
        };
        // `{:?}` escapes each path into a valid Rust string literal.
        format!(
            "/// The store component (`sqlite_sessions.wasm`); empty when `{SKIP_VAR}=1`.\n\
             pub const STORE_PATH: &str = {:?};\n\
             /// The app alone (`edge_app.wasm`), which still imports the store.\n\
             pub const APP_PATH: &str = {:?};\n\
             /// The app with the store plugged in (`edge_demo.wasm`): its only\n\
             /// imports are WASI's, and it exports `wasi:http/incoming-handler`.\n\
             pub const COMPOSED_PATH: &str = {:?};\n",
            s(&self.store),
            s(&self.app),
            s(&self.composed)
        )
    }
}

fn build(workspace: &Path, target_dir: &Path, package: &str) {
    let status = cargo_build(workspace, target_dir, package);
    if !status.success() {
        panic!(
            "building {package} for {TARGET} failed ({status}); the compiler's messages are \
             above. `make setup` (.ci/setup.sh) installs what the build needs."
        );
    }
}

fn wac_plug(paths: &Paths) {
    let wac = env::var_os(WAC_VAR).unwrap_or_else(|| OsString::from("wac"));
    let mut cmd = Command::new(&wac);
    cmd.arg("plug")
        .arg(&paths.app)
        .arg("--plug")
        .arg(&paths.store)
        .arg("-o")
        .arg(&paths.composed)
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());
    eprintln!("running {cmd:?}");
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "could not run {wac:?} ({e}). The edge demo is composed with wac-cli 0.12: \
             `{WAC_INSTALL}` (`make setup` does this), or set {WAC_VAR} to its path."
        )
    });
    if !status.success() {
        panic!("`wac plug` failed ({status}); its messages are above");
    }
}
