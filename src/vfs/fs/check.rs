//! The self-check of a session directory: each property the filesystem
//! backend relies on, tried with probe files in a fresh directory inside it
//! (`.sessions-check-<random>`), which is removed afterwards.
//!
//! It runs on one host and sees what that host's mount does. What only
//! several hosts together show (another host's cached names, whether a file
//! renamed in without a flush reads whole elsewhere, whose clock stamps a
//! time) is for the protocol not to depend on; see the README, "Several
//! hosts, one directory".

use super::dir;
use super::image::read_image;
use super::raw::{self, Identity, OpenMode, RawFile};
use crate::vfs::directory_check::{CheckResult, DirectoryCheck};
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The probe directory's name starts so; the rest is random.
pub const PROBE_PREFIX: &str = ".sessions-check-";

/// Runs every check in `directory`. An error means the checks could not
/// run at all (say, a read-only directory); a property the directory lacks
/// is a result that did not pass.
pub fn check(directory: &str) -> io::Result<Vec<CheckResult>> {
    let probe = format!("{directory}/{PROBE_PREFIX}{}", random_hex());
    raw::create_dir(&probe)?;
    let outcome = run_all(&probe);
    remove_probe(&probe);
    outcome
}

fn run_all(probe: &str) -> io::Result<Vec<CheckResult>> {
    let mut results = vec![exclusive_create(probe)?];
    results.extend(replacement(probe)?);
    results.push(renamed_in_whole(probe)?);
    results.push(exact_mtime(probe)?);
    // Last: every probe file made above must be listed.
    results.push(listing(
        probe,
        &["exclusive", "replaced", "whole", "mtime"],
    )?);
    Ok(results)
}

fn result(check: DirectoryCheck, passed: bool, detail: String) -> CheckResult {
    CheckResult {
        check,
        passed,
        detail,
    }
}

fn write_new(path: &str, content: &[u8]) -> io::Result<RawFile> {
    let file = RawFile::open(path, OpenMode::CreateNew)?;
    file.write_all_at(content, 0)?;
    Ok(file)
}

fn exclusive_create(probe: &str) -> io::Result<CheckResult> {
    let file = format!("{probe}/exclusive");
    drop(RawFile::open(&file, OpenMode::CreateNew)?);
    let dir = format!("{probe}/exclusive-dir");
    raw::create_dir(&dir)?;
    let again_file = RawFile::open(&file, OpenMode::CreateNew).map(drop);
    let again_dir = raw::create_dir(&dir);
    Ok(judge_exclusive(again_file, again_dir))
}

/// `again_*`: what creating the existing file and directory again did.
fn judge_exclusive(again_file: io::Result<()>, again_dir: io::Result<()>) -> CheckResult {
    let wrong = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
        Err(e) => Some(format!("failed with {e} instead of EEXIST")),
        Ok(()) => Some("succeeded".to_owned()),
    };
    let (what, said) = match (wrong(again_file), wrong(again_dir)) {
        (None, None) => {
            return result(
                DirectoryCheck::ExclusiveCreate,
                true,
                "creating an existing file or directory exclusively fails with EEXIST".into(),
            )
        }
        (Some(said), _) => ("file (O_CREAT|O_EXCL)", said),
        (None, Some(said)) => ("directory (mkdir)", said),
    };
    result(
        DirectoryCheck::ExclusiveCreate,
        false,
        format!(
            "creating an existing {what} exclusively {said}: two writers could both \
             take a session's lock. Use a filesystem whose exclusive create is atomic \
             (every local one; NFS v3 and later; JuiceFS)."
        ),
    )
}

