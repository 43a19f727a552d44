//! Writes the pre-initialised component (see `sqlite_sessions_host::preinit`)
//! for hosts that load a `.wasm` themselves: `wasmtime serve`, Spin, jco.
//!
//! Usage: `preinit [--in COMPONENT | --kv] OUT` (default input: the store
//! component the artifacts crate built; `--kv`: its key-value build); `make
//! preinit` and `make preinit-kv` run it.

use anyhow::{bail, Context as _};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut input: Option<PathBuf> = None;
    let mut kv = false;
    let mut output: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--in" => input = Some(args.next().context("--in needs a path")?.into()),
            "--kv" => kv = true,
            "-h" | "--help" => {
                println!("usage: preinit [--in COMPONENT | --kv] OUT");
                return Ok(());
            }
            _ if output.is_none() && !arg.starts_with('-') => output = Some(arg.into()),
            _ => bail!("unexpected argument {arg:?} (usage: preinit [--in COMPONENT | --kv] OUT)"),
        }
    }
    let output = output.context("usage: preinit [--in COMPONENT | --kv] OUT")?;
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
    Ok(())
}
