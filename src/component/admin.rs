//! The wit-bindgen layer of the `admin` interface: WIT types in and out of
//! `crate::admin`, which holds the logic.

use super::convert::directory_check;
use super::exports::sqlite_sessions::store::admin as api;
use super::exports::sqlite_sessions::store::sessions::StoreBorrow;
use super::{ApiResult, Component, StoreResource};
use crate::{OtherKind, SessionInfo};

impl api::Guest for Component {
    fn check_directory(s: StoreBorrow<'_>) -> ApiResult<Vec<api::CheckResult>> {
        let results = s.get::<StoreResource>().0.check_directory()?;
        Ok(results
            .into_iter()
            .map(|r| api::CheckResult {
                check: directory_check(r.check),
                passed: r.passed,
                detail: r.detail,
            })
            .collect())
    }

    fn list_sessions(
        s: StoreBorrow<'_>,
        cursor: Option<String>,
        budget: u32,
    ) -> ApiResult<api::Listing> {
        let l = s
            .get::<StoreResource>()
            .0
            .list_sessions(cursor.as_deref(), budget)?;
        Ok(api::Listing {
            sessions: l.sessions.into_iter().map(info).collect(),
            others: l
                .others
                .into_iter()
                .map(|o| api::OtherEntry {
                    file: o.file,
                    kind: match o.kind {
                        OtherKind::ForeignName => api::OtherKind::ForeignName,
                        OtherKind::Companion => api::OtherKind::Companion,
                        OtherKind::NotASession(m) => api::OtherKind::NotASession(m),
                        OtherKind::Busy => api::OtherKind::Busy,
                        OtherKind::Destroyed => api::OtherKind::Destroyed,
                    },
                })
                .collect(),
            cursor: l.cursor,
            remaining_estimate: l.remaining_estimate,
        })
    }

    fn inspect(s: StoreBorrow<'_>, id: String) -> ApiResult<Option<api::SessionDump>> {
        let dump = s.get::<StoreResource>().0.inspect(&id)?;
        Ok(dump.map(|d| api::SessionDump {
            info: info(d.info),
            entries: d
                .entries
                .into_iter()
                .map(|e| api::Entry {
                    key: e.key,
                    value: e.value,
                    json: e.json,
                })
                .collect(),
        }))
    }
}

fn info(i: SessionInfo) -> api::SessionInfo {
    let ms = |t: i64| t.max(0) as u64;
    api::SessionInfo {
        file: i.file,
        created_ms: ms(i.created_ms),
        last_access_ms: ms(i.last_access_ms),
        expires_at_ms: i.expires_at_ms.map(ms),
        expired: i.expired,
        // The store caps keys per session with a u32 (`max-keys`).
        key_count: u32::try_from(i.key_count).unwrap_or(u32::MAX),
        total_bytes: i.total_bytes,
        file_bytes: i.file_bytes,
    }
}
