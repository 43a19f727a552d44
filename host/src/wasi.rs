//! The WASI context a session-store guest gets: its session directory (none
//! for the key-value build) and nothing else of the host's filesystem,
//! environment or network.

use std::path::Path;

use anyhow::Context as _;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::storage::SessionStorage;

/// The WASI context for `storage`: [`session_ctx`] for a directory, and for
/// buckets a context with nothing preopened (the guest reaches its sessions
/// through `wasi:keyvalue`, which is linked apart).
pub fn storage_ctx(
    storage: &SessionStorage,
    guest_dir: &str,
    perms: FsPerms,
    configure: impl FnOnce(&mut WasiCtxBuilder),
) -> anyhow::Result<WasiCtx> {
    match storage {
        SessionStorage::Directory(dir) => session_ctx(dir, guest_dir, perms, configure),
        SessionStorage::KeyValue(_) => {
            let mut wasi = WasiCtxBuilder::new();
            configure(&mut wasi);
            Ok(wasi.build())
        }
    }
}

/// A WASI context that shows the host's `session_dir` to the guest as
/// `guest_dir`, with `perms`, and no other host resource.
///
/// `configure` runs on the builder before the directory is preopened, so
/// settings that each preopen captures when it is added (such as
/// [`WasiCtxBuilder::allow_blocking_current_thread`]) apply to it. Use it
/// for whatever else the guest may see: stderr, a wall clock.
pub fn session_ctx(
    session_dir: &Path,
    guest_dir: &str,
    perms: FsPerms,
    configure: impl FnOnce(&mut WasiCtxBuilder),
) -> anyhow::Result<WasiCtx> {
    let mut wasi = WasiCtxBuilder::new();
    configure(&mut wasi);
    wasi.preopened_dir(session_dir, guest_dir, perms)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("preopening {}", session_dir.display()))?;
    Ok(wasi.build())
}
