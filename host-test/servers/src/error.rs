//! The one error type of this crate. Every message says what failed and,
//! where a server or tool was involved, shows the tail of its log, so a
//! failing test explains itself without a rerun.

use std::path::PathBuf;
use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(thiserror::Error)]
pub enum Error {
    /// A tool or kernel facility the tests need is absent. Never a reason to
    /// skip a test: the message names what to install.
    #[error("{what} is missing ({detail}); install it: {install}")]
    Missing {
        what: &'static str,
        detail: String,
        install: &'static str,
    },

    /// A server or mount did not answer within its bound.
    #[error("{what} was not ready within {timeout:?}{}", tail_of(log, tail))]
    NotReady {
        what: String,
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },

    /// A server or mount process ended while we waited for it.
    #[error("{what} exited early ({status}){}", tail_of(log, tail))]
    Exited {
        what: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    /// A helper command (`redis-cli --cluster create`, `juicefs format`,
    /// `umount`) failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },

    /// A helper command did not finish within its bound (it was killed).
    #[error("`{command}` did not finish within {timeout:?} and was killed:\n{output}")]
    CommandTimeout {
        command: String,
        timeout: Duration,
        output: String,
    },

    #[error("no free loopback port found in {attempts} attempts")]
    NoFreePort { attempts: usize },

    #[error("a mount point could not be unmounted: {0}")]
    Unmount(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Debug shows the message, so `unwrap()` in a test prints it readably
/// (with the log tail on its own lines) rather than as a struct dump.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn tail_of(log: &std::path::Path, tail: &str) -> String {
    if tail.is_empty() {
        format!("; {} is empty", log.display())
    } else {
        format!("; last lines of {}:\n{tail}", log.display())
    }
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
