//! Which buckets a guest may open, and the per-store state that counts what it costs.

use super::memory::MemoryStore;
use super::redis_store::{ConfigError, RedisOptions, RedisStore};
use super::store::{Store, Traffic};
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;

/// How many keys an in-memory bucket lists per `list-keys` call.
const MEMORY_PAGE: usize = 100;

/// The buckets a guest may open by identifier, each with its storage (and, for Redis, its
/// connection pool). Built once; cloning is cheap and every clone shares the same storage.
#[derive(Clone, Default)]
pub struct Buckets {
    stores: Arc<HashMap<String, Arc<dyn Store>>>,
}

impl Buckets {
    /// Starts an empty set of buckets.
    pub fn builder() -> BucketsBuilder {
        BucketsBuilder::default()
    }

    /// Whether `other` is a clone of these buckets (the same stores).
    pub(crate) fn is_same(&self, other: &Buckets) -> bool {
        Arc::ptr_eq(&self.stores, &other.stores)
    }

    /// The identifiers `store.open` accepts.
    pub fn identifiers(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, identifier: &str) -> Option<Arc<dyn Store>> {
        self.stores.get(identifier).cloned()
    }
}

/// Declares buckets. Nothing connects here: a server that is down shows up as
/// `error::other` on the guest's first operation, not as a failure to start.
/// Declaring an identifier twice keeps the last declaration.
#[derive(Default)]
pub struct BucketsBuilder {
    stores: HashMap<String, Arc<dyn Store>>,
}

impl BucketsBuilder {
    /// A bucket kept in this process's memory, shared by every context built from these
    /// buckets, lost when they are all dropped.
    pub fn memory(mut self, identifier: impl Into<String>) -> Self {
        self.stores
            .insert(identifier.into(), Arc::new(MemoryStore::new(MEMORY_PAGE)));
        self
    }

    /// A bucket on one Redis or Valkey server, e.g. `redis://127.0.0.1:6379/0`
    /// (`rediss://` is refused: this build has no TLS).
    pub fn redis(
        mut self,
        identifier: impl Into<String>,
        url: &str,
        options: &RedisOptions,
    ) -> Result<Self, ConfigError> {
        let store = RedisStore::standalone(url, options)?;
        self.stores.insert(identifier.into(), Arc::new(store));
        Ok(self)
    }

    /// A bucket on a Redis or Valkey cluster, reached through any of `nodes` (URLs of some of
    /// its nodes; the rest are discovered).
    pub fn redis_cluster(
        mut self,
        identifier: impl Into<String>,
        nodes: &[&str],
        options: &RedisOptions,
    ) -> Result<Self, ConfigError> {
        let store = RedisStore::cluster(nodes, options)?;
        self.stores.insert(identifier.into(), Arc::new(store));
        Ok(self)
    }

    /// The buckets as declared.
    pub fn build(self) -> Buckets {
        Buckets {
            stores: Arc::new(self.stores),
        }
    }
}

/// The `wasi:keyvalue` state of one wasmtime `Store`: the buckets it may open and what its
/// operations have cost so far.
pub struct KeyValueCtx {
    pub(crate) buckets: Buckets,
    pub(crate) traffic: Traffic,
}

impl KeyValueCtx {
    /// A context that may open `buckets`.
    pub fn new(buckets: Buckets) -> Self {
        Self {
            buckets,
            traffic: Traffic::default(),
        }
    }

    /// What this context's operations have cost so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }
}

/// What the host functions work on: the context and the store's resource table, borrowed from
/// the embedder's state by the getter given to [`add_to_linker`](super::add_to_linker).
pub struct KeyValueView<'a> {
    pub(crate) ctx: &'a mut KeyValueCtx,
    pub(crate) table: &'a mut ResourceTable,
}

impl<'a> KeyValueView<'a> {
    /// A view of `ctx` that keeps its buckets and CAS handles in `table`.
    pub fn new(ctx: &'a mut KeyValueCtx, table: &'a mut ResourceTable) -> Self {
        Self { ctx, table }
    }
}
