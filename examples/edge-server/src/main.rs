//! Serves the edge demo (examples/edge-app composed with the store) over
//! HTTP on 127.0.0.1, a pooled instance per request, with its sessions
//! either in `./sessions` (preopened as `/sessions`; `make demo`) or in
//! Redis or Valkey (`--kv`, `--kv-cluster`; `make demo-redis`).
//! `edge-server --help` lists the flags.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use edge_server::{EdgeServer, ServerOptions};
use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions};
use sqlite_sessions_host::SessionStorage;

/// The bucket the demo app opens in its key-value build.
const BUCKET: &str = "default";

/// Serves a wasi:http component (default: the edge demo) on 127.0.0.1, a
/// pooled instance per request, with its sessions in a directory preopened
/// as /sessions, or in Redis or Valkey through the store's key-value build.
#[derive(Parser)]
#[command(name = "edge-server", version)]
struct Args {
    /// The port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// The session directory (the app's /sessions); created if missing.
    /// Default: ./sessions.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["kv", "kv_cluster"])]
    dir: Option<PathBuf>,

    /// Keep the sessions in this Redis or Valkey (the demo's key-value
    /// build, bucket "default").
    #[arg(long, value_name = "URL", conflicts_with = "kv_cluster")]
    kv: Option<String>,

    /// Keep the sessions in a Redis or Valkey cluster: some of its nodes'
    /// URLs, comma-separated.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',', num_args = 1..)]
    kv_cluster: Option<Vec<String>>,

    /// With --kv or --kv-cluster: stored keys start with this (default none,
    /// as Spin's Redis store keeps keys).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    kv_prefix: String,

    /// The component to serve. Default: the composed demo the artifacts
    /// crate built (its key-value build with --kv or --kv-cluster).
    #[arg(long, value_name = "FILE.wasm")]
    component: Option<PathBuf>,

    /// An environment variable the guest sees (repeatable; none by default).
    /// Several servers sharing one directory on a distributed filesystem:
    /// SESSIONS_SHARED_DIRECTORY=1 (see the README, "Several hosts, one
    /// directory").
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// How many requests one instance may serve before it is dropped, as
    /// `wasmtime serve --max-instance-reuse-count`. 1 (the default) gives
    /// every request a fresh instance. An instance that trapped, failed,
    /// timed out or gave no response is never reused.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_instance_reuse_count: u32,
}

/// Where the sessions go.
enum Backend {
    Dir(PathBuf),
    Redis(String),
    Cluster(Vec<String>),
}

impl Args {
    fn backend(&self) -> Backend {
        match (&self.kv, &self.kv_cluster) {
            (Some(url), _) => Backend::Redis(url.clone()),
            (None, Some(urls)) => Backend::Cluster(urls.clone()),
            (None, None) => Backend::Dir(
                self.dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("./sessions")),
            ),
        }
    }
}

fn parse_env(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?}: expected NAME=VALUE"))?;
    Ok((name.to_owned(), value.to_owned()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = args.backend();
    let kv = !matches!(backend, Backend::Dir(_));
    let component = match args.component {
        Some(path) => path,
        None if kv => sqlite_sessions_artifacts::edge_demo_kv()?.to_path_buf(),
        None => sqlite_sessions_artifacts::edge_demo()?.to_path_buf(),
    };
    let redis = RedisOptions {
        key_prefix: args.kv_prefix.clone(),
        ..RedisOptions::default()
    };
    let (storage, where_): (SessionStorage, String) = match &backend {
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
    options.max_instance_reuse_count = args.max_instance_reuse_count;
    options.env = args.env;

    let server = EdgeServer::new(&options)?;
    let running = server.bind(options.addr).await?;
    let addr = running.local_addr();
    println!("Edge demo: {}", running.url());
    println!("  sessions:  {where_}");
    println!("  component: {}", component.display());
    if let Backend::Dir(dir) = &backend {
        let env: String = options
            .env
            .iter()
            .map(|(name, value)| format!(" --env {name}={value}"))
            .collect();
        let reuse = match options.max_instance_reuse_count {
            1 => String::new(),
            n => format!(" --max-instance-reuse-count {n}"),
        };
        println!(
            "  the same under the wasmtime CLI: wasmtime serve -S cli --addr {addr}{reuse} --dir {}::/sessions{env} {}",
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
