//! Builds the `sqlite-sessions` component for `wasm32-wasip2` (with the
//! workspace's `component` profile: release plus LTO) and
//! tells the library where it is, through `$OUT_DIR/component_path.rs`.
//!
//! This follows wasmtime's `test-programs/artifacts` pattern: a nested
//! `cargo build` of another workspace member for another target. The nested
//! cargo gets its own `--target-dir` (`<outer target>/component`), because
//! the outer cargo holds the lock on its own target directory for the whole
//! build and a nested cargo waiting on that lock would deadlock.
//!
//! Set `SQLITE_SESSIONS_SKIP_COMPONENT_BUILD=1` to skip the nested build (for
//! example to `cargo check` the host while the component does not build);
//! `COMPONENT_PATH` is then empty and `Runtime::new` fails at run time.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../build-support/nested_cargo.rs"]
mod nested_cargo;
use nested_cargo::{
    cargo_build, component_target_dir, C_TOOLCHAIN, PROFILE, SKIP_VAR, STORE_INPUTS, TARGET,
};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .expect("host-test lives inside the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    for rel in STORE_INPUTS {
        println!("cargo:rerun-if-changed={}", workspace.join(rel).display());
    }
    println!("cargo:rerun-if-env-changed={SKIP_VAR}");
    for (var, _) in C_TOOLCHAIN {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let component_path = if env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
        println!(
            "cargo:warning={SKIP_VAR}=1: the component was not built; \
             Runtime::new() will fail at run time"
        );
        String::new()
    } else {
        let target_dir = component_target_dir(&out_dir);
        build_component(&workspace, &target_dir);
        let wasm = target_dir
            .join(TARGET)
            .join(PROFILE)
            .join("sqlite_sessions.wasm");
        if !wasm.is_file() {
            panic!(
                "the component build succeeded but {} does not exist; \
                 is the root crate still a `cdylib` named `sqlite-sessions`?",
                wasm.display()
            );
        }
        wasm.to_str()
            .expect("the target directory path must be UTF-8")
            .to_owned()
    };

    // `{:?}` escapes the path into a valid Rust string literal.
    let generated = format!(
        "/// The component built by `host-test/build.rs` (empty when \
         `{SKIP_VAR}=1`).\npub const COMPONENT_PATH: &str = {component_path:?};\n"
    );
    fs::write(out_dir.join("component_path.rs"), generated)
        .expect("failed to write $OUT_DIR/component_path.rs");
}

fn build_component(workspace: &Path, target_dir: &Path) {
    let status = cargo_build(workspace, target_dir, "sqlite-sessions");
    if !status.success() {
        panic!(
            "building the sqlite-sessions component for {TARGET} failed ({status}).\n\
             The compiler's messages are above. Things this build needs:\n{}",
            diagnose()
        );
    }
}

/// A checklist of what the component build needs, each marked with whether
/// it looks present, so a failure names the missing piece.
fn diagnose() -> String {
    let mut out = String::new();

    let libdir = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let std_ok = libdir.is_some_and(|d| d.is_dir());
    out += &format!(
        "  [{}] the Rust target: `rustup target add {TARGET}`\n",
        mark(std_ok)
    );

    for (var, default) in C_TOOLCHAIN {
        let value = env::var(var).unwrap_or_else(|_| default.to_string());
        let ok = if var.starts_with("CFLAGS") {
            Path::new("/usr/include/wasm32-wasi/stdio.h").exists() || value != *default
        } else {
            on_path(&value)
        };
        let hint = if var.starts_with("CC") {
            "`apt-get install -y clang-19`"
        } else if var.starts_with("AR") {
            "`apt-get install -y llvm-19`"
        } else {
            "wasi-libc headers: `apt-get install -y wasi-libc`"
        };
        out += &format!("  [{}] {var}={value:?}: {hint}\n", mark(ok));
    }
    out += &format!("  Set {SKIP_VAR}=1 to type-check the host without the component.\n");
    out
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSING"
    }
}

fn on_path(program: &str) -> bool {
    let program = program.split_whitespace().next().unwrap_or(program);
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
