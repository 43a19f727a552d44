//! How sessions and other entries are printed.

use std::time::{Duration, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use sqlite_sessions_host::admin::{OtherEntry, OtherKind, SessionInfo};

pub(crate) fn progress_bar(length: u64) -> ProgressBar {
    ProgressBar::new(length).with_style(
        ProgressStyle::with_template(
            "sweeping {bar:40} {pos}/~{len} session files, {msg} ({elapsed})",
        )
        .expect("a valid progress template"),
    )
}

pub(crate) fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn info_json(s: &SessionInfo) -> serde_json::Value {
    serde_json::json!({
        "file": s.file,
        "created_ms": s.created_ms,
        "last_access_ms": s.last_access_ms,
        "expires_at_ms": s.expires_at_ms,
        "expired": s.expired,
        "key_count": s.key_count,
        "total_bytes": s.total_bytes,
        "file_bytes": s.file_bytes,
    })
}

pub(crate) fn other_json(o: &OtherEntry) -> serde_json::Value {
    let (kind, message) = match &o.kind {
        OtherKind::ForeignName => ("foreign-name", None),
        OtherKind::Companion => ("companion", None),
        OtherKind::NotASession(m) => ("not-a-session", Some(m.as_str())),
        OtherKind::Busy => ("busy", None),
        OtherKind::Destroyed => ("destroyed", None),
    };
    serde_json::json!({ "file": o.file, "kind": kind, "message": message })
}
