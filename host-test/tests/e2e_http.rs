//! End-to-end tests of the edge demo: the composed app + store component
//! served by the `edge-server` example on 127.0.0.1 (an ephemeral port),
//! driven by a real HTTP client (reqwest) with a cookie jar.
//!
//! Every request has a timeout and every loop a fixed count; each test also
//! runs under an overall deadline, so a hung server fails the test instead
//! of stalling CI.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use edge_server::{EdgeServer, RunningServer, ServerOptions};
use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::{redirect, Client, Response, StatusCode, Url};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const TEST_DEADLINE: Duration = Duration::from_secs(180);
/// Concurrent requests in the burst test: enough to contend for the
/// session's lock on every request, few enough for a 2-core CI machine.
const BURST: usize = 16;

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

/// The same demo with the store pre-initialised first, composed the way
/// the README tells `wasmtime serve` and Spin users to: the store through
/// `sqlite_sessions_host::preinit` (what `make preinit` runs), then `wac
/// plug` (`$WAC` or `wac` on `PATH`, as the artifacts crate uses).
fn compiled_preinit() -> &'static EdgeServer {
    static SERVER: OnceLock<EdgeServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let work = tempfile::tempdir().unwrap();
        let store = std::fs::read(host_test::component()).unwrap();
        let app = sqlite_sessions_artifacts::edge_app().unwrap_or_else(|e| panic!("{e}"));
        let store_pre = work.path().join("sqlite_sessions.preinit.wasm");
        let snapshot =
            sqlite_sessions_host::preinit::preinitialize(&store).expect("pre-initialising");
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
        let mut options = ServerOptions::new(&composed, std::env::temp_dir());
        // Its directory goes away below: no compile cache beside it.
        options.cache_dir = None;
        EdgeServer::new(&options).expect("compiling the pre-initialised composition")
    })
}

/// One test's server: a temporary directory whose `sessions/` subdirectory
/// is the app's `/sessions`, so a test can also check that nothing appears
/// beside it.
struct Site {
    root: tempfile::TempDir,
    server: RunningServer,
    url: Url,
}

impl Site {
    async fn start() -> Self {
        Site::start_with(compiled()).await
    }

    async fn start_with(compiled: &EdgeServer) -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sessions")).unwrap();
        let server = compiled
            .with_session_dir(root.path().join("sessions"))
            .unwrap()
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let url = Url::parse(&server.url()).unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        Site { root, server, url }
    }

    fn at(&self, path: &str) -> Url {
        self.url.join(path).unwrap()
    }

    /// A browser-like client: a cookie jar, no automatic redirects (so each
    /// response's Set-Cookie is seen), and a timeout on every request.
    fn browser(&self) -> (Client, Arc<Jar>) {
        let jar = Arc::new(Jar::default());
        let client = client_builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        (client, jar)
    }

    /// The session cookie the jar would send, if any.
    fn sid(&self, jar: &Jar) -> Option<String> {
        let header = jar.cookies(&self.url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("sid="))
            .map(str::to_owned)
    }

    /// Session files (everything but directories) under `sessions/`.
    fn session_files(&self) -> usize {
        count_files(&self.root.path().join("sessions"))
    }

    /// Everything directly in the temporary root: only `sessions`, unless a
    /// cookie escaped the session directory.
    fn root_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
}

/// A client without a jar, for sending a cookie value by hand.
fn bare_client() -> Client {
    client_builder().build().unwrap()
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            n += count_files(&entry.path());
        } else {
            n += 1;
        }
    }
    n
}

fn run<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(TEST_DEADLINE, test)
                .await
                .expect("the test ran past its deadline")
        });
}

/// A response's status, headers and body, read in full.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    async fn from(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The one `Set-Cookie` header; fails the test if there is not exactly one.
    fn set_cookie(&self) -> &str {
        match self.set_cookies().as_slice() {
            [one] => one,
            other => panic!("expected one Set-Cookie, got {other:?}\n{}", self.body),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The number in `<strong id="visits">N</strong>`.
    fn visits(&self) -> u32 {
        let start = self
            .body
            .find("<strong id=\"visits\">")
            .unwrap_or_else(|| panic!("no visit counter in:\n{}", self.body))
            + "<strong id=\"visits\">".len();
        let end = start + self.body[start..].find('<').unwrap();
        self.body[start..end].parse().unwrap()
    }

    /// Checks the headers every session page must carry.
    fn assert_session_headers(&self) {
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "{:?}",
            self.headers
        );
        assert_eq!(self.header("vary"), Some("Cookie"), "{:?}", self.headers);
    }
}

async fn get(client: &Client, url: Url) -> Page {
    Page::from(client.get(url).send().await.unwrap()).await
}

async fn get_with_cookie(url: Url, cookie: &str) -> Page {
    let response = bare_client()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    Page::from(response).await
}

