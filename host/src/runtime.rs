//! The long-lived part of the embedding: engine, compiled component, linker
//! and pre-instantiation, built once and shared by every request.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy};

use crate::bindings::exports::sqlite_sessions::store::sessions::Config;
use crate::engine::{self, InstanceShape};
use crate::exports::Exports;
use crate::request::{Request, RequestOptions, RequestState, ReuseKey};
use crate::storage::SessionStorage;

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
    /// second process skips Cranelift (and pre-initialisation). `None`
    /// compiles every time; [`RuntimeOptions::cached_beside`] uses the
    /// component's own directory.
    pub cache_dir: Option<PathBuf>,
    /// Count the WASI host calls each request makes, by function (see
    /// [`Request::host_calls`]). On by default: a count is one array
    /// increment next to a host call that costs microseconds (the `bench`
    /// tool measures both). Off links wasmtime-wasi's stock implementation
    /// untouched, and every count reads zero.
    pub count_host_calls: bool,
    /// With `pooling`: how much of an instance's linear memory (and tables)
    /// stays resident when it ends, to be zeroed for the next instance
    /// rather than returned to the OS and faulted in again. Default 2 MiB,
    /// more than one request touches (`bench` reports the peak, and the
    /// cycle's time with `--keep-resident 0`). The price: every pool slot
    /// that has ever been used keeps its memory, so after a burst of N
    /// concurrent requests the process stays larger by N times that peak
    /// (`bench`'s live-instances section shows it). Set 0 to give memory
    /// back after every request.
    pub keep_resident_bytes: usize,
    /// Run the component's `wizer-initialize` export once and use the
    /// snapshot it leaves (see [`crate::preinit`]), so each request's first
    /// session opens with its schema read and its statements compiled. On by
    /// default (`bench` compares); the snapshot is cached with the compiled
    /// component in `cache_dir`.
    pub preinitialize: bool,
    /// How many requests one instance may serve, as `wasmtime serve
    /// --max-instance-reuse-count`. Default 1: a fresh instance per request.
    /// Above 1, a request ended with [`Runtime::finish`] leaves its instance
    /// idle, and the next request made with the same session storage (the
    /// same directory path, or clones of the same buckets) and
    /// the same [`RequestOptions`] (fuel aside; the same [`FakeClock`]
    /// clone, if any) runs in it, until it has served this many. An instance
    /// is never reused after a call trapped or failed (an outer `Err`), nor
    /// while it holds a `store` or `session` resource not dropped; a request
    /// simply dropped takes its instance with it. The guest keeps its
    /// compiled connection and the directory it was shown between requests,
    /// never a session: each request opens its store and loads its session
    /// from the files again (`host-test`'s `reuse` tests check that nothing
    /// else carries over).
    ///
    /// [`FakeClock`]: crate::FakeClock
    pub max_instance_reuse_count: u32,
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
            max_instance_reuse_count: 1,
        }
    }
}

impl RuntimeOptions {
    /// The defaults, with the compiled form of `component` cached in the
    /// directory that holds it.
    pub fn cached_beside(component: impl AsRef<Path>) -> Self {
        Self {
            cache_dir: component.as_ref().parent().map(Path::to_path_buf),
            ..Self::default()
        }
    }
}

/// A compiled, linked and pre-instantiated `sqlite-sessions` component.
///
/// Create one per process and call [`Runtime::request`] for each HTTP
/// request: each gets a fresh Wasmtime store and instance, as a server that
/// isolates requests would do, unless
/// [`RuntimeOptions::max_instance_reuse_count`] lets instances serve several
/// requests (then end each with [`Runtime::finish`]). `Runtime` is
/// `Send + Sync`.
pub struct Runtime {
    engine: Engine,
    pre: InstancePre<RequestState>,
    /// Where the component's exports are, checked once for all requests.
    exports: Exports,
    consume_fuel: bool,
    count_host_calls: bool,
    /// [`RuntimeOptions::max_instance_reuse_count`], at least 1.
    max_reuse: u32,
    /// Instances between two requests, each still allowed another.
    idle: Mutex<Vec<Request>>,
    imports_keyvalue: bool,
}

