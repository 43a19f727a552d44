//! Builds the wasm artifacts the hosts, tools and tests run, and writes
//! their paths to `$OUT_DIR/artifacts.rs`:
//!
//! - the store component (`sqlite-sessions` for `wasm32-wasip2`, with the
//!   workspace's `component` profile: release plus LTO);
//! - the edge demo's app (`examples/edge-app`), which imports the store;
//! - the two composed into one component with `wac plug` (wac-cli 0.12, from
//!   `$WAC` or `PATH`);
//! - the same three over `wasi:keyvalue` (the `kv` feature of the store and
//!   of the app): `sqlite_sessions_kv.wasm`, `edge_app_kv.wasm` and
//!   `edge_demo_kv.wasm`.
//!
//! This is wasmtime's `test-programs/artifacts` pattern: a nested `cargo
//! build` of other workspace members for another target. The nested cargo
//! gets its own `--target-dir` (`<outer target>/component`), because the
//! outer cargo holds the lock on its own target directory for the whole
//! build and a nested cargo waiting on that lock would deadlock. The store
//! and the app are separate invocations, so that the app's dependencies'
//! features never unify with the store's. The key-value builds use a target
//! directory of their own (`<outer target>/component-kv`): a build of the
//! same package with other features writes the same output file, so sharing
//! one directory would leave whichever was built last under both names.
//! Their outputs are then copied to names of their own (`*_kv.wasm`).
//!
//! A build that fails (a missing toolchain, typically) does not fail this
//! crate: the failure is recorded next to the path, with a checklist of
//! what the build needs, and whoever asks for the artifact at run time gets
//! it as an error (see `src/lib.rs`). The script then runs again on every
//! build until it succeeds. Set `SQLITE_SESSIONS_SKIP_COMPONENT_BUILD=1` to
//! skip the nested builds altogether (for example to lint the host crates
//! quickly).
//!
//! The C toolchain for the bundled SQLite (`CC_wasm32_wasip2`,
//! `AR_wasm32_wasip2`, `CFLAGS_wasm32_wasip2`) is set once, in
//! `.cargo/config.toml`'s `[env]`, which both this script and the nested
//! cargo see.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

const TARGET: &str = "wasm32-wasip2";
/// `[profile.component]` in the workspace Cargo.toml (release + LTO).
const PROFILE: &str = "component";
const SKIP_VAR: &str = "SQLITE_SESSIONS_SKIP_COMPONENT_BUILD";
const WAC_VAR: &str = "WAC";
const WAC_INSTALL: &str = "cargo install wac-cli --version ^0.12 --locked --no-default-features";

/// The C toolchain variables cc-rs reads for the bundled SQLite, with the
/// Debian package that provides what each names.
const C_TOOLCHAIN: &[(&str, &str)] = &[
    ("CC_wasm32_wasip2", "clang-19"),
    ("AR_wasm32_wasip2", "llvm-19"),
    ("CFLAGS_wasm32_wasip2", "wasi-libc"),
];

/// What the builds depend on, relative to the workspace root: a change to
/// any of them must rerun them. `.cargo/config.toml` carries SQLite's
/// compile options, the C toolchain and the component's memory layout.
const INPUTS: &[&str] = &[
    "src",
    "wit",
    "examples/edge-app",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo/config.toml",
    "rust-toolchain.toml",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .expect("the artifacts crate lives in the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    for rel in INPUTS {
        println!("cargo:rerun-if-changed={}", workspace.join(rel).display());
    }
    for var in [SKIP_VAR, WAC_VAR] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for (var, _) in C_TOOLCHAIN {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let variants = [
        Variant {
            suffix: "",
            features: None,
            target_dir: component_target_dir(&out_dir, "component"),
        },
        Variant {
            suffix: "_kv",
            features: Some("kv"),
            target_dir: component_target_dir(&out_dir, "component-kv"),
        },
    ];
    let mut artifacts = Vec::new();
    for v in &variants {
        let built = v.target_dir.join(TARGET).join(PROFILE);
        let named = |stem: &str| built.join(format!("{stem}{}.wasm", v.suffix));
        let upper = v.suffix.to_uppercase();
        artifacts.push([
            Artifact::new(format!("STORE{upper}"), named("sqlite_sessions")),
            Artifact::new(format!("APP{upper}"), named("edge_app")),
            Artifact::new(format!("COMPOSED{upper}"), named("edge_demo")),
        ]);
    }

    if env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
        for a in artifacts.iter_mut().flatten() {
            a.error = Some(format!("it was skipped ({SKIP_VAR}=1 at build time)"));
        }
    } else {
        for (v, [store, app, composed]) in variants.iter().zip(&mut artifacts) {
            let built = v.target_dir.join(TARGET).join(PROFILE);
            store.error = v.build(&workspace, "sqlite-sessions", &built, &store.path);
            app.error = v.build(&workspace, "edge-app", &built, &app.path);
            composed.error = match (&store.error, &app.error) {
                (None, None) => wac_plug(&app.path, &store.path, &composed.path),
                _ => Some("it is made from the store and the app, and one of them failed".into()),
            };
        }
    }

    let mut generated = String::new();
    let mut failed = false;
    for a in artifacts.iter().flatten() {
        a.write_rust(&mut generated);
        if let Some(e) = &a.error {
            failed = true;
            let file = a.path.file_name().unwrap_or_default().to_string_lossy();
            for line in format!("{file} was not built: {e}").lines() {
                println!("cargo:warning={line}");
            }
        }
    }
    if failed {
        // A path that never exists: cargo then reruns this script on every
        // build, so the artifact is built once what it needs is installed.
        println!(
            "cargo:rerun-if-changed={}",
            out_dir.join("rerun-until-built").display()
        );
    }
    fs::write(out_dir.join("artifacts.rs"), generated)
        .expect("failed to write $OUT_DIR/artifacts.rs");
}

