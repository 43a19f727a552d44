//! One request: a fresh Wasmtime store and component instance, with its
//! WASI context, key-value context, host-call counter and memory tracker.
//! The typed calls on its resources are in `calls`.

use wasmtime::component::{Instance, InstancePre, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use crate::clock::FakeClock;
use crate::config::DEFAULT_GUEST_DIR;
use crate::exports::Exports;
use crate::host_calls::{HostCallCounter, HostCallCounts, HostCallEvent, HostCallsView};
use crate::keyvalue::{Buckets, KeyValueCtx, KeyValueView, Traffic};
use crate::memory::{MemoryStats, MemoryTracker};
use crate::storage::SessionStorage;

/// Per-request settings for [`Runtime::request_with`](crate::Runtime::request_with).
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// The guest path at which the host's session directory is preopened.
    /// Default [`DEFAULT_GUEST_DIR`] (`/sessions`). Unused for
    /// [`SessionStorage::KeyValue`], which preopens nothing.
    pub guest_dir: String,
    /// A wall clock to show the guest instead of the host's.
    pub wall_clock: Option<FakeClock>,
    /// The fuel this request may burn before it traps. Needs a runtime made
    /// with [`RuntimeOptions::consume_fuel`](crate::RuntimeOptions::consume_fuel);
    /// there, `None` means unlimited.
    pub fuel: Option<u64>,
    /// Pass the guest's stderr (panic messages, if any) to the host's.
    /// Default `true`: the component writes nothing there unless something
    /// went badly wrong, and then the message is worth seeing.
    pub inherit_stderr: bool,
    /// Let wasmtime-wasi run filesystem calls on the calling thread instead
    /// of handing each to a blocking thread pool. Default `true`: requests
    /// here are synchronous, so the hand-off only adds latency.
    pub allow_blocking_current_thread: bool,
    /// Preopen the session directory read-only (`FsPerms::ReadOnly`), as a
    /// host that mounts it read-only would. Default `false`. Unused for
    /// [`SessionStorage::KeyValue`].
    pub read_only: bool,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            guest_dir: DEFAULT_GUEST_DIR.to_owned(),
            wall_clock: None,
            fuel: None,
            inherit_stderr: true,
            allow_blocking_current_thread: true,
            read_only: false,
        }
    }
}

/// The data of a request's Wasmtime [`Store`]: its WASI context, key-value
/// context, resource table, host-call counter and memory tracker. Opaque; it
/// is public only because [`Request::store_mut`] names it.
pub struct RequestState {
    ctx: WasiCtx,
    table: ResourceTable,
    /// The buckets the guest may open through `wasi:keyvalue` (none for a
    /// directory request), and what its operations cost.
    kv: KeyValueCtx,
    /// Bumped by the counting WASI wrappers; stays zero with
    /// [`RuntimeOptions::count_host_calls`](crate::RuntimeOptions::count_host_calls) off.
    host_calls: HostCallCounter,
    /// The store's resource limiter: records linear-memory growth.
    memory: MemoryTracker,
}

impl RequestState {
    fn new(ctx: WasiCtx, buckets: Buckets) -> Self {
        Self {
            ctx,
            table: ResourceTable::new(),
            kv: KeyValueCtx::new(buckets),
            host_calls: HostCallCounter::default(),
            memory: MemoryTracker::default(),
        }
    }

    /// A store whose guest sees no directory at all, with unlimited fuel if
    /// `engine` meters it: for instances that never run a request (checking
    /// the exports once).
    pub(crate) fn bare_store(engine: &Engine, fuel: bool) -> anyhow::Result<Store<Self>> {
        let mut store = Store::new(
            engine,
            Self::new(WasiCtx::builder().build(), Buckets::default()),
        );
        if fuel {
            store.set_fuel(u64::MAX)?;
        }
        Ok(store)
    }