/// A commit as the store makes one, over a file held open: the identity and
/// the link-count checks.
fn replacement(probe: &str) -> io::Result<[CheckResult; 2]> {
    let name = format!("{probe}/replaced");
    drop(write_new(&name, b"old version")?);
    let held = RawFile::open(&name, OpenMode::ReadOnly)?;
    let staged_path = format!("{name}.next");
    let staged = write_new(&staged_path, b"new version")?;
    staged.sync()?;
    raw::rename(&staged_path, &name)?;

    let renamed = staged.identity()?;
    let at_name = raw::identity(&name)?;
    let identity = judge_identity(held.identity(), renamed, at_name);
    let links = held.link_count();
    // NFS keeps a replaced file that its client holds open under a
    // temporary name (`.nfs…`) beside it, and removes it at the close:
    // harmless. A trash keeps it elsewhere, and for good.
    let kept_beside = match links {
        Ok(n) if n > 0 => strangers(probe)?,
        _ => Vec::new(),
    };
    drop(held);
    let kept_only_while_open = !kept_beside.is_empty() && gone_soon(probe)?;
    Ok([identity, judge_links(links, kept_only_while_open)])
}

/// The probe directory's entries that no check made.
fn strangers(probe: &str) -> io::Result<Vec<String>> {
    const MADE: [&str; 3] = ["exclusive", "exclusive-dir", "replaced"];
    Ok(dir::list(probe)?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !MADE.contains(&name.as_str()))
        .collect())
}

