//! One session, as held by one request: the API the WIT `session` resource
//! exposes, in plain Rust so that it also builds natively.

use crate::codec;
use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::expiry::{self, Overrides, Timing};
use crate::ids::SessionId;
use crate::layout;
use crate::live_count;
use crate::nested::Segment;
use crate::ops::{self, BatchError, Op, Outcome};
use crate::storage::{self, Meta, SessionDb};
use std::rc::Rc;

/// Where session `id`'s file lives.
pub(crate) fn path_of(cfg: &StoreConfig, id: &SessionId) -> String {
    layout::session_path(&cfg.directory, id, cfg.file_name_secret.as_deref())
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
    /// The browser's cookie verified only under an older signing key, so
    /// `set-cookie` re-issues it under the newest.
    resign: bool,
    state: State,
    /// The stored session's meta row as of this handle's last transaction,
    /// for the cookie's lifetime and `expires-at`.
    meta: Option<Meta>,
    /// `set-expiry` on a session not yet written: applied at its creation.
    pending_overrides: Overrides,
    /// The browser's cookie needs re-sending: activity or `set-expiry`
    /// changed the session's lifetime during this request.
    refreshed: bool,
}

impl Session {
    /// A new session; nothing is written until its first write.
    pub(crate) fn new(cfg: Rc<StoreConfig>) -> Session {
        Session {
            cfg,
            id: SessionId::generate(),
            is_new: true,
            client_id: None,
            resign: false,
            state: State::Fresh,
            meta: None,
            pending_overrides: Overrides::default(),
            refreshed: false,
        }
    }

    /// A stored session the browser named, just loaded; `refreshed` when the
    /// load recorded activity (the cookie's lifetime moved).
    pub(crate) fn loaded(
        cfg: Rc<StoreConfig>,
        id: SessionId,
        db: SessionDb,
        meta: Meta,
        refreshed: bool,
    ) -> Session {
        Session {
            cfg,
            id,
            is_new: false,
            client_id: Some(id),
            resign: false,
            state: State::Stored(db),
            meta: Some(meta),
            pending_overrides: Overrides::default(),
            refreshed,
        }
    }

    /// The browser's cookie verified only under an older signing key:
    /// `set-cookie` re-issues it under the newest.
    pub(crate) fn resign_if(&mut self, older_key: bool) {
        self.resign = older_key;
    }

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

    pub fn is_empty(&mut self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        ops::entry(&self.cfg.limits, key, value)?;
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
        self.take_as(key, Ok)
    }

    pub fn take_json(&mut self, key: &str) -> Result<Option<String>> {
        self.take_as(key, |bytes| codec::cbor_to_json(&bytes))
    }

