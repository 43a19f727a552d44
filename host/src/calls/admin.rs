//! Typed calls of the component's `admin` interface: the operator views
//! (listing without ids, read-only inspection) that the `sessions-admin`
//! tool is built on. Applications never need these.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use sqlite_sessions_host::{default_config, Runtime};
//!
//! let runtime = Runtime::from_file("sqlite_sessions.wasm")?;
//! let mut req = runtime.request(std::path::Path::new("./sessions"))?;
//! let store = req.open_store(&default_config())??;
//! let mut cursor = None;
//! loop {
//!     let page = req.admin(&store).list_sessions(cursor.as_deref(), 100)??;
//!     for s in &page.sessions {
//!         println!("{} {} keys", s.file, s.key_count);
//!     }
//!     cursor = page.cursor;
//!     if cursor.is_none() {
//!         break;
//!     }
//! }
//! req.drop_store(store)?;
//! # Ok(())
//! # }
//! ```

use super::call;
use super::handles::StoreHandle;
use crate::bindings::exports::sqlite_sessions::store::admin::{CheckResult, Listing, SessionDump};
use crate::bindings::exports::sqlite_sessions::store::sessions::Error;
use crate::request::Request;

/// The `admin` functions, bound to one `store`. Made by [`Request::admin`].
pub struct AdminRef<'a> {
    req: &'a mut Request,
    store: StoreHandle,
}

impl<'a> AdminRef<'a> {
    pub(super) fn new(req: &'a mut Request, store: StoreHandle) -> Self {
        Self { req, store }
    }

    /// `admin.check-directory`: the directory self-check's result for every
    /// property the store relies on, as this host's mount behaves.
    pub fn check_directory(&mut self) -> anyhow::Result<Result<Vec<CheckResult>, Error>> {
        Ok(call!(self.req, check_directory, self.store.resource())?)
    }

    /// `admin.list-sessions`: one slice of a listing of the directory.
    pub fn list_sessions(
        &mut self,
        cursor: Option<&str>,
        budget: u32,
    ) -> anyhow::Result<Result<Listing, Error>> {
        Ok(call!(
            self.req,
            list_sessions,
            self.store.resource(),
            cursor,
            budget
        )?)
    }

    /// `admin.inspect`: one session's keys, values and metadata, read
    /// without counting as activity.
    pub fn inspect(&mut self, id: &str) -> anyhow::Result<Result<Option<SessionDump>, Error>> {
        Ok(call!(self.req, inspect, self.store.resource(), id)?)
    }
}
