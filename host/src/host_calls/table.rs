//! The counted host functions: one [`HostFn`] per WASI function, with its
//! WIT name and its interface.

/// Declares [`HostFn`] and its name and interface tables.
macro_rules! host_fns {
    ($($variant:ident => $name:literal in $iface:ident,)*) => {
        /// One counted host function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub(crate) enum HostFn {
            $($variant,)*
        }

        /// `(name, interface)` of each [`HostFn`], indexed by its
        /// discriminant.
        pub(crate) const HOST_FNS: &[(&str, &str)] = &[$(($name, $iface),)*];
    };
}

host_fns! {
    // wasi:filesystem/types
    DescAdvise => "descriptor.advise" in FS_TYPES,
    DescSyncData => "descriptor.sync-data" in FS_TYPES,
    DescGetFlags => "descriptor.get-flags" in FS_TYPES,
    DescGetType => "descriptor.get-type" in FS_TYPES,
    DescSetSize => "descriptor.set-size" in FS_TYPES,
    DescSetTimes => "descriptor.set-times" in FS_TYPES,
    DescRead => "descriptor.read" in FS_TYPES,
    DescWrite => "descriptor.write" in FS_TYPES,
    DescReadDirectory => "descriptor.read-directory" in FS_TYPES,
    DescSync => "descriptor.sync" in FS_TYPES,
    DescCreateDirectoryAt => "descriptor.create-directory-at" in FS_TYPES,
    DescStat => "descriptor.stat" in FS_TYPES,
    DescStatAt => "descriptor.stat-at" in FS_TYPES,
    DescSetTimesAt => "descriptor.set-times-at" in FS_TYPES,
    DescLinkAt => "descriptor.link-at" in FS_TYPES,
    DescOpenAt => "descriptor.open-at" in FS_TYPES,
    DescDrop => "[drop]descriptor" in FS_TYPES,
    DescReadlinkAt => "descriptor.readlink-at" in FS_TYPES,
    DescRemoveDirectoryAt => "descriptor.remove-directory-at" in FS_TYPES,
    DescRenameAt => "descriptor.rename-at" in FS_TYPES,
    DescSymlinkAt => "descriptor.symlink-at" in FS_TYPES,
    DescUnlinkFileAt => "descriptor.unlink-file-at" in FS_TYPES,
    DescReadViaStream => "descriptor.read-via-stream" in FS_TYPES,
    DescWriteViaStream => "descriptor.write-via-stream" in FS_TYPES,
    DescAppendViaStream => "descriptor.append-via-stream" in FS_TYPES,
    DescIsSameObject => "descriptor.is-same-object" in FS_TYPES,
    DescMetadataHash => "descriptor.metadata-hash" in FS_TYPES,
    DescMetadataHashAt => "descriptor.metadata-hash-at" in FS_TYPES,
    DirEntryRead => "directory-entry-stream.read-directory-entry" in FS_TYPES,
    DirEntryDrop => "[drop]directory-entry-stream" in FS_TYPES,
    FsErrorCode => "filesystem-error-code" in FS_TYPES,
    // wasi:filesystem/preopens
    GetDirectories => "get-directories" in FS_PREOPENS,
    // wasi:io/streams
    InRead => "input-stream.read" in IO_STREAMS,
    InBlockingRead => "input-stream.blocking-read" in IO_STREAMS,
    InSkip => "input-stream.skip" in IO_STREAMS,
    InBlockingSkip => "input-stream.blocking-skip" in IO_STREAMS,
    InSubscribe => "input-stream.subscribe" in IO_STREAMS,
    InDrop => "[drop]input-stream" in IO_STREAMS,
    OutCheckWrite => "output-stream.check-write" in IO_STREAMS,
    OutWrite => "output-stream.write" in IO_STREAMS,
    OutBlockingWriteAndFlush => "output-stream.blocking-write-and-flush" in IO_STREAMS,
    OutFlush => "output-stream.flush" in IO_STREAMS,
    OutBlockingFlush => "output-stream.blocking-flush" in IO_STREAMS,
    OutSubscribe => "output-stream.subscribe" in IO_STREAMS,
    OutWriteZeroes => "output-stream.write-zeroes" in IO_STREAMS,
    OutBlockingWriteZeroesAndFlush => "output-stream.blocking-write-zeroes-and-flush" in IO_STREAMS,
    OutSplice => "output-stream.splice" in IO_STREAMS,
    OutBlockingSplice => "output-stream.blocking-splice" in IO_STREAMS,
    OutDrop => "[drop]output-stream" in IO_STREAMS,
    // wasi:io/poll
    Poll => "poll" in IO_POLL,
    PollableReady => "pollable.ready" in IO_POLL,
    PollableBlock => "pollable.block" in IO_POLL,
    PollableDrop => "[drop]pollable" in IO_POLL,
    // wasi:io/error
    ErrorToDebugString => "error.to-debug-string" in IO_ERROR,
    ErrorDrop => "[drop]error" in IO_ERROR,
    // wasi:clocks
    WallNow => "wall-clock.now" in WALL_CLOCK,
    WallResolution => "wall-clock.resolution" in WALL_CLOCK,
    MonoNow => "monotonic-clock.now" in MONOTONIC_CLOCK,
    MonoResolution => "monotonic-clock.resolution" in MONOTONIC_CLOCK,
    MonoSubscribeInstant => "monotonic-clock.subscribe-instant" in MONOTONIC_CLOCK,
    MonoSubscribeDuration => "monotonic-clock.subscribe-duration" in MONOTONIC_CLOCK,
    // wasi:random
    GetRandomBytes => "get-random-bytes" in RANDOM,
    GetRandomU64 => "get-random-u64" in RANDOM,
    GetInsecureRandomBytes => "get-insecure-random-bytes" in RANDOM_INSECURE,
    GetInsecureRandomU64 => "get-insecure-random-u64" in RANDOM_INSECURE,
    InsecureSeed => "insecure-seed" in RANDOM_INSECURE_SEED,
    // wasi:cli (environment and standard streams only)
    GetEnvironment => "get-environment" in CLI_ENVIRONMENT,
    GetArguments => "get-arguments" in CLI_ENVIRONMENT,
    InitialCwd => "initial-cwd" in CLI_ENVIRONMENT,
    GetStdin => "get-stdin" in CLI_STDIN,
    GetStdout => "get-stdout" in CLI_STDOUT,
    GetStderr => "get-stderr" in CLI_STDERR,
}

