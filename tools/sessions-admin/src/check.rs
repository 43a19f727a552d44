//! `check`: the component's self-check of the directory, and what the
//! mount's settings say about several hosts.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use sqlite_sessions_host::admin::CheckResult;
use sqlite_sessions_host::DirectoryCheck;

use crate::admin::Admin;
use crate::failure::{component_failure, exit, Failure, Outcome};
use crate::mounts;

impl Admin {
    pub(crate) fn check(&mut self, json: bool, lease_ms: Option<u32>) -> Outcome {
        let Some(dir) = self.dir.clone() else {
            return Err(Failure::new(
                exit::USAGE,
                "check is for a session directory: a bucket's compare-and-swap needs no \
                 filesystem semantics checked",
            ));
        };
        let results = self
            .req
            .admin(&self.store)
            .check_directory()?
            .map_err(component_failure)?;
        let lease = Duration::from_millis(lease_ms.unwrap_or(DEFAULT_LEASE_MS).into());
        let mount = mounts::mount_of(&dir).map_err(|e| {
            Failure::new(
                exit::FAILURE,
                format!("reading /proc/self/mountinfo for {}: {e}", dir.display()),
            )
        })?;
        let findings = mount
            .as_ref()
            .map(|m| mounts::findings(m, lease))
            .unwrap_or_default();
        let failures = results.iter().filter(|r| !r.passed).count()
            + findings
                .iter()
                .filter(|f| f.level == mounts::Level::Fail)
                .count();
        if json {
            let value = serde_json::json!({
                "directory": dir.display().to_string(),
                "mount": mount.as_ref().map(|m| serde_json::json!({
                    "point": m.point.display().to_string(),
                    "type": m.fstype,
                    "source": m.source,
                })),
                "checks": results.iter().map(|r| serde_json::json!({
                    "check": check_name(r.check),
                    "passed": r.passed,
                    "detail": r.detail,
                })).collect::<Vec<_>>(),
                "mount_settings": findings.iter().map(|f| serde_json::json!({
                    "setting": f.name,
                    "level": level_name(f.level),
                    "detail": f.detail,
                })).collect::<Vec<_>>(),
                "failures": failures,
            });
            println!("{value:#}");
        } else {
            print_check(&dir, mount.as_ref(), &results, &findings);
        }
        if failures == 0 {
            return Ok(exit::OK);
        }
        eprintln!(
            "sessions-admin: {failures} problem(s) in {}: see each FAIL above for what to change",
            dir.display()
        );
        Ok(exit::UNSAFE_DIRECTORY)
    }
}

/// The component's default `lock-lease-ms`.
pub(crate) const DEFAULT_LEASE_MS: u32 = 2000;

pub(crate) fn check_name(check: DirectoryCheck) -> &'static str {
    match check {
        DirectoryCheck::ExclusiveCreate => "exclusive-create",
        DirectoryCheck::ReplacedIdentity => "replaced-identity",
        DirectoryCheck::ReplacedLinkCount => "replaced-link-count",
        DirectoryCheck::RenamedInWhole => "renamed-in-whole",
        DirectoryCheck::ExactMtime => "exact-mtime",
        DirectoryCheck::Listing => "listing",
    }
}

pub(crate) fn level_name(level: mounts::Level) -> &'static str {
    match level {
        mounts::Level::Ok => "ok",
        mounts::Level::Note => "note",
        mounts::Level::Fail => "FAIL",
    }
}

pub(crate) fn print_check(
    dir: &Path,
    mount: Option<&mounts::Mount>,
    results: &[CheckResult],
    findings: &[mounts::Finding],
) {
    let mut out = std::io::stdout().lock();
    let _ = match mount {
        Some(m) => writeln!(
            out,
            "{}: {} ({}) mounted on {}",
            dir.display(),
            m.fstype,
            m.source,
            m.point.display()
        ),
        None => writeln!(
            out,
            "{}: on no mount listed in /proc/self/mountinfo",
            dir.display()
        ),
    };
    let _ = writeln!(out, "this host's mount, as the component finds it:");
    for r in results {
        let level = if r.passed { "ok" } else { "FAIL" };
        let _ = writeln!(out, "  {level:<5} {:<20} {}", check_name(r.check), r.detail);
    }
    if !findings.is_empty() {
        let _ = writeln!(out, "the mount's settings, for several hosts sharing it:");
        for f in findings {
            let _ = writeln!(
                out,
                "  {:<5} {:<20} {}",
                level_name(f.level),
                f.name,
                f.detail
            );
        }
    }
}