    /// Removes `key` and converts what it held, in one transaction: if the
    /// conversion fails, the transaction rolls back and the value stays.
    fn take_as<T>(
        &mut self,
        key: &str,
        convert: impl Fn(Vec<u8>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.cfg.limits.check_key(key)?;
        if matches!(self.state, State::Fresh) {
            return Ok(None);
        }
        // Taking a key that is not there changes nothing, so a read answers
        // it, as of the version it read: no lock, nothing published. Only a
        // key that is there costs a write.
        if !self.contains(key)? {
            return Ok(None);
        }
        self.write(|tx, meta| storage::take(tx, meta, key)?.map(&convert).transpose())
    }

    pub fn clear(&mut self) -> Result<()> {
        if matches!(self.state, State::Fresh) {
            return Ok(());
        }
        self.write(storage::clear)
    }

    pub fn destroy(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.state, State::Destroyed) {
            State::Stored(db) => {
                let path = db.path().to_string();
                match db.destroy() {
                    Ok(()) => {
                        live_count::release(&self.cfg, &path);
                        Ok(())
                    }
                    // Destroyed by another request, which gave its slot back.
                    Err(Error::NotFound) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            State::Fresh => Ok(()),
            State::Destroyed => Err(Error::NotFound),
        }
    }

    pub fn set_in(&mut self, key: &str, path: &[Segment], value: &[u8]) -> Result<()> {
        let value = ops::entry(&self.cfg.limits, key, value)?;
        ops::check_path(path)?;
        let limits = self.cfg.limits;
        self.write(|tx, meta| ops::set_in(tx, meta, &limits, key, path, value.clone()))
    }

    pub fn set_in_json(&mut self, key: &str, path: &[Segment], json: &str) -> Result<()> {
        let value = codec::json_to_cbor(json)?;
        self.set_in(key, path, &value)
    }

    pub fn remove_in(&mut self, key: &str, path: &[Segment]) -> Result<bool> {
        self.cfg.limits.check_key(key)?;
        ops::check_path(path)?;
        if matches!(self.state, State::Fresh) {
            return Ok(false);
        }
        let limits = self.cfg.limits;
        self.write(|tx, meta| ops::remove_in(tx, meta, &limits, key, path))
    }

    pub fn append(&mut self, key: &str, value: &[u8]) -> Result<u32> {
        let item = ops::entry(&self.cfg.limits, key, value)?;
        let limits = self.cfg.limits;
        self.write(|tx, meta| ops::append(tx, meta, &limits, key, item.clone()))
    }

    pub fn append_json(&mut self, key: &str, json: &str) -> Result<u32> {
        let value = codec::json_to_cbor(json)?;
        self.append(key, &value)
    }

    /// Adds `delta` to the integer under `key` (a missing key counts as 0,
    /// and a fresh session is created as by `set`); returns the new value.
    pub fn increment(&mut self, key: &str, delta: i64) -> Result<i64> {
        self.cfg.limits.check_key(key)?;
        let limits = self.cfg.limits;
        self.write(|tx, meta| ops::increment(tx, meta, &limits, key, delta))
    }

    /// Replaces the value under `key` with `new` (`None` removes it) if the
    /// stored bytes equal `expected` (`None`: the key is absent). Returns
    /// whether it swapped.
    pub fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        self.cfg.limits.check_key(key)?;
        // A malformed `expected` could never match a stored value; saying so
        // beats a silent `false` that the caller would retry forever.
        if let Some(expected) = expected {
            codec::validate(expected)?;
        }
        if let Some(new) = new {
            ops::entry(&self.cfg.limits, key, new)?;
        }
        if matches!(self.state, State::Fresh) {
            // Nothing is stored: only "absent" matches, and writing `none`
            // over absent changes nothing, so neither needs a file.
            if expected.is_some() {
                return Ok(false);
            }
            if new.is_none() {
                return Ok(true);
            }
        }
        let limits = self.cfg.limits;
        self.write(|tx, meta| ops::compare_and_swap(tx, meta, &limits, key, expected, new))
    }

    /// Applies `ops` in order, all in one transaction: either every one
    /// succeeds and the results come back in the same order, or nothing is
    /// written and the error names the failing op.
    pub fn batch(&mut self, ops: Vec<Op>) -> Result<Vec<Outcome>, BatchError> {
        let limits = self.cfg.limits;
        let checked = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| op.check(&limits).map_err(|e| BatchError::at(i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        if checked.is_empty() {
            // Nothing to do: no transaction, and no file for a fresh session,
            // but a destroyed one still says so.
            return match self.state {
                State::Destroyed => Err(BatchError::whole(Error::NotFound)),
                _ => Ok(Vec::new()),
            };
        }
        let mut failed_at = None;
        self.write(|tx, meta| {
            let mut outcomes = Vec::with_capacity(checked.len());
            for (i, op) in checked.iter().enumerate() {
                match op.apply(tx, meta, &limits) {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(e) => {
                        failed_at = Some(i);
                        return Err(e);
                    }
                }
            }
            Ok(outcomes)
        })
        .map_err(|e| match failed_at {
            Some(i) => BatchError::at(i, e),
            None => BatchError::whole(e),
        })
    }

    /// Gives the session a new id, keeping its data (call it on login and on
    /// any privilege change, against session fixation). The old id is dead
    /// afterwards. On a session not yet written, it just picks a new id.
    pub fn regenerate(&mut self) -> Result<()> {
        let new_id = SessionId::generate();
        match &mut self.state {
            State::Destroyed => return Err(Error::NotFound),
            State::Fresh => {}
            State::Stored(db) => {
                let new_path = path_of(&self.cfg, &new_id);
                let copied = db.copy_to_new_id(&new_path, self.cfg.db_options(), expiry::now_ms());
                self.note_gone(&copied);
                let (new_db, meta) = copied?;
                if let State::Stored(old) =
                    std::mem::replace(&mut self.state, State::Stored(new_db))
                {
                    let old_path = old.path().to_string();
                    old.delete_file();
                    live_count::moved(&self.cfg, &old_path, &new_path);
                }
                self.meta = Some(meta);
            }
        }
        self.id = new_id;
        Ok(())
    }

    /// Overrides the store's expiry settings for this session; `None` fields
    /// follow the store's defaults.
    pub fn set_expiry(&mut self, overrides: Overrides) -> Result<()> {
        if matches!(self.state, State::Fresh) {
            self.pending_overrides = overrides;
            return Ok(());
        }
        self.write(|_, meta| {
            meta.overrides = overrides;
            Ok(())
        })?;
        self.refreshed = true;
        Ok(())
    }

    /// When the session expires (Unix ms), or `None` if it never does. For a
    /// session not yet written: when it would expire if written now.
    pub fn expires_at(&mut self) -> Result<Option<i64>> {
        let defaults = self.cfg.expiry;
        let now = expiry::now_ms();
        let pending = self.pending_overrides;
        self.read(
            |_, meta| {
                Ok(expiry::expires_at_ms(
                    meta.timing,
                    &meta.overrides.apply(&defaults),
                ))
            },
            expiry::expires_at_ms(
                Timing {
                    created_ms: now,
                    last_access_ms: now,
                },
                &pending.apply(&defaults),
            ),
        )
    }

    /// The value the session cookie must hold (signed, if signing keys are
    /// configured), if a session is stored.
    pub fn cookie_value(&self) -> Option<String> {
        matches!(self.state, State::Stored(_)).then(|| self.cfg.signer.cookie_value(&self.id))
    }

    /// The `Set-Cookie` header this response needs, if any.
    pub fn set_cookie(&self) -> Option<String> {
        let cookie = &self.cfg.cookie;
        let now = expiry::now_ms();
        match (&self.state, self.client_id, &self.meta) {
            (State::Stored(_), client, Some(meta)) => {
                let persistent = meta
                    .overrides
                    .persistent_cookie
                    .unwrap_or(cookie.persistent);
                let unchanged = client == Some(self.id) && !self.resign;
                if unchanged && !(self.refreshed && persistent) {
                    return None;
                }
                let effective = meta.overrides.apply(&self.cfg.expiry);
                let max_age = persistent
                    .then(|| expiry::remaining_s(meta.timing, &effective, now).unwrap_or(u64::MAX));
                Some(cookie.set_header(&self.cfg.signer.cookie_value(&self.id), max_age, now))
            }
            (_, Some(_), _) => Some(cookie.delete_header()),
            _ => None,
        }
    }

    /// Runs a read; a session without a file answers `empty`.
    fn read<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Connection, &Meta) -> Result<T>,
        empty: T,
    ) -> Result<T> {
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
    fn write<T>(
        &mut self,
        mut f: impl FnMut(&rusqlite::Connection, &mut Meta) -> Result<T>,
    ) -> Result<T> {
        let out = match &mut self.state {
            State::Destroyed => return Err(Error::NotFound),
            State::Fresh => {
                let path = path_of(&self.cfg, &self.id);
                let pending = self.pending_overrides;
                // Creating a session takes a slot of `max-live-sessions`
                // first, so a full directory refuses before any file exists.
                live_count::reserve(&self.cfg, &path)?;
                let created = SessionDb::create_with(
                    &path,
                    self.cfg.db_options(),
                    expiry::now_ms(),
                    |tx, meta| {
                        meta.overrides = pending;
                        f(tx, meta)
                    },
                );
                if created.is_err() {
                    live_count::release(&self.cfg, &path);
                }
                let (db, meta, out) = created?;
                if meta.key_count == 0 {
                    // The write stored nothing in the end (a batch that set
                    // and removed a key): the file was committed as destroyed,
                    // so drop it, give its slot back and stay fresh, as an
                    // emptied session does.
                    db.delete_file();
                    live_count::release(&self.cfg, &path);
                    return Ok(out);
                }
                self.state = State::Stored(db);
                self.meta = Some(meta);
                out
            }
            State::Stored(db) => {
                let written = db.write(f);
                self.note_gone(&written);
                let (meta, out) = written?;
                self.meta = Some(meta);
                if meta.key_count == 0 {
                    // Emptied: `write` marked it destroyed; remove the file and
                    // start over under a new id if this handle writes again.
                    if let State::Stored(db) = std::mem::replace(&mut self.state, State::Fresh) {
                        let path = db.path().to_string();
                        db.delete_file();
                        live_count::release(&self.cfg, &path);
                    }
                    self.id = SessionId::generate();
                    self.meta = None;
                    self.pending_overrides = meta.overrides;
                }
                out
            }
        };
        Ok(out)
    }

    /// Another request destroyed the session: drop our connection.
    fn note_gone<T>(&mut self, result: &Result<T>) {
        if matches!(result, Err(Error::NotFound)) {
            self.state = State::Destroyed;
        }
    }
}
