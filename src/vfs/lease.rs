//! The lock protocol: one lock directory per session file, held for one
//! transaction, with a lease so that a holder that died cannot block the
//! session forever.
//!
//! WASI has no `fcntl` locks, so, like SQLite's `unix-dotfile`, a lock is the
//! directory `<db>.lock`: `mkdir` is atomic and fails when it exists, on one
//! machine and across processes. `unix-dotfile` never breaks such a lock; an
//! instance that traps, runs out of fuel or is SIGKILLed while holding it
//! leaves the session unusable forever. This module adds a lease:
//!
//! * **Holder.** Acquires with `mkdir` and reads its monotonic clock *before*
//!   the call, so its own idea of when the lease started is never later than
//!   the real one. It may modify the session (write, truncate, delete the
//!   journal, release the lock) only while less than half the lease has
//!   passed since it acquired or last renewed; past a quarter it renews by
//!   touching the lock directory's mtime. A holder that has been paused for
//!   longer than that stops modifying anything and leaves the lock to be
//!   broken, together with its journal, which the next holder rolls back.
//! * **Waiter.** On `EEXIST` it watches the lock directory's mtime. Only when
//!   the mtime has stayed the same for a whole lease, measured on the
//!   waiter's own monotonic clock, is the lock stale. Comparing mtimes with
//!   each other, never with a wall clock, keeps this correct when hosts fake
//!   or skew the wall clock, and across processes.
//! * **Breaker.** Breaking is serialised by a second directory,
//!   `<db>.lock-break`. Holding it, the waiter checks that the lock's mtime is
//!   still the stale one and *adopts* the lock by touching it: the lock
//!   directory never disappears, so nobody can slip in between, and the
//!   adopter knows that the dead holder may have left a hot journal.
//!
//! Invariant that makes reads cheap: while no lock directory exists, there is
//! no hot journal, because every holder that dies, or fails an I/O call, or
//! outlives its lease, leaves the lock behind. So a holder that acquired with
//! a plain `mkdir` skips SQLite's per-transaction journal probe; only an
//! adopter looks.
//!
//! The residual risks, stated plainly: a holder paused for more than half a
//! lease *between* its lease check and the write that follows it could write
//! after a breaker took over; and if a breaker itself dies inside its
//! three-call break window, two waiters that both time out on the orphaned
//! break directory in the same instant could both break.

use super::raw;
use std::io;
use std::time::{Duration, Instant, SystemTime};

/// How a lock was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Created fresh: no hot journal can exist.
    Fresh,
    /// Taken over from a holder that let its lease lapse: its journal, if
    /// any, is hot and must be rolled back.
    Adopted,
}

/// One session file's lock, as seen by one connection.
#[derive(Debug)]
pub struct LeaseLock {
    lock_dir: String,
    break_dir: String,
    lease: Duration,
    /// Since when we hold the lock (acquisition or last renewal).
    held_since: Option<Instant>,
    /// What we last saw of someone else's lock while waiting for it.
    watching_lock: Option<Watch>,
    watching_break: Option<Watch>,
}

/// An observed mtime and when we first saw it.
#[derive(Debug, Clone, Copy)]
struct Watch {
    mtime: SystemTime,
    since: Instant,
}

/// What `may_modify` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Valid,
    /// We do not hold the lock, or held it too long: modify nothing.
    Lapsed,
}

impl LeaseLock {
    pub fn new(db_path: &str, lease: Duration) -> LeaseLock {
        LeaseLock {
            lock_dir: format!("{db_path}.lock"),
            break_dir: format!("{db_path}.lock-break"),
            lease,
            held_since: None,
            watching_lock: None,
            watching_break: None,
        }
    }

    /// One attempt to take the lock. `Ok(None)` means someone else holds it
    /// (for now): the caller reports busy and SQLite's busy handler retries.
    pub fn try_acquire(&mut self) -> io::Result<Option<Acquired>> {
        debug_assert!(self.held_since.is_none());
        if let Some(how) = self.try_create()? {
            return Ok(Some(how));
        }
        let Some(mtime) = mtime_of(&self.lock_dir)? else {
            // Released between our mkdir and stat: try again at once.
            return self.try_create();
        };
        if !observe(&mut self.watching_lock, mtime, self.lease) {
            return Ok(None);
        }
        self.try_break(mtime)
    }

