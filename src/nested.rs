//! Edits inside one stored value: `set-in`, `remove-in` and `append`.
//!
//! The seed's `session['a']['b'] = 1` was silently lost because the caller
//! mutated a copy. Here the edit is described by a path and applied to the
//! stored value inside one transaction, so it persists and cannot race with
//! another request's edit of the same key.

use crate::error::{Error, Result};
use ciborium::value::Value;

/// One step into a nested value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(u32),
}

/// Sets the part of `root` that `path` names to `new`. A missing root or a
/// missing map along the path becomes an empty map; an array index must exist
/// or equal the length (append).
pub fn set_in(root: Option<Value>, path: &[Segment], new: Value) -> Result<Value> {
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| Error::InvalidPath("empty path: use set".into()))?;
    let mut root = root.unwrap_or_else(|| Value::Map(Vec::new()));
    let mut node = &mut root;
    for (depth, segment) in parents.iter().enumerate() {
        node = child_or_new_map(node, segment, depth)?;
    }
    match (node, last) {
        (Value::Map(entries), Segment::Key(k)) => match find_key(entries, k) {
            Some(i) => entries[i].1 = new,
            None => entries.push((Value::Text(k.clone()), new)),
        },
        (Value::Array(items), Segment::Index(i)) => {
            let i = *i as usize;
            match i.cmp(&items.len()) {
                std::cmp::Ordering::Less => items[i] = new,
                std::cmp::Ordering::Equal => items.push(new),
                std::cmp::Ordering::Greater => {
                    return Err(out_of_range(i, items.len(), parents.len()))
                }
            }
        }
        (other, segment) => return Err(mismatch(other, segment, parents.len())),
    }
    Ok(root)
}

/// Removes the part of `root` that `path` names. Returns the new root and
/// whether anything was removed; a path that leads nowhere removes nothing.
pub fn remove_in(root: Value, path: &[Segment]) -> Result<(Value, bool)> {
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| Error::InvalidPath("empty path: use remove".into()))?;
    let mut root = root;
    let mut node = &mut root;
    for (depth, segment) in parents.iter().enumerate() {
        match existing_child(node, segment, depth)? {
            Some(child) => node = child,
            None => return Ok((root, false)),
        }
    }
    let removed = match (node, last) {
        (Value::Map(entries), Segment::Key(k)) => match find_key(entries, k) {
            Some(i) => {
                entries.remove(i);
                true
            }
            None => false,
        },
        (Value::Array(items), Segment::Index(i)) => {
            let i = *i as usize;
            if i < items.len() {
                items.remove(i);
                true
            } else {
                false
            }
        }
        (other, segment) => return Err(mismatch(other, segment, parents.len())),
    };
    Ok((root, removed))
}

/// Appends `item` to the array `root`, which is created if missing. Returns
/// the new array and its length.
pub fn append(root: Option<Value>, item: Value) -> Result<(Value, usize)> {
    match root {
        None => Ok((Value::Array(vec![item]), 1)),
        Some(Value::Array(mut items)) => {
            items.push(item);
            let len = items.len();
            Ok((Value::Array(items), len))
        }
        Some(other) => Err(Error::InvalidPath(format!(
            "cannot append to a {}",
            kind(&other)
        ))),
    }
}

fn find_key(entries: &[(Value, Value)], key: &str) -> Option<usize> {
    entries
        .iter()
        .position(|(k, _)| matches!(k, Value::Text(t) if t == key))
}

fn child_or_new_map<'a>(
    node: &'a mut Value,
    segment: &Segment,
    depth: usize,
) -> Result<&'a mut Value> {
    match (node, segment) {
        (Value::Map(entries), Segment::Key(k)) => {
            let i = match find_key(entries, k) {
                Some(i) => i,
                None => {
                    entries.push((Value::Text(k.clone()), Value::Map(Vec::new())));
                    entries.len() - 1
                }
            };
            Ok(&mut entries[i].1)
        }
        (Value::Array(items), Segment::Index(i)) => {
            let len = items.len();
            items
                .get_mut(*i as usize)
                .ok_or_else(|| out_of_range(*i as usize, len, depth))
        }
        (other, segment) => Err(mismatch(other, segment, depth)),
    }
}

fn existing_child<'a>(
    node: &'a mut Value,
    segment: &Segment,
    depth: usize,
) -> Result<Option<&'a mut Value>> {
    match (node, segment) {
        (Value::Map(entries), Segment::Key(k)) => {
            Ok(find_key(entries, k).map(move |i| &mut entries[i].1))
        }
        (Value::Array(items), Segment::Index(i)) => Ok(items.get_mut(*i as usize)),
        (other, segment) => Err(mismatch(other, segment, depth)),
    }
}

fn out_of_range(index: usize, len: usize, depth: usize) -> Error {
    Error::InvalidPath(format!(
        "segment {depth}: index {index} is past the end of an array of length {len}"
    ))
}

fn mismatch(node: &Value, segment: &Segment, depth: usize) -> Error {
    let wanted = match segment {
        Segment::Key(_) => "a map",
        Segment::Index(_) => "an array",
    };
    Error::InvalidPath(format!(
        "segment {depth}: expected {wanted}, found {}",
        kind(node)
    ))
}

/// What kind of value this is, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Map(_) => "map",
        Value::Array(_) => "array",
        Value::Text(_) => "text",
        Value::Bytes(_) => "byte string",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Tag(..) => "tagged value",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{cbor_to_json, encode, json_to_value};

    fn json(v: &Value) -> String {
        cbor_to_json(&encode(v)).unwrap()
    }
    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn set_in_creates_maps_and_appends_at_len() {
        let v = set_in(None, &[key("a"), key("b")], Value::Integer(1.into())).unwrap();
        assert_eq!(json(&v), r#"{"a":{"b":1}}"#);
        let v = set_in(
            Some(json_to_value("[1]").unwrap()),
            &[Segment::Index(1)],
            Value::Null,
        )
        .unwrap();
        assert_eq!(json(&v), "[1,null]");
        let err = set_in(
            Some(json_to_value("[1]").unwrap()),
            &[Segment::Index(3)],
            Value::Null,
        );
        assert!(matches!(err, Err(Error::InvalidPath(_))));
        let err = set_in(Some(json_to_value("5").unwrap()), &[key("a")], Value::Null);
        assert!(matches!(err, Err(Error::InvalidPath(_))));
    }

    #[test]
    fn remove_in_reports_whether_it_removed() {
        let v = json_to_value(r#"{"a":{"b":[1,2]}}"#).unwrap();
        let (v, removed) = remove_in(v, &[key("a"), key("b"), Segment::Index(0)]).unwrap();
        assert!(removed);
        assert_eq!(json(&v), r#"{"a":{"b":[2]}}"#);
        let (_, removed) = remove_in(v, &[key("x"), key("y")]).unwrap();
        assert!(!removed);
    }
}
