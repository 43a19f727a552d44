//! Runner 4: Node.js as a second host runtime, on the store transpiled by
//! `jco transpile` (`polyglot/node/run-flow.mjs`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::flow::repo_root;

/// Runs `run-flow.mjs <args>` on `bindings` with `dir` preopened as
/// `/sessions`, and returns its stdout as JSON. Panics, with Node's stderr,
/// if Node is missing or the script fails.
pub fn run_script(bindings: &Path, dir: &Path, args: &[&str]) -> Value {
    let script = repo_root().join("polyglot/node/run-flow.mjs");
    let out = Command::new("node")
        .arg(&script)
        .args(args)
        .arg("--bindings")
        .arg(bindings)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("running node (is Node.js installed?): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {} {args:?} failed ({}):\n{stderr}",
        script.display(),
        out.status
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "node printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    eprintln!(
        "node-jco: preview2-shim workaround cleared mutate-directory on {} openAt call(s)",
        value["shim"]["mutateDirectoryStripped"]
    );
    value
}
