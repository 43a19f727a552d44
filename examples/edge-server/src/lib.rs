//! A `wasi:http` server for the edge demo, or any `wasi:http/proxy` component
//! that keeps its sessions in a preopened directory or in `wasi:keyvalue`
//! buckets: hyper on a loopback address, a fresh pooled instance per
//! request (or one serving up to
//! [`ServerOptions::max_instance_reuse_count`] requests), and in every
//! instance either the host's session directory preopened as `/sessions`
//! or the buckets of a [`Buckets`](sqlite_sessions_host::keyvalue::Buckets)
//! (Redis or Valkey, standalone or cluster) behind `wasi:keyvalue`.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use edge_server::{EdgeServer, ServerOptions};
//! let options = ServerOptions::new("edge_demo.wasm", "./sessions");
//! let running = EdgeServer::new(&options)?.bind(options.addr).await?;
//! println!("{}", running.url());
//! running.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! The key-value demo (`edge_demo_kv.wasm`) takes buckets instead of a
//! directory:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use edge_server::{EdgeServer, ServerOptions};
//! use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions};
//! let buckets = Buckets::builder()
//!     .redis("default", "redis://127.0.0.1:6379/", &RedisOptions::default())?
//!     .build();
//! let options = ServerOptions::new("edge_demo_kv.wasm", buckets);
//! let running = EdgeServer::new(&options)?.bind(options.addr).await?;
//! # running.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! The `wasi:keyvalue` host functions are synchronous: a request's call
//! holds its tokio worker thread for its round trips to Redis (bounded by
//! the timeouts of `RedisOptions`), as a blocking filesystem call would.
//!
//! This is the embedding library's `Runtime` shape for HTTP, and it shares
//! that library's WASI context and pool sizing: compile once, pre-instantiate
//! once (`ProxyPre`), then one cheap instance per request from the pooling
//! allocator. It differs where HTTP needs it: the engine runs guests
//! asynchronously (wasmtime-wasi-http is built on tokio), and the compiled
//! component is cached by Wasmtime's own cache rather than a `.cwasm` file,
//! since the composed component changes with either half.

mod state;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context as _};
use hyper::server::conn::http1;
use sqlite_sessions_host::engine::{pooling_config, InstanceShape};
use sqlite_sessions_host::{SessionStorage, DEFAULT_GUEST_DIR};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use wasmtime::component::{Component, Linker};
use wasmtime::{Cache, CacheConfig, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView as _;

use self::state::{host_response, ServerState};

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The component to serve: it must export `wasi:http/incoming-handler`
    /// and import nothing but WASI and `wasi:keyvalue` (for the demo: the
    /// artifacts crate's `edge_demo()`, or `edge_demo_kv()` over buckets).
    pub component: PathBuf,
    /// Where every instance keeps its sessions: a host directory, which
    /// must exist and which it sees as [`guest_dir`](Self::guest_dir), or
    /// the buckets it may open through `wasi:keyvalue`.
    pub storage: SessionStorage,
    /// Default `/sessions`, where the demo app opens its store (for a
    /// directory).
    pub guest_dir: String,
    /// Where to listen. Default `127.0.0.1:8080`; port 0 picks a free port.
    /// Only loopback addresses are accepted: this is a demo and test server.
    pub addr: SocketAddr,
    /// Requests handled at once, which is also the number of instance slots
    /// the pooling allocator reserves. Further requests wait for a slot.
    /// Default 64.
    pub max_concurrent_requests: u32,
    /// The most linear memory one instance's memories may each grow to.
    /// Default 64 MiB, as for the embedding library's `RuntimeOptions`.
    pub max_memory_bytes: usize,
    /// How long the guest may take to produce a response's status and
    /// headers before the client gets a 504 and the instance is dropped.
    /// Default 30 s.
    pub request_timeout: Duration,
    /// Where Wasmtime keeps compiled code between runs; `None` compiles at
    /// every start. [`ServerOptions::new`] puts it next to the component.
    pub cache_dir: Option<PathBuf>,
    /// Pass the guest's stderr to the host's. Default `true`: the demo app
    /// logs store failures there.
    pub inherit_stderr: bool,
    /// Environment variables every instance sees (and no others). The demo
    /// app takes its multi-host store settings from there: see
    /// `examples/edge-app`. Default none.
    pub env: Vec<(String, String)>,
    /// How much of an instance's linear memories (and tables) stays
    /// resident in its pool slot when it ends, to be reset in place for the
    /// next instance rather than handed back to the OS and faulted in
    /// again. Default 2 MiB, as for the embedding library's
    /// `RuntimeOptions::keep_resident_bytes`; every slot that has served a
    /// request keeps up to that much per memory.
    pub keep_resident_bytes: usize,
    /// How many requests one instance may serve, as `wasmtime serve
    /// --max-instance-reuse-count`. Default 1: a fresh instance per request.
    /// Above 1, an instance whose handler answered with a response and
    /// returned without a trap or error waits, holding its pool slot, for
    /// the next request to the same session directory, until it has served
    /// this many; one that trapped, failed, timed out or gave no response
    /// is dropped. The guest's memory (its globals and
    /// caches) carries over between the requests it serves, so only a
    /// component written for that should be served this way; the store
    /// component opens its store and loads each session from the files
    /// again in every request.
    pub max_instance_reuse_count: u32,
}

