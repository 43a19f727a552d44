//! The count in a directory: a small SQLite database in the root,
//! [`LIVE_COUNT_FILE`], one row per shard. Every change is its own IMMEDIATE
//! transaction, so concurrent requests in separate instances serialise on it
//! and two creations can never both take the last slot. Each time a sweep
//! finishes a shard, it recounts that shard's files under the counter's lock.

use crate::config::StoreConfig;
use crate::directory::{list_shard, Walked};
use crate::error::{Error, LimitKind, Result, StorageKind};
use crate::layout::{self, LIVE_COUNT_FILE};
use crate::storage::{self, WriteTx};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Reserves a slot for a session about to be created at `session_path`
/// (`<dir>/<shard>/<name>`): fails with `too-large(live-sessions)` and counts
/// nothing if the directory is full.
pub fn reserve(cfg: &StoreConfig, session_path: &str) -> Result<()> {
    let Some(max) = cfg.max_live_sessions else {
        return Ok(());
    };
    let shard = shard_of(session_path)?;
    // A fresh count does not include the session about to be created either.
    update(cfg, |tx, _fresh| {
        let live: i64 =
            tx.query_row("SELECT coalesce(sum(live), 0) FROM shard", [], |r| r.get(0))?;
        let actual = live.max(0) as u64 + 1;
        if actual > max {
            return Err(Error::TooLarge {
                limit: LimitKind::LiveSessions,
                max,
                actual,
            });
        }
        add(tx, shard, 1)
    })
}

/// Gives back the slot of the session whose file at `session_path` was just
/// deleted (or never got created). Best effort: if the counter cannot be
/// updated the count stays one too high until the shard's next recount, which
/// errs on the side of refusing, never of exceeding.
pub fn release(cfg: &StoreConfig, session_path: &str) {
    if cfg.max_live_sessions.is_none() {
        return;
    }
    let Ok(shard) = shard_of(session_path) else {
        return;
    };
    // A fresh count already reflects the deletion.
    let _ = update(
        cfg,
        |tx, fresh| if fresh { Ok(()) } else { add(tx, shard, -1) },
    );
}

/// Moves a session's slot from the shard of `from` to the shard of `to`
/// (after `regenerate`, whose new id hashes to another shard). Best effort,
/// like `release`: if it fails, the total is still right, and the next
/// recount of each shard fixes how it is split.
pub fn moved(cfg: &StoreConfig, from: &str, to: &str) {
    if cfg.max_live_sessions.is_none() {
        return;
    }
    let (Ok(from), Ok(to)) = (shard_of(from), shard_of(to)) else {
        return;
    };
    if from == to {
        return;
    }
    // A fresh count already sees the session in its new shard.
    let _ = update(cfg, |tx, fresh| {
        if fresh {
            return Ok(());
        }
        add(tx, from, -1)?;
        add(tx, to, 1)
    });
}

/// Replaces the counts of the shards a sweep slice finished with the number
/// of session files they hold now.
pub fn correct(cfg: &StoreConfig, walked: &Walked) -> Result<()> {
    let shards = &walked.finished_shards;
    if cfg.max_live_sessions.is_none() || shards.is_empty() {
        return Ok(());
    }
    update(cfg, |tx, fresh| {
        if !fresh {
            for &shard in shards.iter() {
                store_count(tx, cfg, shard)?;
            }
        }
        Ok(())
    })
}

/// Runs `body` in one write transaction on the counter, once the counts
/// exist. `body` learns whether they were just counted from the directory
/// (`fresh`), in which case they already reflect the files as they are.
fn update<T>(cfg: &StoreConfig, body: impl FnOnce(&Connection, bool) -> Result<T>) -> Result<T> {
    let conn = connect(cfg)?;
    let tx = WriteTx::begin(&conn)?;
    let fresh = initialize(&tx, cfg)?;
    let out = body(&tx, fresh)?;
    tx.commit()?;
    Ok(out)
}

/// Adds `delta` to `shard`'s count, never below zero (a count that a crash
/// left too low must not go negative).
fn add(tx: &Connection, shard: u8, delta: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO shard (shard, live) VALUES (?1, max(?2, 0))
         ON CONFLICT (shard) DO UPDATE SET live = max(live + ?2, 0)",
    )?
    .execute(rusqlite::params![shard, delta])?;
    Ok(())
}

/// Opens (creating if needed) the counter database.
///
/// This file is not a session and has its own schema, but it is opened the
/// way sessions are (`storage::connect`: the `sessions` VFS, its lease lock
/// and stale-lock recovery).
fn connect(cfg: &StoreConfig) -> Result<Connection> {
    let path = format!("{}/{LIVE_COUNT_FILE}", cfg.directory);
    storage::connect(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        cfg.db_options(),
    )
}

/// Creates the table on first use and fills it by counting every shard, so a
/// limit switched on for a directory that already holds sessions starts from
/// the truth. Returns whether it did (the counts are then current).
fn initialize(tx: &Connection, cfg: &StoreConfig) -> Result<bool> {
    let exists = tx
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'shard'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if exists {
        return Ok(false);
    }
    tx.execute_batch(
        "CREATE TABLE shard (
             shard INTEGER PRIMARY KEY CHECK (shard BETWEEN 0 AND 255),
             live  INTEGER NOT NULL
         );",
    )?;
    for shard in 0..=u8::MAX {
        store_count(tx, cfg, shard)?;
    }
    Ok(true)
}

fn store_count(tx: &Connection, cfg: &StoreConfig, shard: u8) -> Result<()> {
    let name = layout::shard_name(shard);
    let live = list_shard(&format!("{}/{name}", cfg.directory), &name)?
        .0
        .len() as i64;
    tx.execute(
        "INSERT OR REPLACE INTO shard (shard, live) VALUES (?1, ?2)",
        [i64::from(shard), live],
    )?;
    Ok(())
}

/// The shard number of a session path `<dir>/<2 hex>/<name>`.
fn shard_of(session_path: &str) -> Result<u8> {
    layout::shard_of(session_path).ok_or_else(|| {
        Error::storage(
            StorageKind::Io,
            format!("not a session path: {session_path}"),
        )
    })
}
