//! What every section shares: the store settings (wasm and native), the
//! runtimes, and seeding a session.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use sqlite_sessions::StoreConfig;
use sqlite_sessions_host::{
    default_config, Config, Durability, Request, RequestOptions, Runtime, RuntimeOptions,
    SessionHandle, StoreHandle,
};

use crate::MAX_INSTANCES;

/// `--durability`: applies to the wasm and the native store alike.
static DURABILITY: OnceLock<Durability> = OnceLock::new();

/// `--keep-resident BYTES`: the pooling allocator's resident memory per
/// instance slot (see `RuntimeOptions::keep_resident_bytes`).
static KEEP_RESIDENT: OnceLock<usize> = OnceLock::new();

/// `--component WASM`: the store component to measure.
static COMPONENT: OnceLock<PathBuf> = OnceLock::new();

/// Records the command line's settings for the rest of the run.
pub fn init(durability: Durability, keep_resident: Option<usize>, component: Option<PathBuf>) {
    DURABILITY.set(durability).ok();
    if let Some(bytes) = keep_resident {
        KEEP_RESIDENT.set(bytes).ok();
    }
    if let Some(path) = component {
        COMPONENT.set(path).ok();
    }
}

/// The store component: `--component`, or the one the artifacts crate built.
pub fn component() -> anyhow::Result<&'static Path> {
    match COMPONENT.get() {
        Some(path) => Ok(path),
        None => Ok(sqlite_sessions_artifacts::store()?),
    }
}

pub fn durability() -> Durability {
    *DURABILITY.get().unwrap_or(&Durability::PowerLoss)
}

pub fn bench_config() -> Config {
    let mut config = default_config();
    config.durability = Some(durability());
    config
}

pub fn native_config(dir: &Path) -> anyhow::Result<StoreConfig> {
    let mut config = StoreConfig::new(dir.to_str().context("non-UTF-8 path")?);
    config.durability = match durability() {
        Durability::PowerLoss => sqlite_sessions::Durability::PowerLoss,
        Durability::ProcessCrash => sqlite_sessions::Durability::ProcessCrash,
    };
    Ok(config)
}

/// A runtime that counts host calls, or links stock wasmtime-wasi. Both share
/// every other setting, and the compiled-component cache.
pub fn runtime(count_host_calls: bool) -> anyhow::Result<Runtime> {
    runtime_with(count_host_calls, MAX_INSTANCES, true)
}

/// [`runtime`] with a pool of `max_instances`, pre-initialised or not.
pub fn runtime_with(
    count_host_calls: bool,
    max_instances: u32,
    preinitialize: bool,
) -> anyhow::Result<Runtime> {
    runtime_reusing(count_host_calls, max_instances, preinitialize, 1)
}

/// [`runtime_with`] whose instances each serve up to `reuse_count` requests
/// (`RuntimeOptions::max_instance_reuse_count`).
pub fn runtime_reusing(
    count_host_calls: bool,
    max_instances: u32,
    preinitialize: bool,
    reuse_count: u32,
) -> anyhow::Result<Runtime> {
    let component = component()?;
    let defaults = RuntimeOptions::cached_beside(component);
    let keep_resident_bytes = *KEEP_RESIDENT.get().unwrap_or(&defaults.keep_resident_bytes);
    Runtime::from_file_with(
        component,
        RuntimeOptions {
            count_host_calls,
            max_instances,
            keep_resident_bytes,
            preinitialize,
            max_instance_reuse_count: reuse_count,
            ..defaults
        },
    )
}

/// What the cycle's session holds: the `user` it reads and the `counter`
/// it writes.
pub const SEED: &[(&str, &str)] = &[
    ("user", r#"{"name":"ada","roles":["admin"]}"#),
    ("counter", "0"),
];

/// A session holding [`SEED`], created through the component.
pub fn seed_session(runtime: &Runtime, dir: &Path) -> anyhow::Result<String> {
    runtime.create_session(dir, RequestOptions::default(), &bench_config(), SEED)
}

/// [`seed_session`], natively.
pub fn seed_native(config: &StoreConfig) -> anyhow::Result<String> {
    let store = sqlite_sessions::Store::open(config.clone())?;
    let mut s = store.create();
    for (key, json) in SEED {
        s.set_json(key, json)?;
    }
    Ok(s.id())
}

/// Drops the session and the store, running the guest's destructors.
pub fn finish(mut req: Request, store: StoreHandle, s: SessionHandle) -> anyhow::Result<()> {
    req.drop_session(s)?;
    req.drop_store(store)
}