impl ServerOptions {
    /// Defaults for serving `component` with its sessions in `storage`: a
    /// directory (seen as `/sessions`) or [`Buckets`](sqlite_sessions_host::keyvalue::Buckets).
    pub fn new(component: impl Into<PathBuf>, storage: impl Into<SessionStorage>) -> Self {
        let component = component.into();
        let cache_dir = component.parent().map(|dir| dir.join("wasmtime-cache"));
        Self {
            component,
            storage: storage.into(),
            guest_dir: DEFAULT_GUEST_DIR.to_owned(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            max_concurrent_requests: 64,
            max_memory_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            cache_dir,
            inherit_stderr: true,
            env: Vec::new(),
            keep_resident_bytes: 2 << 20,
            max_instance_reuse_count: 1,
        }
    }
}

/// A compiled, linked and pre-instantiated `wasi:http` component, ready to
/// serve. Cheap to clone.
#[derive(Clone)]
pub struct EdgeServer(Arc<Inner>);

struct Inner {
    pre: ProxyPre<ServerState>,
    storage: SessionStorage,
    guest_dir: String,
    /// One permit per pooled instance slot.
    slots: Arc<Semaphore>,
    request_timeout: Duration,
    inherit_stderr: bool,
    env: Vec<(String, String)>,
    /// [`ServerOptions::max_instance_reuse_count`], at least 1.
    max_reuse: u32,
    /// Instances between two requests, shared by every server of one pool.
    idle: Arc<Mutex<Vec<Idle>>>,
}

/// An instance waiting for its next request.
struct Idle {
    store: Store<ServerState>,
    proxy: Proxy,
    /// What the instance's context was made with: it serves only requests
    /// to a server with the same.
    storage: SessionStorage,
    env: Vec<(String, String)>,
    /// Requests served so far.
    served: u32,
    slot: OwnedSemaphorePermit,
}

/// An instance for a request: one that served earlier requests, or a slot
/// to instantiate in.
enum Instance {
    Reused(Box<Idle>),
    Fresh(Store<ServerState>, OwnedSemaphorePermit),
}

impl EdgeServer {
    /// Compiles (or loads from the cache) and links the component.
    pub fn new(options: &ServerOptions) -> anyhow::Result<Self> {
        check_storage(&options.storage)?;
        let engine = make_engine(options)?;
        let component = Component::from_file(&engine, &options.component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading component {}", options.component.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        sqlite_sessions_host::keyvalue::add_to_linker(&mut linker, ServerState::keyvalue)?;
        // Type-checks every import and the handler export once, here.
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} is not a wasi:http/proxy component whose imports are all WASI \
                     or wasi:keyvalue",
                    options.component.display()
                )
            })?;
        Ok(Self(Arc::new(Inner {
            pre,
            storage: options.storage.clone(),
            guest_dir: options.guest_dir.clone(),
            slots: Arc::new(Semaphore::new(options.max_concurrent_requests as usize)),
            request_timeout: options.request_timeout,
            inherit_stderr: options.inherit_stderr,
            env: options.env.clone(),
            max_reuse: options.max_instance_reuse_count.max(1),
            idle: Arc::default(),
        })))
    }

    /// How many instances wait to be reused, for every session directory.
    pub fn idle_instances(&self) -> usize {
        self.idle_list().len()
    }

    fn idle_list(&self) -> MutexGuard<'_, Vec<Idle>> {
        // The list is consistent at every point a holder could panic.
        self.0.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle instance made for this server's storage and environment, or
    /// a free slot and a fresh store.
    async fn instance(&self) -> anyhow::Result<Instance> {
        let inner = &self.0;
        if inner.max_reuse > 1 {
            let mut idle = self.idle_list();
            if let Some(at) = idle
                .iter()
                .rposition(|i| i.storage.is_same(&inner.storage) && i.env == inner.env)
            {
                return Ok(Instance::Reused(Box::new(idle.swap_remove(at))));
            }
        }
        let slot = match inner.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Idle instances made for other storage may hold every slot.
                drop(self.idle_list().pop());
                // Wait for a free slot instead of failing instantiation on a
                // full pool.
                inner.slots.clone().acquire_owned().await?
            }
        };
        let state = ServerState::new(
            &inner.storage,
            &inner.guest_dir,
            inner.inherit_stderr,
            &inner.env,
        )?;
        Ok(Instance::Fresh(Store::new(inner.pre.engine(), state), slot))
    }

    /// Listens on `addr` (loopback only) and serves in a background task
    /// until [`RunningServer::stop`]. Needs a multi-threaded tokio runtime.
    pub async fn bind(&self, addr: SocketAddr) -> anyhow::Result<RunningServer> {
        if !addr.ip().is_loopback() {
            bail!(
                "refusing to listen on {addr}: the demo server listens on loopback addresses only"
            );
        }
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(self.clone(), listener, stopped));
        Ok(RunningServer {
            local_addr,
            stop,
            task,
        })
    }

    /// Serves one request in a fresh instance. Never fails: a guest that
    /// traps, gives up or is too slow becomes a 500 or 504 from the host.
    pub async fn handle<B>(&self, req: hyper::Request<B>) -> hyper::Response<HyperOutgoingBody>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        match self.try_handle(req).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!("edge-server: {e:#}");
                host_response(500, "Internal server error.")
            }
        }
    }

    async fn try_handle<B>(
        &self,
        req: hyper::Request<B>,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let inner = &self.0;
        let (mut store, slot, reused) = match self.instance().await? {
            Instance::Reused(idle) => {
                let Idle {
                    store,
                    proxy,
                    served,
                    slot,
                    ..
                } = *idle;
                (store, slot, Some((proxy, served)))
            }
            Instance::Fresh(store, slot) => (store, slot, None),
        };
        let (sender, receiver) = oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = inner.pre.clone();
        let server = self.clone();
        // Whether the guest answered with a response: one that returned
        // without one, or with an error code, is not reused either.
        let (verdict, answered) = oneshot::channel::<bool>();

        // The guest runs in its own task: it may go on writing the body
        // after it has handed over the status and headers.
        let guest = tokio::spawn(async move {
            let result = async {
                let (proxy, served) = match reused {
                    Some(reused) => reused,
                    None => (pre.instantiate_async(&mut store).await?, 0),
                };
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await?;
                Ok::<_, wasmtime::Error>((proxy, served + 1))
            }
            .await;
            match result {
                Ok((proxy, served)) => {
                    // The slot stays with the instance, idle or dropped.
                    if served < server.0.max_reuse && answered.await == Ok(true) {
                        server.idle_list().push(Idle {
                            store,
                            proxy,
                            storage: server.0.storage.clone(),
                            env: server.0.env.clone(),
                            served,
                            slot,
                        });
                    }
                    true
                }
                Err(e) => {
                    eprintln!("edge-server: the guest failed: {e:?}");
                    false
                }
            }
        });

        let answer = tokio::time::timeout(inner.request_timeout, receiver).await;
        // Sent before the guest task is awaited below, which may wait for it.
        let _ = verdict.send(matches!(answer, Ok(Ok(Ok(_)))));
        match answer {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(code))) => bail!("the guest answered with an error: {code:?}"),
            // The guest dropped its response-outparam without setting it.
            Ok(Err(_)) => match guest.await {
                Ok(true) => bail!("the guest returned without setting a response"),
                Ok(false) => bail!("the guest failed before responding (logged above)"),
                Err(e) => Err(e).context("the guest task panicked"),
            },
            Err(_elapsed) => {
                guest.abort();
                eprintln!(
                    "edge-server: no response after {:?}; instance dropped",
                    inner.request_timeout
                );
                Ok(host_response(504, "The app took too long to answer."))
            }
        }
    }

    /// The same compiled component and instance pool, serving another
    /// session directory or other buckets (tests give each case its own).
    pub fn with_storage(&self, storage: impl Into<SessionStorage>) -> anyhow::Result<Self> {
        let storage = storage.into();
        check_storage(&storage)?;
        let inner = &self.0;
        Ok(Self(Arc::new(Inner {
            pre: inner.pre.clone(),
            storage,
            guest_dir: inner.guest_dir.clone(),
            // Shared: the pool's slots belong to the engine, not to one server.
            slots: inner.slots.clone(),
            request_timeout: inner.request_timeout,
            inherit_stderr: inner.inherit_stderr,
            env: inner.env.clone(),
            max_reuse: inner.max_reuse,
            // Shared with the slots: an idle instance holds one.
            idle: inner.idle.clone(),
        })))
    }

    /// The same server, with `env` as every instance's environment
    /// (see [`ServerOptions::env`]).
    pub fn with_env(&self, env: &[(&str, &str)]) -> Self {
        let inner = &self.0;
        Self(Arc::new(Inner {
            pre: inner.pre.clone(),
            storage: inner.storage.clone(),
            guest_dir: inner.guest_dir.clone(),
            slots: inner.slots.clone(),
            request_timeout: inner.request_timeout,
            inherit_stderr: inner.inherit_stderr,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            max_reuse: inner.max_reuse,
            idle: inner.idle.clone(),
        }))
    }

    /// Where each instance keeps its sessions.
    pub fn storage(&self) -> &SessionStorage {
        &self.0.storage
    }
}

