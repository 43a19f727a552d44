//! Writes the pre-initialised component (see `sqlite_sessions_host::preinit`)
//! for hosts that load a `.wasm` themselves: `wasmtime serve`, Spin, jco.
//!
//! Usage: `preinit [--in COMPONENT | --kv] [--edge-demo COMPOSED] OUT`
//! (default input: the store component the artifacts crate built; `--kv`:
//! its key-value build). With `--edge-demo`, it also plugs the
//! pre-initialised store into the edge demo's app (`wac plug`, `$WAC` or
//! `wac` on `PATH`, as the artifacts crate does) and writes the composed
//! demo to `COMPOSED`. `make preinit`, `make preinit-kv` and `make
//! edge-wasm` run it.

use anyhow::{bail, ensure, Context as _};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: preinit [--in COMPONENT | --kv] [--edge-demo COMPOSED] OUT";

fn main() -> anyhow::Result<()> {
    let mut input: Option<PathBuf> = None;
    let mut kv = false;
    let mut edge_demo: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--in" => input = Some(args.next().context("--in needs a path")?.into()),
            "--kv" => kv = true,
            "--edge-demo" => {
                edge_demo = Some(args.next().context("--edge-demo needs a path")?.into());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if output.is_none() && !arg.starts_with('-') => output = Some(arg.into()),
            _ => bail!("unexpected argument {arg:?} ({USAGE})"),
        }
    }
    let output = output.context(USAGE)?;
    let input = match (input, kv) {
        (Some(_), true) => bail!("--in and --kv exclude each other"),
        (Some(path), false) => path,
        (None, true) => sqlite_sessions_artifacts::store_kv()?.to_path_buf(),
        (None, false) => sqlite_sessions_artifacts::store()?.to_path_buf(),
    };
    let wasm = std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
    let snapshot = sqlite_sessions_host::preinit::preinitialize(&wasm)?;
    std::fs::write(&output, &snapshot).with_context(|| format!("writing {}", output.display()))?;
    println!(
        "{} ({} bytes) -> {} ({} bytes, pre-initialised)",
        input.display(),
        wasm.len(),
        output.display(),
        snapshot.len()
    );
    if let Some(composed) = edge_demo {
        let app = if kv {
            sqlite_sessions_artifacts::edge_app_kv()?
        } else {
            sqlite_sessions_artifacts::edge_app()?
        };
        plug(app, &output, &composed)?;
        println!("{composed}", composed = composed.display());
    }
    Ok(())
}

/// `wac plug APP --plug STORE -o COMPOSED`.
fn plug(app: &Path, store: &Path, composed: &Path) -> anyhow::Result<()> {
    let wac = std::env::var_os("WAC").unwrap_or_else(|| "wac".into());
    let out = Command::new(&wac)
        .arg("plug")
        .arg(app)
        .arg("--plug")
        .arg(store)
        .arg("-o")
        .arg(composed)
        .output()
        .with_context(|| {
            format!(
                "running {} (wac-cli 0.12; `make setup` installs it)",
                wac.to_string_lossy()
            )
        })?;
    ensure!(
        out.status.success(),
        "wac plug {} --plug {} failed: {}",
        app.display(),
        store.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}
