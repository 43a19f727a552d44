//! Builds the edge demo's app (`examples/edge-app`) and the store for
//! `wasm32-wasip2`, composes them with `wac plug` into one component, and
//! writes their paths to `$OUT_DIR/paths.rs`.
//!
//! Like `host-test/build.rs` (wasmtime's `test-programs/artifacts` pattern),
//! it runs a nested `cargo build` in `<outer target>/component`. It builds
//! the store with exactly host-test's command and environment, so the two
//! build scripts share one build of it instead of each invalidating the
//! other's; the app is a separate invocation so that its dependencies'
//! features never unify with the store's. `scrub_env` must stay in step with
//! host-test's for the same reason.
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

const TARGET: &str = "wasm32-wasip2";
/// The workspace's `[profile.component]` (release + LTO), as host-test uses:
/// both nested builds then share one store artifact.
const PROFILE: &str = "component";
const SKIP_VAR: &str = "SQLITE_SESSIONS_SKIP_COMPONENT_BUILD";
const WAC_VAR: &str = "WAC";
const WAC_INSTALL: &str = "cargo install wac-cli --version ^0.12 --locked";

/// The same defaults host-test/build.rs gives the bundled SQLite's C build.
const C_TOOLCHAIN: &[(&str, &str)] = &[
    ("CC_wasm32_wasip2", "clang-19"),
    ("AR_wasm32_wasip2", "llvm-ar-19"),
    ("CFLAGS_wasm32_wasip2", "-isystem /usr/include/wasm32-wasi"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("edge-artifacts lives in <workspace>/examples/")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    for rel in [
        "src",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        "examples/edge-app",
    ] {
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
        cargo_build(&workspace, &target_dir, "sqlite-sessions");
        cargo_build(&workspace, &target_dir, "edge-app");
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

/// `<outer target dir>/component`, the same directory host-test uses.
fn component_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .unwrap_or_else(|| panic!("unexpected OUT_DIR layout: {}", out_dir.display()))
        .join("component")
}

fn cargo_build(workspace: &Path, target_dir: &Path, package: &str) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["-p", package, "--profile", PROFILE, "--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace);
    scrub_env(&mut cmd);
    for (var, default) in C_TOOLCHAIN {
        if env::var_os(var).is_none() {
            cmd.env(var, default);
        }
    }
    // Our stdout carries `cargo:` directives, so the child's goes to stderr.
    cmd.stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());
    eprintln!("running {cmd:?}");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build {package}: {e}"));
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

/// The variables of the outer build that would mislead the nested cargo or
/// the build scripts it runs. The same list as host-test/build.rs's, so the
/// store's nested build sees the same environment from both scripts.
fn scrub_env(cmd: &mut Command) {
    const EXACT: &[&str] = &[
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
        "RUSTC_LINKER",
        "RUSTDOC",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
    ];
    const PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"];
    for var in EXACT {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        if let Some(key) = key.to_str() {
            if PREFIXES.iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(key);
            }
        }
    }
}
