//! Values: CBOR validation and encoding, and conversion to and from JSON.
//!
//! The store keeps every value as the CBOR bytes it was given (after checking
//! them), so a plain `get`/`set` never re-encodes. Decoding into a tree is
//! needed only for nested edits and for the JSON calls.

use crate::error::{Error, Result};
use ciborium::value::{Integer, Value};

/// Deepest nesting accepted. ciborium recurses per level, so the limit also
/// bounds stack use: hostile input gets `invalid-value`, never a trap.
pub const MAX_DEPTH: usize = 256;

/// Decodes exactly one CBOR item; trailing bytes or malformed input are errors.
pub fn decode(bytes: &[u8]) -> Result<Value> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
        .map_err(|e| Error::InvalidValue(format!("not well-formed CBOR: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::InvalidValue(format!(
            "{} trailing bytes after the CBOR item",
            rest.len()
        )));
    }
    Ok(value)
}

/// Checks that `bytes` are one well-formed CBOR item.
pub fn validate(bytes: &[u8]) -> Result<()> {
    decode(bytes).map(drop)
}

pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

/// Parses JSON text into a CBOR value.
pub fn json_to_value(json: &str) -> Result<Value> {
    let parsed: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::InvalidValue(format!("not valid JSON: {e}")))?;
    Ok(from_json(parsed))
}

/// Parses JSON text and encodes it as CBOR bytes.
pub fn json_to_cbor(json: &str) -> Result<Vec<u8>> {
    json_to_value(json).map(|v| encode(&v))
}

/// Decodes CBOR bytes and renders them as JSON text.
pub fn cbor_to_json(bytes: &[u8]) -> Result<String> {
    let json = to_json(decode(bytes)?)?;
    Ok(serde_json::to_string(&json).expect("a serde_json::Value always serializes"))
}

fn from_json(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::Integer(u.into())
            } else if let Some(i) = n.as_i64() {
                Value::Integer(i.into())
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::Text(s),
        J::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        J::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::Text(k), from_json(v)))
                .collect(),
        ),
    }
}

fn to_json(value: Value) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(b),
        Value::Integer(i) => integer_to_json(i)?,
        Value::Float(f) => serde_json::Number::from_f64(f)
            .map(J::Number)
            .ok_or_else(|| Error::NotJson(format!("float {f} has no JSON form")))?,
        Value::Text(s) => J::String(s),
        Value::Array(items) => J::Array(items.into_iter().map(to_json).collect::<Result<_>>()?),
        Value::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                let Value::Text(k) = k else {
                    return Err(Error::NotJson("map key is not text".into()));
                };
                map.insert(k, to_json(v)?);
            }
            J::Object(map)
        }
        Value::Bytes(_) => return Err(Error::NotJson("byte string".into())),
        Value::Tag(tag, _) => return Err(Error::NotJson(format!("tag {tag}"))),
        other => return Err(Error::NotJson(format!("{other:?}"))),
    })
}

fn integer_to_json(i: Integer) -> Result<serde_json::Value> {
    let wide = i128::from(i);
    if let Ok(u) = u64::try_from(wide) {
        Ok(u.into())
    } else if let Ok(s) = i64::try_from(wide) {
        Ok(s.into())
    } else {
        Err(Error::NotJson(format!("integer {wide} exceeds 64 bits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_cbor() {
        for json in [
            r#"{"a":[1,-2,3.5,"x",null,true]}"#,
            "18446744073709551615",
            "-9223372036854775808",
        ] {
            assert_eq!(cbor_to_json(&json_to_cbor(json).unwrap()).unwrap(), json);
        }
    }

    #[test]
    fn rejects_malformed_and_trailing_cbor() {
        assert!(matches!(decode(&[]), Err(Error::InvalidValue(_))));
        assert!(matches!(decode(&[0x61]), Err(Error::InvalidValue(_))));
        assert!(matches!(decode(&[0x01, 0x01]), Err(Error::InvalidValue(_))));
        assert!(matches!(
            decode(&vec![0x81; 10_000]),
            Err(Error::InvalidValue(_))
        ));
    }

    #[test]
    fn bytes_have_no_json_form() {
        let bytes = encode(&Value::Bytes(vec![1, 2]));
        assert!(matches!(cbor_to_json(&bytes), Err(Error::NotJson(_))));
    }
}
