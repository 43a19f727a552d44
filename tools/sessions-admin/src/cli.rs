//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions};

use crate::failure::{exit, Failure, Outcome};

#[derive(Parser)]
#[command(
    name = "sessions-admin",
    version,
    about = "Inspect and clean a sqlite-sessions directory, through the component itself.",
    after_help = "Exit codes: 0 ok, 1 storage error or bug, 2 usage, 3 no such session, \
                  4 invalid id, 5 missing or unusable directory (or Redis URL), 6 the \
                  directory holds entries that are not sessions (listed on stderr, left alone), \
                  7 `check` found the directory unsafe (each failure says what to change)."
)]
pub(crate) struct Cli {
    /// The session directory: the host directory the application preopens
    /// for the store.
    #[arg(long, default_value = "./sessions", conflicts_with_all = ["kv", "kv_cluster"])]
    pub(crate) dir: PathBuf,

    #[command(flatten)]
    pub(crate) kv: KvArgs,

    #[command(flatten)]
    pub(crate) store: StoreArgs,

    /// The component to run. Default: the one this binary was built with.
    #[arg(long, value_name = "WASM")]
    pub(crate) component: Option<PathBuf>,

    /// FOR TESTS ONLY: the wall-clock time (Unix milliseconds) the component
    /// sees, which decides what has expired. Hidden from --help; operators
    /// never need it.
    #[arg(long, hide = true, value_name = "MS")]
    pub(crate) now_ms: Option<u64>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The store settings that change what the CLI sees. They must match the
/// application's `config`: the timeouts decide what is expired, and the
/// file-name secret decides which file an id maps to.
#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The application's `idle-timeout-seconds` [component default: 86400; 0 = off].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) idle_timeout: Option<u64>,
    /// The application's `absolute-timeout-seconds` [component default: 2592000; 0 = off].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) absolute_timeout: Option<u64>,
    /// A file holding the application's `file-name-secret` (raw bytes), if it sets one.
    #[arg(long, value_name = "PATH")]
    pub(crate) file_name_secret_file: Option<PathBuf>,
    /// How long to wait for a session another request holds locked [component default: 5000].
    #[arg(long, value_name = "MS")]
    pub(crate) busy_timeout_ms: Option<u32>,
    /// The application's `lock-lease-ms` [component default: 2000]: `sweep`
    /// watches a lock left without a session for this long before removing
    /// it, and `check` weighs cache timeouts against it.
    #[arg(long, value_name = "MS")]
    pub(crate) lock_lease_ms: Option<u32>,
}

/// A bucket in Redis or Valkey instead of a directory: the store's
/// key-value build runs on it.
#[derive(Args)]
pub(crate) struct KvArgs {
    /// The Redis or Valkey server holding the bucket, e.g. redis://127.0.0.1:6379/.
    #[arg(long, value_name = "URL", conflicts_with = "kv_cluster")]
    pub(crate) kv: Option<String>,
    /// A Redis or Valkey cluster holding the bucket: the URLs of some of its nodes.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',')]
    pub(crate) kv_cluster: Option<Vec<String>>,
    /// The bucket identifier the application opens (its `config.directory`).
    #[arg(long, default_value = "default")]
    pub(crate) bucket: String,
    /// The prefix the host puts before every key (default: none, as Spin does).
    #[arg(long, default_value = "", value_name = "PREFIX")]
    pub(crate) kv_prefix: String,
}

impl KvArgs {
    /// The buckets, if a server was named.
    pub(crate) fn buckets(&self) -> Outcome<Option<Buckets>> {
        let options = RedisOptions {
            key_prefix: self.kv_prefix.clone(),
            ..RedisOptions::default()
        };
        let bad = |e: sqlite_sessions_host::keyvalue::ConfigError| {
            Failure::new(exit::BAD_DIRECTORY, e.to_string())
        };
        let builder = Buckets::builder();
        let builder = match (&self.kv, &self.kv_cluster) {
            (Some(url), _) => builder.redis(&self.bucket, url, &options).map_err(bad)?,
            (None, Some(urls)) => {
                let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
                builder
                    .redis_cluster(&self.bucket, &nodes, &options)
                    .map_err(bad)?
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(builder.build()))
    }
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// List every session: file (a hash: ids cannot be shown), created, last
    /// access, expiry, key count and bytes. Read-only.
    Ls {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Session files read per component call.
        #[arg(long, default_value_t = 256)]
        budget: u32,
    },
    /// Print one session's keys and values as a JSON object on stdout
    /// (metadata on stderr). Read-only: not activity, and an expired session
    /// is shown, not deleted.
    Show {
        /// The session id (the cookie's value without any signature).
        id: String,
    },
    /// Delete expired sessions (the component's `store.sweep`), a slice of
    /// --budget files at a time, with a progress bar on long runs.
    Sweep {
        /// Session files examined per component call.
        #[arg(long, default_value_t = 100)]
        budget: u32,
    },
    /// Session count, keys, total bytes and the expired fraction. Read-only.
    Stats {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Session files read per component call.
        #[arg(long, default_value_t = 256)]
        budget: u32,
    },
    /// Delete the session with this id.
    Destroy {
        /// The session id.
        id: String,
    },
    /// Check that the directory does what the store relies on: the
    /// component's self-check of this host's mount (creates and removes a
    /// probe directory inside it; touches no session), then what the
    /// mount's settings say about several hosts sharing it (filesystem type,
    /// NFS options, a JuiceFS client's settings when readable, which needs
    /// root). Run it on every host. Exit code 7 when anything fails.
    Check {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}
