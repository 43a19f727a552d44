//! Plays a realistic request sequence against the component — an anonymous
//! visit counter, login, a flash message shown once, logout — with a fresh
//! instance per request, as a server would, and prints what each response's
//! `Set-Cookie` would be.
//!
//! Usage: `cargo run --release --example demo --
//! [--dir PATH]` (default `./sessions`, created if missing); `make
//! demo-script` runs it.

use anyhow::{bail, Context};
use sqlite_sessions_host::{
    default_config, Error, PathSegment, Request, Runtime, RuntimeOptions, SessionHandle,
    StoreHandle,
};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = parse_args()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let component = sqlite_sessions_artifacts::store()?;
    let runtime = Runtime::from_file_with(component, RuntimeOptions::cached_beside(component))?;
    let mut config = default_config();
    // The demo talks plain HTTP on localhost, where browsers drop Secure cookies.
    config.cookie.secure = Some(false);
    let mut browser = Browser::default();
    println!("session directory: {}\n", dir.display());

    let steps: [(&str, Handler); 7] = [
        ("GET /", visit),
        ("GET /", visit),
        ("POST /login user=ada", login),
        ("GET /", visit),
        ("GET /", visit),
        ("POST /logout", logout),
        ("GET /", visit),
    ];
    for (n, (line, handler)) in steps.into_iter().enumerate() {
        let cookie = browser.cookie.clone();
        println!(
            "#{} {line}   Cookie: {}",
            n + 1,
            cookie
                .as_deref()
                .map_or("(none)".into(), |c| format!("sid={}", short(c)))
        );
        let mut req = runtime.request(&dir)?;
        let store = call(req.open_store(&config))?;
        let session = call(req.store(&store).load_or_create(cookie.as_deref()))?;
        let page = handler(&mut req, &session)?;
        let set_cookie = req.session(&session).set_cookie()?;
        finish(req, store, session)?;
        println!("   page: {page}");
        match &set_cookie {
            Some(h) => println!("   Set-Cookie: {}", shorten_header(h)),
            None => println!("   Set-Cookie: (none: the browser's cookie is already right)"),
        }
        browser.apply(set_cookie.as_deref());
        println!();
    }
    let files = count_files(&dir);
    println!("{files} session file(s) left in {}", dir.display());
    Ok(())
}

type Handler = fn(&mut Request, &SessionHandle) -> anyhow::Result<String>;

fn visit(req: &mut Request, s: &SessionHandle) -> anyhow::Result<String> {
    let mut sess = req.session(s);
    let visits: u64 = call(sess.get_json("visits"))?.map_or(Ok(0), |v| v.parse())?;
    call(sess.set_json("visits", &(visits + 1).to_string()))?;
    let user = call(sess.get_json("user"))?;
    let flashes = call(sess.take_json("_flashes"))?;
    let mut page = format!("visit #{}", visits + 1);
    match user {
        Some(u) => page += &format!(", signed in as {u}"),
        None => page += ", anonymous",
    }
    if let Some(f) = flashes {
        page += &format!(", flash {f}");
    }
    Ok(page)
}

fn login(req: &mut Request, s: &SessionHandle) -> anyhow::Result<String> {
    let mut sess = req.session(s);
    call(sess.set_json("user", r#""ada""#))?;
    call(sess.set_in_json("prefs", &[PathSegment::Key("theme".into())], r#""dark""#))?;
    call(sess.append_json("_flashes", r#""Welcome back, ada""#))?;
    Ok("303 See Other -> /".into())
}

fn logout(req: &mut Request, s: &SessionHandle) -> anyhow::Result<String> {
    call(req.session(s).destroy())?;
    Ok("303 See Other -> / (session destroyed)".into())
}

/// Unwraps the component's typed error into an anyhow error.
fn call<T>(r: anyhow::Result<Result<T, Error>>) -> anyhow::Result<T> {
    Ok(r??)
}

fn finish(mut req: Request, store: StoreHandle, session: SessionHandle) -> anyhow::Result<()> {
    req.drop_session(session)?;
    req.drop_store(store)
}

/// Just enough of a cookie jar for one cookie.
#[derive(Default)]
struct Browser {
    cookie: Option<String>,
}

impl Browser {
    fn apply(&mut self, set_cookie: Option<&str>) {
        let Some(header) = set_cookie else { return };
        let value = header
            .split(';')
            .next()
            .unwrap_or("")
            .trim_start_matches("sid=");
        if header.contains("Max-Age=0") || value.is_empty() {
            self.cookie = None;
        } else {
            self.cookie = Some(value.to_string());
        }
    }
}

fn short(id: &str) -> String {
    format!("{}…", &id[..id.len().min(8)])
}

fn shorten_header(h: &str) -> String {
    match h.split_once(';') {
        Some((first, rest)) => {
            let value = first.trim_start_matches("sid=");
            let shown = if value.is_empty() {
                String::new()
            } else {
                short(value)
            };
            format!("sid={shown};{rest}")
        }
        None => h.to_string(),
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .map(|p| {
            if p.is_dir() {
                count_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "db"))
            }
        })
        .sum()
}

fn parse_args() -> anyhow::Result<PathBuf> {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from("sessions");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = args.next().context("--dir needs a path")?.into(),
            "-h" | "--help" => {
                println!("usage: demo [--dir PATH]   (default ./sessions)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    Ok(dir)
}
