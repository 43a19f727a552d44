//! The long-lived part of the embedding: engine, compiled component, linker
//! and pre-instantiation, built once and shared by every request.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context as _};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::SessionStorePre;
use crate::request::{Request, RequestOptions, RequestState};

/// Engine-level settings: they change how the component is compiled or how
/// instances are allocated, so they are fixed for a [`Runtime`]'s lifetime.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Compile with fuel metering, so requests can carry a fuel budget
    /// ([`RequestOptions::fuel`]). Off by default: metering slows the guest
    /// down and changes the compiled code.
    pub consume_fuel: bool,
    /// Allocate instances from a pre-reserved pool (Wasmtime's pooling
    /// allocator) instead of mapping memory per instance. On by default: it
    /// is what a server embedding would use, and it makes a fresh instance
    /// per request cheap.
    pub pooling: bool,
    /// With `pooling`: how many instances (so requests) may be alive at once.
    /// Default 1100, so a test can hold 1,000 live requests with room to spare.
    pub max_instances: u32,
    /// The most linear memory one instance may grow to. Default 64 MiB:
    /// SQLite's page cache plus a 16 MiB session (`max-session-bytes`' default)
    /// and its CBOR/JSON copies fit, while a runaway guest fails its
    /// `memory.grow` long before it hurts the host.
    pub max_memory_bytes: usize,
    /// Where to keep the compiled (`.cwasm`) form of the component, so a
    /// second process skips Cranelift. `None` compiles every time.
    /// [`Runtime::new`] defaults it to the directory of the store component
    /// the artifacts crate built, inside cargo's target directory.
    pub cache_dir: Option<PathBuf>,
    /// Count the WASI host calls each request makes, by function (see
    /// [`Request::host_calls`](crate::Request::host_calls)). On by default:
    /// a count is one array increment next to a host call that costs
    /// microseconds (the bench binary measures both). Off links
    /// wasmtime-wasi's stock implementation untouched, and every count
    /// reads zero.
    pub count_host_calls: bool,
    /// With `pooling`: how much of an instance's linear memory (and tables)
    /// stays resident when it ends, to be zeroed for the next instance
    /// rather than returned to the OS and faulted in again. Default 2 MiB,
    /// more than one request touches (640 KiB; `bench` reports it), which
    /// made the session cycle about 1.6× faster than 0 (`bench
    /// --keep-resident 0`). The price: every pool slot that has ever been
    /// used keeps its memory, so after a burst of N concurrent requests the
    /// process stays about N × 640 KiB larger (`bench`'s live-instances
    /// section shows it). Set 0 to give memory back after every request.
    pub keep_resident_bytes: usize,
    /// Run the component's `wizer-initialize` export once and use the
    /// snapshot it leaves (see [`crate::preinit`]), so each request's first
    /// session opens with its schema read and its statements compiled. On by
    /// default (`bench` compares); the snapshot is cached with the compiled
    /// component in `cache_dir`.
    pub preinitialize: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            consume_fuel: false,
            pooling: true,
            max_instances: 1100,
            max_memory_bytes: 64 << 20,
            cache_dir: None,
            count_host_calls: true,
            keep_resident_bytes: 2 << 20,
            preinitialize: true,
        }
    }
}

/// A compiled, linked and pre-instantiated `sqlite-sessions` component.
///
/// Create one per process (see [`Runtime::shared`]) and call
/// [`Runtime::request`] for each simulated HTTP request: each gets a fresh
/// Wasmtime store and instance, as a server that isolates requests would do.
/// `Runtime` is `Send + Sync`.
pub struct Runtime {
    engine: Engine,
    pre: SessionStorePre<RequestState>,
    consume_fuel: bool,
    count_host_calls: bool,
}

impl Runtime {
    /// The store component the artifacts crate built, with default options
    /// and the compiled-artifact cache next to it in the target directory.
    pub fn new() -> anyhow::Result<Self> {
        let path = default_component_path()?;
        let options = RuntimeOptions {
            cache_dir: path.parent().map(Path::to_path_buf),
            ..RuntimeOptions::default()
        };
        Self::from_file_with(path, options)
    }

    /// [`Runtime::new`] with other options; `cache_dir` is used as given.
    pub fn with_options(options: RuntimeOptions) -> anyhow::Result<Self> {
        Self::from_file_with(default_component_path()?, options)
    }

