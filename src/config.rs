//! The store's configuration with every default resolved, checked once at
//! `store.open` so that later calls never meet a bad setting.

use crate::cookies::{CookieSettings, Signer};
use crate::error::{Error, Result};
use crate::expiry::ExpiryDefaults;
use crate::limits::Limits;
use crate::storage::{DbOptions, Durability};
use crate::vfs;

/// A store's resolved configuration.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The session directory as the component sees it, without a trailing `/`.
    pub directory: String,
    pub limits: Limits,
    pub expiry: ExpiryDefaults,
    /// The opt-in quota on stored sessions in the directory; `None` keeps no
    /// count at all (see `live_count`).
    pub max_live_sessions: Option<u64>,
    pub busy_timeout_ms: u32,
    /// The lock lease; a lock unchanged this long is broken (see `vfs::lease`).
    pub lock_lease_ms: u32,
    pub durability: Durability,
    /// Several hosts use the directory at once, through a distributed
    /// filesystem: writers look a session's name up afresh before comparing
    /// (see `vfs::fs`), and `process-crash` durability is refused.
    pub shared_directory: bool,
    /// Run the directory self-check at `store.open` and refuse a directory
    /// that fails it (see `self_check`).
    pub check_directory: bool,
    pub file_name_secret: Option<Vec<u8>>,
    /// Signs cookie values; disabled when it has no keys.
    pub signer: Signer,
    pub cookie: CookieSettings,
}

impl StoreConfig {
    /// Defaults for everything but the directory.
    pub fn new(directory: impl Into<String>) -> Self {
        StoreConfig {
            directory: directory.into(),
            limits: Limits::default(),
            expiry: ExpiryDefaults::default(),
            max_live_sessions: None,
            busy_timeout_ms: 5000,
            lock_lease_ms: 2000,
            durability: Durability::default(),
            shared_directory: false,
            check_directory: false,
            file_name_secret: None,
            signer: Signer::default(),
            cookie: CookieSettings::default(),
        }
    }

    /// What every connection to a session file is opened with.
    pub fn db_options(&self) -> DbOptions {
        DbOptions {
            busy_timeout_ms: self.busy_timeout_ms,
            lock_lease_ms: self.lock_lease_ms,
            durability: self.durability,
            shared_directory: self.shared_directory,
            expiry_hint: Some(self.expiry),
        }
    }

    /// Checks every field and normalises the directory.
    pub fn validated(mut self) -> Result<Self> {
        if self.directory.is_empty() {
            return Err(Error::Config("directory: must not be empty".into()));
        }
        if self.directory.contains('\0') {
            return Err(Error::Config("directory: contains NUL".into()));
        }
        while self.directory.len() > 1 && self.directory.ends_with('/') {
            self.directory.pop();
        }
        let l = &self.limits;
        for (name, value) in [
            ("max-key-bytes", u64::from(l.max_key_bytes)),
            ("max-value-bytes", u64::from(l.max_value_bytes)),
            ("max-session-bytes", l.max_session_bytes),
            ("max-keys", u64::from(l.max_keys)),
        ] {
            if value == 0 {
                return Err(Error::Config(format!("{name}: must be at least 1")));
            }
        }
        if self.max_live_sessions == Some(0) {
            return Err(Error::Config(
                "max-live-sessions: must be at least 1 (use none for no limit)".into(),
            ));
        }
        if self.busy_timeout_ms > i32::MAX as u32 {
            return Err(Error::Config(format!(
                "busy-timeout-ms: at most {} (SQLite's limit)",
                i32::MAX
            )));
        }
        if self.lock_lease_ms < 10 {
            // Holders may modify only in the first half of a lease, and must
            // renew within a quarter: shorter leases leave no room for work.
            return Err(Error::Config("lock-lease-ms: at least 10".into()));
        }
        if self.shared_directory && self.durability == Durability::ProcessCrash {
            // Without a flush before the rename, a distributed filesystem
            // may publish the name before the content: other hosts then
            // read the new version as empty.
            return Err(Error::Config(
                "durability: process-crash is for a directory one host uses; \
                 with shared-directory use power-loss"
                    .into(),
            ));
        }
        if self.file_name_secret.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(Error::Config(
                "file-name-secret: must not be empty (use none for no secret)".into(),
            ));
        }
        self.cookie.validate()?;
        vfs::dir::check_root(&self.directory)
            .map_err(|why| Error::Config(format!("directory: {why}")))?;
        Ok(self)
    }
}
