//! End-to-end tests of the edge demo: the composed app + store component
//! served by the `edge-server` example on 127.0.0.1 (an ephemeral port),
//! driven by a real HTTP client (reqwest) with a cookie jar; with its
//! sessions in a directory, and (the key-value build) in a real Redis,
//! standalone and cluster, including two servers sharing one Redis. The
//! flows themselves are in `host_test::http_flow`, which
//! `wasmtime_serve.rs` runs under the real `wasmtime serve`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::OnceLock;

use edge_server::{EdgeServer, RunningServer, ServerOptions};
use host_test::fixtures::{buckets_on, Env};
use host_test::http_flow::{
    self as flow, bare_client, cookie_value, get, get_with_cookie, run, Sessions, Site, BURST,
};
use host_test::Backend;
use reqwest::header::COOKIE;
use reqwest::StatusCode;
use sqlite_sessions_host::keyvalue::Buckets;

/// The component compiled once per test binary; each test serves its own
/// session directory with it.
fn compiled() -> &'static EdgeServer {
    static SERVER: OnceLock<EdgeServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir();
        let composed = sqlite_sessions_artifacts::edge_demo().unwrap_or_else(|e| panic!("{e}"));
        let options = ServerOptions::new(composed, dir);
        EdgeServer::new(&options).expect("compiling the composed edge demo")
    })
}

/// The demo with each instance serving many requests
/// (`--max-instance-reuse-count`).
fn compiled_reusing() -> &'static EdgeServer {
    static SERVER: OnceLock<EdgeServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let composed = sqlite_sessions_artifacts::edge_demo().unwrap_or_else(|e| panic!("{e}"));
        let mut options = ServerOptions::new(composed, std::env::temp_dir());
        options.max_instance_reuse_count = 1000;
        EdgeServer::new(&options).expect("compiling the composed edge demo")
    })
}

/// The key-value demo (`edge_demo_kv.wasm`), compiled once; each test
/// serves its own bucket with it.
fn compiled_kv() -> &'static EdgeServer {
    static SERVER: OnceLock<EdgeServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let composed = sqlite_sessions_artifacts::edge_demo_kv().unwrap_or_else(|e| panic!("{e}"));
        let options = ServerOptions::new(composed, Buckets::default());
        EdgeServer::new(&options).expect("compiling the composed key-value edge demo")
    })
}

/// The same demo with the store pre-initialised first, composed the way
/// the README tells `wasmtime serve` and Spin users to: the store through
/// `sqlite_sessions_host::preinit` (what `make preinit` runs), then `wac
/// plug` (`$WAC` or `wac` on `PATH`, as the artifacts crate uses).
fn compiled_preinit() -> &'static EdgeServer {
    static SERVER: OnceLock<EdgeServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        preinit_composition(
            host_test::component(),
            sqlite_sessions_artifacts::edge_app().unwrap_or_else(|e| panic!("{e}")),
            std::env::temp_dir().into(),
        )
    })
}

/// [`compiled_preinit`] for the key-value build: its store has
/// `wasi:keyvalue` imports, which the pre-initialiser links as traps.
fn compiled_kv_preinit() -> &'static EdgeServer {
    static SERVER: OnceLock<EdgeServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        preinit_composition(
            host_test::component_kv(),
            sqlite_sessions_artifacts::edge_app_kv().unwrap_or_else(|e| panic!("{e}")),
            Buckets::default().into(),
        )
    })
}

fn preinit_composition(
    store: &Path,
    app: &Path,
    storage: sqlite_sessions_host::SessionStorage,
) -> EdgeServer {
    let work = tempfile::tempdir().unwrap();
    let store = std::fs::read(store).unwrap();
    let store_pre = work.path().join("sqlite_sessions.preinit.wasm");
    let snapshot = sqlite_sessions_host::preinit::preinitialize(&store).expect("pre-initialising");
    assert_ne!(snapshot, store, "the snapshot carries the prepared memory");
    std::fs::write(&store_pre, snapshot).unwrap();
    let composed = work.path().join("edge_demo.preinit.wasm");
    let wac = std::env::var_os("WAC").unwrap_or_else(|| "wac".into());
    let status = std::process::Command::new(wac)
        .arg("plug")
        .arg(app)
        .arg("--plug")
        .arg(&store_pre)
        .arg("-o")
        .arg(&composed)
        .status()
        .expect("running wac");
    assert!(status.success(), "wac plug failed: {status}");
    let mut options = ServerOptions::new(&composed, storage);
    // Its directory goes away below: no compile cache beside it.
    options.cache_dir = None;
    EdgeServer::new(&options).expect("compiling the pre-initialised composition")
}

/// One test's in-process server and the site it serves.
struct Served {
    site: Site,
    server: RunningServer,
}

async fn listen(server: EdgeServer) -> RunningServer {
    server
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap()
}

impl Served {
    async fn start() -> Self {
        Served::start_with(compiled()).await
    }

    async fn start_with(compiled: &EdgeServer) -> Self {
        let sessions = Sessions::dir();
        let server = listen(compiled.with_storage(sessions.sessions_dir()).unwrap()).await;
        Served {
            site: Site::new(&server.url(), sessions),
            server,
        }
    }