/// Whether the strangers go away within a moment (a client's removal of a
/// file kept while open may lag its close a little).
fn gone_soon(probe: &str) -> io::Result<bool> {
    for _ in 0..20 {
        if strangers(probe)?.is_empty() {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(false)
}

/// `held`: the identity of the file held open, `renamed`: of the file
/// renamed over its name, `at_name`: what the name leads to now.
fn judge_identity(
    held: io::Result<Identity>,
    renamed: Identity,
    at_name: Option<Identity>,
) -> CheckResult {
    let (passed, detail) = match held {
        _ if at_name != Some(renamed) => (
            false,
            "after a rename, the name does not lead to the file renamed there: readers \
             could not find a new version. Use a POSIX filesystem."
                .to_owned(),
        ),
        Ok(mine) if mine == renamed => (
            false,
            "a file held open has the same identity as the different file renamed over \
             its name: a connection could not tell that its version was replaced. Use a \
             filesystem with a distinct inode number for each file."
                .to_owned(),
        ),
        Ok(_) => (
            true,
            "a file held open and the file renamed over its name have different identities"
                .to_owned(),
        ),
        Err(e) => (
            true,
            format!("a file held open fails ({e}) once replaced, which counts as replaced"),
        ),
    };
    result(DirectoryCheck::ReplacedIdentity, passed, detail)
}

/// `links`: the link count of a replaced file held open;
/// `kept_only_while_open`: it was kept beside its old name until closed.
fn judge_links(links: io::Result<u64>, kept_only_while_open: bool) -> CheckResult {
    let (passed, detail) = match links {
        Ok(0) => (
            true,
            "a replaced file held open has no link left".to_owned(),
        ),
        Ok(_) if kept_only_while_open => (
            true,
            "a replaced file held open is kept under a temporary name until it is closed \
             (NFS's silly rename), and nowhere afterwards"
                .to_owned(),
        ),
        Ok(n) => (
            false,
            format!(
                "a file replaced by a rename keeps {n} link(s): something keeps replaced \
                 files (JuiceFS's trash, on by default; a snapshot or recycle bin). Every \
                 commit would keep a whole old version, and a host with a stale name cache \
                 would read old versions. On JuiceFS turn the trash off \
                 (`juicefs config META-URL --trash-days 0`) and mount every host with \
                 --entry-cache 0 --dir-entry-cache 0: with the trash off, a host that \
                 caches names fails reads for up to the cache's time after another \
                 host's commit."
            ),
        ),
        Err(e) => (
            true,
            format!("a replaced file held open fails ({e}): nothing keeps it"),
        ),
    };
    result(DirectoryCheck::ReplacedLinkCount, passed, detail)
}

fn renamed_in_whole(probe: &str) -> io::Result<CheckResult> {
    // More than one read's worth, so reading back takes several calls.
    let content: Vec<u8> = (0..3 * 64 * 1024 + 4099).map(|i| (i % 251) as u8).collect();
    let name = format!("{probe}/whole");
    let staged_path = format!("{name}.next");
    let staged = write_new(&staged_path, &content)?;
    staged.sync()?;
    raw::rename(&staged_path, &name)?;
    let read = read_image(&RawFile::open(&name, OpenMode::ReadOnly)?)?;
    drop(staged);
    Ok(judge_whole(&content, &read))
}

fn judge_whole(content: &[u8], read: &[u8]) -> CheckResult {
    if read == content {
        return result(
            DirectoryCheck::RenamedInWhole,
            true,
            format!(
                "a file written, flushed and renamed into place reads back whole ({} bytes)",
                content.len()
            ),
        );
    }
    let differ = if content.starts_with(read) {
        ""
    } else {
        " that differ"
    };
    result(
        DirectoryCheck::RenamedInWhole,
        false,
        format!(
            "a file written, flushed and renamed into place read back as {} bytes{differ} \
             instead of its {}: commits would publish damaged versions",
            read.len(),
            content.len()
        ),
    )
}

fn exact_mtime(probe: &str) -> io::Result<CheckResult> {
    let name = format!("{probe}/mtime");
    // Opened for writing, as the lock file whose time the store sets.
    let file = write_new(&name, b"x")?;
    let mtime = || -> io::Result<SystemTime> {
        raw::stat(&name)?
            .map(|(_, mtime)| mtime)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the probe vanished"))
    };
    // Millisecond times, as the expiry hint is, with a fraction of a second.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let on_file = UNIX_EPOCH + Duration::from_millis(now_ms + 86_400_000 + 123);
    let by_name = on_file + Duration::from_millis(86_400_000 + 7);
    file.set_mtime(Some(on_file))?;
    let seen_on_file = mtime()?;
    raw::set_mtime(&name, Some(by_name))?;
    let seen_by_name = mtime()?;
    file.set_mtime(None)?;
    let touched = mtime()?;
    Ok(judge_mtime(
        (on_file, seen_on_file),
        (by_name, seen_by_name),
        touched,
    ))
}

/// Each pair: a time set (on the open file, by name) and what was read
/// back; `touched`: the time read back after touching the file.
fn judge_mtime(
    on_file: (SystemTime, SystemTime),
    by_name: (SystemTime, SystemTime),
    touched: SystemTime,
) -> CheckResult {
    let problem = if on_file.0 != on_file.1 {
        Some(("on the open file", on_file))
    } else if by_name.0 != by_name.1 {
        Some(("by name", by_name))
    } else {
        None
    };
    let (passed, detail) = match problem {
        Some((how, (set, seen))) => (
            false,
            format!(
                "a modification time set {how} to {} read back as {}: the sweep's expiry \
                 hints and the lock's renewals need times kept to the millisecond",
                millis(set),
                millis(seen)
            ),
        ),
        None if touched == by_name.0 => (
            false,
            "touching a file left its modification time unchanged: a lock's holder could \
             not show that it is alive"
                .to_owned(),
        ),
        None => (
            true,
            "modification times set on an open file and by name read back exactly, and a \
             touch changes them"
                .to_owned(),
        ),
    };
    result(DirectoryCheck::ExactMtime, passed, detail)
}

fn listing(probe: &str, expected: &[&str]) -> io::Result<CheckResult> {
    let listed: Vec<String> = dir::list(probe)?.into_iter().map(|(n, _)| n).collect();
    Ok(judge_listing(expected, &listed))
}

fn judge_listing(expected: &[&str], listed: &[String]) -> CheckResult {
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|name| !listed.iter().any(|n| n == name))
        .collect();
    if missing.is_empty() {
        return result(
            DirectoryCheck::Listing,
            true,
            "new files show in the directory's listing at once".into(),
        );
    }
    result(
        DirectoryCheck::Listing,
        false,
        format!(
            "the directory's listing misses new files ({}): the sweep would not find \
             sessions. Turn off the filesystem's cache of directory listings.",
            missing.join(", ")
        ),
    )
}

/// Unix milliseconds, for messages.
fn millis(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format!("{} ms", d.as_millis()),
        Err(_) => "a time before 1970".into(),
    }
}

