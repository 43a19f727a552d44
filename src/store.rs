//! The store: an open session directory, and the calls that act on it as a
//! whole (load, create, sweep, destroy by id, the operator views).

use crate::admin;
use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::expiry::{self, ExpiryDefaults};
use crate::ids::SessionId;
use crate::live_count;
use crate::self_check;
use crate::session::{path_of, Session};
use crate::storage::{self, Meta, SessionDb};
use crate::sweep::{self, SweepProgress};
use crate::vfs::CheckResult;
use std::rc::Rc;

/// An open session directory.
pub struct Store {
    cfg: Rc<StoreConfig>,
}

impl Store {
    pub fn open(cfg: StoreConfig) -> Result<Store> {
        let cfg = cfg.validated()?;
        if cfg.check_directory {
            self_check::require(&cfg.directory)?;
        }
        Ok(Store { cfg: Rc::new(cfg) })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The existing, unexpired session `id`, counting this as activity.
    pub fn load(&self, id: &str) -> Result<Option<Session>> {
        let Ok(id) = SessionId::parse(id) else {
            return Ok(None);
        };
        let path = self.path_of(&id);
        let Some(mut db) = SessionDb::open_existing(&path, self.cfg.db_options())? else {
            return Ok(None);
        };
        let now = expiry::now_ms();
        let defaults = &self.cfg.expiry;
        // The common case is one read transaction; only an expired session or
        // a stale last-access costs a write, in a second transaction that
        // re-checks under the write lock.
        let meta = match db.read(|_, meta| Ok(*meta)) {
            Err(Error::NotFound) => return Ok(None),
            other => other?,
        };
        let (meta, refreshed) = if activity(&meta, defaults, now) == Activity::AlreadyRecent {
            (meta, false)
        } else {
            match db.write(|_, meta| {
                let found = activity(meta, defaults, now);
                if found == Activity::Recorded {
                    storage::touch(meta, now);
                }
                Ok(found)
            }) {
                Ok((_, Activity::Expired)) => {
                    match db.destroy() {
                        Ok(()) => live_count::release(&self.cfg, &path),
                        Err(Error::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                    return Ok(None);
                }
                Ok((meta, found)) => (meta, found == Activity::Recorded),
                Err(Error::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        Ok(Some(Session::loaded(
            Rc::clone(&self.cfg),
            id,
            db,
            meta,
            refreshed,
        )))
    }

    /// A new session; nothing is written until its first write.
    pub fn create(&self) -> Session {
        Session::new(Rc::clone(&self.cfg))
    }

    /// `load` on the id in a cookie value (whose signature must verify when
    /// signing keys are configured), else `create`.
    pub fn load_or_create(&self, cookie_value: Option<&str>) -> Result<Session> {
        let verified = cookie_value.and_then(|v| self.cfg.signer.verify_with_key(v));
        let Some((id, key_index)) = verified else {
            return Ok(self.create());
        };
        Ok(match self.load(&id.as_string())? {
            Some(mut session) => {
                // Signed by an older key: re-issue it signed by the newest,
                // so the old key can be dropped once such cookies are gone.
                session.resign_if(key_index > 0);
                session
            }
            None => self.create(),
        })
    }

    /// One slice of a read-only listing of the directory (the WIT `admin`
    /// interface's `list-sessions`): changes nothing, not even expiry.
    pub fn list_sessions(&self, cursor: Option<&str>, budget: u32) -> Result<admin::Listing> {
        admin::list(&self.cfg, cursor, budget, expiry::now_ms())
    }

    /// Everything session `id` holds, without counting as activity (the WIT
    /// `admin` interface's `inspect`).
    pub fn inspect(&self, id: &str) -> Result<Option<admin::SessionDump>> {
        admin::inspect(&self.cfg, id, expiry::now_ms())
    }

    /// The directory self-check's report (the WIT `admin` interface's
    /// `check-directory`). It creates and removes a probe directory inside
    /// the session directory, and touches no session.
    pub fn check_directory(&self) -> Result<Vec<CheckResult>> {
        self_check::report(&self.cfg.directory)
    }

    /// One slice of the expired-session sweep; see `sweep::sweep`.
    pub fn sweep(&self, cursor: Option<&str>, budget: u32) -> Result<SweepProgress> {
        sweep::sweep(&self.cfg, cursor, budget, expiry::now_ms())
    }

    pub fn cookie_value_from_header(&self, header: &str) -> Option<String> {
        self.cfg.cookie.value_from_header(header)
    }

    /// Deletes session `id` without loading its data.
    pub fn destroy_id(&self, id: &str) -> Result<bool> {
        let id = SessionId::parse(id)?;
        let path = self.path_of(&id);
        let Some(db) = SessionDb::open_existing(&path, self.cfg.db_options())? else {
            return Ok(false);
        };
        match db.destroy() {
            Ok(()) => {
                live_count::release(&self.cfg, &path);
                Ok(true)
            }
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn path_of(&self, id: &SessionId) -> String {
        path_of(&self.cfg, id)
    }
}

/// What a load at `now` means for a stored session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// Past its expiry: delete it.
    Expired,
    /// Alive, and the stored last access is stale: record this access.
    Recorded,
    /// Alive, and last access was recorded within the granularity.
    AlreadyRecent,
}

fn activity(meta: &Meta, defaults: &ExpiryDefaults, now: i64) -> Activity {
    let effective = meta.overrides.apply(defaults);
    if expiry::is_expired(meta.timing, &effective, now) {
        Activity::Expired
    } else if expiry::needs_touch(meta.timing, &effective, now) {
        Activity::Recorded
    } else {
        Activity::AlreadyRecent
    }
}
