//! The operations on the session directory as a whole that the store's
//! directory-wide jobs need, beside the per-session [`FileObject`]
//! (`super::FileObject`). The key-value backend has the same functions
//! (`kv::dir`), so the store calls them without knowing which it runs on.

use super::raw;
use crate::vfs::Hint;
use std::io;
use std::time::SystemTime;

/// Checks that the store's root, a directory, is usable: it exists and is a
/// directory. The message says what is wrong.
pub fn check_root(directory: &str) -> Result<(), String> {
    // A preopened directory exists and is a directory: nothing to check.
    if raw::is_preopened_dir(directory) {
        return Ok(());
    }
    match raw::stat(directory) {
        Ok(Some((true, _))) => Ok(()),
        Ok(Some(_)) => Err(format!("{directory} is not a directory")),
        Ok(None) => Err(format!("{directory} does not exist")),
        Err(e) => Err(format!("{directory} cannot be used: {e}")),
    }
}

/// Whether anything exists at `path`, other than an empty file (which the
/// VFS reads as no session in a shared directory, see `FileObject::try_load`,
/// and as a damaged one elsewhere, without asking this).
pub fn exists(path: &str) -> io::Result<bool> {
    Ok(size(path)?.is_some_and(|n| n > 0))
}

/// The file's size in bytes, if it exists.
pub fn size(path: &str) -> io::Result<Option<u64>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if raw::is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the file at `path`; a missing file is not an error.
pub fn remove(path: &str) -> io::Result<()> {
    match raw::remove_file(path) {
        Err(e) if !raw::is_not_found(&e) => Err(e),
        _ => Ok(()),
    }
}

/// The expiry hint of the session file at `path`: one `stat`.
pub fn hint(path: &str) -> io::Result<Hint> {
    Ok(match raw::stat(path)? {
        Some((_, mtime)) => Hint::At(mtime),
        None => Hint::Gone,
    })
}

/// Records `at` as the expiry hint of the session file at `path`.
pub fn set_hint(path: &str, at: SystemTime) -> io::Result<()> {
    raw::set_mtime(path, Some(at))
}

/// The entries of the directory `dir`: each name, and whether it is a
/// regular file. A missing directory (or a file where it should be) lists
/// as empty.
pub fn list(dir: &str) -> io::Result<Vec<(String, bool)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .map(|e| {
            // The entry's type comes with the listing: no extra host call.
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            (e.file_name().to_string_lossy().into_owned(), is_file)
        })
        .collect())
}

/// The directories among the entries of `dir`, by name (for the top level,
/// where shards are directories).
pub fn list_dirs(dir: &str) -> io::Result<Vec<(String, bool)>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (e.file_name().to_string_lossy().into_owned(), is_dir)
        })
        .collect())
}

pub use super::lease::OrphanWatch;

/// The self-check of the directory: whether it does what the store relies
/// on (see `fs::check`). An error means the checks could not run at all.
pub fn check(directory: &str) -> io::Result<Vec<crate::vfs::CheckResult>> {
    super::check::check(directory)
}
