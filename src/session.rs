//! The store and its sessions: the API the WIT interface exposes, in plain
//! Rust so that it also builds natively (for the side-by-side benchmark).

use crate::admin;
use crate::codec;
use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::expiry::{self, ExpiryDefaults, Overrides, Timing};
use crate::ids::SessionId;
use crate::layout;
use crate::live_count;
use crate::nested::Segment;
use crate::ops::{self, BatchError, Op, Outcome};
use crate::storage::{self, Meta, SessionDb};
use crate::sweep::{self, SweepProgress};
use std::rc::Rc;

/// An open session directory.
pub struct Store {
    cfg: Rc<StoreConfig>,
}

impl Store {
    pub fn open(cfg: StoreConfig) -> Result<Store> {
        Ok(Store {
            cfg: Rc::new(cfg.validated()?),
        })
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
        Ok(Some(Session {
            cfg: Rc::clone(&self.cfg),
            id,
            is_new: false,
            client_id: Some(id),
            resign: false,
            state: State::Stored(db),
            meta: Some(meta),
            pending_overrides: Overrides::default(),
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
            resign: false,
            state: State::Fresh,
            meta: None,
            pending_overrides: Overrides::default(),
            refreshed: false,
        }
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
                session.resign = key_index > 0;
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

/// Where session `id`'s file lives.
fn path_of(cfg: &StoreConfig, id: &SessionId) -> String {
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
        convert: impl FnOnce(Vec<u8>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.cfg.limits.check_key(key)?;
        if matches!(self.state, State::Fresh) {
            return Ok(None);
        }
        self.write(|tx, meta| storage::take(tx, meta, key)?.map(convert).transpose())
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
        self.write(|tx, meta| ops::set_in(tx, meta, &limits, key, path, value))
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
        self.write(|tx, meta| ops::append(tx, meta, &limits, key, item))
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
            for (i, op) in checked.into_iter().enumerate() {
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
        f: impl FnOnce(&rusqlite::Connection, &mut Meta) -> Result<T>,
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