/// One build of the store and the app: the directory-backed one, or the
/// key-value one.
struct Variant {
    /// Appended to each output's file stem.
    suffix: &'static str,
    /// `--features` for both packages.
    features: Option<&'static str>,
    target_dir: PathBuf,
}

impl Variant {
    /// Builds `package` into `built` and gives its output the variant's name
    /// (`expected`); `None` if it is there, else why not.
    fn build(
        &self,
        workspace: &Path,
        package: &str,
        built: &Path,
        expected: &Path,
    ) -> Option<String> {
        let output = built.join(format!("{}.wasm", package.replace('-', "_")));
        if let Some(e) = build(workspace, &self.target_dir, package, self.features, &output) {
            return Some(e);
        }
        if output == expected {
            return None;
        }
        // A copy, not a hard link: the next build replaces cargo's output.
        match fs::copy(&output, expected) {
            Ok(_) => None,
            Err(e) => Some(format!(
                "copying {} to {}: {e}",
                output.display(),
                expected.display()
            )),
        }
    }
}

struct Artifact {
    /// Prefix of the generated constants.
    name: String,
    path: PathBuf,
    /// Why it was not built.
    error: Option<String>,
}

impl Artifact {
    fn new(name: String, path: PathBuf) -> Self {
        Self {
            name,
            path,
            error: None,
        }
    }

    /// `pub const <NAME>_PATH` and `const <NAME>_ERROR`; `{:?}` escapes
    /// each into a valid Rust string literal.
    fn write_rust(&self, out: &mut String) {
        let path = self
            .path
            .to_str()
            .expect("the target directory path must be UTF-8");
        let _ = writeln!(
            out,
            "/// Where the build puts it; the function of the same name checks that it is there."
        );
        let _ = writeln!(out, "pub const {}_PATH: &str = {path:?};", self.name);
        let _ = writeln!(
            out,
            "const {}_ERROR: Option<&str> = {:?};",
            self.name, self.error
        );
    }
}

/// `<outer target dir>/<name>`.
///
/// OUT_DIR is `<target>/<profile>/build/<pkg>-<hash>/out` (with a
/// `<triple>/` after `<target>` when the host crates are built with
/// `--target`; then the component dir lands under that, which is just as
/// separate from the outer lock).
fn component_target_dir(out_dir: &Path, name: &str) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .unwrap_or_else(|| panic!("unexpected OUT_DIR layout: {}", out_dir.display()))
        .join(name)
}

/// Runs `cargo build -p <package> [--features <features>]` for the wasm
/// target and the component profile into `target_dir`; `None` if it
/// produced `expected`, else why not.
fn build(
    workspace: &Path,
    target_dir: &Path,
    package: &str,
    features: Option<&str>,
    expected: &Path,
) -> Option<String> {
    let features_arg = features.map_or(String::new(), |f| format!(" --features {f}"));
    match cargo_build(workspace, target_dir, package, features) {
        Err(e) => Some(format!("could not run cargo: {e}")),
        Ok((status, messages)) if !status.success() => Some(format!(
            "`cargo build -p {package}{features_arg} --target {TARGET}` failed ({status}). The \
             end of its messages (all of them: `cargo build -vv -p sqlite-sessions-artifacts`):\n\
             {}\nWhat the build needs:\n{}",
            tail(&messages, 20),
            diagnose()
        )),
        Ok(_) if !expected.is_file() => Some(format!(
            "the build succeeded but {} does not exist; is {package} still a `cdylib`?",
            expected.display()
        )),
        Ok(_) => None,
    }
}