/// Removes the probe directory and everything in it, as far as it can: a
/// leftover is named like no session and never examined by the store.
fn remove_probe(probe: &str) {
    for (name, is_file) in dir::list(probe).unwrap_or_default() {
        let path = format!("{probe}/{name}");
        let _ = if is_file {
            raw::remove_file(&path)
        } else {
            raw::remove_dir(&path)
        };
    }
    let _ = raw::remove_dir(probe);
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: SQLite writes exactly `bytes.len()` bytes into the buffer.
    unsafe { rusqlite::ffi::sqlite3_randomness(bytes.len() as i32, bytes.as_mut_ptr().cast()) };
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_directory_passes_every_check_and_keeps_no_probe() {
        let dir = tempfile::tempdir().unwrap();
        let results = check(dir.path().to_str().unwrap()).unwrap();
        let checks: Vec<DirectoryCheck> = results.iter().map(|r| r.check).collect();
        assert_eq!(
            checks,
            [
                DirectoryCheck::ExclusiveCreate,
                DirectoryCheck::ReplacedIdentity,
                DirectoryCheck::ReplacedLinkCount,
                DirectoryCheck::RenamedInWhole,
                DirectoryCheck::ExactMtime,
                DirectoryCheck::Listing,
            ]
        );
        for r in &results {
            assert!(r.passed, "{r:?}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn each_failure_says_what_is_wrong_and_what_to_change() {
        let exists = || io::Error::from(io::ErrorKind::AlreadyExists);
        let r = judge_exclusive(Ok(()), Err(exists()));
        assert!(
            !r.passed
                && r.detail
                    .contains("existing file (O_CREAT|O_EXCL) exclusively succeeded")
        );
        let r = judge_exclusive(Err(exists()), Ok(()));
        assert!(!r.passed && r.detail.contains("directory (mkdir)"), "{r:?}");
        assert!(judge_exclusive(Err(exists()), Err(exists())).passed);

        let (a, b) = (Identity::for_test(1), Identity::for_test(2));
        assert!(judge_identity(Ok(a), b, Some(b)).passed);
        // Another host's file system deleted the replaced file under the
        // descriptor: that counts as noticing.
        let gone = io::Error::from(io::ErrorKind::NotFound);
        assert!(judge_identity(Err(gone), b, Some(b)).passed);
        let r = judge_identity(Ok(b), b, Some(b));
        assert!(!r.passed && r.detail.contains("same identity"), "{r:?}");
        let r = judge_identity(Ok(a), b, Some(a));
        assert!(!r.passed && r.detail.contains("does not lead to"), "{r:?}");

        assert!(judge_links(Ok(0), false).passed);
        assert!(judge_links(Ok(1), true).detail.contains("silly rename"));
        assert!(judge_links(Ok(1), true).passed);
        let r = judge_links(Ok(1), false);
        assert_eq!(r.check, DirectoryCheck::ReplacedLinkCount);
        assert!(!r.passed && r.detail.contains("--trash-days 0"), "{r:?}");

        assert!(judge_whole(b"abc", b"abc").passed);
        let r = judge_whole(b"abc", b"");
        assert!(
            !r.passed && r.detail.contains("as 0 bytes instead of its 3"),
            "{r:?}"
        );
        assert!(judge_whole(b"abc", b"abd").detail.contains("that differ"));

        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let coarse = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = t + Duration::from_secs(1);
        assert!(judge_mtime((t, t), (later, later), t).passed);
        let r = judge_mtime((t, coarse), (later, later), t);
        assert!(
            !r.passed
                && r.detail
                    .contains("1700000000123 ms read back as 1700000000000 ms")
        );
        let r = judge_mtime((t, t), (later, coarse), t);
        assert!(!r.passed && r.detail.contains("by name"), "{r:?}");
        let r = judge_mtime((t, t), (later, later), later);
        assert!(!r.passed && r.detail.contains("touching"), "{r:?}");

        let listed = vec!["a".to_owned()];
        assert!(judge_listing(&["a"], &listed).passed);
        let r = judge_listing(&["a", "b"], &listed);
        assert!(!r.passed && r.detail.contains("(b)"), "{r:?}");
    }

    #[test]
    fn a_missing_directory_cannot_be_checked() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        assert!(check(gone.to_str().unwrap()).is_err());
    }
}
