//! Serves the edge demo (examples/edge-app composed with the store) over
//! HTTP on 127.0.0.1, with `./sessions` preopened as `/sessions`. `make
//! demo` runs it; `edge-server --help` lists the flags.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use edge_server::{EdgeServer, ServerOptions};

/// Serves a wasi:http component (default: the edge demo) on 127.0.0.1, a
/// pooled instance per request, with a session directory preopened as
/// /sessions.
#[derive(Parser)]
#[command(name = "edge-server", version)]
struct Args {
    /// The port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// The session directory (the app's /sessions); created if missing.
    #[arg(long, default_value = "./sessions", value_name = "PATH")]
    dir: PathBuf,

    /// The component to serve. Default: the composed demo the artifacts
    /// crate built.
    #[arg(long, value_name = "FILE.wasm")]
    component: Option<PathBuf>,

    /// How many requests one instance may serve before it is dropped, as
    /// `wasmtime serve --max-instance-reuse-count`. 1 (the default) gives
    /// every request a fresh instance. An instance that trapped, failed,
    /// timed out or gave no response is never reused.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_instance_reuse_count: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let component = match args.component {
        Some(path) => path,
        None => sqlite_sessions_artifacts::edge_demo()?.to_path_buf(),
    };
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut options = ServerOptions::new(&component, &args.dir);
    options.addr.set_port(args.port);
    options.max_instance_reuse_count = args.max_instance_reuse_count;

    let server = EdgeServer::new(&options)?;
    let running = server.bind(options.addr).await?;
    let addr = running.local_addr();
    println!("Edge demo: {}", running.url());
    println!("  sessions:  {} (the app's /sessions)", args.dir.display());
    println!("  component: {}", component.display());
    let reuse = match args.max_instance_reuse_count {
        1 => String::new(),
        n => format!(" --max-instance-reuse-count {n}"),
    };
    println!(
        "  the same under the wasmtime CLI: wasmtime serve -S cli --addr {addr}{reuse} --dir {}::/sessions {}",
        args.dir.display(),
        component.display()
    );
    println!("Press Ctrl-C to stop.");

    tokio::signal::ctrl_c().await?;
    running.stop().await;
    println!("stopped");
    Ok(())
}