impl Runtime {
    /// The component in the file at `path`, with default options (so no
    /// compiled-artifact cache).
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        Self::from_file_with(path, RuntimeOptions::default())
    }

    /// The component in the file at `path`, with the given options. The
    /// cached compiled form, if any, is named after the file.
    pub fn from_file_with(path: impl AsRef<Path>, options: RuntimeOptions) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let load = || -> anyhow::Result<Self> {
            let bytes = std::fs::read(path)?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("component");
            Self::build(&bytes, stem, options)
        };
        load().with_context(|| format!("loading component {}", path.display()))
    }

    /// The component `bytes`, with the given options. The cached compiled
    /// form, if any, is named `component-…`.
    pub fn from_bytes_with(bytes: &[u8], options: RuntimeOptions) -> anyhow::Result<Self> {
        Self::build(bytes, "component", options).context("loading the component")
    }

    fn build(bytes: &[u8], stem: &str, options: RuntimeOptions) -> anyhow::Result<Self> {
        let engine = make_engine(&options)?;
        let component = engine::load_component(
            &engine,
            bytes,
            stem,
            options.cache_dir.as_deref(),
            options.preinitialize,
        )?;

        let mut linker = Linker::<RequestState>::new(&engine);
        if options.count_host_calls {
            crate::host_calls::add_to_linker(&mut linker, RequestState::host_calls_view)?;
        } else {
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        }
        // Both builds of the store export the same interfaces; the key-value
        // one also imports wasi:keyvalue, which costs the other nothing.
        crate::keyvalue::add_to_linker(&mut linker, RequestState::keyvalue_view)?;
        // Type-checks every import and export once, here, so that each
        // request only allocates and initializes an instance.
        let pre = linker.instantiate_pre(&component)?;
        let exports = Exports::new(
            &pre,
            RequestState::bare_store(&engine, options.consume_fuel)?,
        )?;

        Ok(Self {
            imports_keyvalue: imports_keyvalue(&engine, &component),
            engine,
            pre,
            exports,
            consume_fuel: options.consume_fuel,
            count_host_calls: options.count_host_calls,
            max_reuse: options.max_instance_reuse_count.max(1),
            idle: Mutex::new(Vec::new()),
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

    /// Whether the component imports `wasi:keyvalue`: the store's key-value
    /// build, whose requests need [`SessionStorage::KeyValue`].
    pub fn imports_keyvalue(&self) -> bool {
        self.imports_keyvalue
    }

    /// An instance with its sessions in `storage` (a session directory,
    /// which the guest sees as `/sessions`, or [`Buckets`](crate::keyvalue::Buckets)),
    /// with default [`RequestOptions`]: a fresh one, or an idle one under
    /// [`RuntimeOptions::max_instance_reuse_count`].
    pub fn request(&self, storage: impl Into<SessionStorage>) -> anyhow::Result<Request> {
        self.request_with(storage, RequestOptions::default())
    }

    /// An instance with its sessions in `storage`: a host directory
    /// preopened at [`RequestOptions::guest_dir`] (default `/sessions`), or
    /// buckets it opens through `wasi:keyvalue`. A fresh one, or an idle one
    /// made for the same storage and options under
    /// [`RuntimeOptions::max_instance_reuse_count`].
    pub fn request_with(
        &self,
        storage: impl Into<SessionStorage>,
        options: RequestOptions,
    ) -> anyhow::Result<Request> {
        if options.fuel.is_some() && !self.consume_fuel {
            bail!("RequestOptions::fuel needs a Runtime built with RuntimeOptions::consume_fuel");
        }
        let fuel = self.consume_fuel.then(|| options.fuel.unwrap_or(u64::MAX));
        let storage = storage.into();
        if self.max_reuse <= 1 {
            return self.fresh(&storage, &options, fuel, None);
        }
        let key = ReuseKey::new(&storage, &options);
        if let Some(mut req) = self.take_idle(&key) {
            req.begin_reuse(fuel)?;
            return Ok(req);
        }
        match self.fresh(&storage, &options, fuel, Some(key.clone())) {
            Ok(req) => Ok(req),
            // The pool may be full of idle instances made for other
            // directories or options: free them and try once more.
            Err(_) if self.drop_idle() > 0 => self.fresh(&storage, &options, fuel, Some(key)),
            Err(e) => Err(e),
        }
    }

    /// Ends a request. Under [`RuntimeOptions::max_instance_reuse_count`]
    /// its instance is kept for a later request if it may serve another
    /// (no call trapped or failed, every `store` and `session` resource
    /// dropped, fewer requests served than the limit); otherwise, and always
    /// with the default of fresh instances, it is dropped.
    pub fn finish(&self, req: Request) {
        if req.reusable(self.max_reuse) {
            self.idle_list().push(req);
        }
    }

    /// How many instances are idle, waiting to be reused.
    pub fn idle_instances(&self) -> usize {
        self.idle_list().len()
    }

    fn fresh(
        &self,
        storage: &SessionStorage,
        options: &RequestOptions,
        fuel: Option<u64>,
        key: Option<ReuseKey>,
    ) -> anyhow::Result<Request> {
        Request::new(
            &self.engine,
            &self.pre,
            self.exports,
            storage,
            options,
            fuel,
            key,
        )
    }

    fn take_idle(&self, key: &ReuseKey) -> Option<Request> {
        let mut idle = self.idle_list();
        let at = idle.iter().rposition(|req| req.is_for(key))?;
        Some(idle.swap_remove(at))
    }

    /// Drops every idle instance; returns how many there were.
    fn drop_idle(&self) -> usize {
        let dropped = std::mem::take(&mut *self.idle_list());
        dropped.len()
    }

    fn idle_list(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        // The list is consistent at every point a holder could panic.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a session holding `entries` (key, JSON text) in a fresh
    /// instance, as one request that stores them would, and returns its id.
    /// The component's typed errors become `anyhow` errors here.
    pub fn create_session(
        &self,
        storage: impl Into<SessionStorage>,
        options: RequestOptions,
        config: &Config,
        entries: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let mut req = self.request_with(storage, options)?;
        let store = req.open_store(config)??;
        let session = req.store(&store).create()?;
        for (key, json) in entries {
            req.session(&session).set_json(key, json)??;
        }
        let id = req.session(&session).id()?;
        req.drop_session(session)?;
        req.drop_store(store)?;
        self.finish(req);
        Ok(id)
    }
}

/// Whether any of `component`'s imports is a `wasi:keyvalue` interface.
fn imports_keyvalue(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, item)| {
            name.starts_with("wasi:keyvalue/")
                && matches!(item.ty, ComponentItem::ComponentInstance(_))
        })
}

fn make_engine(options: &RuntimeOptions) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(options.consume_fuel);
    engine::apply_perfmap_var(&mut config);
    if options.pooling {
        let mut pool = engine::pooling_config(
            options.max_instances,
            InstanceShape::STORE,
            options.max_memory_bytes,
        );
        // When an instance ends, its slot's memory is normally handed back
        // to the OS (madvise), and the next instance in that slot page-faults
        // it in again. Keeping the first megabytes resident (zeroed with
        // memset instead) removes those faults; `bench` shows the difference.
        pool.linear_memory_keep_resident(options.keep_resident_bytes)
            .table_keep_resident(options.keep_resident_bytes.min(1 << 20));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&config)?)
}
