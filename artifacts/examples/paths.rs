//! Prints where the artifacts are, one path a line: `paths [store] [edge-app]
//! [edge-demo] [store-kv] [edge-app-kv] [edge-demo-kv]` (all six without
//! arguments). An artifact that was not built fails with the reason. `make
//! edge-wasm` runs `paths edge-demo`, `make edge-wasm-kv` `paths
//! store-kv edge-app-kv edge-demo-kv`.

use std::path::Path;
use std::process::ExitCode;

use sqlite_sessions_artifacts::Unavailable;

fn main() -> ExitCode {
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names = [
            "store",
            "edge-app",
            "edge-demo",
            "store-kv",
            "edge-app-kv",
            "edge-demo-kv",
        ]
        .map(String::from)
        .to_vec();
    }
    for name in &names {
        let found: Result<&Path, Unavailable> = match name.as_str() {
            "store" => sqlite_sessions_artifacts::store(),
            "edge-app" => sqlite_sessions_artifacts::edge_app(),
            "edge-demo" => sqlite_sessions_artifacts::edge_demo(),
            "store-kv" => sqlite_sessions_artifacts::store_kv(),
            "edge-app-kv" => sqlite_sessions_artifacts::edge_app_kv(),
            "edge-demo-kv" => sqlite_sessions_artifacts::edge_demo_kv(),
            other => {
                eprintln!(
                    "paths: unknown artifact {other:?} (store, edge-app, edge-demo, \
                     store-kv, edge-app-kv or edge-demo-kv)"
                );
                return ExitCode::from(2);
            }
        };
        match found {
            Ok(path) => println!("{}", path.display()),
            Err(e) => {
                eprintln!("paths: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
