//! The resumable walk over all sessions, in budgeted slices, that `sweep`,
//! the operator listing (`admin`) and the live-session recount share, so all
//! see the sessions the same way and accept each other's cursors. Each
//! backend walks its own way: a directory shard by shard (`fs`), a bucket
//! page by page of its key listing (`kv`).

#[cfg(not(feature = "kv"))]
mod fs;
#[cfg(feature = "kv")]
mod kv;

#[cfg(not(feature = "kv"))]
pub use fs::{list_shard, walk};
#[cfg(feature = "kv")]
pub use kv::walk;

/// What the directory walk met, in order.
pub enum WalkItem<'a> {
    /// A session file (by its name); each counts against the budget.
    /// `rel` is `<shard>/<name>`, `path` the full path.
    Session { rel: &'a str, path: &'a str },
    /// Any other directory entry (as [`Others`] asks): at the top level,
    /// anything but a shard directory (reported in a pass's first slice);
    /// inside a shard, anything not named like a session file (reported once
    /// per pass, when the walk enters the shard).
    Other { rel: &'a str },
}

/// What a walk's visitor left of a session it was handed (for any other
/// entry, either answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visited {
    /// Still there when the visitor was done with it.
    Kept,
    /// Gone: the visitor deleted it, or found it deleted already.
    Gone,
}

/// Which entries other than session files a walk reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    Skip,
    /// Those inside shards (the sweep looks there for orphaned locks).
    InShards,
    /// Those inside shards and at the top level (the operator listing).
    Everywhere,
}

/// Where a walk slice stopped.
pub struct Walked {
    /// Pass back to continue; `None` when the pass is complete.
    pub cursor: Option<String>,
    pub examined: u32,
    pub remaining_estimate: u64,
    /// The shards this slice examined to their end (a sweep recounts their
    /// live sessions). Only a directory has shards.
    #[cfg_attr(feature = "kv", allow(dead_code))]
    pub finished_shards: Vec<u8>,
    /// When this slice ended a pass over a bucket: how many sessions the
    /// whole pass left in place (a sweep resets the live-session count to
    /// it). Only a bucket reports it.
    #[cfg_attr(not(feature = "kv"), allow(dead_code))]
    pub pass_total: Option<u64>,
}