    /// The getter [`host_calls::add_to_linker`](crate::host_calls::add_to_linker)
    /// is given: disjoint borrows of the fields the counting wrappers need.
    pub(crate) fn host_calls_view(&mut self) -> HostCallsView<'_> {
        HostCallsView {
            ctx: &mut self.ctx,
            table: &mut self.table,
            counter: &mut self.host_calls,
        }
    }

    /// The getter [`keyvalue::add_to_linker`](crate::keyvalue::add_to_linker)
    /// is given.
    pub(crate) fn keyvalue_view(&mut self) -> KeyValueView<'_> {
        KeyValueView::new(&mut self.kv, &mut self.table)
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// One instance of the component, with its own store and WASI context.
///
/// Every call returns `anyhow::Result<T>` where `T` is exactly the WIT
/// function's result: the outer error is a trap (or a misuse such as a
/// dropped handle), the inner `Result<_, Error>` is the component's answer.
///
/// Call [`drop_session`](Request::drop_session) and
/// [`drop_store`](Request::drop_store) when done, as a real host would:
/// dropping the `Request` frees the instance without running the guest's
/// destructors.
pub struct Request {
    store: Store<RequestState>,
    instance: Instance,
    exports: Exports,
    /// What the instance was made for; `None` when the runtime never
    /// reuses instances.
    reuse_key: Option<ReuseKey>,
    /// Requests this instance has served, this one included.
    served: u32,
    /// A call trapped or failed: the instance is never reused.
    failed: bool,
    /// `store` and `session` resources handed out and not yet dropped: the
    /// guest still holds them, so the instance is not reused.
    live_resources: u32,
}

/// Everything an instance's WASI context was built from: a reused instance
/// keeps its context, so it only serves requests that would build the same
/// one.
#[derive(Clone, Debug)]
pub(crate) struct ReuseKey {
    storage: SessionStorage,
    guest_dir: String,
    wall_clock: Option<FakeClock>,
    inherit_stderr: bool,
    allow_blocking_current_thread: bool,
    read_only: bool,
}

impl ReuseKey {
    pub(crate) fn new(storage: &SessionStorage, options: &RequestOptions) -> Self {
        Self {
            storage: storage.clone(),
            guest_dir: options.guest_dir.clone(),
            wall_clock: options.wall_clock.clone(),
            inherit_stderr: options.inherit_stderr,
            allow_blocking_current_thread: options.allow_blocking_current_thread,
            read_only: options.read_only,
        }
    }

    fn matches(&self, other: &Self) -> bool {
        let clocks = match (&self.wall_clock, &other.wall_clock) {
            (None, None) => true,
            (Some(a), Some(b)) => a.is_same_clock(b),
            _ => false,
        };
        clocks
            && self.storage.is_same(&other.storage)
            && self.guest_dir == other.guest_dir
            && self.inherit_stderr == other.inherit_stderr
            && self.allow_blocking_current_thread == other.allow_blocking_current_thread
            && self.read_only == other.read_only
    }
}

impl Request {
    pub(crate) fn new(
        engine: &Engine,
        pre: &InstancePre<RequestState>,
        exports: Exports,
        storage: &SessionStorage,
        options: &RequestOptions,
        fuel: Option<u64>,
        reuse_key: Option<ReuseKey>,
    ) -> anyhow::Result<Self> {
        let perms = if options.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        let ctx = crate::wasi::storage_ctx(storage, &options.guest_dir, perms, |wasi| {
            wasi.allow_blocking_current_thread(options.allow_blocking_current_thread);
            if options.inherit_stderr {
                wasi.inherit_stderr();
            }
            if let Some(clock) = &options.wall_clock {
                wasi.wall_clock(clock.clone());
            }
        })?;

        let buckets = storage.buckets().cloned().unwrap_or_else(Buckets::default);
        let mut store = Store::new(engine, RequestState::new(ctx, buckets));
        store.limiter(|state| &mut state.memory);
        if let Some(fuel) = fuel {
            store.set_fuel(fuel)?;
        }
        let instance = pre.instantiate(&mut store)?;
        Ok(Self {
            store,
            instance,
            exports,
            reuse_key,
            served: 1,
            failed: false,
            live_resources: 0,
        })
    }

    /// Whether this finished request's instance may serve another request,
    /// under a limit of `max_requests` per instance.
    pub(crate) fn reusable(&self, max_requests: u32) -> bool {
        self.reuse_key.is_some()
            && !self.failed
            && self.live_resources == 0
            && self.served < max_requests
    }

