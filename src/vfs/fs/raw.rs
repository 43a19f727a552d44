//! Positional file I/O with one host call per operation.
//!
//! Under WASI, wasi-libc implements `pread`/`pwrite` on top of
//! `wasi:io/streams` (read-via-stream, blocking read/write, flush, drop):
//! three to seven host calls for one positional read or write. The
//! `wasi:filesystem` descriptor has direct `read(len, offset)` and
//! `write(buf, offset)` methods that cost one call each, so on wasm we open
//! and use descriptors ourselves. Opening ourselves also lets us leave out the
//! `mutate-directory` flag wasi-libc adds to every read-write open, which
//! hosts such as jco's preview2-shim reject.
//!
//! The path operations (`create_dir`, `stat`, …) go through the same
//! preopened descriptors for the same reason: wasi-libc's `stat` costs two
//! calls, and using wasi-libc at all costs a `get-directories` of its own.
//!
//! Natively the same interface is a thin layer over `std::fs::File`, so the
//! storage core and its benchmarks run the identical VFS on both targets.

use std::io;

/// What an open asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    ReadOnly,
    ReadWrite,
    /// Read-write, creating the file; fails with `AlreadyExists` when it
    /// exists (the lock protocol's atomic test-and-set).
    CreateNew,
}

/// Which file an open descriptor or a path refers to, comparable only with
/// another identity taken on the same host: on wasm the host's
/// `metadata-hash` (wasmtime hashes the device and inode numbers), natively
/// the device and inode numbers themselves. Two hosts mounting one
/// distributed filesystem see different device numbers, so an identity never
/// leaves the instance that took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity(u64, u64);

#[cfg(test)]
impl Identity {
    pub fn for_test(n: u64) -> Identity {
        Identity(n, n)
    }
}

// Path operations, one host call each on wasm, for the lock protocol and the
// few other places the store touches the directory.
#[cfg(target_arch = "wasm32")]
pub use wasi_impl::{
    create_dir, identity, is_preopened_dir, remove_dir, remove_file, rename, set_mtime, stat,
    RawFile,
};

#[cfg(all(test, not(target_arch = "wasm32")))]
pub use std_impl::fail_next_read;
#[cfg(not(target_arch = "wasm32"))]
pub use std_impl::{
    create_dir, identity, is_preopened_dir, remove_dir, remove_file, rename, set_mtime, stat,
    RawFile,
};

#[cfg(target_arch = "wasm32")]
mod wasi_impl {
    use super::{Identity, OpenMode};
    use std::cell::OnceCell;
    use std::io;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    use wasip2::clocks::wall_clock::Datetime;
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{
        Descriptor, DescriptorFlags, DescriptorType, ErrorCode, NewTimestamp, OpenFlags, PathFlags,
    };

    thread_local! {
        /// The preopened directories, fetched once per instance: each call
        /// to `get-directories` is a host call and returns fresh handles.
        static PREOPENS: OnceCell<Vec<(Descriptor, String)>> = const { OnceCell::new() };
    }

    pub struct RawFile {
        fd: Descriptor,
    }

    impl RawFile {
        pub fn open(path: &str, mode: OpenMode) -> io::Result<RawFile> {
            let open_flags = match mode {
                OpenMode::CreateNew => OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                _ => OpenFlags::empty(),
            };
            let flags = match mode {
                OpenMode::ReadOnly => DescriptorFlags::READ,
                _ => DescriptorFlags::READ | DescriptorFlags::WRITE,
            };
            with_parent(path, |dir, rel| {
                dir.open_at(PathFlags::empty(), rel, open_flags, flags)
                    .map(|fd| RawFile { fd })
                    .map_err(to_io)
            })
        }

        /// Reads up to `len` bytes at `offset` in one call. Hosts cap a
        /// read (wasmtime at 64 KiB), so fewer bytes do not mean the end of
        /// the file; an empty result does.
        pub fn read_at(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
            let (chunk, _eof) = self.fd.read(len as u64, offset).map_err(to_io)?;
            Ok(chunk)
        }

