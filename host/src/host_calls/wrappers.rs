//! The counting wrappers: wasmtime-wasi's own generated `Host*` traits,
//! implemented for [`HostCallsView`] by bumping one counter and delegating
//! to wasmtime-wasi's implementation of the same trait, so behaviour is
//! unchanged.

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::cli::WasiCliCtxView;
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::{error as io_error, poll, streams};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
use wasmtime_wasi::p2::{DynPollable, FsError, FsResult, IoError, StreamError, StreamResult};
use wasmtime_wasi::random::WasiRandomCtx;

use super::describe;
use super::table::HostFn;
use super::view::HostCallsView;

/// The wasmtime-wasi values whose `Host*` implementations the wrappers
/// delegate to, built per call from the borrowed context and table (a few
/// pointer copies).
impl HostCallsView<'_> {
    #[inline(always)]
    fn filesystem(&mut self) -> WasiFilesystemCtxView<'_> {
        WasiFilesystemCtxView {
            ctx: self.ctx.filesystem(),
            table: self.table,
        }
    }

    #[inline(always)]
    fn io(&mut self) -> &mut ResourceTable {
        self.table
    }

    #[inline(always)]
    fn clocks(&mut self) -> WasiClocksCtxView<'_> {
        WasiClocksCtxView {
            ctx: self.ctx.clocks(),
            table: self.table,
        }
    }

    #[inline(always)]
    fn random(&mut self) -> &mut WasiRandomCtx {
        self.ctx.random()
    }

    #[inline(always)]
    fn cli(&mut self) -> WasiCliCtxView<'_> {
        WasiCliCtxView {
            ctx: self.ctx.cli(),
            table: self.table,
        }
    }
}

/// Implements `$trait` for [`HostCallsView`]: each listed method counts
/// `HostFn::$fnid` (or nothing, for `-`) and calls wasmtime-wasi's
/// implementation of the same method on the value `self.$view()` returns:
/// a view struct (`view`) or a reference to the table or context (`table`).
macro_rules! delegate {
    (
        $trait:path, $kind:ident $view:ident {
            $( $fnid:tt fn $name:ident($($arg:ident: $argty:ty),*) -> $ret:ty; )*
        }
    ) => {
        impl $trait for HostCallsView<'_> {
            $(
                #[inline]
                fn $name(&mut self $(, $arg: $argty)*) -> $ret {
                    delegate!(@body self $kind $view $fnid, $trait, $name, ($($arg),*))
                }
            )*
        }
    };
    (@one $arg:ident) => { 1 };
    (@call $self:ident view $view:ident, $t:path, $f:ident, ($($arg:ident),*)) => {{
        let mut view = $self.$view();
        <_ as $t>::$f(&mut view $(, $arg)*)
    }};
    (@call $self:ident table $view:ident, $t:path, $f:ident, ($($arg:ident),*)) => {
        <_ as $t>::$f($self.$view() $(, $arg)*)
    };
    // Not a guest call (the bindings' error conversion): no count.
    (@body $self:ident $kind:ident $view:ident -, $t:path, $f:ident, ($($arg:ident),*)) => {
        delegate!(@call $self $kind $view, $t, $f, ($($arg),*))
    };
    (@body $self:ident $kind:ident $view:ident $fnid:ident, $t:path, $f:ident, ($($arg:ident),*)) => {{
        $self.counter.hit(HostFn::$fnid);
        if $self.counter.tracing() {
            #[allow(unused_imports)]
            use super::describe::{DescribeFallback as _, DescribeKnown as _};
            let args: [Option<String>; 0 $(+ delegate!(@one $arg))*] =
                [$((&describe::Arg(&$arg)).describe()),*];
            let args: Vec<String> = args.into_iter().flatten().collect();
            let result = delegate!(@call $self $kind $view, $t, $f, ($($arg),*));
            let described = (&describe::Arg(&result)).describe();
            $self.counter.record(HostFn::$fnid, args, described);
            return result;
        }
        delegate!(@call $self $kind $view, $t, $f, ($($arg),*))
    }};
}

type Desc = Resource<fs::Descriptor>;

delegate!(fs::Host, view filesystem {
    - fn convert_error_code(err: FsError) -> wasmtime::Result<fs::ErrorCode>;
    FsErrorCode fn filesystem_error_code(err: Resource<IoError>) -> wasmtime::Result<Option<fs::ErrorCode>>;
});

