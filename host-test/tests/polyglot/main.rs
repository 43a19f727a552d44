//! The conformance flow (`conformance/flow.json`) played by four runners
//! against the same, unmodified store component:
//!
//! 1. Rust, through the embedding library (`sqlite-sessions-host`), on every
//!    backend: a session directory, and the store's key-value build on a
//!    real Redis, standalone and cluster;
//! 2. a Python guest (componentize-py) composed with the store by `wac plug`;
//! 3. a JavaScript guest (componentize-js), composed the same way;
//! 4. Node.js as a second host runtime, on the store transpiled by `jco`.
//!
//! Every runner reports each case's actual outcome and `flow::assert_conforms`
//! judges it, so a behaviour difference between runtimes or bindings shows up
//! as a named failing case. The sessions a flow leaves behind are then read
//! back from disk by another implementation.
//!
//! The guests and the Node bindings are built by `polyglot/build.sh`, which
//! needs the tools `polyglot/setup.sh` installs (`make test` runs it first).
//! A missing tool fails these tests loudly; nothing is skipped.

mod artifacts;
mod flow;
mod guest;
mod node;
mod rust_runner;

use std::path::Path;

use flow::{assert_conforms, assert_final_state_native, Flow, Report};
use host_test::fixtures::Env;
use host_test::Backend;
use serde_json::{json, Value};
use sqlite_sessions_host::default_config;

/// The Rust runner on `backend`. The sessions it leaves are then read by the
/// native store from a directory: the bucket's values, written out as the
/// files their keys name, are the very databases a directory holds.
fn rust_wasmtime_runner_passes_the_flow(backend: Backend) {
    let flow = Flow::load();
    let env = Env::on(backend);
    let report = Report::parse(&rust_runner::run(&flow, &env).unwrap());
    let runner = format!("rust-wasmtime, {}", backend.name());
    assert_conforms(&runner, &flow, &report);
    assert_final_state_native(&runner, env.as_directory().path(), &flow, &report);
}

host_test::on_every_backend!(rust_wasmtime_runner_passes_the_flow);

fn guest_passes_the_flow(runner: &str, composed: &Path) {
    let flow = Flow::load();
    let dir = tempfile::tempdir().unwrap();
    let report = guest::run(composed, &flow.text, dir.path())
        .unwrap_or_else(|e| panic!("{runner}: the guest trapped: {e:?}"))
        .unwrap_or_else(|e| panic!("{runner}: the guest returned err: {e}"));
    let report = Report::parse(&report);
    assert_eq!(report.runner, runner, "the report came from another runner");
    assert_conforms(runner, &flow, &report);
    assert_final_state_native(runner, dir.path(), &flow, &report);
}

#[test]
fn python_guest_passes_the_flow() {
    guest_passes_the_flow("python-componentize-py", &artifacts::get().python);
}

#[test]
fn javascript_guest_passes_the_flow() {
    guest_passes_the_flow("javascript-componentize-js", &artifacts::get().js);
}

#[test]
fn a_guest_reports_a_malformed_flow_as_err() {
    let dir = tempfile::tempdir().unwrap();
    for composed in [&artifacts::get().python, &artifacts::get().js] {
        let r = guest::run(composed, "{\"cases\": 3", dir.path()).unwrap();
        let err = r.expect_err("a malformed flow must be an err, not a report");
        assert!(
            err.contains("malformed flow"),
            "{}: {err}",
            composed.display()
        );
    }
}

#[test]
fn node_jco_host_passes_the_flow() {
    let flow = Flow::load();
    let dir = tempfile::tempdir().unwrap();
    let bindings = &artifacts::get().node_bindings;
    let flow_path = flow.path.to_str().unwrap();
    let out = node::run_script(bindings, dir.path(), &["flow", "--flow", flow_path]);
    let report = Report::parse(&out.to_string());
    assert_conforms("node-jco", &flow, &report);
    assert_final_state_native("node-jco", dir.path(), &flow, &report);
}

/// The on-disk format is the runtime's business only: sessions written by
/// the store under Node are read by the store under wasmtime, and the other
/// way round.
#[test]
fn node_and_wasmtime_read_each_others_session_files() {
    let flow = Flow::load();
    let bindings = &artifacts::get().node_bindings;
    let (var, expected) = flow.final_state().iter().next().expect("flow.final");

    // Node writes (the whole flow), wasmtime reads.
    let dir = tempfile::tempdir().unwrap();
    let flow_path = flow.path.to_str().unwrap();
    let out = node::run_script(bindings, dir.path(), &["flow", "--flow", flow_path]);
    let id = Report::parse(&out.to_string()).id(var).to_owned();
    let mut req = host_test::runtime().request(dir.path()).unwrap();
    let store = req.open_store(&default_config()).unwrap().unwrap();
    let s = req
        .store(&store)
        .load(&id)
        .unwrap()
        .unwrap()
        .unwrap_or_else(|| panic!("wasmtime does not find the session Node wrote ({id})"));
    let mut read = serde_json::Map::new();
    for key in req.session(&s).keys().unwrap().unwrap() {
        let json = req.session(&s).get_json(&key).unwrap().unwrap().unwrap();
        read.insert(key, serde_json::from_str(&json).unwrap());
    }
    req.drop_session(s).unwrap();
    req.drop_store(store).unwrap();
    assert_eq!(
        &Value::Object(read),
        expected,
        "wasmtime reading Node's session"
    );

    // wasmtime writes (the Rust runner's flow), Node reads.
    let env = Env::new();
    let report = Report::parse(&rust_runner::run(&flow, &env).unwrap());
    let id = report.id(var);
    let out = node::run_script(bindings, env.path(), &["read", "--id", id]);
    assert_eq!(
        out["found"],
        json!(true),
        "Node does not find the session wasmtime wrote ({id})"
    );
    assert_eq!(&out["values"], expected, "Node reading wasmtime's session");
    println!(
        "node <-> wasmtime: each read the other's session file ({} keys)",
        expected.as_object().unwrap().len()
    );
}
