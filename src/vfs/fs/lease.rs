//! The lock protocol: one lock file per session file, held for one write
//! transaction, with a lease so that a holder that died cannot block the
//! session forever. The lock file is also where the holder stages the
//! session's next version: committing renames it over the session file,
//! which publishes the new version and releases the lock in one atomic call.
//!
//! WASI has no `fcntl` locks, so, like SQLite's `unix-dotfile`, a lock is a
//! name that only one writer can create: `<db>.lock`, opened with
//! `O_CREAT|O_EXCL`, is atomic on one machine and across processes.
//! `unix-dotfile` never breaks such a lock; an instance that traps, runs out
//! of fuel or is SIGKILLed while holding it leaves the session unusable
//! forever. This module adds a lease:
//!
//! * **Holder.** Acquires with the exclusive create and reads its monotonic
//!   clock *before* the call, so its own idea of when the lease started is
//!   never later than the real one. It may commit (or release) only while
//!   less than half the lease has passed since it acquired or last renewed;
//!   past a quarter it renews by touching the lock file's mtime. A holder
//!   that has been paused for longer than that commits nothing and leaves the
//!   lock to be broken.
//! * **Waiter.** On `EEXIST` it watches the lock file's mtime. Only when the
//!   mtime has stayed the same for a whole lease, measured on the waiter's
//!   own monotonic clock, is the lock stale. Comparing mtimes with each
//!   other, never with a wall clock, keeps this correct when hosts fake or
//!   skew the wall clock, and across processes.
//! * **Breaker.** Breaking is serialised by a directory, `<db>.lock-break`.
//!   Holding it, the waiter checks that the lock's mtime is still the stale
//!   one and *adopts* the lock: it empties and touches the file, which never
//!   disappears, so nobody can slip in between.
//!
//! Nothing needs recovering after a crash: the session file is only ever
//! replaced whole, by a rename, so it always holds a committed version. A
//! dead holder leaves only its lock file, with a half-written next version
//! that nobody reads.
//!
//! The residual risks, stated plainly: a holder paused for more than half a
//! lease *between* its lease check and the rename that follows it could
//! publish after a breaker took over (the breaker's own commit then replaces
//! it, or the breaker's half-written file is published); and if a breaker
//! itself dies inside its break window, two waiters that both time out on
//! the orphaned break directory in the same instant could both break.

use super::raw::{self, OpenMode, RawFile};
use crate::vfs::object::CommitFailed;
use crate::vfs::{BREAK_SUFFIX, LOCK_SUFFIX};
use std::io;
use std::time::{Duration, Instant, SystemTime};

/// One session file's lock, as seen by one connection.
pub struct LeaseLock {
    lock_path: String,
    break_dir: String,
    lease: Duration,
    held: Option<Held>,
    /// What we last saw of someone else's lock while waiting for it.
    watching_lock: Option<Watch>,
    watching_break: Option<Watch>,
}

