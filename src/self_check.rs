//! The directory self-check as the store offers it: a report for operators
//! (the WIT `admin.check-directory`), and the refusal `store.open` makes with
//! `check-directory` when a check fails.

use crate::error::{Error, Result};
use crate::vfs::{self, CheckResult};
use std::cell::RefCell;
use std::collections::HashSet;

thread_local! {
    /// Directories that passed in this instance: a host that reuses an
    /// instance pays for the check once.
    static PASSED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// Every check's result. Fails only when the checks cannot run at all
/// (`storage`: a missing or read-only directory).
pub fn report(directory: &str) -> Result<Vec<CheckResult>> {
    vfs::dir::check(directory).map_err(|e| {
        let message = format!("the directory self-check could not run: {e}");
        match Error::from(e) {
            Error::Storage { kind, .. } => Error::storage(kind, message),
            other => other,
        }
    })
}

/// `Ok` when every check passes; otherwise `unsafe-directory` for the first
/// that failed, saying what is wrong and what to change.
pub fn require(directory: &str) -> Result<()> {
    if PASSED.with(|p| p.borrow().contains(directory)) {
        return Ok(());
    }
    if let Some(failed) = report(directory)?.into_iter().find(|r| !r.passed) {
        return Err(Error::UnsafeDirectory {
            check: failed.check,
            message: failed.detail,
        });
    }
    PASSED.with(|p| p.borrow_mut().insert(directory.to_owned()));
    Ok(())
}
