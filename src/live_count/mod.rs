//! The opt-in quota on live sessions per directory (`max-live-sessions`).
//!
//! A session counts from the write that creates its file until its file is
//! deleted (destroy, emptied, or found expired by `load` or `sweep`). An
//! expired session that nobody has loaded or swept yet still counts: the sweep
//! is what frees that capacity.
//!
//! The count lives beside the sessions, under the name
//! `layout::LIVE_COUNT_FILE`, which neither the session-file pattern
//! (`<2 hex>/<64 hex>.db`) nor the sweep ever matches: in a directory, a
//! small SQLite database (`fs`); in a bucket, an `atomics.increment` counter
//! (`kv`).
//!
//! Order of operations, chosen so that crashes only ever make the count too
//! high (the quota then bites early, never late):
//! - creation: increment (refusing past the limit), then create the file; if
//!   creating fails, decrement again.
//! - deletion: unlink the file, then decrement.
//! - regenerate: no change in total (one session replaces another), but the
//!   new id usually hashes to another shard, so the slot moves there.
//!
//! Drift and its repair. An instance that dies between the two steps leaves
//! the count one too high; so does a decrement that failed (say, `busy`).
//! Deleting files behind the store's back leaves it too high as well. Each
//! time a sweep finishes a shard, it recounts that shard's files under the
//! counter's lock and stores the true number, so a full sweep pass resets
//! every shard (in a bucket, which has no shards, the end of a full pass
//! resets the count to the sessions the pass saw, to within the creations
//! and deletions during the pass). A recount is exact except for operations in flight in that
//! shard at that instant (a creation between its increment and its file, a
//! deletion between its unlink and its decrement), each of which can leave
//! it off by one until the shard's next recount. So between passes the
//! error is at most the crashes since the last pass plus the operations
//! that were in flight during the last recounts.
//!
//! When `max-live-sessions` is unset, nothing here runs: no file, no
//! transaction, not even the hash of a shard name.

#[cfg(not(feature = "kv"))]
mod fs;
#[cfg(feature = "kv")]
mod kv;

#[cfg(not(feature = "kv"))]
pub use fs::{correct, moved, release, reserve};
#[cfg(feature = "kv")]
pub use kv::{correct, moved, release, reserve};
