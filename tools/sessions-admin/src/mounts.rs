//! What the mount a session directory is on says about several hosts
//! sharing it, read natively (the component sees only its own mount's
//! behaviour, not how the mount was made): the filesystem type from
//! `/proc/self/mountinfo`, NFS's mount options, and a JuiceFS client's
//! settings from `<mount point>/.config` (readable by root only).
//!
//! These settings decide what *other* hosts see of this host's commits and
//! how soon, which no single-host probe can observe (see the README,
//! "Several hosts, one directory").

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A mounted filesystem, from one line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// The per-mount and the superblock options, in that order.
    pub options: Vec<String>,
}

/// How a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Worth knowing; nothing to change.
    Note,
    /// Unsafe when several hosts share the directory: change it.
    Fail,
}

/// One thing the mount's settings say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
}

fn finding(name: &'static str, level: Level, detail: impl Into<String>) -> Finding {
    Finding {
        name,
        level,
        detail: detail.into(),
    }
}

/// The mount `dir` is on: the one whose mount point is the longest prefix
/// of its canonical path.
pub fn mount_of(dir: &Path) -> io::Result<Option<Mount>> {
    let dir = dir.canonicalize()?;
    let mounts = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo")?);
    Ok(mounts
        .into_iter()
        .filter(|m| dir.starts_with(&m.point))
        .max_by_key(|m| m.point.as_os_str().len()))
}

/// Every mount in a `mountinfo` text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root point options [optional...] - type source super
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let (point, options) = (left.get(4)?, left.get(5)?);
            let fstype = right.next()?;
            let source = right.next()?;
            let super_options = right.next().unwrap_or("");
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_owned(),
                source: unescape(source),
                options: options
                    .split(',')
                    .chain(super_options.split(','))
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// `mountinfo` writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the mount's settings say, for a store whose lock lease is `lease`.
pub fn findings(mount: &Mount, lease: Duration) -> Vec<Finding> {
    match mount.fstype.as_str() {
        "fuse.juicefs" => {
            let config = mount.point.join(".config");
            match fs::read_to_string(&config) {
                Ok(text) => juicefs_findings(&text, lease),
                Err(e) => vec![finding(
                    "juicefs-settings",
                    Level::Note,
                    format!(
                        "cannot read {} ({e}; only root can): make sure yourself that the \
                         volume has --trash-days 0 and every mount --entry-cache 0 \
                         --dir-entry-cache 0 --negative-entry-cache 0 and no --writeback",
                        config.display()
                    ),
                )],
            }
        }
        "nfs" | "nfs4" => nfs_findings(&mount.options, lease),
        "ceph" | "fuse.ceph-fuse" | "fuse.cephfs" => vec![finding(
            "filesystem",
            Level::Note,
            "CephFS: not tested with this store; its name and attribute caches are kept \
             coherent by the metadata server's capabilities. Run this check on every host.",
        )],
        fstype if is_local(fstype) => vec![finding(
            "filesystem",
            Level::Note,
            format!("{fstype} is a local filesystem: only this host can use the directory"),
        )],
        fstype => vec![finding(
            "filesystem",
            Level::Note,
            format!(
                "{fstype}: not a filesystem this check knows; if several hosts share it, \
                 find out how long each host caches names and attributes"
            ),
        )],
    }
}

