//! Shared fixtures: a temporary session directory and short-hands for the
//! calls most tests make.

use sqlite_sessions::layout::SessionFile;
use sqlite_sessions::DbOptions;
use sqlite_sessions::SessionId;
use sqlite_sessions_host::{
    default_config, Config, Request, RequestOptions, SessionHandle, StoreHandle,
};
use std::path::{Path, PathBuf};

/// A fresh session directory plus the shared runtime (compiled once per
/// process).
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A fresh directory, with every store setting at its default.
    pub fn new() -> Self {
        Self::with_config(default_config())
    }

    /// A fresh directory, with `config` for the store.
    pub fn with_config(config: Config) -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            config,
        }
    }

    /// The session directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh instance (one "request") with the store opened.
    pub fn request(&self) -> (Request, StoreHandle) {
        self.request_with(RequestOptions::default())
    }

    /// [`Env::request`] with `options`.
    pub fn request_with(&self, options: RequestOptions) -> (Request, StoreHandle) {
        let mut req = crate::runtime().request_with(self.path(), options).unwrap();
        let store = req.open_store(&self.config).unwrap().unwrap();
        (req, store)
    }

    /// Creates a session holding `key = json` and returns its id.
    pub fn session_with(&self, key: &str, json: &str) -> String {
        crate::runtime()
            .create_session(
                self.path(),
                RequestOptions::default(),
                &self.config,
                &[(key, json)],
            )
            .unwrap()
    }

    /// Loads `id` in a fresh instance; `None` if the store says it is gone.
    pub fn load(&self, id: &str) -> Option<(Request, StoreHandle, SessionHandle)> {
        let (mut req, store) = self.request();
        let s = req.store(&store).load(id).unwrap().unwrap()?;
        Some((req, store, s))
    }

    /// `get-json(key)` on session `id` in a fresh instance.
    pub fn get_json(&self, id: &str, key: &str) -> Option<String> {
        let (mut req, store, s) = self.load(id)?;
        let v = req.session(&s).get_json(key).unwrap().unwrap();
        finish(req, store, s);
        v
    }

    /// Every file below the session directory, relative to it.
    pub fn files(&self) -> Vec<PathBuf> {
        walk(self.path())
            .into_iter()
            .map(|p| p.strip_prefix(self.path()).unwrap().to_path_buf())
            .collect()
    }

    /// Only the session databases.
    pub fn session_files(&self) -> Vec<PathBuf> {
        self.files()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "db"))
            .collect()
    }
}

/// Drops the resources so the guest destructors run, as a real host must.
pub fn finish(mut req: Request, store: StoreHandle, session: SessionHandle) {
    req.drop_session(session).unwrap();
    req.drop_store(store).unwrap();
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    tree(dir).into_iter().filter(|p| !p.is_dir()).collect()
}

/// Every entry under `dir`, directories included, sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree(&path));
        }
        out.push(path);
    }
    out.sort();
    out
}

/// CBOR bytes of a JSON literal, built on the host side with ciborium.
pub fn cbor(json: &str) -> Vec<u8> {
    let value: ciborium::Value = serde_json::from_str(json).unwrap();
    let mut out = Vec::new();
    ciborium::into_writer(&value, &mut out).unwrap();
    out
}

/// The JSON text of CBOR bytes returned by the component.
pub fn json_of(bytes: &[u8]) -> String {
    let value: serde_json::Value = ciborium::from_reader(bytes).unwrap();
    value.to_string()
}

/// The file of session `id` under `dir`, named by the store's own code
/// (the sweep tests derive it independently, to check that code).
pub fn session_path(dir: &Path, id: &str) -> PathBuf {
    let f = SessionFile::for_id(&SessionId::parse(id).unwrap(), None);
    dir.join(f.shard).join(f.name)
}

/// The lock file of session `id` (see `src/vfs/fs/lease.rs`): present while a
/// writer holds the lock, or after one died holding it.
pub fn lock_path(dir: &Path, id: &str) -> PathBuf {
    let mut p = session_path(dir, id).into_os_string();
    p.push(".lock");
    p.into()
}

/// SQLite's `PRAGMA integrity_check` of a session file, read natively
/// through the store's own VFS: `"ok"` for a sound file.
pub fn integrity(file: &Path) -> String {
    let opts = DbOptions {
        busy_timeout_ms: 10_000,
        lock_lease_ms: 2_000,
        durability: Default::default(),
        shared_directory: false,
        expiry_hint: None,
    };
    sqlite_sessions::integrity_check(file.to_str().unwrap(), opts).unwrap()
}
