//! The shared conformance flow (`conformance/flow.json`) and the one place
//! where every runner's report is judged.
//!
//! Runners report each case's *actual* outcome; the verdict is made here, in
//! Rust, against the flow's expectations, so a runner that misreads a result
//! or skips a case cannot pass by saying so.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// `conformance/flow.json`, parsed.
pub struct Flow {
    pub path: PathBuf,
    pub text: String,
    pub value: Value,
}

impl Flow {
    pub fn load() -> Flow {
        let path = repo_root().join("conformance").join("flow.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        Flow { path, text, value }
    }

    pub fn cases(&self) -> &[Value] {
        self.value["cases"]
            .as_array()
            .expect("flow.cases is a list")
    }

    /// `config.max-value-bytes`, the only config field the flow sets.
    pub fn max_value_bytes(&self) -> Option<u32> {
        self.value["config"]["max-value-bytes"]
            .as_u64()
            .map(|n| n as u32)
    }

    /// `final`: saved-id name → the keys that session must hold, as JSON.
    pub fn final_state(&self) -> &Map<String, Value> {
        self.value["final"]
            .as_object()
            .expect("flow.final is a map")
    }
}

/// The repository root (host-test's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-test lives in the workspace")
        .to_path_buf()
}

/// What a runner prints: `{"runner", "cases": [{"name", "actual", "pass"}], "ids"}`.
pub struct Report {
    pub runner: String,
    /// `(name, actual, the runner's own verdict)` per case.
    pub cases: Vec<(String, Value, Option<bool>)>,
    pub ids: Map<String, Value>,
}

impl Report {
    pub fn parse(text: &str) -> Report {
        let v: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the runner's report is not JSON ({e}): {text}"));
        let runner = v["runner"].as_str().unwrap_or("?").to_owned();
        let cases = v["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("report without cases: {text}"))
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("?").to_owned(),
                    c["actual"].clone(),
                    c["pass"].as_bool(),
                )
            })
            .collect();
        let ids = v["ids"].as_object().cloned().unwrap_or_default();
        Report { runner, cases, ids }
    }

    /// The id a runner saved under `name` (an `id` case's `save`).
    pub fn id(&self, name: &str) -> &str {
        self.ids
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: no saved id {name:?}", self.runner))
    }
}

/// Asserts that `report` answers every case of `flow`, in order, with the
/// expected outcome, and that the runner's own check of each case agrees.
/// Returns the number of cases; prints the count.
pub fn assert_conforms(runner: &str, flow: &Flow, report: &Report) -> usize {
    let cases = flow.cases();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap_or("?");
        match report.cases.get(i) {
            None => failures.push(format!("#{i} {name:?}: not reported")),
            Some((got_name, _, _)) if got_name != name => {
                failures.push(format!("#{i} {name:?}: reported as {got_name:?}"))
            }
            Some((_, actual, _)) if *actual != case["expect"] => failures.push(format!(
                "#{i} {name:?} ({}): expected {}, got {}",
                case["op"], case["expect"], actual
            )),
            Some((_, _, own)) if *own != Some(true) => failures.push(format!(
                "#{i} {name:?}: the outcome is right but the runner's own check said {own:?}"
            )),
            Some(_) => {}
        }
    }
    if report.cases.len() > cases.len() {
        failures.push(format!(
            "{} extra cases reported",
            report.cases.len() - cases.len()
        ));
    }
    let passed = cases.len() - failures.len().min(cases.len());
    println!(
        "conformance [{runner}]: {passed}/{} cases passed ({})",
        cases.len(),
        flow.path.display()
    );
    assert!(
        failures.is_empty(),
        "{runner} ({}) failed {} conformance case(s):\n  {}",
        report.runner,
        failures.len(),
        failures.join("\n  ")
    );
    cases.len()
}

/// Reads the sessions the flow leaves behind straight from `dir` with the
/// *native* build of the store (rusqlite on the host, no wasm involved), and
/// asserts they hold exactly `flow.final`: the data really landed on disk.
pub fn assert_final_state_native(runner: &str, dir: &Path, flow: &Flow, report: &Report) {
    let store = sqlite_sessions::Store::open(sqlite_sessions::StoreConfig::new(
        dir.to_str().expect("UTF-8 temp dir"),
    ))
    .expect("opening the session directory natively");
    for (var, expected) in flow.final_state() {
        let id = report.id(var);
        let mut session = store
            .load(id)
            .expect("native load")
            .unwrap_or_else(|| panic!("{runner}: session {var} ({id}) is not on disk"));
        let expected = expected.as_object().expect("final.<id> is a map");
        let keys = session.keys().expect("native keys");
        let mut want: Vec<&String> = expected.keys().collect();
        want.sort();
        assert_eq!(
            keys.iter().collect::<Vec<_>>(),
            want,
            "{runner}: keys of {var} on disk"
        );
        for (key, value) in expected {
            let json = session
                .get_json(key)
                .expect("native get-json")
                .unwrap_or_else(|| panic!("{runner}: {var}.{key} missing on disk"));
            let got: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(&got, value, "{runner}: {var}.{key} on disk");
        }
    }
    println!(
        "conformance [{runner}]: {} session(s) verified on disk by the native store",
        flow.final_state().len()
    );
}

/// A JSON path argument (`[{"key": k} | {"index": i}]`) as WIT path segments.
pub fn path_segments(v: &Value) -> Vec<sqlite_sessions_host::PathSegment> {
    v.as_array()
        .expect("path is a list")
        .iter()
        .map(|seg| match (seg.get("key"), seg.get("index")) {
            (Some(k), None) => {
                sqlite_sessions_host::PathSegment::Key(k.as_str().unwrap().to_owned())
            }
            (None, Some(i)) => sqlite_sessions_host::PathSegment::Index(i.as_u64().unwrap() as u32),
            _ => panic!("bad path segment {seg}"),
        })
        .collect()
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
