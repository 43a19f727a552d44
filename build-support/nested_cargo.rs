//! What both nested-cargo build scripts share (`host-test/build.rs`, which
//! builds the store, and `examples/edge-artifacts/build.rs`, which builds the
//! store and the edge app): the target, the profile, the C toolchain for the
//! bundled SQLite, where the nested build goes, and the environment it must
//! not inherit. One copy, so both scripts give the store's nested build the
//! same inputs and never invalidate each other's artifacts.
//!
//! Included with `#[path]` (build scripts cannot share a crate cheaply).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";
/// `[profile.component]` in the workspace Cargo.toml (release + LTO).
pub const PROFILE: &str = "component";
pub const SKIP_VAR: &str = "SQLITE_SESSIONS_SKIP_COMPONENT_BUILD";

/// What the store's build depends on, relative to the workspace root: a
/// change to any of them must rebuild the component. `.cargo/config.toml`
/// carries SQLite's compile options and the component's memory layout.
pub const STORE_INPUTS: &[&str] = &[
    "src",
    "wit",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo/config.toml",
];

/// C toolchain for the bundled SQLite (see /work/shared/NOTES.md): cc-rs
/// reads these per-target variables; callers fill in only the ones the user
/// did not set.
pub const C_TOOLCHAIN: &[(&str, &str)] = &[
    ("CC_wasm32_wasip2", "clang-19"),
    ("AR_wasm32_wasip2", "llvm-ar-19"),
    ("CFLAGS_wasm32_wasip2", "-isystem /usr/include/wasm32-wasi"),
];

/// `<outer target dir>/component`.
///
/// OUT_DIR is `<target>/<profile>/build/<pkg>-<hash>/out` (with a
/// `<triple>/` after `<target>` when the host crate itself is built with
/// `--target`; then the component dir lands under that, which is just as
/// separate from the outer lock).
pub fn component_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .unwrap_or_else(|| panic!("unexpected OUT_DIR layout: {}", out_dir.display()))
        .join("component")
}

/// Fills in the C toolchain variables the user did not set.
pub fn set_c_toolchain(cmd: &mut Command) {
    for (var, default) in C_TOOLCHAIN {
        if env::var_os(var).is_none() {
            cmd.env(var, default);
        }
    }
}

/// Removes the variables that cargo sets for *this* build script, or that
/// belong to the outer build, and would mislead the nested cargo or the build
/// scripts it runs (libsqlite3-sys's cc-rs in particular).
pub fn scrub_env(cmd: &mut Command) {
    const EXACT: &[&str] = &[
        // Host rustflags (e.g. `-C target-cpu=native`) must not reach wasm.
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        // `--target-dir` / `--target` decide these.
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        // `cargo clippy` lints the workspace through this wrapper; the
        // component is not ours to lint here (and `-D warnings` would fail
        // the host build on a guest lint).
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        // Per-build-script variables: the nested cargo sets its own for its
        // own build scripts, but a stale one it does not set (for example
        // CARGO_CFG_UNIX, which is absent for wasm) would leak through.
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

/// Runs `cargo build -p <package>` for the wasm target and the component
/// profile into `target_dir`, with the environment scrubbed and the C
/// toolchain set, and returns its exit status (each caller explains a
/// failure its own way). The child's stdout goes to our stderr: our stdout
/// is read by cargo as `cargo:` directives; its stderr (the compiler's
/// messages) is forwarded as is, which cargo shows on failure or with `-vv`.
pub fn cargo_build(workspace: &Path, target_dir: &Path, package: &str) -> std::process::ExitStatus {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["-p", package, "--profile", PROFILE, "--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace);
    scrub_env(&mut cmd);
    set_c_toolchain(&mut cmd);
    cmd.stdout(std::process::Stdio::from(std::io::stderr()))
        .stderr(std::process::Stdio::inherit());
    eprintln!("running {cmd:?}");
    cmd.status()
        .unwrap_or_else(|e| panic!("could not run cargo to build {package}: {e}"))
}
