//! Engine settings and component loading: the pooling allocator's sizes,
//! and compiling a component (pre-initialised first, if asked) or loading
//! its compiled form from a cache directory.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::Path;

use wasmtime::component::Component;
use wasmtime::{Engine, PoolingAllocationConfig};

/// Set to `1` to write `/tmp/perf-<pid>.map`, so that `perf record` /
/// `perf report` name the component's functions.
pub const PERFMAP_VAR: &str = "SQLITE_SESSIONS_PERFMAP";

/// What one component instance takes from the pooling allocator, beyond the
/// component instance itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceShape {
    /// Core instances: a Rust component is several (the main module,
    /// wit-component's shim and fixup modules, and instances made of host
    /// imports). These are only counters, so be generous.
    pub core_instances: u32,
    /// Linear memories: one per main module.
    pub memories: u32,
    /// Tables: the main modules' and the shims'.
    pub tables: u32,
}

impl InstanceShape {
    /// The store component on its own.
    pub const STORE: InstanceShape = InstanceShape {
        core_instances: 16,
        memories: 1,
        tables: 2,
    };
}

/// A pool for `instances` component instances at once, each of `shape`,
/// whose linear memories may each grow to `max_memory_bytes`.
///
/// Each memory slot still reserves `Config::memory_reservation` (4 GiB by
/// default) of address space, so bounds checks stay elided;
/// `max_memory_bytes` only caps how far `memory.grow` may go.
pub fn pooling_config(
    instances: u32,
    shape: InstanceShape,
    max_memory_bytes: usize,
) -> PoolingAllocationConfig {
    let n = instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(shape.core_instances))
        .total_memories(n.saturating_mul(shape.memories))
        .total_tables(n.saturating_mul(shape.tables))
        .max_memory_size(max_memory_bytes)
        // When a slot is reused, reset only the pages the last instance
        // wrote, as the kernel reports them (Linux 6.7+; elsewhere this
        // falls back to resetting all the memory kept resident).
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// Asks wasmtime for a perf map when [`PERFMAP_VAR`] is `1`.
pub(crate) fn apply_perfmap_var(config: &mut wasmtime::Config) {
    if std::env::var_os(PERFMAP_VAR).is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
}

/// Compiles the component `bytes` (pre-initialised first if `preinit`), or
/// loads its compiled form from `cache_dir`.
///
/// The cache file is named `<stem>[-preinit]-<engine hash>-<input hash>.cwasm`:
/// the hashes cover the component's bytes and the engine's compilation
/// settings, so a rebuilt component or a differently configured engine
/// (fuel) never picks up a stale artifact. Writing the cache removes older
/// files of the same stem and engine.
pub(crate) fn load_component(
    engine: &Engine,
    bytes: &[u8],
    stem: &str,
    cache_dir: Option<&Path>,
    preinit: bool,
) -> anyhow::Result<Component> {
    let compile = |bytes: &[u8]| -> anyhow::Result<Component> {
        if preinit {
            let snapshot = crate::preinit::preinitialize(bytes)?;
            Ok(Component::new(engine, &snapshot)?)
        } else {
            Ok(Component::new(engine, bytes)?)
        }
    };
    let Some(cache_dir) = cache_dir else {
        return compile(bytes);
    };

    let stem = if preinit {
        format!("{stem}-preinit")
    } else {
        stem.to_owned()
    };
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let engine_key = h.finish();
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let prefix = format!("{stem}-{engine_key:016x}-");
    let cached = cache_dir.join(format!("{prefix}{:016x}.cwasm", h.finish()));

    if cached.is_file() {
        // SAFETY: `deserialize_file` trusts the file to be Wasmtime's own
        // output. This one is: we wrote it below, under a name derived from
        // the exact input, into a directory the embedder chose for this
        // cache. Wasmtime still checks its version and engine settings, and
        // any failure falls back to compiling.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(_) => {
                let _ = fs::remove_file(&cached);
            }
        }
    }

    let component = compile(bytes)?;
    // The cache is an optimisation: failing to write it is not an error.
    let _ = write_cache(&component, cache_dir, &prefix, &cached);
    Ok(component)
}

fn write_cache(component: &Component, dir: &Path, prefix: &str, dest: &Path) -> anyhow::Result<()> {
    let serialized = component.serialize()?;
    // Write then rename, so a concurrent process never maps a half-written
    // file.
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, serialized)?;
    fs::rename(&tmp, dest)?;
    // Remove artifacts of older builds of the component for this engine.
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".cwasm") && entry.path() != dest {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}