async fn post_form(client: &Client, url: Url, form: &str) -> Page {
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    Page::from(response).await
}

/// The value of `sid=<value>; ...` in a Set-Cookie header.
fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("sid=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not a sid cookie: {set_cookie}"))
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && s.chars().enumerate().all(|(i, c)| {
            [8, 13, 18, 23].contains(&i) || c.is_ascii_digit() || ('a'..='f').contains(&c)
        })
}

#[test]
fn counter_login_flash_and_logout_through_a_cookie_jar() {
    run(async { counter_login_flash_and_logout(Site::start().await).await });
}

#[test]
fn the_same_flow_with_the_store_pre_initialised() {
    run(async { counter_login_flash_and_logout(Site::start_with(compiled_preinit()).await).await });
}

/// The flow's later requests run on instances that served its earlier
/// ones: after logout the counter starts again and the old ids find
/// nothing, on the same instances that held those sessions.
#[test]
fn the_same_flow_with_instances_reused() {
    run(async {
        let server = compiled_reusing();
        counter_login_flash_and_logout(Site::start_with(server).await).await;
        assert!(
            server.idle_instances() >= 1,
            "no instance was kept for reuse"
        );
    });
}

async fn counter_login_flash_and_logout(site: Site) {
    {
        let (browser, jar) = site.browser();

        // Anonymous visits: the first sets the cookie, the counter counts.
        let first = get(&browser, site.at("/")).await;
        assert_eq!(first.status, StatusCode::OK);
        first.assert_session_headers();
        assert_eq!(first.visits(), 1);
        let set = first.set_cookie();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
            "{set}"
        );
        let anonymous_id = site.sid(&jar).expect("the jar keeps the session cookie");
        assert!(is_uuid_v4(&anonymous_id), "{anonymous_id}");
        assert_eq!(get(&browser, site.at("/")).await.visits(), 2);
        assert_eq!(site.session_files(), 1);

        // The session page lists the keys and the expiry, and writes nothing.
        let info = get(&browser, site.at("/session")).await;
        assert_eq!(info.status, StatusCode::OK);
        info.assert_session_headers();
        assert!(info.body.contains("<code>visits</code>"), "{}", info.body);
        assert!(info.body.contains("id=\"expires\""), "{}", info.body);

        // Login: a new id (new cookie value), same data, a flash message.
        let login = post_form(&browser, site.at("/login"), "user=ada+lovelace").await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
        assert_eq!(login.header("location"), Some("/"));
        login.assert_session_headers();
        let login_id = cookie_value(login.set_cookie()).to_owned();
        assert_ne!(
            login_id, anonymous_id,
            "login must regenerate the session id"
        );
        assert_eq!(site.sid(&jar).as_deref(), Some(login_id.as_str()));

        let home = get(&browser, site.at("/")).await;
        assert_eq!(home.visits(), 3, "the visits survive the new id");
        assert!(
            home.body
                .contains("Signed in as <strong id=\"user\">ada lovelace</strong>"),
            "{}",
            home.body
        );
        assert!(
            home.body.contains("Welcome, ada lovelace!"),
            "the flash shows: {}",
            home.body
        );
        let again = get(&browser, site.at("/")).await;
        assert_eq!(again.visits(), 4);
        assert!(
            !again.body.contains("Welcome,"),
            "the flash shows once: {}",
            again.body
        );
        assert!(again.body.contains("ada lovelace"));

        // The pre-login id is dead: it gets a fresh session, not the old one.
        let stale = get_with_cookie(site.at("/session"), &format!("sid={anonymous_id}")).await;
        assert_eq!(stale.status, StatusCode::OK);
        assert!(stale.body.contains("id=\"no-session\""), "{}", stale.body);
        assert_eq!(
            site.session_files(),
            1,
            "regenerate leaves one session file"
        );

        // Logout: destroy, then the deletion cookie, which empties the jar.
        let logout = post_form(&browser, site.at("/logout"), "").await;
        assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
        logout.assert_session_headers();
        let deletion = logout.set_cookie();
        assert!(
            deletion.starts_with("sid=;") || deletion.contains("Max-Age=0"),
            "{deletion}"
        );
        assert!(deletion.contains("Max-Age=0"), "{deletion}");
        assert_eq!(site.sid(&jar), None, "the jar dropped the cookie");
        assert_eq!(site.session_files(), 0, "the session file is gone");

        // The logged-in id no longer works either.
        let replay = get_with_cookie(site.at("/session"), &format!("sid={login_id}")).await;
        assert!(replay.body.contains("id=\"no-session\""), "{}", replay.body);
        let fresh = get(&browser, site.at("/")).await;
        assert_eq!(fresh.visits(), 1, "after logout the counter starts again");
        assert_ne!(site.sid(&jar).as_deref(), Some(login_id.as_str()));
    }
    site.stop().await;
}

