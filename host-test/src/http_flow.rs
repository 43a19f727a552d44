//! The edge demo's flows over HTTP, shared by the tests that serve it in
//! process (`tests/e2e_http.rs`, through `edge-server`) and under the real
//! `wasmtime serve` (`tests/wasmtime_serve.rs`): a real HTTP client
//! (reqwest) with a cookie jar against a [`Site`], a base URL and the
//! sessions behind it, whatever serves them.
//!
//! Every request has a timeout and every loop a fixed count; [`run`] also
//! puts each test under an overall deadline, so a hung server fails the test
//! instead of stalling CI.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::{redirect, Client, Response, StatusCode, Url};

use crate::fixtures::Env;

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const TEST_DEADLINE: Duration = Duration::from_secs(180);
/// Concurrent requests in the burst test: enough to contend for the
/// session's lock on every request, few enough for a 2-core CI machine.
pub const BURST: usize = 16;

/// Where a site keeps the sessions.
pub enum Sessions {
    /// A temporary directory whose `sessions/` subdirectory is the app's
    /// `/sessions`, so a test can also check that nothing appears beside it.
    Dir(tempfile::TempDir),
    /// A bucket of its own in a shared Redis.
    Bucket(Box<Env>),
}

impl Sessions {
    /// A fresh temporary directory with an empty `sessions/` in it.
    pub fn dir() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sessions")).unwrap();
        Sessions::Dir(root)
    }

    /// The directory to serve as the app's `/sessions`.
    ///
    /// # Panics
    /// For a bucket.
    pub fn sessions_dir(&self) -> PathBuf {
        match self {
            Sessions::Dir(root) => root.path().join("sessions"),
            Sessions::Bucket(_) => panic!("a bucket has no session directory"),
        }
    }
}

/// A served demo: its base URL and its sessions.
pub struct Site {
    pub sessions: Sessions,
    pub url: Url,
}

impl Site {
    /// The demo at `url` (`http://127.0.0.1:PORT/`), keeping its sessions in
    /// `sessions`.
    pub fn new(url: &str, sessions: Sessions) -> Self {
        let url = Url::parse(url).unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        Site { sessions, url }
    }

    pub fn at(&self, path: &str) -> Url {
        self.url.join(path).unwrap()
    }

    /// A browser-like client: a cookie jar, no automatic redirects (so each
    /// response's Set-Cookie is seen), and a timeout on every request.
    pub fn browser(&self) -> (Client, Arc<Jar>) {
        let jar = Arc::new(Jar::default());
        let client = client_builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        (client, jar)
    }

    /// The session cookie the jar would send, if any.
    pub fn sid(&self, jar: &Jar) -> Option<String> {
        let header = jar.cookies(&self.url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("sid="))
            .map(str::to_owned)
    }

    /// Session files (everything but directories) under `sessions/`, or
    /// everything in the bucket.
    pub fn session_files(&self) -> usize {
        match &self.sessions {
            Sessions::Dir(root) => count_files(&root.path().join("sessions")),
            Sessions::Bucket(env) => env.files().len(),
        }
    }

    /// Everything directly in the temporary root: only `sessions`, unless a
    /// cookie escaped the session directory.
    pub fn root_entries(&self) -> Vec<String> {
        let Sessions::Dir(root) = &self.sessions else {
            panic!("a bucket has no root directory");
        };
        let mut names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// No redirects followed, a timeout per request, no proxy.
pub fn client_builder() -> reqwest::ClientBuilder {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
}

/// A client without a jar, for sending a cookie value by hand.
pub fn bare_client() -> Client {
    client_builder().build().unwrap()
}

/// Files (everything but directories) under `dir`, recursively.
pub fn count_files(dir: &Path) -> usize {
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

/// Runs `test` on a two-thread tokio runtime under [`TEST_DEADLINE`].
pub fn run<F: Future<Output = ()>>(test: F) {
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
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn from(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The one `Set-Cookie` header; fails the test if there is not exactly one.
    pub fn set_cookie(&self) -> &str {
        match self.set_cookies().as_slice() {
            [one] => one,
            other => panic!("expected one Set-Cookie, got {other:?}\n{}", self.body),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The number in `<strong id="visits">N</strong>`.
    pub fn visits(&self) -> u32 {
        let start = self
            .body
            .find("<strong id=\"visits\">")
            .unwrap_or_else(|| panic!("no visit counter in:\n{}", self.body))
            + "<strong id=\"visits\">".len();
        let end = start + self.body[start..].find('<').unwrap();
        self.body[start..end].parse().unwrap()
    }

    /// Checks the headers every session page must carry.
    pub fn assert_session_headers(&self) {
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "{:?}",
            self.headers
        );
        assert_eq!(self.header("vary"), Some("Cookie"), "{:?}", self.headers);
    }
}

pub async fn get(client: &Client, url: Url) -> Page {
    Page::from(client.get(url).send().await.unwrap()).await
}

pub async fn get_with_cookie(url: Url, cookie: &str) -> Page {
    let response = bare_client()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    Page::from(response).await
}

pub async fn post_form(client: &Client, url: Url, form: &str) -> Page {
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
pub fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("sid=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not a sid cookie: {set_cookie}"))
}

pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && s.chars().enumerate().all(|(i, c)| {
            [8, 13, 18, 23].contains(&i) || c.is_ascii_digit() || ('a'..='f').contains(&c)
        })
}

/// The visit counter, the session page, login (a new id, the data kept,
/// the old id dead), the flash shown once, and logout (the cookie deleted,
/// the session file gone, the id dead).
pub async fn counter_login_flash_and_logout(site: &Site) {
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

/// Tampered, unknown, path-like, empty and oversized cookie values each get
/// a fresh session, nothing is written outside the session directory, and
/// the real session is undisturbed. Directory sites only.
pub async fn bad_cookie_values_get_a_fresh_session(site: &Site) {
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
}

/// [`BURST`] concurrent visits on one session: each gets its own next
/// number, none is lost.
pub async fn burst_of_visits(site: &Site) {
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

/// A missing page, a wrong method, a cross-site post, a refused login and
/// the session page without a cookie: no cookie set, no session stored.
pub async fn pages_without_a_session_write_nothing(site: &Site) {
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
}
