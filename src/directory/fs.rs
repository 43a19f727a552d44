//! The walk over a directory: shard by shard in name order, each shard's
//! session files in name order. The cursor is the last file examined,
//! `<shard>/<name>`.

use super::{Others, Visited, WalkItem, Walked};
use crate::error::{Error, Result};
use crate::layout::{self, SessionFile};
use crate::vfs;

/// A position in the directory: `<shard>/<file name>`, the last file examined.
struct Cursor {
    shard: u8,
    name: String,
}

impl Cursor {
    fn parse(text: &str) -> Result<Cursor> {
        let bad = || Error::InvalidValue(format!("not a sweep cursor: {text:?}"));
        let (shard, name) = text.split_once('/').ok_or_else(bad)?;
        if !SessionFile::is_session_file_name(shard, name) {
            return Err(bad());
        }
        let shard = u8::from_str_radix(shard, 16).map_err(|_| bad())?;
        Ok(Cursor {
            shard,
            name: name.to_string(),
        })
    }

    fn render(&self) -> String {
        format!("{}/{}", layout::shard_name(self.shard), self.name)
    }
}

/// One slice of a resumable pass over the session directory, shard by shard
/// in name order, handing at most `budget` (at least 1) session files to
/// `visit`. Shared by `sweep` and the operator listing (`admin`), so both
/// see the directory the same way and accept each other's cursors.
pub fn walk(
    directory: &str,
    cursor: Option<&str>,
    budget: u32,
    others: Others,
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<Visited>,
) -> Result<Walked> {
    if budget == 0 {
        return Err(Error::InvalidValue("budget must be at least 1".into()));
    }
    let start = cursor.map(Cursor::parse).transpose()?;
    let mut progress = Walked {
        cursor: None,
        examined: 0,
        remaining_estimate: 0,
        finished_shards: Vec::new(),
        pass_total: None,
    };
    if others == Others::Everywhere && start.is_none() {
        for rel in top_level_others(directory)? {
            visit(WalkItem::Other { rel: &rel })?;
        }
    }
    let (mut listed_shards, mut listed_files) = (0u64, 0u64);
    for shard in start.as_ref().map_or(0, |c| c.shard)..=u8::MAX {
        let shard_name = layout::shard_name(shard);
        let (names, shard_others) = list_shard(&format!("{directory}/{shard_name}"), &shard_name)?;
        listed_shards += 1;
        listed_files += names.len() as u64;
        let estimate = |from: usize| {
            let shards_left = u64::from(u8::MAX - shard);
            (names.len() - from) as u64 + shards_left * listed_files.div_ceil(listed_shards)
        };
        let skip = match &start {
            Some(c) if c.shard == shard => names.partition_point(|n| n.as_str() <= c.name.as_str()),
            _ => 0,
        };
        let entering = !matches!(&start, Some(c) if c.shard == shard);
        if others != Others::Skip && entering && !shard_others.is_empty() {
            if progress.examined == budget {
                // Report them in the next slice, which enters this shard anew.
                progress.remaining_estimate = estimate(0);
                return Ok(progress);
            }
            for name in &shard_others {
                visit(WalkItem::Other {
                    rel: &format!("{shard_name}/{name}"),
                })?;
            }
        }
        for (i, name) in names.iter().enumerate().skip(skip) {
            if progress.examined == budget {
                // `progress.cursor` already names the last file examined.
                progress.remaining_estimate = estimate(i);
                return Ok(progress);
            }
            progress.examined += 1;
            let cursor = Cursor {
                shard,
                name: name.clone(),
            }
            .render();
            let path = format!("{directory}/{cursor}");
            visit(WalkItem::Session {
                rel: &cursor,
                path: &path,
            })?;
            progress.cursor = Some(cursor);
        }
        progress.finished_shards.push(shard);
    }
    // The pass is complete.
    progress.cursor = None;
    Ok(progress)
}

/// The session files of one shard and, separately, its other entries, both
/// sorted; a missing shard (or a stray file with a shard's name) is empty.
/// Session files are regular files with a session file's name: anything else
/// (a directory or a journal that happens to be called that, a file someone
/// left there) is never examined, counted or deleted.
pub fn list_shard(dir: &str, shard: &str) -> Result<(Vec<String>, Vec<String>)> {
    let (mut names, mut others) = (Vec::new(), Vec::new());
    for (name, is_file) in vfs::dir::list(dir)? {
        if is_file && SessionFile::is_session_file_name(shard, &name) {
            names.push(name);
        } else {
            others.push(name);
        }
    }
    names.sort();
    others.sort();
    Ok((names, others))
}

/// The session directory's top-level entries that are not shard
/// directories, sorted.
fn top_level_others(dir: &str) -> Result<Vec<String>> {
    let mut others: Vec<String> = vfs::dir::list_dirs(dir)?
        .into_iter()
        .filter(|(name, is_dir)| !(*is_dir && layout::is_shard_name(name)))
        .map(|(name, _)| name)
        .collect();
    others.sort();
    Ok(others)
}