#[test]
fn bad_cookie_values_get_a_fresh_session_and_no_error_page() {
    run(async {
        let site = Site::start().await;
        let (browser, jar) = site.browser();
        assert_eq!(get(&browser, site.at("/")).await.visits(), 1);
        let real = site.sid(&jar).unwrap();

        // Same shape as the real id, one hex digit changed.
        let last = real.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        let tampered = format!("{}{flipped}", &real[..real.len() - 1]);
        let long = "a".repeat(3000);
        let values = [
            tampered.as_str(),
            "5f0c6d52-7b7e-4f4e-9b1a-2f3c4d5e6f70", // well-formed, never issued
            "../../../../etc/passwd",
            "..%2F..%2Fsessions%2F..%2Fescape",
            "/etc/passwd",
            "..",
            "%00",
            "./",
            long.as_str(),
            "",
        ];
        let mut issued = BTreeSet::new();
        for value in values {
            let page = get_with_cookie(site.at("/"), &format!("sid={value}")).await;
            assert_eq!(
                page.status,
                StatusCode::OK,
                "cookie {value:?}: {}",
                page.body
            );
            page.assert_session_headers();
            assert_eq!(
                page.visits(),
                1,
                "cookie {value:?} must start a fresh session"
            );
            let new_id = cookie_value(page.set_cookie()).to_owned();
            assert!(is_uuid_v4(&new_id), "{new_id}");
            assert_ne!(new_id, value);
            assert!(issued.insert(new_id), "every fresh session has its own id");
        }
        assert_eq!(site.session_files(), 1 + values.len());
        assert_eq!(
            site.root_entries(),
            ["sessions"],
            "nothing was written outside"
        );

        // The real session was not disturbed by any of that.
        assert_eq!(get(&browser, site.at("/")).await.visits(), 2);
        site.stop().await;
    });
}

#[test]
fn a_burst_of_concurrent_visits_loses_no_increment() {
    run(async { burst_of_concurrent_visits(Site::start().await).await });
}

/// The burst's visits run on instances that served earlier visits, several
/// at once on one session.
#[test]
fn the_same_burst_with_instances_reused() {
    run(async {
        let server = compiled_reusing();
        burst_of_concurrent_visits(Site::start_with(server).await).await;
        assert!(
            server.idle_instances() >= 1,
            "no instance was kept for reuse"
        );
    });
}

async fn burst_of_concurrent_visits(site: Site) {
    {
        let (browser, jar) = site.browser();
        assert_eq!(get(&browser, site.at("/")).await.visits(), 1);
        let cookie = format!("sid={}", site.sid(&jar).unwrap());

        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..BURST {
            let url = site.at("/");
            let cookie = cookie.clone();
            tasks.spawn(async move {
                let page = get_with_cookie(url, &cookie).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                page.visits()
            });
        }
        let mut seen = BTreeSet::new();
        while let Some(visit) = tasks.join_next().await {
            assert!(
                seen.insert(visit.unwrap()),
                "two requests got the same visit number"
            );
        }
        let expected: BTreeSet<u32> = (2..=BURST as u32 + 1).collect();
        assert_eq!(seen, expected, "each concurrent visit got its own number");
        assert_eq!(get(&browser, site.at("/")).await.visits(), BURST as u32 + 2);
    }
    site.stop().await;
}

#[test]
fn pages_without_a_session_write_nothing() {
    run(async {
        let site = Site::start().await;
        let (browser, jar) = site.browser();

        let missing = get(&browser, site.at("/no-such-page")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.set_cookies().is_empty());

        let wrong_method = get(&browser, site.at("/login")).await;
        assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong_method.header("allow"), Some("POST"));

        // A login form posted from another site (as a browser labels it).
        let cross_site = browser
            .post(site.at("/login"))
            .header("sec-fetch-site", "cross-site")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("user=mallory")
            .send()
            .await
            .unwrap();
        assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);

        let empty_name = post_form(&browser, site.at("/login"), "user=+++").await;
        assert_eq!(empty_name.status, StatusCode::BAD_REQUEST);
        empty_name.assert_session_headers();
        assert!(
            empty_name.set_cookies().is_empty(),
            "a refused login stores nothing"
        );

        let info = get(&browser, site.at("/session")).await;
        assert!(info.body.contains("id=\"no-session\""), "{}", info.body);
        assert!(info.set_cookies().is_empty());

        assert_eq!(site.sid(&jar), None);
        assert_eq!(site.session_files(), 0);
        site.stop().await;
    });
}

#[test]
fn the_server_listens_on_loopback_only() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let server = compiled().with_session_dir(dir.path()).unwrap();
        let err = server
            .bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .await
            .err()
            .expect("binding 0.0.0.0 must fail");
        assert!(err.to_string().contains("loopback"), "{err}");
    });
}
