//! One simulated HTTP request: a fresh Wasmtime store and component
//! instance, and typed access to the `store` and `session` resources.

use std::path::Path;

use anyhow::Context as _;
use wasmtime::component::{ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::exports::sqlite_sessions::store::sessions::{
    BatchError, BatchOp, BatchResult, Config, Error, ExpirySettings, GuestSession, GuestStore,
    PathSegment, SweepProgress,
};
use crate::bindings::{SessionStore, SessionStorePre};
use crate::host_calls::{HostCallCounter, HostCallCounts, HostCallEvent};
use crate::memory::{MemoryStats, MemoryTracker};
use crate::{FakeClock, DEFAULT_GUEST_DIR};

/// Per-request settings for [`Runtime::request_with`](crate::Runtime::request_with).
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// The guest path at which the host's session directory is preopened.
    /// Default [`DEFAULT_GUEST_DIR`] (`/sessions`).
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
    /// host that mounts it read-only would. Default `false`.
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

/// The data of a request's Wasmtime [`Store`]: its WASI context, resource
/// table, host-call counters and memory tracker. Opaque; it is public only
/// because [`Request::store_mut`] names it.
pub struct RequestState {
    ctx: WasiCtx,
    table: ResourceTable,
    /// Bumped by the counting WASI wrappers (`host_calls.rs`); stays zero
    /// with [`RuntimeOptions::count_host_calls`](crate::RuntimeOptions::count_host_calls) off.
    host_calls: HostCallCounter,
    /// The store's resource limiter: records linear-memory growth.
    memory: MemoryTracker,
}

impl RequestState {
    /// Disjoint borrows of the fields the WASI host views need.
    pub(crate) fn parts(&mut self) -> (&mut WasiCtx, &mut ResourceTable, &mut HostCallCounter) {
        (&mut self.ctx, &mut self.table, &mut self.host_calls)
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

/// An owned `store` resource of the request's instance.
///
/// Valid only in the [`Request`] that returned it, until
/// [`Request::drop_store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreHandle(ResourceAny);

/// An owned `session` resource of the request's instance.
///
/// Valid only in the [`Request`] that returned it, until
/// [`Request::drop_session`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionHandle(ResourceAny);

impl StoreHandle {
    /// The underlying Wasmtime resource.
    pub fn resource(self) -> ResourceAny {
        self.0
    }
}

impl SessionHandle {
    /// The underlying Wasmtime resource.
    pub fn resource(self) -> ResourceAny {
        self.0
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
    instance: SessionStore,
}

impl Request {
    pub(crate) fn new(
        engine: &Engine,
        pre: &SessionStorePre<RequestState>,
        session_dir: &Path,
        options: &RequestOptions,
        fuel: Option<u64>,
    ) -> anyhow::Result<Self> {
        let mut wasi = WasiCtxBuilder::new();
        // Must come before `preopened_dir`: each preopen captures this
        // setting when it is added.
        wasi.allow_blocking_current_thread(options.allow_blocking_current_thread);
        if options.inherit_stderr {
            wasi.inherit_stderr();
        }
        if let Some(clock) = &options.wall_clock {
            wasi.wall_clock(clock.clone());
        }
        if let Err(e) = wasi.preopened_dir(
            session_dir,
            &options.guest_dir,
            if options.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            },
        ) {
            return Err(anyhow::Error::from(e))
                .with_context(|| format!("preopening {}", session_dir.display()));
        }

        let state = RequestState {
            ctx: wasi.build(),
            table: ResourceTable::new(),
            host_calls: HostCallCounter::default(),
            memory: MemoryTracker::default(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.memory);
        if let Some(fuel) = fuel {
            store.set_fuel(fuel)?;
        }
        let instance = pre.instantiate(&mut store)?;
        Ok(Self { store, instance })
    }

    /// The request's Wasmtime store, e.g. for `get_fuel`.
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

    /// Linear-memory use of this request's instance so far: the largest
    /// memory's peak size (memories never shrink, so this is also its size
    /// now) and how often memories were created or grown.
    pub fn memory_stats(&self) -> MemoryStats {
        self.store.data().memory.stats()
    }

    /// Shorthand for `memory_stats().peak_bytes`.
    pub fn peak_memory_bytes(&self) -> usize {
        self.memory_stats().peak_bytes
    }

    /// `store.open`.
    pub fn open_store(&mut self, cfg: &Config) -> anyhow::Result<Result<StoreHandle, Error>> {
        let r = self
            .instance
            .sqlite_sessions_store_sessions()
            .store()
            .call_open(&mut self.store, cfg)?;
        Ok(r.map(StoreHandle))
    }

    /// Calls on an open `store`.
    pub fn store(&mut self, handle: &StoreHandle) -> StoreRef<'_> {
        StoreRef {
            req: self,
            handle: *handle,
        }
    }

    /// Calls on a `session`.
    pub fn session(&mut self, handle: &SessionHandle) -> SessionRef<'_> {
        SessionRef {
            req: self,
            handle: *handle,
        }
    }

    /// Drops the `store` resource, running the guest's destructor.
    pub fn drop_store(&mut self, handle: StoreHandle) -> anyhow::Result<()> {
        Ok(handle.0.resource_drop(&mut self.store)?)
    }

    /// Drops the `session` resource, running the guest's destructor.
    pub fn drop_session(&mut self, handle: SessionHandle) -> anyhow::Result<()> {
        Ok(handle.0.resource_drop(&mut self.store)?)
    }

    /// The Wasmtime store and the instance's bindings, for the typed calls
    /// of the component's other interfaces (`admin.rs`).
    pub(crate) fn parts_mut(&mut self) -> (&mut Store<RequestState>, &SessionStore) {
        (&mut self.store, &self.instance)
    }
}

/// The methods of one `store` resource. Made by [`Request::store`].
pub struct StoreRef<'a> {
    req: &'a mut Request,
    handle: StoreHandle,
}

/// Calls the generated `GuestStore::<call>` on this store's resource with
/// the given arguments; evaluates to its `wasmtime::Result`, which callers
/// turn into an `anyhow::Result` with `?`.
macro_rules! store_call {
    ($self:ident, $name:ident $(, $arg:expr)*) => {{
        let req = &mut *$self.req;
        let guest: GuestStore<'_> = req.instance.sqlite_sessions_store_sessions().store();
        guest.$name(&mut req.store, $self.handle.0 $(, $arg)*)
    }};
}

impl StoreRef<'_> {
    /// The handle these calls go to.
    pub fn handle(&self) -> StoreHandle {
        self.handle
    }

    /// `store.load`.
    pub fn load(&mut self, id: &str) -> anyhow::Result<Result<Option<SessionHandle>, Error>> {
        let r = store_call!(self, call_load, id)?;
        Ok(r.map(|s| s.map(SessionHandle)))
    }

    /// `store.create`.
    pub fn create(&mut self) -> anyhow::Result<SessionHandle> {
        Ok(SessionHandle(store_call!(self, call_create)?))
    }

    /// `store.load-or-create`.
    pub fn load_or_create(
        &mut self,
        cookie_value: Option<&str>,
    ) -> anyhow::Result<Result<SessionHandle, Error>> {
        let r = store_call!(self, call_load_or_create, cookie_value)?;
        Ok(r.map(SessionHandle))
    }

    /// `store.cookie-value-from-header`.
    pub fn cookie_value_from_header(
        &mut self,
        cookie_header: &str,
    ) -> anyhow::Result<Option<String>> {
        Ok(store_call!(
            self,
            call_cookie_value_from_header,
            cookie_header
        )?)
    }

    /// `store.destroy-id`.
    pub fn destroy_id(&mut self, id: &str) -> anyhow::Result<Result<bool, Error>> {
        Ok(store_call!(self, call_destroy_id, id)?)
    }

    /// `store.sweep`.
    pub fn sweep(
        &mut self,
        cursor: Option<&str>,
        budget: u32,
    ) -> anyhow::Result<Result<SweepProgress, Error>> {
        Ok(store_call!(self, call_sweep, cursor, budget)?)
    }
}

