//! Runner 1: the flow played from Rust against the store under wasmtime,
//! through the embedding library (one `Request`, i.e. one instance, for the
//! whole flow, as a guest runner has), on any backend: a directory, or a
//! bucket in Redis for the store's key-value build.

use std::collections::HashMap;

use host_test::fixtures::Env;
use serde_json::{json, Map, Value};
use sqlite_sessions_host::{Error, Request, SessionHandle, StoreHandle};

use crate::flow::{hex_decode, hex_encode, path_segments, Flow};

/// The WIT name of an error's variant, which is all the flow compares.
pub fn variant_name(e: &Error) -> &'static str {
    match e {
        Error::InvalidId => "invalid-id",
        Error::InvalidKey(_) => "invalid-key",
        Error::InvalidValue(_) => "invalid-value",
        Error::InvalidPath(_) => "invalid-path",
        Error::NotJson(_) => "not-json",
        Error::NotFound => "not-found",
        Error::NotAnInteger(_) => "not-an-integer",
        Error::Overflow => "overflow",
        Error::TooLarge(_) => "too-large",
        Error::Busy => "busy",
        Error::Storage(_) => "storage",
        Error::Config(_) => "config",
        Error::UnsafeDirectory(_) => "unsafe-directory",
    }
}

fn outcome<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => json!({ "ok": ok(v) }),
        Err(e) => json!({ "error": variant_name(&e) }),
    }
}

fn json_arg(case: &Value) -> String {
    match case.get("json-text") {
        Some(t) => t.as_str().expect("json-text is a string").to_owned(),
        None => case["json"].to_string(),
    }
}

fn parse_json_out(s: Option<String>) -> Value {
    s.map(|t| serde_json::from_str(&t).expect("the store returned invalid JSON"))
        .unwrap_or(Value::Null)
}

/// Plays `flow` on `env`'s directory (preopened as `/sessions`) or bucket
/// and returns the report in the same JSON shape the other runners print.
pub fn run(flow: &Flow, env: &Env) -> anyhow::Result<String> {
    let mut req = host_test::runtime_for(env.backend()).request(env.storage())?;
    let mut cfg = env.config.clone();
    cfg.max_value_bytes = flow.max_value_bytes();
    let store = req
        .open_store(&cfg)?
        .map_err(|e| anyhow::anyhow!("store.open: {e:?}"))?;

    let mut sessions: HashMap<String, SessionHandle> = HashMap::new();
    let mut ids: Map<String, Value> = Map::new();
    let mut results = Vec::new();
    for case in flow.cases() {
        let actual = play(&mut req, &store, &mut sessions, &mut ids, case)?;
        let pass = actual == case["expect"];
        results.push(json!({ "name": case["name"], "actual": actual, "pass": pass }));
    }
    for (_, s) in sessions.drain() {
        req.drop_session(s)?;
    }
    req.drop_store(store)?;
    Ok(json!({ "runner": "rust-wasmtime", "cases": results, "ids": ids }).to_string())
}

fn play(
    req: &mut Request,
    store: &StoreHandle,
    sessions: &mut HashMap<String, SessionHandle>,
    ids: &mut Map<String, Value>,
    case: &Value,
) -> anyhow::Result<Value> {
    let op = case["op"].as_str().expect("op");
    let key = case["key"].as_str().unwrap_or_default();
    let id_arg = || -> String {
        let id = &case["id"];
        match (id.get("var"), id.get("literal")) {
            (Some(v), _) => ids[v.as_str().unwrap()].as_str().unwrap().to_owned(),
            (_, Some(l)) => l.as_str().unwrap().to_owned(),
            _ => panic!("bad id argument {id}"),
        }
    };
    // Store-level operations.
    match op {
        "create" => {
            let s = req.store(store).create()?;
            sessions.insert(case["as"].as_str().unwrap().to_owned(), s);
            return Ok(json!({ "ok": null }));
        }
        "load" => {
            let r = req.store(store).load(&id_arg())?;
            return Ok(outcome(r, |found| {
                if let (Some(s), Some(name)) = (found, case["as"].as_str()) {
                    sessions.insert(name.to_owned(), s);
                }
                json!(found.is_some())
            }));
        }
        "destroy-id" => {
            return Ok(outcome(req.store(store).destroy_id(&id_arg())?, |b| {
                json!(b)
            }))
        }
        "cookie-value-from-header" => {
            let header = case["header"].as_str().unwrap();
            return Ok(json!({ "ok": req.store(store).cookie_value_from_header(header)? }));
        }
        _ => {}
    }
    // Session operations.
    let name = case["session"].as_str().expect("session");
    let handle = *sessions
        .get(name)
        .unwrap_or_else(|| panic!("no session {name}"));
    let mut s = req.session(&handle);
    let none = |()| Value::Null;
    Ok(match op {
        "id" => {
            ids.insert(case["save"].as_str().unwrap().to_owned(), json!(s.id()?));
            json!({ "ok": null })
        }
        "is-new" => json!({ "ok": s.is_new()? }),
        "get" => outcome(s.get(key)?, |v| json!(v.map(|b| hex_encode(&b)))),
        "get-json" => outcome(s.get_json(key)?, parse_json_out),
        "set" => outcome(
            s.set(key, &hex_decode(case["cbor"].as_str().unwrap()))?,
            none,
        ),
        "set-json" => outcome(s.set_json(key, &json_arg(case))?, none),
        "remove" => outcome(s.remove(key)?, |b| json!(b)),
        "take" => outcome(s.take(key)?, |v| json!(v.map(|b| hex_encode(&b)))),
        "take-json" => outcome(s.take_json(key)?, parse_json_out),
        "contains" => outcome(s.contains(key)?, |b| json!(b)),
        "keys" => outcome(s.keys()?, |k| json!(k)),
        "len" => outcome(s.len()?, |n| json!(n)),
        "clear" => outcome(s.clear()?, none),
        "destroy" => outcome(s.destroy()?, none),
        "regenerate" => outcome(s.regenerate()?, none),
        "set-in" => {
            let path = path_segments(&case["path"]);
            let value = hex_decode(case["cbor"].as_str().unwrap());
            outcome(s.set_in(key, &path, &value)?, none)
        }
        "set-in-json" => {
            let path = path_segments(&case["path"]);
            outcome(s.set_in_json(key, &path, &json_arg(case))?, none)
        }
        "remove-in" => outcome(s.remove_in(key, &path_segments(&case["path"]))?, |b| {
            json!(b)
        }),
        "append" => outcome(
            s.append(key, &hex_decode(case["cbor"].as_str().unwrap()))?,
            |n| json!(n),
        ),
        "append-json" => outcome(s.append_json(key, &json_arg(case))?, |n| json!(n)),
        other => anyhow::bail!("unknown op {other:?}"),
    })
}
