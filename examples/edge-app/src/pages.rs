//! The routes. Each request opens the store, loads (or starts) the session
//! named by its cookie, runs one page, and answers with the `Set-Cookie`
//! header the session asks for.

use std::time::{SystemTime, UNIX_EPOCH};

use wasip2::http::types::Method;

use crate::component::store::{Config, CookieConfig, Error, Session, Store};
use crate::html::{self, escape};
use crate::http::{Request, Response};

/// The store's `config.directory`: where the host preopens the session
/// directory (`--dir ./sessions::/sessions`), or, in the key-value build,
/// the bucket to open (Spin's `key_value_stores = ["default"]`).
const SESSION_DIR: &str = if cfg!(feature = "kv") {
    "default"
} else {
    "/sessions"
};
/// The visit counter. `increment` adds one and returns the new count in one
/// transaction, so concurrent visits each get their own number and none is
/// lost, which a `get` then `set` could not promise; and the session stays
/// the same size however many visits it counts.
const VISITS_KEY: &str = "visits";
/// Flash messages, Flask's name for them: appended by one request, taken
/// (read and removed in one transaction) by the next page that shows them.
const FLASHES_KEY: &str = "_flashes";
const USER_KEY: &str = "user";
/// Longest user name the login form accepts, in characters.
const MAX_USER_CHARS: usize = 64;
/// Longest value the session page prints before cutting it short.
const MAX_SHOWN_VALUE_CHARS: usize = 200;
/// Set to `1` in the app's environment when several servers share the
/// session directory on a distributed filesystem (`config.shared-directory`).
const SHARED_DIRECTORY_VAR: &str = "SESSIONS_SHARED_DIRECTORY";
/// Set to `1` to have every instance check the session directory before
/// using it (`config.check-directory`); a failing directory answers 500 and
/// logs what to change.
const CHECK_DIRECTORY_VAR: &str = "SESSIONS_CHECK_DIRECTORY";

enum Route {
    Home,
    Login,
    Logout,
    SessionInfo,
}

pub fn respond(req: &Request) -> Response {
    let (route, post) = match req.path.as_str() {
        "/" => (Route::Home, false),
        "/session" => (Route::SessionInfo, false),
        "/login" => (Route::Login, true),
        "/logout" => (Route::Logout, true),
        _ => return Response::text(404, "Not found."),
    };
    let allowed = if post { "POST" } else { "GET" };
    let method_ok = if post {
        matches!(req.method, Method::Post)
    } else {
        matches!(req.method, Method::Get)
    };
    if !method_ok {
        return Response::text(405, "Method not allowed.").header("allow", allowed);
    }
    // Browsers label every request with where it came from. Refusing
    // cross-site posts stops another site from signing a visitor in or out
    // (login CSRF); SameSite=Lax alone would still let such a post set a
    // cookie. Clients that send no label (curl, tests) are let through.
    if post && req.fetch_site.as_deref() == Some("cross-site") {
        return Response::text(403, "Cross-site form posts are refused.");
    }

    let store = match Store::open(&config()) {
        Ok(store) => store,
        Err(e) => return session_headers(error_page(&e), None),
    };
    let cookie_value = req
        .cookie
        .as_deref()
        .and_then(|header| store.cookie_value_from_header(header));
    // A missing, unknown, expired, tampered or malformed cookie value all
    // give a fresh session here: the store never treats them as errors.
    let session = match store.load_or_create(cookie_value.as_deref()) {
        Ok(session) => session,
        Err(e) => return session_headers(error_page(&e), None),
    };
    let page = match route {
        Route::Home => home(&session),
        Route::Login => login(&session, req),
        Route::Logout => logout(&session),
        Route::SessionInfo => session_info(&session),
    };
    let response = page.unwrap_or_else(|e| error_page(&e));
    // Asked last, after every write, as the interface requires.
    let set_cookie = session.set_cookie();
    // Dropping the handles runs the store's destructors (which record the
    // session's expiry for `sweep`) before the response goes out.
    drop(session);
    drop(store);
    session_headers(response, set_cookie)
}

