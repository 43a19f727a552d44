//! Prints where the artifacts are, one path a line: `paths [store] [edge-app]
//! [edge-demo]` (all three without arguments). An artifact that was not
//! built fails with the reason. `make edge-wasm` runs `paths edge-demo`.

use std::path::Path;
use std::process::ExitCode;

use sqlite_sessions_artifacts::Unavailable;

fn main() -> ExitCode {
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names = vec!["store".into(), "edge-app".into(), "edge-demo".into()];
    }
    for name in &names {
        let found: Result<&Path, Unavailable> = match name.as_str() {
            "store" => sqlite_sessions_artifacts::store(),
            "edge-app" => sqlite_sessions_artifacts::edge_app(),
            "edge-demo" => sqlite_sessions_artifacts::edge_demo(),
            other => {
                eprintln!("paths: unknown artifact {other:?} (store, edge-app or edge-demo)");
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
