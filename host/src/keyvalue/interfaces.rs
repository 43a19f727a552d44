//! The generated `wasi:keyvalue` traits, implemented over [`Store`]. Every failure becomes a
//! WIT error value; nothing here traps the guest.

use super::bindings::wasi::keyvalue::{atomics, batch, store};
use super::buckets::KeyValueView;
use super::store::{Failure, Store, Swap};
use std::sync::Arc;
use wasmtime::component::{Resource, ResourceTableError};

/// An open bucket (the `bucket` resource).
pub struct Bucket {
    store: Arc<dyn Store>,
}

/// A compare-and-swap in progress (the `cas` resource): the key and the value read when it was
/// made, which `swap` expects to find still there.
pub struct Cas {
    store: Arc<dyn Store>,
    key: String,
    current: Option<Vec<u8>>,
}

fn other(failure: Failure) -> store::Error {
    store::Error::Other(failure.0)
}

fn table_error(error: ResourceTableError) -> store::Error {
    store::Error::Other(format!("resource table: {error}"))
}

impl KeyValueView<'_> {
    fn bucket(&self, bucket: &Resource<Bucket>) -> Result<Arc<dyn Store>, store::Error> {
        let bucket = self.table.get(bucket).map_err(table_error)?;
        Ok(bucket.store.clone())
    }
}

impl store::Host for KeyValueView<'_> {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, store::Error> {
        let store = self
            .ctx
            .buckets
            .get(&identifier)
            .ok_or(store::Error::NoSuchStore)?;
        self.table.push(Bucket { store }).map_err(table_error)
    }
}

impl store::HostBucket for KeyValueView<'_> {
    fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, store::Error> {
        let store = self.bucket(&bucket)?;
        store.get(&key, &mut self.ctx.traffic).map_err(other)
    }

    fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        store
            .set(&key, &value, &mut self.ctx.traffic)
            .map_err(other)
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        store.delete(&key, &mut self.ctx.traffic).map_err(other)
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, store::Error> {
        let store = self.bucket(&bucket)?;
        store.exists(&key, &mut self.ctx.traffic).map_err(other)
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        let store = self.bucket(&bucket)?;
        let page = store
            .list_keys(cursor.as_deref(), &mut self.ctx.traffic)
            .map_err(other)?;
        Ok(store::KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    /// Reads the key now (one round trip), so that `current` costs nothing.
    fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Resource<Cas>, store::Error> {
        let store = self.bucket(&bucket)?;
        let current = store.get(&key, &mut self.ctx.traffic).map_err(other)?;
        self.table
            .push(Cas {
                store,
                key,
                current,
            })
            .map_err(table_error)
    }

    fn current(&mut self, cas: Resource<Cas>) -> Result<Option<Vec<u8>>, store::Error> {
        let cas = self.table.get(&cas).map_err(table_error)?;
        Ok(cas.current.clone())
    }

    fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Result<i64, store::Error> {
        let store = self.bucket(&bucket)?;
        store
            .increment(&key, delta, &mut self.ctx.traffic)
            .map_err(other)
    }

    /// Writes only if the key still holds what the handle read. On a conflict the new handle
    /// carries the value found, so a retry starts without another read.
    fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let Cas {
            store,
            key,
            current,
        } = self
            .table
            .delete(cas)
            .map_err(|e| atomics::CasError::StoreError(table_error(e)))?;
        match store.swap(&key, current.as_deref(), &value, &mut self.ctx.traffic) {
            Ok(Swap::Done) => Ok(()),
            Ok(Swap::Conflict(current)) => {
                let fresh = self
                    .table
                    .push(Cas {
                        store,
                        key,
                        current,
                    })
                    .map_err(|e| atomics::CasError::StoreError(table_error(e)))?;
                Err(atomics::CasError::CasFailed(fresh))
            }
            Err(failure) => Err(atomics::CasError::StoreError(other(failure))),
        }
    }
}

impl batch::Host for KeyValueView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, store::Error> {
        let store = self.bucket(&bucket)?;
        let values = store
            .get_many(&keys, &mut self.ctx.traffic)
            .map_err(other)?;
        if values.len() != keys.len() {
            return Err(store::Error::Other(format!(
                "get-many asked for {} keys and got {} values",
                keys.len(),
                values.len()
            )));
        }
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(key, value)| value.map(|v| (key, v)))
            .collect())
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        store
            .set_many(&key_values, &mut self.ctx.traffic)
            .map_err(other)
    }

    fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let store = self.bucket(&bucket)?;
        store
            .delete_many(&keys, &mut self.ctx.traffic)
            .map_err(other)
    }
}