/// The nested cargo, with the environment scrubbed: its exit status and its
/// messages (stderr). Both its outputs are passed on to our stderr, which
/// cargo shows with `-vv`; our stdout is read by cargo as `cargo:`
/// directives.
fn cargo_build(
    workspace: &Path,
    target_dir: &Path,
    package: &str,
    features: Option<&str>,
) -> std::io::Result<(ExitStatus, String)> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["-p", package, "--profile", PROFILE, "--target", TARGET])
        .args(features.map(|f| ["--features", f]).into_iter().flatten())
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace);
    scrub_env(&mut cmd);
    eprintln!("running {cmd:?}");
    let out = cmd.output()?;
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(&out.stdout);
    let _ = stderr.write_all(&out.stderr);
    Ok((
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The last `n` lines of `text` that are meant for people: not the
/// `cargo:` directives and `VAR = value` lines a failed build script's
/// output is full of, nor blank lines.
fn tail(text: &str, n: usize) -> String {
    let for_people = |line: &&str| {
        let line = line.trim();
        !(line.is_empty()
            || line.starts_with("cargo:")
            || line.ends_with(" = None")
            || line.contains(" = Some("))
    };
    let lines: Vec<&str> = text.lines().filter(for_people).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Removes the variables that cargo sets for *this* build script, or that
/// belong to the outer build, and would mislead the nested cargo or the build
/// scripts it runs (libsqlite3-sys's cc-rs in particular).
fn scrub_env(cmd: &mut Command) {
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

/// `wac plug <app> --plug <store> -o <composed>`; `None` on success.
fn wac_plug(app: &Path, store: &Path, composed: &Path) -> Option<String> {
    let wac = env::var_os(WAC_VAR).unwrap_or_else(|| OsString::from("wac"));
    let mut cmd = Command::new(&wac);
    cmd.arg("plug")
        .arg(app)
        .arg("--plug")
        .arg(store)
        .arg("-o")
        .arg(composed)
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());
    eprintln!("running {cmd:?}");
    match cmd.status() {
        Err(e) => Some(format!(
            "could not run {wac:?} ({e}). The edge demo is composed with wac-cli 0.12: \
             `{WAC_INSTALL}` (`make setup` does this), or set {WAC_VAR} to its path."
        )),
        Ok(status) if !status.success() => Some(format!(
            "`wac plug` failed ({status}); its messages are in this build script's output"
        )),
        Ok(_) => None,
    }
}

/// A checklist of what the wasm build needs, each marked with whether it
/// looks present, so a failure names the missing piece.
fn diagnose() -> String {
    let mut out = String::new();

    let libdir = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let std_ok = libdir.is_some_and(|d| d.is_dir());
    let _ = writeln!(
        out,
        "  [{}] the Rust target {TARGET}: `rustup toolchain install` (rust-toolchain.toml lists it)",
        mark(std_ok)
    );

    for (var, package) in C_TOOLCHAIN {
        let hint = format!("`apt-get install -y {package}`");
        let Ok(value) = env::var(var) else {
            let _ = writeln!(
                out,
                "  [MISSING] {var} is not set (.cargo/config.toml's [env] sets it); {hint}"
            );
            continue;
        };
        let ok = if var.starts_with("CFLAGS") {
            isystem_dirs(&value).all(|dir| dir.join("stdio.h").is_file())
        } else {
            on_path(&value)
        };
        let _ = writeln!(out, "  [{}] {var}={value:?}: {hint}", mark(ok));
    }
    let _ = writeln!(
        out,
        "  `make setup` (.ci/setup.sh) installs what is missing."
    );
    out
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSING"
    }
}

/// The directories named by `-isystem DIR` in a CFLAGS value.
fn isystem_dirs(cflags: &str) -> impl Iterator<Item = &Path> {
    let words: Vec<&str> = cflags.split_whitespace().collect();
    let dirs: Vec<&Path> = words
        .windows(2)
        .filter(|w| w[0] == "-isystem")
        .map(|w| Path::new(w[1]))
        .collect();
    dirs.into_iter()
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