fn check_storage(storage: &SessionStorage) -> anyhow::Result<()> {
    match storage.directory() {
        Some(dir) => check_session_dir(dir),
        // Nothing connects before the first request: a server that is down
        // shows up there, as the app's error page.
        None => Ok(()),
    }
}

fn check_session_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!(
            "the session directory {} does not exist or is not a directory",
            dir.display()
        );
    }
    Ok(())
}

/// A server accepting connections in the background.
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<addr>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr)
    }

    /// Stops accepting and drops every open connection.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn accept_loop(
    server: EdgeServer,
    listener: TcpListener,
    mut stopped: oneshot::Receiver<()>,
) {
    // Dropping the set (when the loop ends) aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Typically out of file descriptors: back off, keep serving.
                    eprintln!("edge-server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // Responses the guest streams in pieces go out as they are written.
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("edge-server: TCP_NODELAY: {e}");
        }
        let server = server.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                // Clients hanging up mid-request are routine, not failures.
                if !e.is_incomplete_message() {
                    eprintln!("edge-server: connection error: {e}");
                }
            }
        });
    }
}

/// The composed demo: the app and the store, each with a main module,
/// wit-component's shim and fixup modules and instances of host imports
/// (generous counters cost nothing), a linear memory and a few tables.
const APP_AND_STORE: InstanceShape = InstanceShape {
    core_instances: 32,
    memories: 2,
    tables: 4,
};

fn make_engine(options: &ServerOptions) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    let n = options.max_concurrent_requests.max(1);
    let mut pool = pooling_config(n, APP_AND_STORE, options.max_memory_bytes);
    // One fiber stack per request running at once.
    pool.total_stacks(n)
        .linear_memory_keep_resident(options.keep_resident_bytes)
        .table_keep_resident(options.keep_resident_bytes.min(1 << 20));
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if let Some(dir) = &options.cache_dir {
        // Wasmtime's cache wants an absolute directory, and a relative
        // component path gives a relative one.
        let dir = std::path::absolute(dir)
            .with_context(|| format!("resolving the cache directory {}", dir.display()))?;
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(Cache::new(cache)?));
    }
    Ok(Engine::new(&config)?)
}