fn config() -> Config {
    Config {
        directory: SESSION_DIR.into(),
        max_key_bytes: None,
        max_value_bytes: None,
        max_session_bytes: None,
        max_keys: None,
        max_live_sessions: None,
        idle_timeout_seconds: None,
        absolute_timeout_seconds: None,
        activity_granularity_seconds: None,
        busy_timeout_ms: None,
        lock_lease_ms: None,
        durability: None,
        shared_directory: env_flag(SHARED_DIRECTORY_VAR),
        check_directory: env_flag(CHECK_DIRECTORY_VAR),
        file_name_secret: None,
        signing_keys: None,
        cookie: CookieConfig {
            name: None,
            path: None,
            domain: None,
            // The demo speaks plain HTTP on 127.0.0.1, where clients do not
            // send Secure cookies back. Behind TLS, leave the default (true).
            secure: Some(false),
            http_only: None,
            same_site: None,
            persistent: None,
        },
    }
}

/// A yes/no setting from the environment the host gives the app
/// (`edge-server --env`, `wasmtime serve --env`); unset is the store's default.
fn env_flag(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| matches!(v.as_str(), "1" | "true"))
}

/// Headers every response that depends on the session carries: its
/// `Set-Cookie`, if any; `Cache-Control: no-store`, so no cache keeps a page
/// made for one visitor; and `Vary: Cookie`, so a shared cache that ignores
/// `no-store` still never serves it to another cookie (Flask's
/// CVE-2023-30861 was a missing `Vary: Cookie`).
fn session_headers(mut response: Response, set_cookie: Option<String>) -> Response {
    response
        .headers
        .retain(|(name, _)| *name != "cache-control");
    response = response
        .header("cache-control", "no-store")
        .header("vary", "Cookie");
    match set_cookie {
        Some(cookie) => response.header("set-cookie", cookie),
        None => response,
    }
}

fn html(status: u16, title: &str, body: &str) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type", "text/html; charset=utf-8".into()),
            ("x-content-type-options", "nosniff".into()),
            (
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'".into(),
            ),
        ],
        body: html::page(title, body),
    }
}

type PageResult = Result<Response, Error>;

/// `GET /`: counts the visit, greets the signed-in user, shows pending flash
/// messages once, and offers the login or logout form.
fn home(session: &Session) -> PageResult {
    let visit = session.increment(VISITS_KEY, 1)?;
    let user = json_string(session.get_json(USER_KEY)?);
    let flashes: Vec<String> = session
        .take_json(FLASHES_KEY)?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();

    let mut body = String::new();
    for flash in &flashes {
        body += &format!("<p class=\"flash\">{}</p>\n", escape(flash));
    }
    body +=
        &format!("<p>This is visit <strong id=\"visits\">{visit}</strong> of this session.</p>\n");
    match &user {
        Some(user) => {
            body += &format!(
                "<p>Signed in as <strong id=\"user\">{}</strong>.</p>\n\
                 <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>\n",
                escape(user)
            );
        }
        None => body += &login_form(None),
    }
    Ok(html(200, "Edge demo", &body))
}

fn login_form(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p><strong>{}</strong></p>\n", escape(p)))
        .unwrap_or_default();
    format!(
        "{problem}<form method=\"post\" action=\"/login\">\
         <label>Name <input name=\"user\" maxlength=\"{MAX_USER_CHARS}\" required></label> \
         <button>Sign in</button></form>\n\
         <p>Signing in gives the session a new id and keeps its data.</p>\n"
    )
}

