//! The key-value client inside the component: `wasi:keyvalue` 0.2.0-draft2,
//! as the host provides it (Spin, wasmCloud, the project's own Redis host).

use super::SwapFailed;
use std::io;

mod bindings {
    // The component's own bindings reuse these (see `component`).
    wit_bindgen::generate!({
        path: "wit/deps/keyvalue",
        world: "imports",
    });
}

pub use bindings::wasi::keyvalue as wasi_keyvalue;
use bindings::wasi::keyvalue::{atomics, store};

/// An open bucket (one `store.open`).
pub struct Bucket(store::Bucket);

impl Bucket {
    pub fn open(identifier: &str) -> io::Result<Bucket> {
        store::open(identifier).map(Bucket).map_err(to_io)
    }

    pub fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        self.0.get(key).map_err(to_io)
    }

    pub fn delete(&self, key: &str) -> io::Result<()> {
        self.0.delete(key).map_err(to_io)
    }

    /// One page of the bucket's keys, and the cursor of the next (`None`
    /// after the last page).
    pub fn list_keys(&self, cursor: Option<&str>) -> io::Result<(Vec<String>, Option<String>)> {
        let page = self.0.list_keys(cursor).map_err(to_io)?;
        Ok((page.keys, page.cursor))
    }

    pub fn increment(&self, key: &str, delta: i64) -> io::Result<i64> {
        atomics::increment(&self.0, key, delta).map_err(to_io)
    }

    /// Starts a compare-and-swap of `key` against its value now.
    pub fn cas(&self, key: &str) -> io::Result<Cas> {
        let cas = atomics::Cas::new(&self.0, key).map_err(to_io)?;
        let current = cas.current().map_err(to_io)?;
        Ok(Cas { cas, current })
    }
}

/// A compare-and-swap in progress: the value `key` had when it began.
pub struct Cas {
    cas: atomics::Cas,
    current: Option<Vec<u8>>,
}

impl Cas {
    pub fn current(&self) -> Option<&[u8]> {
        self.current.as_deref()
    }

    /// Replaces the value if nobody changed it since the CAS began.
    pub fn swap(self, value: &[u8]) -> Result<(), SwapFailed> {
        match atomics::swap(self.cas, value) {
            Ok(()) => Ok(()),
            Err(atomics::CasError::CasFailed(_)) => Err(SwapFailed::Conflict),
            Err(atomics::CasError::StoreError(e)) => Err(SwapFailed::Io(to_io(e))),
        }
    }
}

fn to_io(e: store::Error) -> io::Error {
    match e {
        store::Error::NoSuchStore => io::Error::new(io::ErrorKind::NotFound, "no such store"),
        store::Error::AccessDenied => {
            io::Error::new(io::ErrorKind::PermissionDenied, "access denied")
        }
        store::Error::Other(message) => io::Error::other(format!("key-value store: {message}")),
    }
}
