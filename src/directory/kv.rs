//! The walk over a bucket: page by page of its key listing, in the order
//! the key-value store lists them. A key listing gives no order and may
//! repeat or miss keys written during the pass (`wasi:keyvalue`'s
//! `list-keys`); a sweep only needs every key that exists throughout a pass
//! to come by once, and a session missed is found by the next pass.
//!
//! A slice ends when its budget is spent, which may be part-way through a
//! page. Listing the same page again would not do: keys deleted meanwhile
//! (by this very sweep) shift it. So the cursor carries the session keys of
//! the page still to be handled, and the store's cursor of the page after:
//! `kv;<seen>;<pending keys, comma-separated>;<next>`, where `<seen>` counts
//! the sessions the pass has left in place so far (handed out, and still
//! there after the visit) and `<next>` is empty at the start of a pass, `-`
//! after its last page, or `+` and the store's cursor.

use super::{Others, Visited, WalkItem, Walked};
use crate::error::{Error, Result};
use crate::layout::SessionFile;
use crate::vfs;

/// Where the pass goes next, after the pending keys.
#[derive(Default, PartialEq, Eq, Debug)]
enum Next {
    /// The first page.
    #[default]
    First,
    /// The page at the store's cursor.
    Page(String),
    /// Nothing: the pass is over.
    End,
}

/// A position in a pass.
#[derive(Default)]
struct Position {
    seen: u64,
    pending: Vec<String>,
    next: Next,
}

const PREFIX: &str = "kv;";

impl Position {
    fn parse(text: &str) -> Result<Position> {
        let bad = || Error::InvalidValue(format!("not a sweep cursor: {text:?}"));
        let rest = text.strip_prefix(PREFIX).ok_or_else(bad)?;
        let mut parts = rest.splitn(3, ';');
        let seen = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
        let pending = parts.next().ok_or_else(bad)?;
        let pending: Vec<String> = if pending.is_empty() {
            Vec::new()
        } else {
            pending.split(',').map(str::to_owned).collect()
        };
        if !pending.iter().all(|k| is_session_key(k)) {
            return Err(bad());
        }
        let next = match parts.next().ok_or_else(bad)? {
            "" => Next::First,
            "-" => Next::End,
            page => Next::Page(page.strip_prefix('+').ok_or_else(bad)?.to_owned()),
        };
        Ok(Position {
            seen,
            pending,
            next,
        })
    }

    fn render(&self) -> String {
        let next = match &self.next {
            Next::First => String::new(),
            Next::End => "-".to_owned(),
            Next::Page(page) => format!("+{page}"),
        };
        format!("{PREFIX}{};{};{next}", self.seen, self.pending.join(","))
    }
}

/// Whether `key` is a session's: `<shard>/<name>`, as a file would be named.
fn is_session_key(key: &str) -> bool {
    key.split_once('/')
        .is_some_and(|(shard, name)| SessionFile::is_session_file_name(shard, name))
}

/// One slice of a resumable pass over the bucket `bucket`, handing at most
/// `budget` (at least 1) sessions to `visit`, and, unless `others` is
/// `Skip`, every other key as it comes.
pub fn walk(
    bucket: &str,
    cursor: Option<&str>,
    budget: u32,
    others: Others,
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<Visited>,
) -> Result<Walked> {
    if budget == 0 {
        return Err(Error::InvalidValue("budget must be at least 1".into()));
    }
    let mut pos = cursor.map(Position::parse).transpose()?.unwrap_or_default();
    let mut examined = 0;
    loop {
        while !pos.pending.is_empty() {
            if examined == budget {
                return Ok(Walked {
                    cursor: Some(pos.render()),
                    examined,
                    remaining_estimate: pos.pending.len() as u64,
                    finished_shards: Vec::new(),
                    pass_total: None,
                });
            }
            let key = pos.pending.remove(0);
            examined += 1;
            let path = format!("{bucket}/{key}");
            let visited = visit(WalkItem::Session {
                rel: &key,
                path: &path,
            })?;
            if visited == Visited::Kept {
                pos.seen += 1;
            }
        }
        let page = match std::mem::take(&mut pos.next) {
            Next::End => break,
            Next::First => None,
            Next::Page(page) => Some(page),
        };
        let (keys, next) = vfs::dir::list_keys(bucket, page.as_deref())?;
        pos.next = next.map_or(Next::End, Next::Page);
        for key in keys {
            if is_session_key(&key) {
                pos.pending.push(key);
            } else if others != Others::Skip {
                visit(WalkItem::Other { rel: &key })?;
            }
        }
    }
    Ok(Walked {
        cursor: None,
        examined,
        remaining_estimate: 0,
        finished_shards: Vec::new(),
        pass_total: Some(pos.seen),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let key = format!("ab/ab{}.db", "0".repeat(62));
        for text in [
            "kv;0;;".to_owned(),
            "kv;12;;+opaque;with;separators".to_owned(),
            format!("kv;5;{key},{key};-"),
            format!("kv;5;{key};+7"),
        ] {
            assert_eq!(Position::parse(&text).unwrap().render(), text);
        }
        for bad in [
            "",
            "kv;",
            "kv;x;;",
            "kv;1;",
            "00/abc",
            "kv;-1;;",
            "kv;1;notakey;-",
            "kv;1;;7",
        ] {
            assert!(Position::parse(bad).is_err(), "{bad:?}");
        }
    }
}