/// Interface names, without the `@0.2.x` version.
pub const FS_TYPES: &str = "wasi:filesystem/types";
/// `wasi:filesystem/preopens`.
pub const FS_PREOPENS: &str = "wasi:filesystem/preopens";
/// `wasi:io/streams`: reads and writes of files (and of stderr).
pub const IO_STREAMS: &str = "wasi:io/streams";
/// `wasi:io/poll`.
pub const IO_POLL: &str = "wasi:io/poll";
/// `wasi:io/error`.
pub const IO_ERROR: &str = "wasi:io/error";
/// `wasi:clocks/wall-clock`.
pub const WALL_CLOCK: &str = "wasi:clocks/wall-clock";
/// `wasi:clocks/monotonic-clock`.
pub const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock";
/// `wasi:random/random`.
pub const RANDOM: &str = "wasi:random/random";
/// `wasi:random/insecure`.
pub const RANDOM_INSECURE: &str = "wasi:random/insecure";
/// `wasi:random/insecure-seed`.
pub const RANDOM_INSECURE_SEED: &str = "wasi:random/insecure-seed";
/// `wasi:cli/environment`.
pub const CLI_ENVIRONMENT: &str = "wasi:cli/environment";
/// `wasi:cli/stdin`.
pub const CLI_STDIN: &str = "wasi:cli/stdin";
/// `wasi:cli/stdout`.
pub const CLI_STDOUT: &str = "wasi:cli/stdout";
/// `wasi:cli/stderr`.
pub const CLI_STDERR: &str = "wasi:cli/stderr";

/// How many functions are counted.
pub(crate) const N: usize = HOST_FNS.len();