fn is_local(fstype: &str) -> bool {
    matches!(
        fstype,
        "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" | "tmpfs" | "zfs" | "f2fs" | "overlay" | "ramfs"
    )
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// The findings for a JuiceFS client whose `.config` is `text`.
pub fn juicefs_findings(text: &str, lease: Duration) -> Vec<Finding> {
    let config: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return vec![finding(
                "juicefs-settings",
                Level::Note,
                format!("the client's .config is not JSON ({e}); check its settings yourself"),
            )]
        }
    };
    let nanos = |key: &str| config[key].as_u64().map(Duration::from_nanos);
    let mut out = Vec::new();
    match config["Format"]["TrashDays"].as_u64() {
        Some(0) => out.push(finding("trash", Level::Ok, "off (--trash-days 0)")),
        Some(days) => out.push(finding(
            "trash",
            Level::Fail,
            format!(
                "replaced and deleted files are kept {days} day(s): every commit keeps a \
                 whole old version, and a host with a stale name reads old versions. \
                 Turn it off: juicefs config META-URL --trash-days 0"
            ),
        )),
        None => {}
    }
    let caches = [
        (
            "entry-cache",
            "EntryTimeout",
            "--entry-cache 0",
            "a session file another host replaced or created",
        ),
        (
            "dir-entry-cache",
            "DirEntryTimeout",
            "--dir-entry-cache 0",
            "a shard directory another host created or removed",
        ),
        (
            "negative-entry-cache",
            "NegEntryTimeout",
            "--negative-entry-cache 0",
            "a session another host just created (it looks absent)",
        ),
    ];
    let mut names_cached = false;
    for (name, key, fix, what) in caches {
        match nanos(key) {
            Some(Duration::ZERO) => out.push(finding(name, Level::Ok, "0")),
            Some(t) => {
                names_cached = true;
                out.push(finding(
                    name,
                    Level::Fail,
                    format!(
                        "{}: this host's readers may miss {what} for that long (writers \
                         with shared-directory do not). Mount with {fix}",
                        seconds(t)
                    ),
                ))
            }
            None => {}
        }
    }
    if let Some(attr) = nanos("AttrTimeout") {
        // With names looked up afresh, each lookup brings fresh attributes:
        // the attribute cache then delays nothing the store reads.
        out.push(if !names_cached {
            finding(
                "attr-cache",
                Level::Ok,
                format!(
                    "{}; with entry caches at 0 every lookup brings fresh attributes",
                    seconds(attr)
                ),
            )
        } else if attr * 2 >= lease {
            finding(
                "attr-cache",
                Level::Fail,
                format!(
                    "{}: another host's lock renewal may show that late, which must stay \
                     below half of lock-lease-ms ({} ms). Raise the lease above {} ms, or \
                     mount with --entry-cache 0 --dir-entry-cache 0",
                    seconds(attr),
                    lease.as_millis(),
                    (attr * 2).as_millis()
                ),
            )
        } else {
            finding(
                "attr-cache",
                Level::Ok,
                format!(
                    "{}, below half of lock-lease-ms ({} ms)",
                    seconds(attr),
                    lease.as_millis()
                ),
            )
        });
    }
    if config["Chunk"]["Writeback"].as_bool() == Some(true) {
        out.push(finding(
            "writeback",
            Level::Fail,
            "on: a commit's fsync returns before the data is uploaded, so another host \
             may find a new version whose data is not there yet. Mount without --writeback",
        ));
    }
    out
}