/// The methods of one `session` resource. Made by [`Request::session`].
pub struct SessionRef<'a> {
    req: &'a mut Request,
    handle: SessionHandle,
}

/// Like `store_call!`, for `GuestSession`, and already converted to
/// `anyhow::Result`.
macro_rules! session_call {
    ($self:ident, $name:ident $(, $arg:expr)*) => {{
        let req = &mut *$self.req;
        let guest: GuestSession<'_> = req.instance.sqlite_sessions_store_sessions().session();
        Ok(guest.$name(&mut req.store, $self.handle.0 $(, $arg)*)?)
    }};
}

/// One wrapper per WIT function of `session`; `$ret` is the WIT result type.
macro_rules! session_methods {
    ($(
        $(#[$doc:meta])*
        fn $name:ident => $call:ident($($arg:ident: $ty:ty),*) -> $ret:ty;
    )*) => {
        impl SessionRef<'_> {
            /// The handle these calls go to.
            pub fn handle(&self) -> SessionHandle {
                self.handle
            }

            $(
                $(#[$doc])*
                pub fn $name(&mut self $(, $arg: $ty)*) -> anyhow::Result<$ret> {
                    session_call!(self, $call $(, $arg)*)
                }
            )*
        }
    };
}

session_methods! {
    /// `session.id`.
    fn id => call_id() -> String;
    /// `session.is-new`.
    fn is_new => call_is_new() -> bool;
    /// `session.regenerate`.
    fn regenerate => call_regenerate() -> Result<(), Error>;
    /// `session.set-expiry`.
    fn set_expiry => call_set_expiry(settings: ExpirySettings) -> Result<(), Error>;
    /// `session.expires-at`.
    fn expires_at => call_expires_at() -> Result<Option<u64>, Error>;
    /// `session.get`.
    fn get => call_get(key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// `session.get-json`.
    fn get_json => call_get_json(key: &str) -> Result<Option<String>, Error>;
    /// `session.set-json`.
    fn set_json => call_set_json(key: &str, json: &str) -> Result<(), Error>;
    /// `session.remove`.
    fn remove => call_remove(key: &str) -> Result<bool, Error>;
    /// `session.take`.
    fn take => call_take(key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// `session.take-json`.
    fn take_json => call_take_json(key: &str) -> Result<Option<String>, Error>;
    /// `session.contains`.
    fn contains => call_contains(key: &str) -> Result<bool, Error>;
    /// `session.keys`.
    fn keys => call_keys() -> Result<Vec<String>, Error>;
    /// `session.len`.
    fn len => call_len() -> Result<u32, Error>;
    /// `session.clear`.
    fn clear => call_clear() -> Result<(), Error>;
    /// `session.destroy`.
    fn destroy => call_destroy() -> Result<(), Error>;
    /// `session.set-in-json`.
    fn set_in_json => call_set_in_json(key: &str, path: &[PathSegment], json: &str) -> Result<(), Error>;
    /// `session.remove-in`.
    fn remove_in => call_remove_in(key: &str, path: &[PathSegment]) -> Result<bool, Error>;
    /// `session.append-json`.
    fn append_json => call_append_json(key: &str, json: &str) -> Result<u32, Error>;
    /// `session.increment`.
    fn increment => call_increment(key: &str, delta: i64) -> Result<i64, Error>;
    /// `session.batch`.
    fn batch => call_batch(ops: &[BatchOp]) -> Result<Vec<BatchResult>, BatchError>;
    /// `session.cookie-value`.
    fn cookie_value => call_cookie_value() -> Option<String>;
    /// `session.set-cookie`.
    fn set_cookie => call_set_cookie() -> Option<String>;
}

/// The WIT functions that take a `value`. bindgen! types a `value` parameter
/// as `&Vec<u8>` (because `value` is a named alias of `list<u8>`), which
/// would force callers to allocate; these re-type the same export with
/// `&[u8]`, which lowers to `list<u8>` identically.
impl SessionRef<'_> {
    /// `session.set`.
    pub fn set(&mut self, key: &str, value: &[u8]) -> anyhow::Result<Result<(), Error>> {
        let req = &mut *self.req;
        let guest = req.instance.sqlite_sessions_store_sessions().session();
        let func = guest
            .func_set()
            .func()
            .typed::<(ResourceAny, &str, &[u8]), (Result<(), Error>,)>(&req.store)?;
        Ok(func.call(&mut req.store, (self.handle.0, key, value))?.0)
    }

    /// `session.set-in`.
    pub fn set_in(
        &mut self,
        key: &str,
        path: &[PathSegment],
        value: &[u8],
    ) -> anyhow::Result<Result<(), Error>> {
        let req = &mut *self.req;
        let guest = req.instance.sqlite_sessions_store_sessions().session();
        let func = guest
            .func_set_in()
            .func()
            .typed::<(ResourceAny, &str, &[PathSegment], &[u8]), (Result<(), Error>,)>(
                &req.store,
            )?;
        Ok(func
            .call(&mut req.store, (self.handle.0, key, path, value))?
            .0)
    }

    /// `session.append`.
    pub fn append(&mut self, key: &str, value: &[u8]) -> anyhow::Result<Result<u32, Error>> {
        let req = &mut *self.req;
        let guest = req.instance.sqlite_sessions_store_sessions().session();
        let func = guest
            .func_append()
            .func()
            .typed::<(ResourceAny, &str, &[u8]), (Result<u32, Error>,)>(&req.store)?;
        Ok(func.call(&mut req.store, (self.handle.0, key, value))?.0)
    }

    /// `session.compare-and-swap`.
    pub fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> anyhow::Result<Result<bool, Error>> {
        let req = &mut *self.req;
        let guest = req.instance.sqlite_sessions_store_sessions().session();
        let func = guest.func_compare_and_swap().func().typed::<(
            ResourceAny,
            &str,
            Option<&[u8]>,
            Option<&[u8]>,
        ), (Result<bool, Error>,)>(
            &req.store
        )?;
        Ok(func
            .call(&mut req.store, (self.handle.0, key, expected, new))?
            .0)
    }
}