/// `POST /login` (`user=<name>`): a new session id for the new privilege,
/// then the user and a flash message, then back to `/` (POST-redirect-GET).
fn login(session: &Session, req: &Request) -> PageResult {
    let user = req.field("user").map(str::trim).unwrap_or("");
    if user.is_empty()
        || user.chars().count() > MAX_USER_CHARS
        || user.chars().any(char::is_control)
    {
        let problem = format!("Enter a name of 1 to {MAX_USER_CHARS} characters.");
        return Ok(html(400, "Sign in", &login_form(Some(&problem))));
    }
    // Regenerate first: an id that was planted or seen before the login
    // must not carry the signed-in session (session fixation).
    session.regenerate()?;
    session.set_json(USER_KEY, &to_json(user))?;
    session.append_json(
        FLASHES_KEY,
        &to_json(&format!("Welcome, {user}! You are signed in.")),
    )?;
    Ok(html(303, "Signed in", "<p><a href=\"/\">Continue</a></p>").header("location", "/"))
}

/// `POST /logout`: destroys the session; `set-cookie` then deletes the cookie.
fn logout(session: &Session) -> PageResult {
    session.destroy()?;
    Ok(html(
        200,
        "Signed out",
        "<p>The session was destroyed and its cookie deleted.</p>\n<p><a href=\"/\">Start again</a></p>",
    ))
}

/// `GET /session`: the session's keys, their values as JSON, and when it
/// expires. Reading writes nothing, so a visitor without a session gets none.
fn session_info(session: &Session) -> PageResult {
    let mut body = String::new();
    if session.is_new() {
        body += "<p id=\"no-session\">No session yet: there was no cookie, or it named no live session.</p>\n";
        return Ok(html(200, "Session", &body));
    }
    let keys = session.keys()?;
    body += &format!("<p><span id=\"key-count\">{}</span> key(s).</p>\n<table><tr><th>key</th><th>value (JSON)</th></tr>\n", keys.len());
    for key in &keys {
        let shown = match session.get_json(key) {
            Ok(Some(json)) => escape(&shorten(&json)),
            Ok(None) => "<em>(removed meanwhile)</em>".into(),
            Err(Error::NotJson(_)) => "<em>(no JSON form)</em>".into(),
            Err(e) => return Err(e),
        };
        body += &format!(
            "<tr><td><code>{}</code></td><td><code>{shown}</code></td></tr>\n",
            escape(key)
        );
    }
    body += "</table>\n";
    match session.expires_at()? {
        Some(at) => {
            let left = at.saturating_sub(now_ms()) / 1000;
            body += &format!(
                "<p>Expires <span id=\"expires\">{}</span>, in {}, unless it is used again (idle timeout) \
                 or reaches its absolute timeout first.</p>\n",
                html::utc(at),
                html::duration(left)
            );
        }
        None => body += "<p>Never expires (both timeouts are off).</p>\n",
    }
    Ok(html(200, "Session", &body))
}

/// An error as a page. Each is something a visitor can act on, or a plain
/// "it failed" whose details go to the host's log, never to the visitor.
fn error_page(e: &Error) -> Response {
    match e {
        Error::Busy => html(
            503,
            "Busy",
            "<p>Another request is using this session. Try again in a moment.</p>",
        )
        .header("retry-after", "1"),
        Error::NotFound => html(
            409,
            "Session ended",
            "<p>This session ended while the page was being made (signed out in another tab?). \
             <a href=\"/\">Start again</a>.</p>",
        ),
        Error::TooLarge(limit) => {
            eprintln!("edge-app: session over its limit: {limit:?}");
            html(
                507,
                "Session full",
                "<p>This session is full. Sign out to start a new one.</p>",
            )
        }
        other => {
            eprintln!("edge-app: session store error: {other:?}");
            html(
                500,
                "Error",
                "<p>The session store failed. Try again later.</p>",
            )
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn to_json(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// A stored JSON string as text; anything else (or nothing) as `None`.
fn json_string(json: Option<String>) -> Option<String> {
    json.and_then(|j| serde_json::from_str::<String>(&j).ok())
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
