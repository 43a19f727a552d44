//! The host functions called as a guest would call them (the generated traits, on a
//! [`KeyValueView`]), against every backend: in memory, one Redis server, a Redis cluster.

mod cluster;
mod linker;
mod memory;
mod standalone;
mod suite;

use crate::keyvalue::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::keyvalue::interfaces::{Bucket, Cas};
use crate::keyvalue::{Buckets, KeyValueCtx, KeyValueView, Traffic};
use wasmtime::component::{Resource, ResourceTable};

/// One guest instance: its resource table and its key-value context.
pub(crate) struct Guest {
    table: ResourceTable,
    ctx: KeyValueCtx,
}

pub(crate) type Error = store::Error;

/// What `get-many` answers: each key with its value, or `None` where there is none.
pub(crate) type Found = Vec<Option<(String, Vec<u8>)>>;

fn borrow<T: 'static>(resource: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(resource.rep())
}

/// What a failed swap left: the store error, or the new handle and the value it holds.
#[derive(Debug)]
pub(crate) enum Lost {
    Store(Error),
    Cas(Resource<Cas>, Option<Vec<u8>>),
}

impl Guest {
    pub(crate) fn new(buckets: &Buckets) -> Self {
        Self {
            table: ResourceTable::new(),
            ctx: KeyValueCtx::new(buckets.clone()),
        }
    }

    fn kv(&mut self) -> KeyValueView<'_> {
        KeyValueView::new(&mut self.ctx, &mut self.table)
    }

    pub(crate) fn traffic(&self) -> Traffic {
        self.ctx.traffic()
    }

    pub(crate) fn open(&mut self, identifier: &str) -> Result<Resource<Bucket>, Error> {
        store::Host::open(&mut self.kv(), identifier.into())
    }

    pub(crate) fn get(
        &mut self,
        b: &Resource<Bucket>,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        store::HostBucket::get(&mut self.kv(), borrow(b), key.into())
    }

    pub(crate) fn set(
        &mut self,
        b: &Resource<Bucket>,
        key: &str,
        value: &[u8],
    ) -> Result<(), Error> {
        store::HostBucket::set(&mut self.kv(), borrow(b), key.into(), value.into())
    }

    pub(crate) fn delete(&mut self, b: &Resource<Bucket>, key: &str) -> Result<(), Error> {
        store::HostBucket::delete(&mut self.kv(), borrow(b), key.into())
    }

    pub(crate) fn exists(&mut self, b: &Resource<Bucket>, key: &str) -> Result<bool, Error> {
        store::HostBucket::exists(&mut self.kv(), borrow(b), key.into())
    }

    pub(crate) fn list_keys(
        &mut self,
        b: &Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, Error> {
        store::HostBucket::list_keys(&mut self.kv(), borrow(b), cursor)
    }

    pub(crate) fn increment(
        &mut self,
        b: &Resource<Bucket>,
        key: &str,
        delta: i64,
    ) -> Result<i64, Error> {
        atomics::Host::increment(&mut self.kv(), borrow(b), key.into(), delta)
    }

    pub(crate) fn cas(&mut self, b: &Resource<Bucket>, key: &str) -> Result<Resource<Cas>, Error> {
        atomics::HostCas::new(&mut self.kv(), borrow(b), key.into())
    }

    pub(crate) fn current(&mut self, cas: &Resource<Cas>) -> Result<Option<Vec<u8>>, Error> {
        atomics::HostCas::current(&mut self.kv(), borrow(cas))
    }

    pub(crate) fn swap(&mut self, cas: Resource<Cas>, value: &[u8]) -> Result<(), Lost> {
        match atomics::Host::swap(&mut self.kv(), cas, value.into()) {
            Ok(()) => Ok(()),
            Err(atomics::CasError::StoreError(e)) => Err(Lost::Store(e)),
            Err(atomics::CasError::CasFailed(fresh)) => {
                let current = self.current(&fresh).expect("a fresh handle has a value");
                Err(Lost::Cas(fresh, current))
            }
        }
    }

    pub(crate) fn drop_cas(&mut self, cas: Resource<Cas>) {
        atomics::HostCas::drop(&mut self.kv(), cas).expect("drop a cas handle");
    }

    pub(crate) fn get_many(&mut self, b: &Resource<Bucket>, keys: &[&str]) -> Result<Found, Error> {
        let keys = keys.iter().map(|k| k.to_string()).collect();
        batch::Host::get_many(&mut self.kv(), borrow(b), keys)
    }

    pub(crate) fn set_many(
        &mut self,
        b: &Resource<Bucket>,
        pairs: &[(String, Vec<u8>)],
    ) -> Result<(), Error> {
        batch::Host::set_many(&mut self.kv(), borrow(b), pairs.to_vec())
    }

    pub(crate) fn delete_many(&mut self, b: &Resource<Bucket>, keys: &[&str]) -> Result<(), Error> {
        let keys = keys.iter().map(|k| k.to_string()).collect();
        batch::Host::delete_many(&mut self.kv(), borrow(b), keys)
    }

    pub(crate) fn close(&mut self, b: Resource<Bucket>) {
        store::HostBucket::drop(&mut self.kv(), b).expect("drop a bucket");
    }
}

/// The message of an `error::other`; any other error fails the test.
pub(crate) fn other(error: Error) -> String {
    match error {
        Error::Other(message) => message,
        e => panic!("expected error::other, got {e:?}"),
    }
}