    /// A component from any file, with default options (no artifact cache).
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        Self::from_file_with(path, RuntimeOptions::default())
    }

    /// A component from any file, with the given options.
    pub fn from_file_with(path: impl AsRef<Path>, options: RuntimeOptions) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let engine = make_engine(&options)?;
        let component = load_component(
            &engine,
            path,
            options.cache_dir.as_deref(),
            options.preinitialize,
        )
        .with_context(|| format!("loading component {}", path.display()))?;

        let mut linker = Linker::<RequestState>::new(&engine);
        if options.count_host_calls {
            crate::host_calls::add_to_linker(&mut linker)?;
        } else {
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        }
        // Type-checks every import and export once, here, so that each
        // request only allocates and initializes an instance.
        let pre = SessionStorePre::new(linker.instantiate_pre(&component)?)?;

        Ok(Self {
            engine,
            pre,
            consume_fuel: options.consume_fuel,
            count_host_calls: options.count_host_calls,
        })
    }

    /// A process-wide runtime from [`Runtime::new`], created on first use.
    /// Meant for tests, which would otherwise each pay for loading the
    /// component.
    ///
    /// # Panics
    /// If [`Runtime::new`] fails.
    pub fn shared() -> &'static Runtime {
        static SHARED: OnceLock<Runtime> = OnceLock::new();
        SHARED.get_or_init(|| {
            Runtime::new().unwrap_or_else(|e| panic!("creating the shared Runtime: {e:?}"))
        })
    }

    /// The Wasmtime engine, for embedders that want to measure or extend.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether requests are fuel-metered ([`RuntimeOptions::consume_fuel`]).
    pub fn consumes_fuel(&self) -> bool {
        self.consume_fuel
    }

    /// Whether requests count their WASI host calls
    /// ([`RuntimeOptions::count_host_calls`]).
    pub fn counts_host_calls(&self) -> bool {
        self.count_host_calls
    }

    /// A fresh instance whose `/sessions` is the host's `session_dir`, with
    /// default [`RequestOptions`].
    pub fn request(&self, session_dir: &Path) -> anyhow::Result<Request> {
        self.request_with(session_dir, RequestOptions::default())
    }

    /// A fresh instance whose [`RequestOptions::guest_dir`] (default
    /// `/sessions`) is the host's `session_dir`.
    pub fn request_with(
        &self,
        session_dir: &Path,
        options: RequestOptions,
    ) -> anyhow::Result<Request> {
        if options.fuel.is_some() && !self.consume_fuel {
            bail!("RequestOptions::fuel needs a Runtime built with RuntimeOptions::consume_fuel");
        }
        let fuel = self.consume_fuel.then(|| options.fuel.unwrap_or(u64::MAX));
        Request::new(&self.engine, &self.pre, session_dir, &options, fuel)
    }
}

/// The store component the artifacts crate built, or an error saying why
/// there is none (what is missing to build it).
pub fn default_component_path() -> anyhow::Result<PathBuf> {
    Ok(sqlite_sessions_artifacts::store()?.to_path_buf())
}

/// Set to `1` to write `/tmp/perf-<pid>.map`, so that `perf record` /
/// `perf report` name the component's functions (how the bench's hot spots
/// were found).
pub const PERFMAP_VAR: &str = "SQLITE_SESSIONS_PERFMAP";

fn make_engine(options: &RuntimeOptions) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(options.consume_fuel);
    if std::env::var_os(PERFMAP_VAR).is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if options.pooling {
        let n = options.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            // A Rust component is several core instances (the main module,
            // wit-component's shim and fixup modules, and instances made of
            // host imports). These are only counters, so be generous.
            .total_core_instances(n.saturating_mul(16))
            // One linear memory per instance (the main module's) ...
            .total_memories(n)
            // ... and up to two tables: the main module's and the shim's.
            .total_tables(n.saturating_mul(2))
            // Each memory slot still reserves `Config::memory_reservation`
            // (4 GiB by default) of address space, so bounds checks stay
            // elided; this only caps how far `memory.grow` may go.
            .max_memory_size(options.max_memory_bytes)
            // When an instance ends, its slot's memory is normally handed
            // back to the OS (madvise), and the next instance in that slot
            // page-faults it in again: hundreds of faults per request for a
            // component that touches about 1.4 MiB. Keeping the first
            // megabytes resident (zeroed with memset instead) removes them;
            // `bench` shows the difference.
            .linear_memory_keep_resident(options.keep_resident_bytes)
            .table_keep_resident(options.keep_resident_bytes.min(1 << 20));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&config)?)
}

/// Compiles the component (pre-initialised first if `preinit`), or loads
/// its compiled form from `cache_dir`.
///
/// The cache file name hashes the component's bytes, the engine's
/// compilation settings and `preinit`, so a rebuilt component or a
/// differently configured engine (fuel) never picks up a stale artifact.
fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
    preinit: bool,
) -> anyhow::Result<Component> {
    let bytes = fs::read(path)?;
    let compile = |bytes: &[u8]| -> anyhow::Result<Component> {
        if preinit {
            let snapshot = crate::preinit::preinitialize(bytes)?;
            Ok(Component::new(engine, &snapshot)?)
        } else {
            Ok(Component::new(engine, bytes)?)
        }
    };
    let Some(cache_dir) = cache_dir else {
        return compile(&bytes);
    };

    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("component");
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
        // output. This one is: we wrote it below, into cargo's target
        // directory, under a name derived from the exact input. Wasmtime
        // still checks its version and engine settings, and any failure
        // falls back to compiling.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(_) => {
                let _ = fs::remove_file(&cached);
            }
        }
    }

    let component = compile(&bytes)?;
    // The cache is an optimization: failing to write it is not an error.
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
