//! The storage a test runs the store on: a session directory (the store's
//! directory build), or a `wasi:keyvalue` bucket in a real Redis, standalone
//! or a three-master cluster (its key-value build).
//!
//! The Redis servers are shared by every test of a process: started on
//! first use (on loopback, without persistence) and stopped when the
//! process exits, also after failed tests. Each [`Env`](crate::fixtures::Env)
//! keeps its keys under a prefix of its own, so tests never see each
//! other's sessions. A test that stops or restarts its server starts a
//! private one (`test_servers::RedisServer`) instead.

use std::any::Any;
use std::sync::{Mutex, OnceLock};

use test_servers::{RedisCluster, RedisServer};

/// Where a test keeps its sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A temporary session directory (`sqlite_sessions.wasm`).
    Dir,
    /// A bucket in one redis-server (`sqlite_sessions_kv.wasm`).
    Redis,
    /// A bucket in a three-master Redis cluster (`sqlite_sessions_kv.wasm`).
    Cluster,
}

impl Backend {
    /// Every backend, in the order tests report them.
    pub const ALL: [Backend; 3] = [Backend::Dir, Backend::Redis, Backend::Cluster];

    /// Whether it runs the key-value build of the store.
    pub fn is_kv(self) -> bool {
        self != Backend::Dir
    }

    /// A short name for messages: `dir`, `redis`, `cluster`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Dir => "dir",
            Backend::Redis => "redis",
            Backend::Cluster => "cluster",
        }
    }

    /// The URLs of the shared server(s) behind this backend (one for
    /// `Redis`, every node for `Cluster`, none for `Dir`), starting them on
    /// first use.
    ///
    /// # Panics
    /// If the server cannot be started (the message says why, e.g. that
    /// redis-server is not installed): a test that needs it fails.
    pub fn server_urls(self) -> Vec<String> {
        match self {
            Backend::Dir => Vec::new(),
            Backend::Redis => vec![shared_redis().to_owned()],
            Backend::Cluster => shared_cluster().to_vec(),
        }
    }
}

/// Defines one `#[test]` per backend for each named function, which takes a
/// [`Backend`]: `on_every_backend!(a, b)` makes the tests `a::dir`,
/// `a::redis`, `a::cluster`, `b::dir`, ...
#[macro_export]
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn dir() {
                    super::$case($crate::Backend::Dir)
                }
                #[test]
                fn redis() {
                    super::$case($crate::Backend::Redis)
                }
                #[test]
                fn cluster() {
                    super::$case($crate::Backend::Cluster)
                }
            }
        )*
    };
}

/// [`on_every_backend!`] for what only the key-value build has: the tests
/// `a::redis`, `a::cluster`, ...
#[macro_export]
macro_rules! on_kv_backends {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn redis() {
                    super::$case($crate::Backend::Redis)
                }
                #[test]
                fn cluster() {
                    super::$case($crate::Backend::Cluster)
                }
            }
        )*
    };
}

/// The servers to stop when the process exits.
static RUNNING: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());

/// Stops every shared server. Runs from `atexit`, after `main` returns
/// (the test harness exits through `exit` whether tests passed or not).
extern "C" fn stop_shared_servers() {
    let servers = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    // Each handle kills its process and removes its directory on drop.
    drop(servers);
}

fn keep_until_exit(server: Box<dyn Any + Send>) {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: registers a plain `extern "C" fn` with no arguments, as
        // atexit requires; it only takes the handles out of a mutex and
        // drops them.
        let rc = unsafe { libc::atexit(stop_shared_servers) };
        assert_eq!(
            rc, 0,
            "atexit failed: shared Redis servers could not be registered"
        );
    });
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(server);
}

/// The URL of the process's shared redis-server.
pub fn shared_redis() -> &'static str {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(|| {
        let server = RedisServer::start().map_err(|e| e.to_string())?;
        let url = server.url();
        keep_until_exit(Box::new(server));
        Ok(url)
    })
    .as_deref()
    .unwrap_or_else(|e| panic!("starting the shared redis-server: {e}"))
}

/// The node URLs of the process's shared Redis cluster.
pub fn shared_cluster() -> &'static [String] {
    static URLS: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    URLS.get_or_init(|| {
        let cluster = RedisCluster::start().map_err(|e| e.to_string())?;
        let urls = cluster.urls();
        keep_until_exit(Box::new(cluster));
        Ok(urls)
    })
    .as_deref()
    .unwrap_or_else(|e| panic!("starting the shared Redis cluster: {e}"))
}