delegate!(fs::HostDescriptor, view filesystem {
    DescAdvise fn advise(fd: Desc, offset: fs::Filesize, len: fs::Filesize, advice: fs::Advice) -> FsResult<()>;
    DescSyncData fn sync_data(fd: Desc) -> FsResult<()>;
    DescGetFlags fn get_flags(fd: Desc) -> FsResult<fs::DescriptorFlags>;
    DescGetType fn get_type(fd: Desc) -> FsResult<fs::DescriptorType>;
    DescSetSize fn set_size(fd: Desc, size: fs::Filesize) -> FsResult<()>;
    DescSetTimes fn set_times(fd: Desc, atim: fs::NewTimestamp, mtim: fs::NewTimestamp) -> FsResult<()>;
    DescRead fn read(fd: Desc, len: fs::Filesize, offset: fs::Filesize) -> FsResult<(Vec<u8>, bool)>;
    DescWrite fn write(fd: Desc, buf: Vec<u8>, offset: fs::Filesize) -> FsResult<fs::Filesize>;
    DescReadDirectory fn read_directory(fd: Desc) -> FsResult<Resource<fs::DirectoryEntryStream>>;
    DescSync fn sync(fd: Desc) -> FsResult<()>;
    DescCreateDirectoryAt fn create_directory_at(fd: Desc, path: String) -> FsResult<()>;
    DescStat fn stat(fd: Desc) -> FsResult<fs::DescriptorStat>;
    DescStatAt fn stat_at(fd: Desc, path_flags: fs::PathFlags, path: String) -> FsResult<fs::DescriptorStat>;
    DescSetTimesAt fn set_times_at(fd: Desc, path_flags: fs::PathFlags, path: String, atim: fs::NewTimestamp, mtim: fs::NewTimestamp) -> FsResult<()>;
    DescLinkAt fn link_at(fd: Desc, old_path_flags: fs::PathFlags, old_path: String, new_descriptor: Desc, new_path: String) -> FsResult<()>;
    DescOpenAt fn open_at(fd: Desc, path_flags: fs::PathFlags, path: String, oflags: fs::OpenFlags, flags: fs::DescriptorFlags) -> FsResult<Desc>;
    DescDrop fn drop(fd: Desc) -> wasmtime::Result<()>;
    DescReadlinkAt fn readlink_at(fd: Desc, path: String) -> FsResult<String>;
    DescRemoveDirectoryAt fn remove_directory_at(fd: Desc, path: String) -> FsResult<()>;
    DescRenameAt fn rename_at(fd: Desc, old_path: String, new_fd: Desc, new_path: String) -> FsResult<()>;
    DescSymlinkAt fn symlink_at(fd: Desc, src_path: String, dest_path: String) -> FsResult<()>;
    DescUnlinkFileAt fn unlink_file_at(fd: Desc, path: String) -> FsResult<()>;
    DescReadViaStream fn read_via_stream(fd: Desc, offset: fs::Filesize) -> FsResult<Resource<streams::InputStream>>;
    DescWriteViaStream fn write_via_stream(fd: Desc, offset: fs::Filesize) -> FsResult<Resource<streams::OutputStream>>;
    DescAppendViaStream fn append_via_stream(fd: Desc) -> FsResult<Resource<streams::OutputStream>>;
    DescIsSameObject fn is_same_object(a: Desc, b: Desc) -> wasmtime::Result<bool>;
    DescMetadataHash fn metadata_hash(fd: Desc) -> FsResult<fs::MetadataHashValue>;
    DescMetadataHashAt fn metadata_hash_at(fd: Desc, path_flags: fs::PathFlags, path: String) -> FsResult<fs::MetadataHashValue>;
});

delegate!(fs::HostDirectoryEntryStream, view filesystem {
    DirEntryRead fn read_directory_entry(stream: Resource<fs::DirectoryEntryStream>) -> FsResult<Option<fs::DirectoryEntry>>;
    DirEntryDrop fn drop(stream: Resource<fs::DirectoryEntryStream>) -> wasmtime::Result<()>;
});

delegate!(filesystem::preopens::Host, view filesystem {
    GetDirectories fn get_directories() -> wasmtime::Result<Vec<(Desc, String)>>;
});

type In = Resource<streams::InputStream>;
type Out = Resource<streams::OutputStream>;

delegate!(streams::Host, table io {
    - fn convert_stream_error(err: StreamError) -> wasmtime::Result<streams::StreamError>;
});