/// The lock we hold: the open lock file, and since when (acquisition or
/// last renewal).
struct Held {
    file: RawFile,
    since: Instant,
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
            lock_path: format!("{db_path}{LOCK_SUFFIX}"),
            break_dir: format!("{db_path}{BREAK_SUFFIX}"),
            lease,
            held: None,
            watching_lock: None,
            watching_break: None,
        }
    }

    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// One attempt to take the lock. `Ok(false)` means someone else holds it
    /// (for now): the caller reports busy and SQLite's busy handler retries.
    pub fn try_acquire(&mut self) -> io::Result<bool> {
        debug_assert!(self.held.is_none());
        if self.try_create()? {
            return Ok(true);
        }
        let Some(mtime) = mtime_of(&self.lock_path)? else {
            // Released between our create and stat: try again at once.
            return self.try_create();
        };
        if !observe(&mut self.watching_lock, mtime, self.lease) {
            return Ok(false);
        }
        self.try_break(mtime)
    }

    /// The exclusive create: the lock, if nobody holds it. The first write
    /// into a directory that does not exist yet (a new session's shard)
    /// creates it here, so creating a session costs that call only when the
    /// shard is new, not on every creation.
    fn try_create(&mut self) -> io::Result<bool> {
        let before = Instant::now();
        let opened = match RawFile::open(&self.lock_path, OpenMode::CreateNew) {
            Err(e) if raw::is_not_found(&e) => {
                let parent = self.lock_path.rsplit_once('/').map_or(".", |(dir, _)| dir);
                match raw::create_dir(parent) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => RawFile::open(&self.lock_path, OpenMode::CreateNew),
                }
            }
            other => other,
        };
        match opened {
            Ok(file) => {
                self.hold(file, before);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn hold(&mut self, file: RawFile, since: Instant) {
        self.held = Some(Held { file, since });
        self.watching_lock = None;
    }

    /// The lock's mtime has stood still for a whole lease: take it over,
    /// one breaker at a time.
    fn try_break(&mut self, stale_mtime: SystemTime) -> io::Result<bool> {
        match raw::create_dir(&self.break_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Another breaker is at work, or died at work. Its window is
                // a few calls long; only a break directory unchanged for a
                // whole lease is orphaned.
                if let Some(mtime) = mtime_of(&self.break_dir)? {
                    if observe(&mut self.watching_break, mtime, self.lease) {
                        let _ = raw::remove_dir(&self.break_dir);
                        self.watching_break = None;
                    }
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        self.watching_break = None;
        let outcome = match mtime_of(&self.lock_path) {
            Ok(Some(now)) if now == stale_mtime => self.adopt(),
            // Renewed or released meanwhile: its holder is alive after all.
            Ok(_) => {
                self.watching_lock = None;
                Ok(false)
            }
            Err(e) => Err(e),
        };
        let _ = raw::remove_dir(&self.break_dir);
        outcome
    }

    /// Takes over a stale lock file: empties it (it holds the dead holder's
    /// half-written version) and touches it, so that other waiters see a
    /// live holder. Truncating alone would not change the mtime of a file
    /// that was already empty.
    fn adopt(&mut self) -> io::Result<bool> {
        let before = Instant::now();
        let file = match RawFile::open(&self.lock_path, OpenMode::ReadWrite) {
            Ok(file) => file,
            // Its holder released it after all.
            Err(e) if raw::is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        file.set_len(0)?;
        file.set_mtime(None)?;
        self.hold(file, before);
        Ok(true)
    }

    /// Whether we may modify the session now, renewing the lease when it is
    /// getting old. Costs a host call only when it renews.
    pub fn may_modify(&mut self) -> LeaseState {
        let Some(held) = &mut self.held else {
            return LeaseState::Lapsed;
        };
        let age = held.since.elapsed();
        if age >= self.lease / 2 {
            return LeaseState::Lapsed;
        }
        if age >= self.lease / 4 {
            let before = Instant::now();
            if held.file.set_mtime(None).is_err() {
                return LeaseState::Lapsed;
            }
            held.since = before;
        }
        LeaseState::Valid
    }

    /// Publishes `image` as the session file at `db_path` and releases the
    /// lock, returning the published file. The steps: write the image into
    /// the lock file, fsync it when `durable`, and rename it over the session
    /// file: the one atomic step, after which readers see the new version and
    /// writers may lock. Then the published file gets `mtime` (the sweep's
    /// expiry hint).
    ///
    /// The hint comes after the rename so that a lock file's mtime only ever
    /// records its holder's activity (create, write, renewal, adoption):
    /// that is how waiters and the sweep ([`OrphanWatch`]) tell a dead
    /// holder's lock from a live one. A crash between the two leaves the
    /// write time as the hint, which costs the sweep one open, where it is
    /// repaired.
    pub fn commit(
        &mut self,
        image: &[u8],
        mtime: Option<SystemTime>,
        durable: bool,
        db_path: &str,
    ) -> Result<RawFile, CommitFailed> {
        if self.may_modify() == LeaseState::Lapsed {
            return Err(CommitFailed::Lapsed);
        }
        let held = self.held.as_ref().expect("may_modify saw the lock held");
        let staged = (|| {
            held.file.write_all_at(image, 0)?;
            if durable {
                held.file.sync()?;
            }
            Ok(())
        })();
        staged.map_err(CommitFailed::Io)?;
        // Writing may have taken a while: the rename is the commit point, so
        // check the lease right before it.
        if self.may_modify() == LeaseState::Lapsed {
            return Err(CommitFailed::Lapsed);
        }
        raw::rename(&self.lock_path, db_path).map_err(CommitFailed::Io)?;
        let held = self.held.take().expect("held above");
        if let Some(at) = mtime {
            // Published already: a hint that fails to stick is only a wrong
            // hint (see above), not a failed commit.
            let _ = held.file.set_mtime(Some(at));
        }
        Ok(held.file)
    }

    /// Releases the lock without committing. A holder whose lease lapsed
    /// leaves the file alone: it may already belong to whoever broke it.
    pub fn release(&mut self) -> io::Result<()> {
        let state = self.may_modify();
        let held = self.held.take();
        match (state, held) {
            (LeaseState::Valid, Some(_held)) => match raw::remove_file(&self.lock_path) {
                Err(e) if !raw::is_not_found(&e) => Err(e),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// The locks that writers which died creating a session left with no
/// session file beside them, judged and cleared as a waiter would.
///
/// No breaker ever comes for such a lock: a breaker is a later writer of the
/// same id, and a new session's id is random and its cookie was never sent.
/// So the sweep plays the waiter: it watches each lock's mtime on its own
/// monotonic clock, and once a lock has stood unchanged for a whole lease it
/// takes the lock over exactly as a breaker does (one breaker at a time,
/// under the break directory) and releases it, which removes it. A live
/// holder changes its lock at least every quarter lease and stops modifying
/// after half of one, so a lock unchanged for a whole lease has no holder
/// that may still publish; a lock another writer merely took over stays the
/// next breaker's business. Nothing compares a time stamped by one host's
/// clock with another's: mtimes are only compared with each other, and the
/// lease is measured on the sweeper's clock.
///
/// The watch is bounded: [`OrphanWatch::settle`] waits until the lock it
/// began to watch last has been watched for one lease, then judges them all
/// once; a lock that changed meanwhile is left for the next pass.
///
/// The residual risk is the breaker's: a holder paused for a whole lease
/// between its last lease check and its rename could find its lock gone
/// (its rename then fails, and nothing is published).
pub struct OrphanWatch {
    lease: Duration,
    watched: Vec<LeaseLock>,
    /// When the last lock was first seen.
    last_seen: Option<Instant>,
}

impl OrphanWatch {
    pub fn new(lease: Duration) -> OrphanWatch {
        OrphanWatch {
            lease,
            watched: Vec::new(),
            last_seen: None,
        }
    }

    /// Starts watching `<db>.lock`, if `db_path` has no session file
    /// beside it (a lock beside its session is a breaker's business). A
    /// lock released meanwhile is simply gone; one that can be taken at once
    /// is taken and released.
    pub fn watch(&mut self, db_path: &str) -> io::Result<()> {
        if raw::stat(db_path)?.is_some() {
            return Ok(());
        }
        let mut lock = LeaseLock::new(db_path, self.lease);
        if lock.try_acquire()? {
            return lock.release();
        }
        self.watched.push(lock);
        self.last_seen = Some(Instant::now());
        Ok(())
    }

    /// Waits until every watched lock has been watched for one lease (at
    /// most one lease from now), then takes over and removes each one that
    /// stood unchanged all along. Returns how many it removed.
    pub fn settle(self) -> io::Result<u32> {
        let Some(last_seen) = self.last_seen else {
            return Ok(0);
        };
        std::thread::sleep(self.lease.saturating_sub(last_seen.elapsed()));
        let mut removed = 0;
        for mut lock in self.watched {
            if lock.try_acquire()? {
                lock.release()?;
                removed += 1;
            }
        }
        Ok(removed)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn db_in(dir: &tempfile::TempDir) -> String {
        format!("{}/s.db", dir.path().to_str().unwrap())
    }

    /// Takes the lock and dies holding it: the lock file stays, to be
    /// broken (or, with no session beside it, swept) after its lease.
    fn leave_a_dead_holders_lock(db: &str, lease: Duration) {
        let mut dead = LeaseLock::new(db, lease);
        assert!(dead.try_acquire().unwrap());
        dead.held = None;
    }

    fn exists(path: &str) -> bool {
        std::path::Path::new(path).exists()
    }

    #[test]
    fn an_orphaned_lock_is_removed_once_watched_unchanged_for_a_lease() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let lock = format!("{db}.lock");
        let lease = Duration::from_millis(200);
        leave_a_dead_holders_lock(&db, lease);
        // Stamped by a host whose clock runs far ahead: only the watch on
        // the sweeper's own clock counts, so it is removed all the same.
        let ahead = SystemTime::now() + Duration::from_secs(86_400 * 365);
        raw::set_mtime(&lock, Some(ahead)).unwrap();

        let started = Instant::now();
        let mut watch = OrphanWatch::new(lease);
        watch.watch(&db).unwrap();
        assert!(exists(&lock), "not judged at first sight");
        assert_eq!(watch.settle().unwrap(), 1);
        let waited = started.elapsed();
        assert!(waited >= lease, "judged after {waited:?}, lease {lease:?}");
        assert!(waited < lease * 3, "the watch is bounded: {waited:?}");
        assert!(!exists(&lock));
        assert!(!exists(&format!("{db}.lock-break")));
        assert!(!exists(&db), "the sweep creates no session");
    }

    #[test]
    fn a_lock_that_changes_while_watched_is_left_for_the_next_pass() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let lock = format!("{db}.lock");
        let lease = Duration::from_millis(200);
        leave_a_dead_holders_lock(&db, lease);
        // Stamped by a host whose clock runs years behind: however old its
        // mtime looks, a lock that changes is alive.
        let behind = std::time::UNIX_EPOCH + Duration::from_secs(946_684_800);
        raw::set_mtime(&lock, Some(behind)).unwrap();
        let mut watch = OrphanWatch::new(lease);
        watch.watch(&db).unwrap();
        std::thread::sleep(lease / 2);
        // A renewal, by that slow clock.
        raw::set_mtime(&lock, Some(behind + Duration::from_secs(1))).unwrap();
        assert_eq!(watch.settle().unwrap(), 0);
        assert!(exists(&lock));
    }

    #[test]
    fn a_lock_beside_a_session_or_under_a_breaker_is_not_an_orphan() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let lease = Duration::from_millis(50);
        std::fs::write(&db, b"a session").unwrap();
        leave_a_dead_holders_lock(&db, lease);
        // The session exists: the lock is a breaker's business, and nothing
        // is watched, so nothing is waited for.
        let mut watch = OrphanWatch::new(lease);
        watch.watch(&db).unwrap();
        let started = Instant::now();
        assert_eq!(watch.settle().unwrap(), 0);
        assert!(started.elapsed() < lease);
        std::fs::remove_file(&db).unwrap();
        // A breaker holds the break directory: left alone as well.
        raw::create_dir(&format!("{db}.lock-break")).unwrap();
        let mut watch = OrphanWatch::new(lease);
        watch.watch(&db).unwrap();
        assert_eq!(watch.settle().unwrap(), 0);
        assert!(exists(&format!("{db}.lock")));
        raw::remove_dir(&format!("{db}.lock-break")).unwrap();
        let mut watch = OrphanWatch::new(lease);
        watch.watch(&db).unwrap();
        assert_eq!(watch.settle().unwrap(), 1);
        assert!(!exists(&format!("{db}.lock")));
    }

    #[test]
    fn a_lock_released_before_the_watch_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let lease = Duration::from_secs(10);
        // No lock at all (its holder released it since the listing): the
        // watch takes the free lock, gives it back, and waits for nothing.
        let mut watch = OrphanWatch::new(lease);
        watch.watch(&db).unwrap();
        let started = Instant::now();
        assert_eq!(watch.settle().unwrap(), 0);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!exists(&format!("{db}.lock")));
    }

    #[test]
    fn excludes_a_second_holder_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let mut a = LeaseLock::new(&db, Duration::from_secs(10));
        let mut b = LeaseLock::new(&db, Duration::from_secs(10));
        assert!(a.try_acquire().unwrap());
        assert!(!b.try_acquire().unwrap());
        assert_eq!(a.may_modify(), LeaseState::Valid);
        a.release().unwrap();
        assert!(b.try_acquire().unwrap());
    }

    #[test]
    fn a_lock_left_behind_is_adopted_after_one_unchanged_lease() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let lease = Duration::from_millis(200);
        leave_a_dead_holders_lock(&db, lease);
        let mut waiter = LeaseLock::new(&db, lease);
        let started = Instant::now();
        while !waiter.try_acquire().unwrap() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let waited = started.elapsed();
        assert!(waited >= lease, "broken after {waited:?}, lease {lease:?}");
        assert!(waited < lease * 3, "took {waited:?}");
        assert!(!std::path::Path::new(&format!("{db}.lock-break")).exists());
        waiter.release().unwrap();
        assert!(!std::path::Path::new(&format!("{db}.lock")).exists());
    }

    #[test]
    fn a_renewing_holder_is_never_robbed() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let lease = Duration::from_millis(200);
        let mut holder = LeaseLock::new(&db, lease);
        assert!(holder.try_acquire().unwrap());
        let mut waiter = LeaseLock::new(&db, lease);
        let until = Instant::now() + lease * 4;
        while Instant::now() < until {
            assert_eq!(holder.may_modify(), LeaseState::Valid);
            assert!(!waiter.try_acquire().unwrap());
            // Coarse filesystem timestamps tick every few ms; renewals a
            // quarter lease apart always change the mtime.
            std::thread::sleep(Duration::from_millis(20));
        }
        holder.release().unwrap();
    }

    #[test]
    fn a_holder_past_half_its_lease_stops_modifying_and_keeps_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let lease = Duration::from_millis(100);
        let mut slow = LeaseLock::new(&db, lease);
        assert!(slow.try_acquire().unwrap());
        std::thread::sleep(lease);
        assert_eq!(slow.may_modify(), LeaseState::Lapsed);
        slow.release().unwrap();
        // The lock file stays for a breaker.
        assert!(std::path::Path::new(&format!("{db}.lock")).exists());
    }

    #[test]
    fn commit_publishes_the_staged_version_and_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        std::fs::write(&db, b"old version").unwrap();
        let reader = std::fs::File::open(&db).unwrap();
        let mut writer = LeaseLock::new(&db, Duration::from_secs(10));
        assert!(writer.try_acquire().unwrap());
        let hint = std::time::UNIX_EPOCH + Duration::from_secs(4_000_000_000);
        let published = match writer.commit(b"new version", Some(hint), true, &db) {
            Ok(file) => file,
            Err(e) => panic!("commit failed: {e:?}"),
        };
        assert!(!writer.is_held());
        assert_eq!(std::fs::read(&db).unwrap(), b"new version");
        assert_eq!(std::fs::metadata(&db).unwrap().modified().unwrap(), hint);
        assert!(!std::path::Path::new(&format!("{db}.lock")).exists());
        // The file a reader had open is the replaced one: the name leads
        // to the published file, which is how readers notice a commit.
        use std::os::unix::fs::MetadataExt;
        let at_name = raw::identity(&db).unwrap();
        assert_eq!(at_name, Some(published.identity().unwrap()));
        assert_eq!(reader.metadata().unwrap().nlink(), 0);
        // The next writer locks at once.
        let mut next = LeaseLock::new(&db, Duration::from_secs(10));
        assert!(next.try_acquire().unwrap());
        next.release().unwrap();
    }

    #[test]
    fn a_lapsed_holder_cannot_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        std::fs::write(&db, b"old").unwrap();
        let lease = Duration::from_millis(60);
        let mut slow = LeaseLock::new(&db, lease);
        assert!(slow.try_acquire().unwrap());
        std::thread::sleep(lease);
        assert!(matches!(
            slow.commit(b"new", None, false, &db),
            Err(CommitFailed::Lapsed)
        ));
        assert_eq!(std::fs::read(&db).unwrap(), b"old");
    }
}
