//! Compare-and-swap as one Lua script: atomic on the server, single-key (so cluster-safe), one
//! round trip, and on a conflict it returns the value it found, so the caller's next handle
//! needs no extra read.
//!
//! The script compares the bytes themselves rather than a digest: the caller sends the value it
//! saw along with the new one (the upload doubles), but the server spends a memory compare
//! where `redis.sha1hex` would hash the whole stored value on its single thread, and equality
//! is exact, with no collision argument needed. Absent and empty are different expectations:
//! the flag argument tells them apart.

use crate::keyvalue::store::Swap;
use redis::{Cmd, ErrorKind, RedisResult, Script, Value};
use std::sync::LazyLock;

const SOURCE: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return {0, current} end
elseif current then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[3])
return {1}
";

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));

fn with_args(mut cmd: Cmd, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Cmd {
    let (flag, seen) = match expected {
        Some(seen) => ("1", seen),
        None => ("0", &[][..]),
    };
    cmd.arg(1).arg(key).arg(flag).arg(seen).arg(value);
    cmd
}

/// The usual call: the script by its hash. Answers NOSCRIPT on a server that has not seen it.
pub(crate) fn by_hash(key: &str, expected: Option<&[u8]>, value: &[u8]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(SCRIPT.get_hash());
    with_args(cmd, key, expected, value)
}

/// The fallback after NOSCRIPT: the script's source, which the server also caches.
pub(crate) fn by_source(key: &str, expected: Option<&[u8]>, value: &[u8]) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SOURCE);
    with_args(cmd, key, expected, value)
}

/// Reads the script's reply: `{1}`, or `{0, current}` where a nil current means absent.
pub(crate) fn outcome(reply: Value) -> RedisResult<Swap> {
    let unexpected = || {
        redis::RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "compare-and-swap script returned an unexpected reply",
        ))
    };
    let Value::Array(items) = reply else {
        return Err(unexpected());
    };
    match items.as_slice() {
        [Value::Int(1)] => Ok(Swap::Done),
        [Value::Int(0)] | [Value::Int(0), Value::Nil] => Ok(Swap::Conflict(None)),
        [Value::Int(0), Value::BulkString(current)] => Ok(Swap::Conflict(Some(current.clone()))),
        _ => Err(unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_map_to_outcomes() {
        assert_eq!(
            outcome(Value::Array(vec![Value::Int(1)])).unwrap(),
            Swap::Done
        );
        assert_eq!(
            outcome(Value::Array(vec![Value::Int(0), Value::Nil])).unwrap(),
            Swap::Conflict(None)
        );
        assert_eq!(
            outcome(Value::Array(vec![
                Value::Int(0),
                Value::BulkString(b"v".to_vec())
            ]))
            .unwrap(),
            Swap::Conflict(Some(b"v".to_vec()))
        );
        assert!(outcome(Value::Okay).is_err());
        assert!(outcome(Value::Array(vec![Value::Int(2)])).is_err());
    }

    #[test]
    fn absent_and_empty_expectations_differ() {
        let absent = by_hash("k", None, b"new");
        let empty = by_hash("k", Some(b""), b"new");
        let args = |c: &Cmd| c.args_iter().map(|a| format!("{a:?}")).collect::<Vec<_>>();
        assert_ne!(args(&absent), args(&empty));
    }
}