/// The findings for an NFS mount with `options` (untested with this store:
/// from the NFS client's documented caching).
pub fn nfs_findings(options: &[String], lease: Duration) -> Vec<Finding> {
    let value = |key: &str| {
        options
            .iter()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    };
    let has = |flag: &str| options.iter().any(|o| o == flag);
    let mut out = vec![finding(
        "filesystem",
        Level::Note,
        "NFS: not tested with this store; these findings follow the NFS client's \
         documented caching. Run this check on every host.",
    )];
    match value("lookupcache") {
        Some("none") => out.push(finding("lookupcache", Level::Ok, "none")),
        other => out.push(finding(
            "lookupcache",
            Level::Fail,
            format!(
                "{}: this host's readers may miss a session file another host replaced \
                 or created. Mount with lookupcache=none",
                other.unwrap_or("all (the default)")
            ),
        )),
    }
    let attr = if has("noac") {
        Some(Duration::ZERO)
    } else {
        value("actimeo")
            .or(value("acregmax"))
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
    };
    out.push(match attr {
        Some(t) if t * 2 < lease => finding(
            "attribute-cache",
            Level::Ok,
            format!("{}, below half of lock-lease-ms", seconds(t)),
        ),
        Some(t) => finding(
            "attribute-cache",
            Level::Fail,
            format!(
                "up to {}: another host's lock renewal may show that late, which must stay \
                 below half of lock-lease-ms ({} ms). Mount with actimeo=0 (or noac), or \
                 raise the lease",
                seconds(t),
                lease.as_millis()
            ),
        ),
        None => finding(
            "attribute-cache",
            Level::Fail,
            "the default (up to 60 s): another host's lock renewal may show that late. \
             Mount with actimeo=0 (or noac), or raise lock-lease-ms above twice the \
             cache's longest time",
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(2);

    #[test]
    fn mountinfo_lines_and_their_escapes_parse() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
45 27 0:40 / /srv/my\\040sessions rw,nosuid,nodev,relatime - fuse.juicefs JuiceFS:sessions rw,user_id=0
46 27 0:41 / /mnt/nfs rw - nfs4 server:/export rw,vers=4.2,lookupcache=none,actimeo=0
broken line";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[1].point, PathBuf::from("/srv/my sessions"));
        assert_eq!(mounts[1].fstype, "fuse.juicefs");
        assert_eq!(mounts[1].source, "JuiceFS:sessions");
        assert!(mounts[2].options.contains(&"lookupcache=none".to_owned()));
        assert!(mounts[0].options.contains(&"errors=remount-ro".to_owned()));
    }

    fn juicefs(trash: u64, entry: u64, neg: u64, attr: u64, writeback: bool) -> String {
        serde_json::json!({
            "Format": { "TrashDays": trash },
            "EntryTimeout": entry,
            "DirEntryTimeout": entry,
            "NegEntryTimeout": neg,
            "AttrTimeout": attr,
            "Chunk": { "Writeback": writeback },
        })
        .to_string()
    }

    fn failed(findings: &[Finding]) -> Vec<&'static str> {
        findings
            .iter()
            .filter(|f| f.level == Level::Fail)
            .map(|f| f.name)
            .collect()
    }

    #[test]
    fn juicefs_defaults_fail_and_say_what_to_change() {
        let second = 1_000_000_000;
        let found = juicefs_findings(&juicefs(1, second, 0, second, false), LEASE);
        assert_eq!(
            failed(&found),
            ["trash", "entry-cache", "dir-entry-cache", "attr-cache"]
        );
        let detail = |name| &found.iter().find(|f| f.name == name).unwrap().detail;
        assert!(detail("trash").contains("--trash-days 0"));
        assert!(detail("entry-cache").contains("--entry-cache 0"));
        assert!(
            detail("attr-cache").contains("2000 ms"),
            "{}",
            detail("attr-cache")
        );
    }

    #[test]
    fn the_recommended_juicefs_settings_pass() {
        let found = juicefs_findings(&juicefs(0, 0, 0, 1_000_000_000, false), LEASE);
        assert!(failed(&found).is_empty(), "{found:?}");
        assert_eq!(found.len(), 5);
        // A longer lease makes 1 s caches safe for the lease (not for readers).
        let found = juicefs_findings(
            &juicefs(0, 1_000_000_000, 0, 1_000_000_000, false),
            LEASE * 2,
        );
        assert_eq!(failed(&found), ["entry-cache", "dir-entry-cache"]);
        let found = juicefs_findings(&juicefs(0, 0, 1_000_000_000, 0, true), LEASE);
        assert_eq!(failed(&found), ["negative-entry-cache", "writeback"]);
        assert_eq!(juicefs_findings("not json", LEASE)[0].level, Level::Note);
    }

    #[test]
    fn nfs_needs_lookupcache_none_and_short_attribute_caches() {
        let opts = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        assert!(failed(&nfs_findings(&opts("rw,lookupcache=none,actimeo=0"), LEASE)).is_empty());
        assert!(failed(&nfs_findings(&opts("rw,lookupcache=none,noac"), LEASE)).is_empty());
        assert_eq!(
            failed(&nfs_findings(&opts("rw,vers=4.2"), LEASE)),
            ["lookupcache", "attribute-cache"]
        );
        assert_eq!(
            failed(&nfs_findings(
                &opts("rw,lookupcache=positive,actimeo=3"),
                LEASE
            )),
            ["lookupcache", "attribute-cache"]
        );
    }

    #[test]
    fn local_filesystems_are_one_host_only() {
        let mount = Mount {
            point: PathBuf::from("/"),
            fstype: "ext4".into(),
            source: "/dev/sda1".into(),
            options: vec![],
        };
        let found = findings(&mount, LEASE);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].level, Level::Note);
        assert!(found[0].detail.contains("only this host"));
    }
}
