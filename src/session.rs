//! The store and its sessions: the API the WIT interface exposes, in plain
//! Rust so that it also builds natively (for the side-by-side benchmark).

use crate::codec;
use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::expiry::{self, Timing};
use crate::ids::{SessionFile, SessionId};
use crate::nested::{self, Segment};
use crate::storage::{self, Meta, SessionDb};
use std::rc::Rc;

/// An open session directory.
pub struct Store {
    cfg: Rc<StoreConfig>,
}

impl Store {
    pub fn open(cfg: StoreConfig) -> Result<Store> {
        Ok(Store { cfg: Rc::new(cfg.validated()?) })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The existing, unexpired session `id`, counting this as activity.
    pub fn load(&self, id: &str) -> Result<Option<Session>> {
        let Ok(id) = SessionId::parse(id) else {
            return Ok(None);
        };
        let path = self.paths(&id).file;
        let Some(mut db) = SessionDb::open_existing(&path, self.cfg.busy_timeout_ms)? else {
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
        let stale = expiry::is_expired(meta.timing, defaults, now)
            || expiry::needs_touch(meta.timing, defaults, now);
        let (meta, refreshed) = if stale {
            let written = db.write(|_, meta| {
                if expiry::is_expired(meta.timing, defaults, now) {
                    return Ok(Activity::Expired);
                }
                if expiry::needs_touch(meta.timing, defaults, now) {
                    storage::touch(meta, now);
                    return Ok(Activity::Recorded);
                }
                Ok(Activity::AlreadyRecent)
            });
            match written {
                Ok((_, Activity::Expired)) => {
                    match db.destroy() {
                        Ok(()) | Err(Error::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                    return Ok(None);
                }
                Ok((meta, activity)) => (meta, activity == Activity::Recorded),
                Err(Error::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            }
        } else {
            (meta, false)
        };
        Ok(Some(Session {
            cfg: Rc::clone(&self.cfg),
            id,
            is_new: false,
            client_id: Some(id),
            state: State::Stored(db),
            timing: Some(meta.timing),
            refreshed,
        }))
    }

    /// A new session; nothing is written until its first write.
    pub fn create(&self) -> Session {
        Session {
            cfg: Rc::clone(&self.cfg),
            id: SessionId::generate(),
            is_new: true,
            client_id: None,
            state: State::Fresh,
            timing: None,
            refreshed: false,
        }
    }

    pub fn load_or_create(&self, cookie_value: Option<&str>) -> Result<Session> {
        match cookie_value {
            Some(value) => Ok(self.load(value)?.unwrap_or_else(|| self.create())),
            None => Ok(self.create()),
        }
    }

    pub fn cookie_value_from_header(&self, header: &str) -> Option<String> {
        self.cfg.cookie.value_from_header(header)
    }

    /// Deletes session `id` without loading its data.
    pub fn destroy_id(&self, id: &str) -> Result<bool> {
        let id = SessionId::parse(id)?;
        let Some(db) = SessionDb::open_existing(&self.paths(&id).file, self.cfg.busy_timeout_ms)?
        else {
            return Ok(false);
        };
        match db.destroy() {
            Ok(()) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn paths(&self, id: &SessionId) -> Paths {
        paths(&self.cfg, id)
    }
}

/// What `load` found when it re-checked a session under the write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Expired,
    Recorded,
    AlreadyRecent,
}

struct Paths {
    shard_dir: String,
    file: String,
}

fn paths(cfg: &StoreConfig, id: &SessionId) -> Paths {
    let f = SessionFile::for_id(id, cfg.file_name_secret.as_deref());
    let shard_dir = format!("{}/{}", cfg.directory, f.shard);
    Paths { file: format!("{shard_dir}/{}", f.name), shard_dir }
}

enum State {
    /// No file yet: a new session, or one that was emptied and will start
    /// over under a new id if written again.
    Fresh,
    /// Backed by a file.
    Stored(SessionDb),
    /// Destroyed by this handle or, as discovered, by another request.
    Destroyed,
}

/// One session, as held by one request.
pub struct Session {
    cfg: Rc<StoreConfig>,
    id: SessionId,
    is_new: bool,
    /// The id the browser sent, if this handle was loaded from it.
    client_id: Option<SessionId>,
    state: State,
    /// Timing of the stored session, for the cookie's lifetime.
    timing: Option<Timing>,
    /// Activity extended the session's lifetime during this request.
    refreshed: bool,
}

impl Session {
    pub fn id(&self) -> String {
        self.id.as_string()
    }

    pub fn is_new(&self) -> bool {
        self.is_new
    }

    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.cfg.limits.check_key(key)?;
        self.read(|tx, _| storage::get(tx, key), None)
    }

    pub fn get_json(&mut self, key: &str) -> Result<Option<String>> {
        self.get(key)?.map(|v| codec::cbor_to_json(&v)).transpose()
    }

    pub fn contains(&mut self, key: &str) -> Result<bool> {
        self.cfg.limits.check_key(key)?;
        self.read(|tx, _| storage::contains(tx, key), false)
    }

    pub fn keys(&mut self) -> Result<Vec<String>> {
        self.read(|tx, _| storage::keys(tx), Vec::new())
    }

    pub fn len(&mut self) -> Result<u32> {
        self.read(|_, meta| Ok(meta.key_count as u32), 0)
    }

    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.check_entry(key, value.len())?;
        codec::validate(value)?;
        let limits = self.cfg.limits;
        self.write(|tx, meta| storage::put(tx, meta, &limits, key, value))
    }

    pub fn set_json(&mut self, key: &str, json: &str) -> Result<()> {
        let value = codec::json_to_cbor(json)?;
        self.set(key, &value)
    }

    pub fn remove(&mut self, key: &str) -> Result<bool> {
        self.take(key).map(|old| old.is_some())
    }

    pub fn take(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.cfg.limits.check_key(key)?;
        if matches!(self.state, State::Fresh) {
            return Ok(None);
        }
        self.write(|tx, meta| storage::take(tx, meta, key))
    }

    pub fn take_json(&mut self, key: &str) -> Result<Option<String>> {
        self.take(key)?.map(|v| codec::cbor_to_json(&v)).transpose()
    }

    pub fn clear(&mut self) -> Result<()> {
        if matches!(self.state, State::Fresh) {
            return Ok(());
        }
        self.write(storage::clear)
    }

    pub fn destroy(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.state, State::Destroyed) {
            State::Stored(db) => match db.destroy() {
                Ok(()) | Err(Error::NotFound) => Ok(()),
                Err(e) => Err(e),
            },
            State::Fresh => Ok(()),
            State::Destroyed => Err(Error::NotFound),
        }
    }

    pub fn set_in(&mut self, key: &str, path: &[Segment], value: &[u8]) -> Result<()> {
        self.check_entry(key, value.len())?;
        let value = codec::decode(value)?;
        self.edit(key, path, |old| nested::set_in(old, path, value))
    }

    pub fn set_in_json(&mut self, key: &str, path: &[Segment], json: &str) -> Result<()> {
        let value = codec::json_to_cbor(json)?;
        self.set_in(key, path, &value)
    }

    pub fn remove_in(&mut self, key: &str, path: &[Segment]) -> Result<bool> {
        self.cfg.limits.check_key(key)?;
        check_path(path)?;
        if matches!(self.state, State::Fresh) {
            return Ok(false);
        }
        let limits = self.cfg.limits;
        self.write(|tx, meta| {
            let Some(old) = storage::get(tx, key)? else {
                return Ok(false);
            };
            let (new, removed) = nested::remove_in(codec::decode(&old)?, path)?;
            if removed {
                storage::put(tx, meta, &limits, key, &codec::encode(&new))?;
            }
            Ok(removed)
        })
    }

    pub fn append(&mut self, key: &str, value: &[u8]) -> Result<u32> {
        self.check_entry(key, value.len())?;
        let item = codec::decode(value)?;
        let limits = self.cfg.limits;
        self.write(|tx, meta| {
            let old = storage::get(tx, key)?.map(|v| codec::decode(&v)).transpose()?;
            let (new, len) = nested::append(old, item)?;
            store_encoded(tx, meta, &limits, key, &new)?;
            Ok(len as u32)
        })
    }

    pub fn append_json(&mut self, key: &str, json: &str) -> Result<u32> {
        let value = codec::json_to_cbor(json)?;
        self.append(key, &value)
    }

    /// The value the session cookie must hold, if a session is stored.
    pub fn cookie_value(&self) -> Option<String> {
        matches!(self.state, State::Stored(_)).then(|| self.id())
    }

    /// The `Set-Cookie` header this response needs, if any.
    pub fn set_cookie(&self) -> Option<String> {
        let cookie = &self.cfg.cookie;
        let now = expiry::now_ms();
        match (&self.state, self.client_id) {
            (State::Stored(_), client) => {
                let unchanged = client == Some(self.id);
                if unchanged && !(self.refreshed && cookie.persistent) {
                    return None;
                }
                let remaining = self.timing.and_then(|t| expiry::remaining_s(t, &self.cfg.expiry, now));
                Some(cookie.set_header(&self.id(), remaining, now))
            }
            (_, Some(_)) => Some(cookie.delete_header()),
            (_, None) => None,
        }
    }

    fn check_entry(&self, key: &str, value_len: usize) -> Result<()> {
        self.cfg.limits.check_key(key)?;
        self.cfg.limits.check_value_len(value_len)
    }

    /// Read-modify-write of one value through a nested edit.
    fn edit(
        &mut self,
        key: &str,
        path: &[Segment],
        f: impl FnOnce(Option<ciborium::Value>) -> Result<ciborium::Value>,
    ) -> Result<()> {
        check_path(path)?;
        let limits = self.cfg.limits;
        self.write(|tx, meta| {
            let old = storage::get(tx, key)?.map(|v| codec::decode(&v)).transpose()?;
            store_encoded(tx, meta, &limits, key, &f(old)?)
        })
    }

    /// Runs a read; a session without a file answers `empty`.
    fn read<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction, &Meta) -> Result<T>, empty: T) -> Result<T> {
        match &mut self.state {
            State::Fresh => Ok(empty),
            State::Destroyed => Err(Error::NotFound),
            State::Stored(db) => {
                let out = db.read(f);
                self.note_gone(&out);
                out
            }
        }
    }

    /// Runs a write, creating the file for a fresh session, and deleting it
    /// when the write leaves the session empty.
    fn write<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction, &mut Meta) -> Result<T>) -> Result<T> {
        match &mut self.state {
            State::Destroyed => Err(Error::NotFound),
            State::Fresh => {
                let p = paths(&self.cfg, &self.id);
                let now = expiry::now_ms();
                let (db, meta, out) =
                    SessionDb::create_with(&p.file, &p.shard_dir, self.cfg.busy_timeout_ms, now, f)?;
                self.state = State::Stored(db);
                self.timing = Some(meta.timing);
                Ok(out)
            }
            State::Stored(db) => {
                let written = db.write(f);
                self.note_gone(&written);
                let (meta, out) = written?;
                self.timing = Some(meta.timing);
                if meta.key_count == 0 {
                    // Emptied: `write` marked it destroyed; remove the file and
                    // start over under a new id if this handle writes again.
                    if let State::Stored(db) = std::mem::replace(&mut self.state, State::Fresh) {
                        db.delete_file();
                    }
                    self.id = SessionId::generate();
                    self.timing = None;
                }
                Ok(out)
            }
        }
    }

    /// Another request destroyed the session: drop our connection.
    fn note_gone<T>(&mut self, result: &Result<T>) {
        if matches!(result, Err(Error::NotFound)) {
            self.state = State::Destroyed;
        }
    }
}

/// Nested edits may not build values deeper than the codec accepts back.
fn check_path(path: &[Segment]) -> Result<()> {
    if path.len() > codec::MAX_DEPTH {
        return Err(Error::InvalidPath(format!(
            "path has {} segments; at most {}",
            path.len(),
            codec::MAX_DEPTH
        )));
    }
    Ok(())
}

/// Encodes an edited value, re-checking size and depth before storing it.
fn store_encoded(
    tx: &rusqlite::Transaction,
    meta: &mut Meta,
    limits: &crate::config::Limits,
    key: &str,
    value: &ciborium::Value,
) -> Result<()> {
    let bytes = codec::encode(value);
    limits.check_value_len(bytes.len())?;
    // An edit can nest a deep value under a deep path; refuse what could not
    // be read back.
    codec::validate(&bytes)?;
    storage::put(tx, meta, limits, key, &bytes)
}