    /// Whether the instance was made for requests with `key`.
    pub(crate) fn is_for(&self, key: &ReuseKey) -> bool {
        self.reuse_key.as_ref().is_some_and(|k| k.matches(key))
    }

    /// Readies an idle instance for its next request: a new fuel budget,
    /// and the per-request counters started again.
    pub(crate) fn begin_reuse(&mut self, fuel: Option<u64>) -> anyhow::Result<()> {
        if let Some(fuel) = fuel {
            self.store.set_fuel(fuel)?;
        }
        let host_calls = &mut self.store.data_mut().host_calls;
        host_calls.reset();
        host_calls.set_tracing(false);
        self.served += 1;
        Ok(())
    }

    /// How many requests this request's instance has served, this one
    /// included: 1 for a fresh instance, more for one reused under
    /// [`RuntimeOptions::max_instance_reuse_count`](crate::RuntimeOptions::max_instance_reuse_count).
    pub fn instance_requests(&self) -> u32 {
        self.served
    }

    /// Whether a call of this request trapped or failed (an outer `Err`);
    /// such an instance is never reused.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Records a call's outcome for the reuse policy.
    pub(crate) fn note_call(&mut self, failed: bool) {
        self.failed |= failed;
    }

    /// Records a `store` or `session` resource handed to the caller.
    pub(crate) fn note_resource_created(&mut self) {
        self.live_resources += 1;
    }

    /// Records a `store` or `session` resource dropped.
    pub(crate) fn note_resource_dropped(&mut self) {
        self.live_resources = self.live_resources.saturating_sub(1);
    }

    /// The request's Wasmtime store, e.g. for `get_fuel`. A host that
    /// reuses instances must not call into the instance through it: the
    /// reuse policy only sees the calls made through [`Request`]'s methods.
    pub fn store_mut(&mut self) -> &mut Store<RequestState> {
        &mut self.store
    }

    /// The WASI host calls this request's instance has made since it was
    /// created or since the last [`reset_host_calls`](Request::reset_host_calls),
    /// by function. Empty when the runtime was built with
    /// [`RuntimeOptions::count_host_calls`](crate::RuntimeOptions::count_host_calls)
    /// off.
    pub fn host_calls(&self) -> HostCallCounts {
        self.store.data().host_calls.snapshot()
    }

    /// Sets every host-call counter of this request back to zero.
    pub fn reset_host_calls(&mut self) {
        self.store.data_mut().host_calls.reset();
    }

    /// Starts recording every counted host call in order, with its
    /// arguments and result (clearing an earlier recording), or stops.
    /// Off by default: it allocates a string per argument. Read the calls
    /// with [`take_host_call_trace`](Request::take_host_call_trace).
    pub fn trace_host_calls(&mut self, on: bool) {
        self.store.data_mut().host_calls.set_tracing(on);
    }

    /// The calls recorded since tracing started or since the last take.
    pub fn take_host_call_trace(&mut self) -> Vec<HostCallEvent> {
        self.store.data_mut().host_calls.take_trace()
    }

    /// What this request's `wasi:keyvalue` operations have cost so far:
    /// round trips to the key-value store and connections opened. Zero for
    /// a directory request. Over every request a reused instance has
    /// served, like [`Request::memory_stats`].
    pub fn keyvalue_traffic(&self) -> Traffic {
        self.store.data().kv.traffic()
    }

    /// Linear-memory use of this request's instance so far (over every
    /// request a reused instance has served): the largest
    /// memory's peak size (memories never shrink, so this is also its size
    /// now) and how often memories were created or grown.
    pub fn memory_stats(&self) -> MemoryStats {
        self.store.data().memory.stats()
    }

    /// Shorthand for `memory_stats().peak_bytes`.
    pub fn peak_memory_bytes(&self) -> usize {
        self.memory_stats().peak_bytes
    }

    /// The Wasmtime store, the instance and where its exports are, for the
    /// typed calls.
    pub(crate) fn parts_mut(&mut self) -> (&mut Store<RequestState>, &Instance, &Exports) {
        (&mut self.store, &self.instance, &self.exports)
    }
}
