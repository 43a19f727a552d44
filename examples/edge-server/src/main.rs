//! Serves the edge demo (examples/edge-app composed with the store) over
//! HTTP on 127.0.0.1, with a fresh instance per request and `./sessions`
//! preopened as `/sessions`. `make demo` runs it.
//!
//! Usage: `edge-server [--port N] [--dir PATH] [--component FILE.wasm]
//! [--env NAME=VALUE]...` (defaults: 8080, `./sessions`, created if missing,
//! the composed demo the artifacts crate built, an empty environment).
//! `--port 0` picks a free port. Several servers sharing one directory on a
//! distributed filesystem: `--env SESSIONS_SHARED_DIRECTORY=1` (see the
//! README, "Several hosts, one directory").

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use edge_server::{EdgeServer, ServerOptions};

struct Args {
    port: u16,
    dir: PathBuf,
    /// `None`: the composed demo the artifacts crate built.
    component: Option<PathBuf>,
    /// The guest's environment.
    env: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let component = match args.component {
        Some(path) => path,
        None => sqlite_sessions_artifacts::edge_demo()?.to_path_buf(),
    };
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut options = ServerOptions::new(&component, &args.dir);
    options.addr.set_port(args.port);
    options.env = args.env;

    let server = EdgeServer::new(&options)?;
    let running = server.bind(options.addr).await?;
    let addr = running.local_addr();
    println!("Edge demo: {}", running.url());
    println!("  sessions:  {} (the app's /sessions)", args.dir.display());
    println!("  component: {}", component.display());
    let env: String = options
        .env
        .iter()
        .map(|(name, value)| format!(" --env {name}={value}"))
        .collect();
    println!(
        "  the same under the wasmtime CLI: wasmtime serve -S cli --addr {addr} --dir {}::/sessions{env} {}",
        args.dir.display(),
        component.display()
    );
    println!("Press Ctrl-C to stop.");

    tokio::signal::ctrl_c().await?;
    running.stop().await;
    println!("stopped");
    Ok(())
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        port: 8080,
        dir: PathBuf::from("./sessions"),
        component: None,
        env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                args.port = v
                    .parse()
                    .with_context(|| format!("--port {v}: not a port number"))?;
            }
            "--dir" => args.dir = PathBuf::from(value()?),
            "--component" => args.component = Some(PathBuf::from(value()?)),
            "--env" => {
                let v = value()?;
                let (name, val) = v
                    .split_once('=')
                    .with_context(|| format!("--env {v}: expected NAME=VALUE"))?;
                args.env.push((name.to_owned(), val.to_owned()));
            }
            "-h" | "--help" => {
                println!(
                    "usage: edge-server [--port N] [--dir PATH] [--component FILE.wasm] \
                     [--env NAME=VALUE]..."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    Ok(args)
}