delegate!(streams::HostInputStream, table io {
    InDrop fn drop(stream: In) -> wasmtime::Result<()>;
    InRead fn read(stream: In, len: u64) -> StreamResult<Vec<u8>>;
    InBlockingRead fn blocking_read(stream: In, len: u64) -> StreamResult<Vec<u8>>;
    InSkip fn skip(stream: In, len: u64) -> StreamResult<u64>;
    InBlockingSkip fn blocking_skip(stream: In, len: u64) -> StreamResult<u64>;
    InSubscribe fn subscribe(stream: In) -> wasmtime::Result<Resource<DynPollable>>;
});

delegate!(streams::HostOutputStream, table io {
    OutDrop fn drop(stream: Out) -> wasmtime::Result<()>;
    OutCheckWrite fn check_write(stream: Out) -> StreamResult<u64>;
    OutWrite fn write(stream: Out, bytes: Vec<u8>) -> StreamResult<()>;
    OutBlockingWriteAndFlush fn blocking_write_and_flush(stream: Out, bytes: Vec<u8>) -> StreamResult<()>;
    OutBlockingWriteZeroesAndFlush fn blocking_write_zeroes_and_flush(stream: Out, len: u64) -> StreamResult<()>;
    OutSubscribe fn subscribe(stream: Out) -> wasmtime::Result<Resource<DynPollable>>;
    OutWriteZeroes fn write_zeroes(stream: Out, len: u64) -> StreamResult<()>;
    OutFlush fn flush(stream: Out) -> StreamResult<()>;
    OutBlockingFlush fn blocking_flush(stream: Out) -> StreamResult<()>;
    OutSplice fn splice(dst: Out, src: In, len: u64) -> StreamResult<u64>;
    OutBlockingSplice fn blocking_splice(dst: Out, src: In, len: u64) -> StreamResult<u64>;
});

delegate!(poll::Host, table io {
    Poll fn poll(pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>>;
});

delegate!(poll::HostPollable, table io {
    PollableReady fn ready(pollable: Resource<DynPollable>) -> wasmtime::Result<bool>;
    PollableBlock fn block(pollable: Resource<DynPollable>) -> wasmtime::Result<()>;
    PollableDrop fn drop(pollable: Resource<DynPollable>) -> wasmtime::Result<()>;
});

delegate!(io_error::Host, table io {});

delegate!(io_error::HostError, table io {
    ErrorToDebugString fn to_debug_string(err: Resource<IoError>) -> wasmtime::Result<String>;
    ErrorDrop fn drop(err: Resource<IoError>) -> wasmtime::Result<()>;
});

delegate!(clocks::wall_clock::Host, view clocks {
    WallNow fn now() -> wasmtime::Result<clocks::wall_clock::Datetime>;
    WallResolution fn resolution() -> wasmtime::Result<clocks::wall_clock::Datetime>;
});

delegate!(clocks::monotonic_clock::Host, view clocks {
    MonoNow fn now() -> wasmtime::Result<clocks::monotonic_clock::Instant>;
    MonoResolution fn resolution() -> wasmtime::Result<clocks::monotonic_clock::Duration>;
    MonoSubscribeInstant fn subscribe_instant(when: clocks::monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>>;
    MonoSubscribeDuration fn subscribe_duration(duration: clocks::monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>>;
});

delegate!(random::random::Host, table random {
    GetRandomBytes fn get_random_bytes(len: u64) -> wasmtime::Result<Vec<u8>>;
    GetRandomU64 fn get_random_u64() -> wasmtime::Result<u64>;
});

delegate!(random::insecure::Host, table random {
    GetInsecureRandomBytes fn get_insecure_random_bytes(len: u64) -> wasmtime::Result<Vec<u8>>;
    GetInsecureRandomU64 fn get_insecure_random_u64() -> wasmtime::Result<u64>;
});

delegate!(random::insecure_seed::Host, table random {
    InsecureSeed fn insecure_seed() -> wasmtime::Result<(u64, u64)>;
});

delegate!(cli::environment::Host, view cli {
    GetEnvironment fn get_environment() -> wasmtime::Result<Vec<(String, String)>>;
    GetArguments fn get_arguments() -> wasmtime::Result<Vec<String>>;
    InitialCwd fn initial_cwd() -> wasmtime::Result<Option<String>>;
});

delegate!(cli::stdin::Host, view cli {
    GetStdin fn get_stdin() -> wasmtime::Result<Resource<streams::InputStream>>;
});

delegate!(cli::stdout::Host, view cli {
    GetStdout fn get_stdout() -> wasmtime::Result<Resource<streams::OutputStream>>;
});

delegate!(cli::stderr::Host, view cli {
    GetStderr fn get_stderr() -> wasmtime::Result<Resource<streams::OutputStream>>;
});