    /// `mkdir`: the lock, if nobody holds it.
    fn try_create(&mut self) -> io::Result<Option<Acquired>> {
        let before = Instant::now();
        match raw::create_dir(&self.lock_dir) {
            Ok(()) => {
                self.held_since = Some(before);
                self.watching_lock = None;
                Ok(Some(Acquired::Fresh))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The lock's mtime has stood still for a whole lease: take it over,
    /// one breaker at a time.
    fn try_break(&mut self, stale_mtime: SystemTime) -> io::Result<Option<Acquired>> {
        match raw::create_dir(&self.break_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Another breaker is at work, or died at work. Its window is
                // three calls long; only a break directory unchanged for a
                // whole lease is orphaned.
                if let Some(mtime) = mtime_of(&self.break_dir)? {
                    if observe(&mut self.watching_break, mtime, self.lease) {
                        let _ = raw::remove_dir(&self.break_dir);
                        self.watching_break = None;
                    }
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        self.watching_break = None;
        let before = Instant::now();
        let outcome = match mtime_of(&self.lock_dir) {
            Ok(Some(now)) if now == stale_mtime => touch(&self.lock_dir).map(|()| {
                self.held_since = Some(before);
                self.watching_lock = None;
                Some(Acquired::Adopted)
            }),
            // Renewed or released meanwhile: its holder is alive after all.
            Ok(_) => {
                self.watching_lock = None;
                Ok(None)
            }
            Err(e) => Err(e),
        };
        let _ = raw::remove_dir(&self.break_dir);
        outcome
    }

    /// Whether we may modify the session now, renewing the lease when it is
    /// getting old. Costs a host call only when it renews.
    pub fn may_modify(&mut self) -> LeaseState {
        let Some(since) = self.held_since else {
            return LeaseState::Lapsed;
        };
        let age = since.elapsed();
        if age >= self.lease / 2 {
            return LeaseState::Lapsed;
        }
        if age >= self.lease / 4 {
            let before = Instant::now();
            if touch(&self.lock_dir).is_err() {
                return LeaseState::Lapsed;
            }
            self.held_since = Some(before);
        }
        LeaseState::Valid
    }

    /// Releases the lock. A holder whose lease lapsed leaves the directory
    /// alone: it may already belong to whoever broke it.
    pub fn release(&mut self) -> io::Result<()> {
        let state = self.may_modify();
        self.held_since = None;
        match state {
            LeaseState::Valid => match raw::remove_dir(&self.lock_dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            LeaseState::Lapsed => Ok(()),
        }
    }

    /// Gives the lock up *without* removing the directory, so that it is
    /// broken (and the journal rolled back) after a lease. For when an I/O
    /// failure may have left a hot journal that our cheap-read invariant
    /// would otherwise hide.
    pub fn abandon(&mut self) {
        self.held_since = None;
    }
}

/// Records `mtime` in `watch`; true once it has been unchanged for `lease`.
fn observe(watch: &mut Option<Watch>, mtime: SystemTime, lease: Duration) -> bool {
    match watch {
        Some(w) if w.mtime == mtime => w.since.elapsed() >= lease,
        _ => {
            *watch = Some(Watch {
                mtime,
                since: Instant::now(),
            });
            false
        }
    }
}

fn mtime_of(path: &str) -> io::Result<Option<SystemTime>> {
    Ok(raw::stat(path)?.map(|(_, mtime)| mtime))
}

/// Sets `path`'s mtime to the filesystem's now: one host call.
fn touch(path: &str) -> io::Result<()> {
    raw::set_mtime(path, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_in(dir: &tempdir::Dir) -> String {
        format!("{}/s.db", dir.path())
    }

    mod tempdir {
        pub struct Dir(String);
        impl Dir {
            pub fn new(tag: &str) -> Dir {
                let path = std::env::temp_dir().join(format!(
                    "lease-{tag}-{}-{:?}",
                    std::process::id(),
                    std::time::SystemTime::now()
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path.to_str().unwrap().to_owned())
            }
            pub fn path(&self) -> &str {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn excludes_a_second_holder_until_release() {
        let dir = tempdir::Dir::new("excl");
        let db = db_in(&dir);
        let mut a = LeaseLock::new(&db, Duration::from_secs(10));
        let mut b = LeaseLock::new(&db, Duration::from_secs(10));
        assert_eq!(a.try_acquire().unwrap(), Some(Acquired::Fresh));
        assert_eq!(b.try_acquire().unwrap(), None);
        assert_eq!(a.may_modify(), LeaseState::Valid);
        a.release().unwrap();
        assert_eq!(b.try_acquire().unwrap(), Some(Acquired::Fresh));
    }

    #[test]
    fn a_lock_left_behind_is_adopted_after_one_unchanged_lease() {
        let dir = tempdir::Dir::new("stale");
        let db = db_in(&dir);
        let lease = Duration::from_millis(200);
        let mut dead = LeaseLock::new(&db, lease);
        assert!(dead.try_acquire().unwrap().is_some());
        dead.abandon(); // dies holding it
        let mut waiter = LeaseLock::new(&db, lease);
        let started = Instant::now();
        let got = loop {
            if let Some(how) = waiter.try_acquire().unwrap() {
                break how;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(got, Acquired::Adopted);
        let waited = started.elapsed();
        assert!(waited >= lease, "broken after {waited:?}, lease {lease:?}");
        assert!(waited < lease * 3, "took {waited:?}");
        assert!(!std::path::Path::new(&format!("{db}.lock-break")).exists());
        waiter.release().unwrap();
        assert!(!std::path::Path::new(&format!("{db}.lock")).exists());
    }

    #[test]
    fn a_renewing_holder_is_never_robbed() {
        let dir = tempdir::Dir::new("renew");
        let db = db_in(&dir);
        let lease = Duration::from_millis(200);
        let mut holder = LeaseLock::new(&db, lease);
        assert!(holder.try_acquire().unwrap().is_some());
        let mut waiter = LeaseLock::new(&db, lease);
        let until = Instant::now() + lease * 4;
        while Instant::now() < until {
            assert_eq!(holder.may_modify(), LeaseState::Valid);
            assert_eq!(waiter.try_acquire().unwrap(), None);
            // Coarse filesystem timestamps tick every few ms; renewals a
            // quarter lease apart always change the mtime.
            std::thread::sleep(Duration::from_millis(20));
        }
        holder.release().unwrap();
    }

    #[test]
    fn a_holder_past_half_its_lease_stops_modifying_and_keeps_the_lock() {
        let dir = tempdir::Dir::new("lapse");
        let db = db_in(&dir);
        let lease = Duration::from_millis(100);
        let mut slow = LeaseLock::new(&db, lease);
        assert!(slow.try_acquire().unwrap().is_some());
        std::thread::sleep(lease);
        assert_eq!(slow.may_modify(), LeaseState::Lapsed);
        slow.release().unwrap();
        // The directory stays for a breaker (and its journal's rollback).
        assert!(std::path::Path::new(&format!("{db}.lock")).exists());
    }
}
