//! Serves the edge demo (examples/edge-app composed with the store) over
//! HTTP on 127.0.0.1, with a fresh instance per request, and its sessions
//! either in `./sessions` (preopened as `/sessions`; `make demo`) or in
//! Redis or Valkey (`--kv`, `--kv-cluster`; `make demo-redis`).
//!
//! Usage:
//!
//! ```text
//! edge-server [--port N] [--dir PATH] [--component FILE.wasm]
//! edge-server --kv redis://127.0.0.1:6379/ [--kv-prefix P] [--port N] [--component FILE.wasm]
//! edge-server --kv-cluster redis://127.0.0.1:7000/,redis://127.0.0.1:7001/ [...]
//! ```
//!
//! Defaults: port 8080, `./sessions` (created if missing), and the composed
//! demo the artifacts crate built (its key-value build with `--kv` or
//! `--kv-cluster`, which opens the bucket `default`). `--port 0` picks a
//! free port. With `--kv`, every key is stored under `--kv-prefix` (default
//! none, as Spin's Redis store keeps keys). `--env NAME=VALUE` (repeated)
//! sets the guest's environment, empty by default; several servers sharing
//! one directory on a distributed filesystem take
//! `--env SESSIONS_SHARED_DIRECTORY=1` (see the README, "Several hosts, one
//! directory").

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use edge_server::{EdgeServer, ServerOptions};
use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions};
use sqlite_sessions_host::SessionStorage;

/// The bucket the demo app opens in its key-value build.
const BUCKET: &str = "default";

const USAGE: &str = "usage: edge-server [--port N] [--component FILE.wasm] \
                     [--dir PATH | --kv URL | --kv-cluster URL,URL,...] [--kv-prefix PREFIX] [--env NAME=VALUE]...";

/// Where the sessions go.
enum Backend {
    Dir(PathBuf),
    Redis(String),
    Cluster(Vec<String>),
}

struct Args {
    port: u16,
    backend: Backend,
    kv_prefix: String,
    /// `None`: the composed demo the artifacts crate built.
    component: Option<PathBuf>,
    /// The guest's environment.
    env: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let kv = !matches!(args.backend, Backend::Dir(_));
    let component = match args.component {
        Some(path) => path,
        None if kv => sqlite_sessions_artifacts::edge_demo_kv()?.to_path_buf(),
        None => sqlite_sessions_artifacts::edge_demo()?.to_path_buf(),
    };
    let redis = RedisOptions {
        key_prefix: args.kv_prefix.clone(),
        ..RedisOptions::default()
    };
    let (storage, where_): (SessionStorage, String) = match &args.backend {
        Backend::Dir(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (
                dir.into(),
                format!("{} (the app's /sessions)", dir.display()),
            )
        }
        Backend::Redis(url) => (
            Buckets::builder()
                .redis(BUCKET, url, &redis)?
                .build()
                .into(),
            format!(
                "Redis {url}, bucket {BUCKET:?}, key prefix {:?}",
                args.kv_prefix
            ),
        ),
        Backend::Cluster(urls) => {
            let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
            (
                Buckets::builder()
                    .redis_cluster(BUCKET, &nodes, &redis)?
                    .build()
                    .into(),
                format!(
                    "Redis cluster {}, bucket {BUCKET:?}, key prefix {:?}",
                    urls.join(","),
                    args.kv_prefix
                ),
            )
        }
    };
    let mut options = ServerOptions::new(&component, storage);
    options.addr.set_port(args.port);
    options.env = args.env;

    let server = EdgeServer::new(&options)?;
    let running = server.bind(options.addr).await?;
    let addr = running.local_addr();
    println!("Edge demo: {}", running.url());
    println!("  sessions:  {where_}");
    println!("  component: {}", component.display());
    if let Backend::Dir(dir) = &args.backend {
        let env: String = options
            .env
            .iter()
            .map(|(name, value)| format!(" --env {name}={value}"))
            .collect();
        println!(
            "  the same under the wasmtime CLI: wasmtime serve -S cli --addr {addr} --dir {}::/sessions{env} {}",
            dir.display(),
            component.display()
        );
    }
    println!("Press Ctrl-C to stop.");

    tokio::signal::ctrl_c().await?;
    running.stop().await;
    println!("stopped");
    Ok(())
}

fn parse_args() -> anyhow::Result<Args> {
    let mut port = 8080;
    let mut dir = None;
    let mut kv = None;
    let mut cluster = None;
    let mut kv_prefix = String::new();
    let mut component = None;
    let mut env = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                port = v
                    .parse()
                    .with_context(|| format!("--port {v}: not a port number"))?;
            }
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--kv" => kv = Some(value()?),
            "--kv-cluster" => {
                let urls: Vec<String> = value()?
                    .split(',')
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect();
                if urls.is_empty() {
                    bail!("--kv-cluster needs at least one node URL");
                }
                cluster = Some(urls);
            }
            "--kv-prefix" => kv_prefix = value()?,
            "--component" => component = Some(PathBuf::from(value()?)),
            "--env" => {
                let v = value()?;
                let (name, val) = v
                    .split_once('=')
                    .with_context(|| format!("--env {v}: expected NAME=VALUE"))?;
                env.push((name.to_owned(), val.to_owned()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    let backend = match (dir, kv, cluster) {
        (dir, None, None) => Backend::Dir(dir.unwrap_or_else(|| PathBuf::from("./sessions"))),
        (None, Some(url), None) => Backend::Redis(url),
        (None, None, Some(urls)) => Backend::Cluster(urls),
        _ => bail!("--dir, --kv and --kv-cluster exclude each other; {USAGE}"),
    };
    Ok(Args {
        port,
        backend,
        kv_prefix,
        component,
        env,
    })
}
