//! How a command ends: exit codes, and the failures that carry them.

use sqlite_sessions_host::Error;

use crate::check::check_name;

/// The process exit codes, so scripts can branch on what went wrong.
pub(crate) mod exit {
    /// The command did what was asked.
    pub(crate) const OK: u8 = 0;
    /// A storage error, a session locked past the busy timeout, or a bug
    /// (the component trapped). The message says which.
    pub(crate) const FAILURE: u8 = 1;
    /// Bad arguments or store settings (clap also uses 2).
    pub(crate) const USAGE: u8 = 2;
    /// `show`/`destroy`: no session has this id.
    pub(crate) const NOT_FOUND: u8 = 3;
    /// `show`/`destroy`: the id is not a session id (a lowercase UUID v4).
    pub(crate) const INVALID_ID: u8 = 4;
    /// The session directory is missing or is not a directory (or, with
    /// `--kv`, the Redis URL is unusable).
    pub(crate) const BAD_DIRECTORY: u8 = 5;
    /// `ls`/`stats` finished, but the directory holds entries that are not
    /// sessions of this store (each was named on stderr and left alone).
    pub(crate) const FOREIGN_ENTRIES: u8 = 6;
    /// `check`: the directory, or its mount's settings, fail a property the
    /// store relies on (each failure was named, with what to change).
    pub(crate) const UNSAFE_DIRECTORY: u8 = 7;
}

/// Why the command stopped: a message for stderr and an exit code.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// A trap or a failure of the embedding: always a bug or a broken setup.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::new(
            exit::FAILURE,
            format!("running the component failed: {e:#}"),
        )
    }
}

pub(crate) type Outcome<T = u8> = Result<T, Failure>;

pub(crate) fn not_found(id: &str) -> Failure {
    Failure::new(
        exit::NOT_FOUND,
        format!(
            "no session with id {id} (destroyed, emptied or swept; if the application sets \
             a file-name-secret, pass it with --file-name-secret-file)"
        ),
    )
}

/// The component's typed errors, as messages and exit codes.
pub(crate) fn component_failure(e: Error) -> Failure {
    match e {
        Error::InvalidId => Failure::new(
            exit::INVALID_ID,
            "invalid session id: expected a lowercase UUID v4 such as \
             1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        ),
        Error::Busy => Failure::new(
            exit::FAILURE,
            "a session stayed locked by another request past the busy timeout; retry later",
        ),
        Error::Storage(f) => Failure::new(
            exit::FAILURE,
            format!("storage error ({:?}): {}", f.kind, f.message),
        ),
        Error::Config(m) => Failure::new(exit::USAGE, format!("invalid store settings: {m}")),
        Error::UnsafeDirectory(p) => Failure::new(
            exit::UNSAFE_DIRECTORY,
            format!("unsafe directory ({}): {}", check_name(p.check), p.message),
        ),
        Error::InvalidValue(m) => Failure::new(exit::USAGE, format!("invalid argument: {m}")),
        other => Failure::new(exit::FAILURE, format!("unexpected error: {other:?}")),
    }
}