        pub fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
            while !buf.is_empty() {
                let n = self.fd.write(buf, offset).map_err(to_io)? as usize;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0"));
                }
                buf = &buf[n.min(buf.len())..];
                offset += n as u64;
            }
            Ok(())
        }

        /// How many directory entries name this file: 0 once it has been
        /// replaced (renamed over) or deleted, on filesystems that keep
        /// nothing of a replaced file (not on one with a trash).
        pub fn link_count(&self) -> io::Result<u64> {
            self.fd.stat().map(|s| s.link_count).map_err(to_io)
        }

        /// Which file this descriptor refers to: one `metadata-hash`.
        pub fn identity(&self) -> io::Result<Identity> {
            self.fd
                .metadata_hash()
                .map(|h| Identity(h.lower, h.upper))
                .map_err(to_io)
        }

        /// Sets the mtime to the filesystem's now (or to `to`), keeping atime.
        pub fn set_mtime(&self, to: Option<SystemTime>) -> io::Result<()> {
            self.fd
                .set_times(NewTimestamp::NoChange, new_timestamp(to))
                .map_err(to_io)
        }

        pub fn set_len(&self, len: u64) -> io::Result<()> {
            self.fd.set_size(len).map_err(to_io)
        }

        pub fn sync(&self) -> io::Result<()> {
            self.fd.sync_data().map_err(to_io)
        }
    }

    pub fn create_dir(path: &str) -> io::Result<()> {
        with_parent(path, |dir, rel| dir.create_directory_at(rel).map_err(to_io))
    }

    pub fn remove_dir(path: &str) -> io::Result<()> {
        with_parent(path, |dir, rel| dir.remove_directory_at(rel).map_err(to_io))
    }

    pub fn remove_file(path: &str) -> io::Result<()> {
        with_parent(path, |dir, rel| dir.unlink_file_at(rel).map_err(to_io))
    }

    /// The entry's type and mtime, or `None` when it does not exist: one
    /// `stat-at` (wasi-libc's `stat` adds a `metadata-hash-at` for `st_ino`).
    pub fn stat(path: &str) -> io::Result<Option<(bool, SystemTime)>> {
        with_parent(path, |dir, rel| {
            match dir.stat_at(PathFlags::empty(), rel) {
                Ok(st) => {
                    let mtime = st.data_modification_timestamp.map_or(UNIX_EPOCH, |t| {
                        UNIX_EPOCH + Duration::new(t.seconds, t.nanoseconds)
                    });
                    Ok(Some((st.type_ == DescriptorType::Directory, mtime)))
                }
                Err(ErrorCode::NoEntry) => Ok(None),
                Err(e) => Err(to_io(e)),
            }
        })
    }

    /// Which file `path` names now, or `None` when nothing is there: one
    /// `metadata-hash-at`.
    pub fn identity(path: &str) -> io::Result<Option<Identity>> {
        with_parent(path, |dir, rel| {
            match dir.metadata_hash_at(PathFlags::empty(), rel) {
                Ok(h) => Ok(Some(Identity(h.lower, h.upper))),
                Err(ErrorCode::NoEntry) => Ok(None),
                Err(e) => Err(to_io(e)),
            }
        })
    }

    /// Sets the mtime to the filesystem's now (or to `to`), keeping atime.
    pub fn set_mtime(path: &str, to: Option<SystemTime>) -> io::Result<()> {
        with_parent(path, |dir, rel| {
            dir.set_times_at(
                PathFlags::empty(),
                rel,
                NewTimestamp::NoChange,
                new_timestamp(to),
            )
            .map_err(to_io)
        })
    }

    /// Atomically replaces `to` with `from` (both inside one preopen).
    pub fn rename(from: &str, to: &str) -> io::Result<()> {
        with_parent(from, |dir, from_rel| {
            with_parent(to, |to_dir, to_rel| {
                dir.rename_at(from_rel, to_dir, to_rel).map_err(to_io)
            })
        })
    }

    fn new_timestamp(to: Option<SystemTime>) -> NewTimestamp {
        match to {
            None => NewTimestamp::Now,
            Some(t) => {
                let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                NewTimestamp::Timestamp(Datetime {
                    seconds: d.as_secs(),
                    nanoseconds: d.subsec_nanos(),
                })
            }
        }
    }

    /// Whether `path` is itself a preopened directory: then it exists and is
    /// a directory (the host opened it as one), and nothing needs checking.
    pub fn is_preopened_dir(path: &str) -> bool {
        PREOPENS.with(|cell| {
            cell.get_or_init(get_directories)
                .iter()
                .any(|(_, name)| strip_dir(path, name) == Some("."))
        })
    }

    /// Runs `f` with the preopened directory that contains `path` and the
    /// path relative to it.
    fn with_parent<T>(
        path: &str,
        f: impl FnOnce(&Descriptor, &str) -> io::Result<T>,
    ) -> io::Result<T> {
        PREOPENS.with(|cell| {
            let preopens = cell.get_or_init(get_directories);
            let (dir, rel) = preopens
                .iter()
                .filter_map(|(dir, name)| strip_dir(path, name).map(|rel| (dir, rel)))
                // The most specific preopen (shortest remainder) wins, as in
                // wasi-libc.
                .min_by_key(|(_, rel)| rel.len())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{path}: not inside a preopened directory"),
                    )
                })?;
            f(dir, rel)
        })
    }

    fn strip_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
        let dir = dir.trim_end_matches('/');
        if dir.is_empty() || dir == "." {
            return Some(path.trim_start_matches("./"));
        }
        let rest = path.strip_prefix(dir)?;
        if rest.is_empty() || rest == "/" {
            return Some(".");
        }
        let rel = rest.strip_prefix('/')?;
        (!rel.is_empty()).then_some(rel)
    }

    fn to_io(code: ErrorCode) -> io::Error {
        use io::ErrorKind as K;
        let kind = match code {
            ErrorCode::NoEntry => K::NotFound,
            ErrorCode::Exist => K::AlreadyExists,
            ErrorCode::Access | ErrorCode::NotPermitted | ErrorCode::ReadOnly => {
                K::PermissionDenied
            }
            ErrorCode::InsufficientSpace | ErrorCode::Quota => K::StorageFull,
            ErrorCode::WouldBlock => K::WouldBlock,
            ErrorCode::Interrupted => K::Interrupted,
            ErrorCode::Invalid => K::InvalidInput,
            ErrorCode::IsDirectory => K::IsADirectory,
            ErrorCode::NotDirectory => K::NotADirectory,
            _ => K::Other,
        };
        io::Error::new(kind, format!("wasi:filesystem {code:?}"))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod std_impl {
    use super::{Identity, OpenMode};
    use std::ffi::CString;
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::time::{SystemTime, UNIX_EPOCH};

    pub struct RawFile {
        file: File,
    }

    #[cfg(test)]
    thread_local! {
        static READ_FAULT: std::cell::Cell<Option<Box<dyn FnOnce() -> io::Error>>> =
            const { std::cell::Cell::new(None) };
    }

    /// Makes the next `read_at` on this thread run `fault` instead and fail
    /// with the error it returns: what another host does at that moment.
    #[cfg(test)]
    pub fn fail_next_read(fault: impl FnOnce() -> io::Error + 'static) {
        READ_FAULT.set(Some(Box::new(fault)));
    }

    impl RawFile {
        pub fn open(path: &str, mode: OpenMode) -> io::Result<RawFile> {
            let mut options = OpenOptions::new();
            options.read(true);
            match mode {
                OpenMode::ReadOnly => {}
                OpenMode::ReadWrite => {
                    options.write(true);
                }
                OpenMode::CreateNew => {
                    options.write(true).create_new(true);
                }
            }
            options.open(path).map(|file| RawFile { file })
        }

        pub fn read_at(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
            #[cfg(test)]
            if let Some(fault) = READ_FAULT.take() {
                return Err(fault());
            }
            let mut out = vec![0; len];
            let mut filled = 0;
            while filled < len {
                match self
                    .file
                    .read_at(&mut out[filled..], offset + filled as u64)
                {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            out.truncate(filled);
            Ok(out)
        }

        pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.file.write_all_at(buf, offset)
        }

        pub fn link_count(&self) -> io::Result<u64> {
            self.file.metadata().map(|m| m.nlink())
        }

        pub fn identity(&self) -> io::Result<Identity> {
            self.file.metadata().map(|m| Identity(m.dev(), m.ino()))
        }

        pub fn set_mtime(&self, to: Option<SystemTime>) -> io::Result<()> {
            let times = std::fs::FileTimes::new().set_modified(to.unwrap_or_else(SystemTime::now));
            self.file.set_times(times)
        }

        pub fn set_len(&self, len: u64) -> io::Result<()> {
            self.file.set_len(len)
        }

        pub fn sync(&self) -> io::Result<()> {
            self.file.sync_data()
        }
    }

    pub fn create_dir(path: &str) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    pub fn remove_dir(path: &str) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    pub fn remove_file(path: &str) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    pub fn rename(from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Natively there are no preopens: every directory is checked.
    pub fn is_preopened_dir(_path: &str) -> bool {
        false
    }

    pub fn identity(path: &str) -> io::Result<Option<Identity>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(Identity(m.dev(), m.ino()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn stat(path: &str) -> io::Result<Option<(bool, SystemTime)>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some((m.is_dir(), m.modified()?))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn set_mtime(path: &str, to: Option<SystemTime>) -> io::Result<()> {
        let path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mtime = match to {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            Some(t) => {
                let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                libc::timespec {
                    tv_sec: d.as_secs() as _,
                    tv_nsec: d.subsec_nanos() as _,
                }
            }
        };
        let keep = libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        };
        let times = [keep, mtime];
        // SAFETY: `path` is NUL-terminated and `times` holds the two entries
        // utimensat reads; both outlive the call.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Whether an I/O error means the file is simply not there.
pub fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}