    /// The key-value demo (or `compiled`, another build of it) over a fresh
    /// bucket on `backend`.
    async fn start_kv(backend: Backend, compiled: &EdgeServer) -> Self {
        let env = Env::on(backend);
        let server = listen(compiled.with_storage(env.storage()).unwrap()).await;
        Served {
            site: Site::new(&server.url(), Sessions::Bucket(Box::new(env))),
            server,
        }
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

#[test]
fn counter_login_flash_and_logout_through_a_cookie_jar() {
    run(async {
        let served = Served::start().await;
        flow::counter_login_flash_and_logout(&served.site).await;
        served.stop().await;
    });
}

#[test]
fn the_same_flow_with_the_store_pre_initialised() {
    run(async {
        let served = Served::start_with(compiled_preinit()).await;
        flow::counter_login_flash_and_logout(&served.site).await;
        served.stop().await;
    });
}

/// The flow's later requests run on instances that served its earlier
/// ones: after logout the counter starts again and the old ids find
/// nothing, on the same instances that held those sessions.
#[test]
fn the_same_flow_with_instances_reused() {
    run(async {
        let server = compiled_reusing();
        let served = Served::start_with(server).await;
        flow::counter_login_flash_and_logout(&served.site).await;
        // Idle instances are shared by every server made from this one.
        assert!(
            server.idle_instances() >= 1,
            "no instance was kept for reuse"
        );
        served.stop().await;
    });
}

#[test]
fn the_same_flow_over_redis() {
    run(async {
        let served = Served::start_kv(Backend::Redis, compiled_kv()).await;
        flow::counter_login_flash_and_logout(&served.site).await;
        served.stop().await;
    });
}

#[test]
fn the_same_flow_over_a_redis_cluster() {
    run(async {
        let served = Served::start_kv(Backend::Cluster, compiled_kv()).await;
        flow::counter_login_flash_and_logout(&served.site).await;
        served.stop().await;
    });
}

#[test]
fn the_same_flow_over_redis_with_the_store_pre_initialised() {
    run(async {
        let served = Served::start_kv(Backend::Redis, compiled_kv_preinit()).await;
        flow::counter_login_flash_and_logout(&served.site).await;
        served.stop().await;
    });
}

#[test]
fn bad_cookie_values_get_a_fresh_session_and_no_error_page() {
    run(async {
        let served = Served::start().await;
        flow::bad_cookie_values_get_a_fresh_session(&served.site).await;
        served.stop().await;
    });
}

#[test]
fn a_burst_of_concurrent_visits_loses_no_increment() {
    run(async {
        let served = Served::start().await;
        flow::burst_of_visits(&served.site).await;
        served.stop().await;
    });
}

#[test]
fn the_same_burst_with_instances_reused() {
    run(async {
        let server = compiled_reusing();
        let served = Served::start_with(server).await;
        flow::burst_of_visits(&served.site).await;
        assert!(
            server.idle_instances() >= 1,
            "no instance was kept for reuse"
        );
        served.stop().await;
    });
}

#[test]
fn a_burst_of_concurrent_visits_over_redis_loses_no_increment() {
    run(async {
        let served = Served::start_kv(Backend::Redis, compiled_kv()).await;
        flow::burst_of_visits(&served.site).await;
        served.stop().await;
    });
}

/// Two servers, each with its own engine, compiled component and Redis
/// connections (two hosts, as far as the store can tell), serving one
/// bucket: a visitor's session follows them from one to the other, and
/// concurrent visits spread over both are each counted once.
#[test]
fn two_servers_sharing_one_redis_serve_one_session() {
    run(async {
        let env = Env::on(Backend::Redis);
        let composed = sqlite_sessions_artifacts::edge_demo_kv().unwrap_or_else(|e| panic!("{e}"));
        let mut servers = Vec::new();
        for _ in 0..2 {
            // Buckets of their own: their own connection pools.
            let buckets = buckets_on(Backend::Redis, env.server_urls(), env.prefix());
            let server = EdgeServer::new(&ServerOptions::new(composed, buckets)).unwrap();
            servers.push(listen(server).await);
        }
        let urls: Vec<reqwest::Url> = servers
            .iter()
            .map(|s| reqwest::Url::parse(&s.url()).unwrap())
            .collect();
        let at = |i: usize, path: &str| urls[i].join(path).unwrap();

        let first = get(&bare_client(), at(0, "/")).await;
        assert_eq!(first.visits(), 1);
        let cookie = format!("sid={}", cookie_value(first.set_cookie()));
        assert_eq!(get_with_cookie(at(1, "/"), &cookie).await.visits(), 2);

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..BURST {
            let url = at(i % 2, "/");
            let cookie = cookie.clone();
            tasks.spawn(async move {
                let page = get_with_cookie(url, &cookie).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                page.visits()
            });
        }
        let mut seen = BTreeSet::new();
        while let Some(visit) = tasks.join_next().await {
            assert!(seen.insert(visit.unwrap()), "two visits got one number");
        }
        let expected: BTreeSet<u32> = (3..=BURST as u32 + 2).collect();
        assert_eq!(seen, expected);

        // Logged out on one server, the session is gone on the other.
        let logout = bare_client()
            .post(at(1, "/logout"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::OK);
        let after = get_with_cookie(at(0, "/session"), &cookie).await;
        assert!(after.body.contains("id=\"no-session\""), "{}", after.body);
        assert!(env.session_files().is_empty(), "{:?}", env.files());
        for server in servers {
            server.stop().await;
        }
    });
}

#[test]
fn pages_without_a_session_write_nothing() {
    run(async {
        let served = Served::start().await;
        flow::pages_without_a_session_write_nothing(&served.site).await;
        served.stop().await;
    });
}

#[test]
fn the_server_listens_on_loopback_only() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let server = compiled().with_storage(dir.path()).unwrap();
        let err = server
            .bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .await
            .err()
            .expect("binding 0.0.0.0 must fail");
        assert!(err.to_string().contains("loopback"), "{err}");
    });
}
