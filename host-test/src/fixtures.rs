//! Shared fixtures: a temporary session directory or key-value bucket, and
//! short-hands for the calls most tests make.

use crate::backend::Backend;
use sqlite_sessions::layout::SessionFile;
use sqlite_sessions::DbOptions;
use sqlite_sessions::SessionId;
use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions};
use sqlite_sessions_host::{
    default_config, Config, Request, RequestOptions, SessionHandle, SessionStorage, StoreHandle,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The bucket identifier the key-value tests open (`config.directory`).
pub const BUCKET: &str = "default";

/// Where the helper binaries (`stress`, `crash-writer`) keep sessions, from
/// their flags: exactly one of `--dir`, `--kv URL` and `--kv-cluster
/// URL,URL,...`, the last two on the bucket [`BUCKET`] under `key_prefix`.
pub fn storage_from_flags(
    dir: Option<PathBuf>,
    kv: Option<String>,
    cluster: Option<String>,
    key_prefix: String,
) -> anyhow::Result<SessionStorage> {
    let options = RedisOptions {
        key_prefix,
        ..RedisOptions::default()
    };
    Ok(match (dir, kv, cluster) {
        (Some(dir), None, None) => dir.into(),
        (None, Some(url), None) => Buckets::builder()
            .redis(BUCKET, &url, &options)?
            .build()
            .into(),
        (None, None, Some(urls)) => {
            let nodes: Vec<&str> = urls.split(',').collect();
            Buckets::builder()
                .redis_cluster(BUCKET, &nodes, &options)?
                .build()
                .into()
        }
        _ => anyhow::bail!("exactly one of --dir, --kv and --kv-cluster is required"),
    })
}

/// SCAN's COUNT hint for the tests' buckets: small, so that a listing or a
/// sweep of a few dozen sessions already spans several `list-keys` pages.
pub const TEST_SCAN_COUNT: u32 = 16;

/// A fresh session directory or bucket, the store settings for it, and the
/// runtime of the matching build of the store (compiled once per process).
pub struct Env {
    pub config: Config,
    backend: Backend,
    storage: SessionStorage,
    /// The directory of a `Dir` environment.
    dir: Option<tempfile::TempDir>,
    /// The key prefix of a key-value environment.
    prefix: String,
    /// The Redis server (or the cluster's masters) of a key-value
    /// environment.
    urls: Vec<String>,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A fresh directory, with every store setting at its default.
    pub fn new() -> Self {
        Self::on(Backend::Dir)
    }

    /// A fresh directory, with `config` for the store.
    pub fn with_config(config: Config) -> Self {
        Self::with_config_on(Backend::Dir, config)
    }

    /// `dir` as the session directory, with `config` for the store.
    pub fn in_dir(dir: tempfile::TempDir, config: Config) -> Self {
        Env {
            config,
            backend: Backend::Dir,
            storage: dir.path().into(),
            dir: Some(dir),
            prefix: String::new(),
            urls: Vec::new(),
        }
    }

    /// A fresh directory or bucket on `backend`, every setting at its default.
    pub fn on(backend: Backend) -> Self {
        Self::with_config_on(backend, default_config())
    }

    /// A fresh directory or bucket on `backend`, with `config` for the store
    /// (whose `directory` is set to the bucket for a key-value backend).
    ///
    /// # Panics
    /// If the backend's server cannot be started.
    pub fn with_config_on(backend: Backend, config: Config) -> Self {
        if backend == Backend::Dir {
            return Self::in_dir(tempfile::tempdir().unwrap(), config);
        }
        Self::on_servers(backend, backend.server_urls(), config)
    }

    /// A fresh bucket on the Redis server at `urls[0]` (`Backend::Redis`)
    /// or the cluster of `urls` (`Backend::Cluster`), e.g. a private server
    /// that a test stops and restarts.
    pub fn on_servers(backend: Backend, urls: Vec<String>, mut config: Config) -> Self {
        config.directory = BUCKET.to_owned();
        let prefix = unique_prefix();
        let buckets = buckets_on(backend, &urls, &prefix);
        Env {
            config,
            backend,
            storage: buckets.into(),
            dir: None,
            prefix,
            urls,
        }
    }

    /// The URLs of its Redis server or cluster masters (none for a directory).
    pub fn server_urls(&self) -> &[String] {
        &self.urls
    }

    /// The backend it runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the sessions live, as a request takes it.
    pub fn storage(&self) -> &SessionStorage {
        &self.storage
    }

    /// The key prefix of a key-value environment (empty for a directory).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The session directory.
    ///
    /// # Panics
    /// On a key-value backend: the test needs a directory.
    pub fn path(&self) -> &Path {
        match &self.dir {
            Some(dir) => dir.path(),
            None => panic!(
                "this test needs a session directory, not the {} backend",
                self.backend.name()
            ),
        }
    }

    /// A fresh instance (one "request") with the store opened.
    pub fn request(&self) -> (Request, StoreHandle) {
        self.request_with(RequestOptions::default())
    }

    /// [`Env::request`] with `options`.
    pub fn request_with(&self, options: RequestOptions) -> (Request, StoreHandle) {
        let mut req = crate::runtime_for(self.backend)
            .request_with(&self.storage, options)
            .unwrap();
        let store = req.open_store(&self.config).unwrap().unwrap();
        (req, store)
    }

    /// Creates a session holding `key = json` and returns its id.
    pub fn session_with(&self, key: &str, json: &str) -> String {
        crate::runtime_for(self.backend)
            .create_session(
                &self.storage,
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

    /// Everything stored, relative to the session directory (files) or the
    /// bucket (keys, without the prefix), sorted; read from the outside
    /// (the filesystem, or Redis itself), not through the store.
    pub fn files(&self) -> Vec<PathBuf> {
        match &self.dir {
            Some(dir) => walk(dir.path())
                .into_iter()
                .map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf())
                .collect(),
            None => crate::redis_inspect::keys(&self.urls, &self.prefix)
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        }
    }

    /// Only the sessions: `<shard>/<name>.db` (files, or keys).
    pub fn session_files(&self) -> Vec<PathBuf> {
        self.files()
            .into_iter()
            .filter(|p| {
                let mut parts = p.iter().map(|c| c.to_str().unwrap_or(""));
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(shard), Some(name), None) => {
                        SessionFile::is_session_file_name(shard, name)
                    }
                    _ => false,
                }
            })
            .collect()
    }

    /// What is stored at `rel` (a file's bytes, or a key's value), read
    /// from the outside.
    pub fn raw(&self, rel: impl AsRef<Path>) -> Option<Vec<u8>> {
        let rel = rel.as_ref();
        match &self.dir {
            Some(dir) => std::fs::read(dir.path().join(rel)).ok(),
            None => {
                crate::redis_inspect::get(&self.urls, &format!("{}{}", self.prefix, rel.display()))
            }
        }
    }

    /// Deletes what is stored at `rel` behind the store's back.
    pub fn remove_raw(&self, rel: impl AsRef<Path>) {
        let rel = rel.as_ref();
        match &self.dir {
            Some(dir) => std::fs::remove_file(dir.path().join(rel)).unwrap(),
            None => {
                crate::redis_inspect::del(&self.urls, &format!("{}{}", self.prefix, rel.display()))
            }
        }
    }

    /// Stores `bytes` at `rel` behind the store's back (a file, or a key).
    pub fn put_raw(&self, rel: impl AsRef<Path>, bytes: &[u8]) {
        let rel = rel.as_ref();
        match &self.dir {
            Some(dir) => {
                let file = dir.path().join(rel);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, bytes).unwrap();
            }
            None => crate::redis_inspect::set(
                &self.urls,
                &format!("{}{}", self.prefix, rel.display()),
                bytes,
            ),
        }
    }

    /// The session directory, or for a bucket a directory holding each
    /// stored session's value as the file its key names: a key-value session
    /// is the very database image a directory would hold, so the native
    /// store (and `integrity`) read it as one. The directory lives as long
    /// as the returned handle.
    pub fn as_directory(&self) -> DirView {
        match &self.dir {
            Some(dir) => DirView::Borrowed(dir.path().to_path_buf()),
            None => {
                let copy = tempfile::tempdir().unwrap();
                for rel in self.session_files() {
                    let bytes = self.raw(&rel).expect("a listed key has a value");
                    let file = copy.path().join(&rel);
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(file, bytes).unwrap();
                }
                DirView::Copy(copy)
            }
        }
    }
}

/// What [`Env::as_directory`] returns.
pub enum DirView {
    /// The environment's own directory.
    Borrowed(PathBuf),
    /// A copy of a bucket's sessions.
    Copy(tempfile::TempDir),
}

impl DirView {
    pub fn path(&self) -> &Path {
        match self {
            DirView::Borrowed(path) => path,
            DirView::Copy(dir) => dir.path(),
        }
    }
}

/// A key prefix no other environment of any process uses.
fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "env-{}-{}:",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The bucket [`BUCKET`] on the Redis server or cluster at `urls`, its keys
/// under `prefix`.
pub fn buckets_on(backend: Backend, urls: &[String], prefix: &str) -> Buckets {
    let options = RedisOptions {
        key_prefix: prefix.to_owned(),
        scan_count: TEST_SCAN_COUNT,
        ..RedisOptions::default()
    };
    let builder = Buckets::builder();
    match backend {
        Backend::Dir => panic!("a directory has no buckets"),
        Backend::Redis => builder.redis(BUCKET, &urls[0], &options),
        Backend::Cluster => {
            let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
            builder.redis_cluster(BUCKET, &nodes, &options)
        }
    }
    .unwrap()
    .build()
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
