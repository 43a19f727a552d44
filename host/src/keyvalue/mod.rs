//! A `wasi:keyvalue@0.2.0-draft2` host for wasmtime: the `store`, `atomics` and `batch`
//! interfaces over Redis or Valkey (one server or a cluster), or in memory. The key-value
//! build of the store (world `session-store-kv`) keeps its sessions through them.
//!
//! # Use
//!
//! Declare the buckets once, give every wasmtime `Store` a [`KeyValueCtx`], and link the
//! interfaces with a getter that borrows the context and the store's resource table:
//!
//! ```
//! use sqlite_sessions_host::keyvalue::{self, Buckets, KeyValueCtx, KeyValueView, RedisOptions};
//! use wasmtime::component::{Linker, ResourceTable};
//!
//! struct State {
//!     table: ResourceTable,
//!     kv: KeyValueCtx,
//! }
//!
//! # fn main() -> anyhow::Result<()> {
//! // Nothing connects yet: a server that is down shows up on the first operation.
//! let buckets = Buckets::builder()
//!     .redis("default", "redis://127.0.0.1:6379/", &RedisOptions {
//!         key_prefix: "sessions:".into(),
//!         ..RedisOptions::default()
//!     })?
//!     .build();
//! let engine = wasmtime::Engine::default();
//! let mut linker = Linker::<State>::new(&engine);
//! keyvalue::add_to_linker(&mut linker, |s: &mut State| {
//!     KeyValueView::new(&mut s.kv, &mut s.table)
//! })?;
//! let state = State { table: ResourceTable::new(), kv: KeyValueCtx::new(buckets.clone()) };
//! # let _ = state;
//! # Ok(())
//! # }
//! ```
//!
//! The host functions are synchronous. wasmtime 48 has no separate async mode, so they serve
//! instances driven with `call` and with `call_async` alike; under an async executor a call
//! holds its thread for its round trips (each bounded by the configured timeouts).
//!
//! # What a guest can rely on
//!
//! - `store.open` accepts the declared identifiers and answers `no-such-store` to any other.
//! - Every failure of the storage (server down, timeout, cluster down, a value of the wrong
//!   type) is `error::other` with a message naming the server; nothing traps. Requests are
//!   bounded by the connect and response timeouts of [`RedisOptions`].
//! - After a server comes back, requests succeed again on new connections, with no action from
//!   the guest. A read (`get`, `exists`, `list-keys`, `get-many`, `cas::new`) that meets a
//!   connection from before the restart is sent again on a new one; a write that meets one
//!   fails with `error::other` (it is never sent twice), and the next request connects anew.
//! - `cas::new` reads the key (one round trip); `current` returns that read; `swap` writes only
//!   if the key still holds exactly those bytes, or is still absent if it was (one round trip),
//!   and otherwise fails with `cas-failed` and a handle holding the value found then. A swap
//!   whose reply is lost is reported as `store-error`: it may or may not have been applied.
//! - `increment` keeps the counter as decimal text (Redis `INCRBY`, as Spin's Redis store
//!   does); a value that is not such an integer, or an overflow, is `error::other`.
//! - `list-keys` walks with a resumable cursor. A key present for the whole walk is listed at
//!   least once; a key may be listed more than once. In a cluster the walk visits the masters
//!   in turn, and the guarantee holds while the set of masters does not change.
//! - Batches are not atomic (as the interface says); in a cluster they are pipelines of
//!   single-key commands.
//! - [`KeyValueCtx::traffic`] counts round trips and connections: a session load
//!   (`cas::new`, `current`) is one round trip, a write (`swap`) one more.

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/deps/keyvalue",
        world: "wasi:keyvalue/imports",
        with: {
            "wasi:keyvalue/store.bucket": crate::keyvalue::interfaces::Bucket,
            "wasi:keyvalue/atomics.cas": crate::keyvalue::interfaces::Cas,
        },
    });
}

mod buckets;
mod interfaces;
mod memory;
mod redis_store;
mod store;

pub use buckets::{Buckets, BucketsBuilder, KeyValueCtx, KeyValueView};
pub use redis_store::{ConfigError, RedisOptions};
pub use store::Traffic;

use wasmtime::component::{HasData, Linker};

/// The [`HasData`] of the `wasi:keyvalue` interfaces: their host data is a [`KeyValueView`].
struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// Adds `wasi:keyvalue/store`, `atomics` and `batch` at `0.2.0-draft2` to `linker`.
/// `getter` borrows the [`KeyValueCtx`] and the resource table out of the store's state.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    getter: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<T, HasKeyValue>(linker, getter)
}

#[cfg(test)]
mod tests;
