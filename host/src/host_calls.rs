//! Counting the calls the guest makes into the WASI host.
//!
//! Every filesystem access of the component (SQLite's VFS) is a call into
//! wasmtime-wasi, and those calls are what a request costs. Their number is
//! a deterministic metric, unlike wall time on a noisy machine, so an
//! optimisation can be judged by it.
//!
//! How: `add_to_linker` first adds wasmtime-wasi's stock implementation of
//! every interface (`add_to_linker_sync`), then, with shadowing allowed,
//! redefines the interfaces listed in `HostFn` with wrappers. Each wrapper
//! implements wasmtime-wasi's own generated `Host*` traits by bumping one
//! counter in the request's [`RequestState`] and delegating to wasmtime-wasi's
//! implementation of the same trait, so behaviour is unchanged. A count is one
//! array increment; interfaces not listed here (`wasi:cli/exit`, terminals,
//! sockets) stay stock and uncounted.
//!
//! Optionally (off by default) the wrappers also record each call in order,
//! with its arguments and result ([`HostCallEvent`]), so a call can be traced
//! back to what caused it: which path, which offset, which error.
//!
//! The public items are re-exported at the crate root: [`HostCallCounts`]
//! and [`HostCallEvent`]; the interface-name constants stay here.

use std::collections::BTreeMap;
use std::fmt;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::WasiCliCtxView;
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::{error as io_error, poll, streams};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
use wasmtime_wasi::p2::{DynPollable, FsError, FsResult, IoError, StreamError, StreamResult};
use wasmtime_wasi::random::WasiRandomCtx;

use crate::request::RequestState;

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
        const HOST_FNS: &[(&str, &str)] = &[$(($name, $iface),)*];
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

const N: usize = HOST_FNS.len();

/// The raw per-request counters, one per [`HostFn`]. Lives in
/// [`RequestState`].
#[derive(Clone, Debug)]
pub(crate) struct HostCallCounter {
    counts: [u64; N],
    /// The calls in order, with their arguments, while tracing is on.
    trace: Option<Vec<HostCallEvent>>,
}

impl Default for HostCallCounter {
    fn default() -> Self {
        Self {
            counts: [0; N],
            trace: None,
        }
    }
}

impl HostCallCounter {
    #[inline(always)]
    fn hit(&mut self, f: HostFn) {
        self.counts[f as usize] += 1;
    }

    #[inline(always)]
    fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    fn record(&mut self, f: HostFn, args: Vec<String>, result: Option<String>) {
        if let Some(trace) = &mut self.trace {
            let (function, interface) = HOST_FNS[f as usize];
            trace.push(HostCallEvent {
                function,
                interface,
                args,
                result,
            });
        }
    }

    /// Starts (clearing any earlier trace) or stops tracing.
    pub(crate) fn set_tracing(&mut self, on: bool) {
        self.trace = on.then(Vec::new);
    }

    /// The calls traced so far; tracing stays as it was.
    pub(crate) fn take_trace(&mut self) -> Vec<HostCallEvent> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub(crate) fn reset(&mut self) {
        self.counts = [0; N];
    }

    pub(crate) fn snapshot(&self) -> HostCallCounts {
        let by_function: BTreeMap<&'static str, u64> = HOST_FNS
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|((name, _), n)| (*name, n))
            .collect();
        let total = by_function.values().sum();
        HostCallCounts { by_function, total }
    }
}

/// How many times the guest called each counted WASI host function, from
/// [`Request::host_calls`](crate::Request::host_calls).
///
/// Function names are the WIT names, prefixed by their resource where they
/// have one: `descriptor.open-at`, `[drop]descriptor`,
/// `input-stream.blocking-read`, `wall-clock.now`, `get-random-bytes`. Only
/// functions called at least once appear. [`HostCallCounts::interface_of`]
/// maps a name to its interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostCallCounts {
    /// Calls per function name; only non-zero entries.
    pub by_function: BTreeMap<&'static str, u64>,
    /// The sum of `by_function`.
    pub total: u64,
}

impl HostCallCounts {
    /// Calls of one function (0 if never called or not a counted name).
    pub fn get(&self, function: &str) -> u64 {
        self.by_function.get(function).copied().unwrap_or(0)
    }

    /// The interface (`wasi:filesystem/types`, ...) a counted function
    /// belongs to.
    pub fn interface_of(function: &str) -> Option<&'static str> {
        HOST_FNS
            .iter()
            .find(|(name, _)| *name == function)
            .map(|(_, iface)| *iface)
    }

    /// Every counted function name, in declaration order.
    pub fn counted_functions() -> impl Iterator<Item = &'static str> {
        HOST_FNS.iter().map(|(name, _)| *name)
    }

    /// Calls per interface; only non-zero entries.
    pub fn by_interface(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for (name, n) in &self.by_function {
            if let Some(iface) = Self::interface_of(name) {
                *out.entry(iface).or_insert(0) += n;
            }
        }
        out
    }

    /// Calls into interfaces whose name starts with `prefix`, e.g.
    /// `"wasi:filesystem/"` or `"wasi:io/streams"`.
    pub fn interface_total(&self, prefix: &str) -> u64 {
        self.by_interface()
            .iter()
            .filter(|(iface, _)| iface.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// `wasi:filesystem/types` and `wasi:filesystem/preopens`.
    pub fn filesystem(&self) -> u64 {
        self.interface_total("wasi:filesystem/")
    }

    /// `wasi:io/*`: the stream reads and writes behind file I/O (and
    /// stderr), polls and errors.
    pub fn io(&self) -> u64 {
        self.interface_total("wasi:io/")
    }

    /// `wasi:clocks/*`: wall and monotonic.
    pub fn clocks(&self) -> u64 {
        self.interface_total("wasi:clocks/")
    }

    /// `wasi:random/*`.
    pub fn random(&self) -> u64 {
        self.interface_total("wasi:random/")
    }

    /// `wasi:cli/*` (environment and standard streams).
    pub fn cli(&self) -> u64 {
        self.interface_total("wasi:cli/")
    }

    /// Filesystem plus I/O: the "host filesystem calls" of an operation.
    pub fn filesystem_and_io(&self) -> u64 {
        self.filesystem() + self.io()
    }

    /// The `n` most-called functions, most first (ties by name).
    pub fn top(&self, n: usize) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self.by_function.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    /// The calls made after `earlier` was taken (saturating per function).
    pub fn since(&self, earlier: &HostCallCounts) -> HostCallCounts {
        let by_function: BTreeMap<_, _> = self
            .by_function
            .iter()
            .map(|(k, v)| (*k, v.saturating_sub(earlier.get(k))))
            .filter(|(_, v)| *v > 0)
            .collect();
        let total = by_function.values().sum();
        HostCallCounts { by_function, total }
    }
}

impl fmt::Display for HostCallCounts {
    /// `total N (fs a, io b, clocks c, random d, cli e): f1 x, f2 y, ...`,
    /// functions most-called first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "total {} (fs {}, io {}, clocks {}, random {}, cli {})",
            self.total,
            self.filesystem(),
            self.io(),
            self.clocks(),
            self.random(),
            self.cli()
        )?;
        for (i, (name, n)) in self.top(usize::MAX).into_iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{name} {n}")?;
        }
        Ok(())
    }
}

/// One traced host call (see
/// [`Request::trace_host_calls`](crate::Request::trace_host_calls)).
///
/// Displays as `descriptor.open-at(#2, "ab/….db-journal", OpenFlags(CREATE)) -> #5`:
/// resources as `#<rep>` (the host's handle number, so a descriptor can be
/// followed from the `open-at` that returned it), strings quoted, byte
/// buffers by length, flags as their names; other arguments are left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCallEvent {
    /// The function, named as in [`HostCallCounts::by_function`].
    pub function: &'static str,
    /// Its interface, e.g. `wasi:filesystem/types`.
    pub interface: &'static str,
    /// The described arguments.
    pub args: Vec<String>,
    /// The described result (`ok`, `#5`, `12 bytes`, `err: …`), if any.
    pub result: Option<String>,
}

impl fmt::Display for HostCallEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.function, self.args.join(", "))?;
        if let Some(r) = &self.result {
            write!(f, " -> {r}")?;
        }
        Ok(())
    }
}

/// Adds WASI to `linker`: wasmtime-wasi's stock synchronous implementation,
/// with the interfaces of [`HostFn`] replaced by counting wrappers around it.
pub(crate) fn add_to_linker(linker: &mut Linker<RequestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let l = &mut *linker;
    fs::add_to_linker::<RequestState, CountedFs>(l, counted_fs)?;
    filesystem::preopens::add_to_linker::<RequestState, CountedFs>(l, counted_fs)?;
    streams::add_to_linker::<RequestState, CountedIo>(l, counted_io)?;
    poll::add_to_linker::<RequestState, CountedIo>(l, counted_io)?;
    io_error::add_to_linker::<RequestState, CountedIo>(l, counted_io)?;
    clocks::wall_clock::add_to_linker::<RequestState, CountedClocks>(l, counted_clocks)?;
    clocks::monotonic_clock::add_to_linker::<RequestState, CountedClocks>(l, counted_clocks)?;
    random::random::add_to_linker::<RequestState, CountedRandom>(l, counted_random)?;
    random::insecure::add_to_linker::<RequestState, CountedRandom>(l, counted_random)?;
    random::insecure_seed::add_to_linker::<RequestState, CountedRandom>(l, counted_random)?;
    cli::environment::add_to_linker::<RequestState, CountedCli>(l, counted_cli)?;
    cli::stdin::add_to_linker::<RequestState, CountedCli>(l, counted_cli)?;
    cli::stdout::add_to_linker::<RequestState, CountedCli>(l, counted_cli)?;
    cli::stderr::add_to_linker::<RequestState, CountedCli>(l, counted_cli)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A wasmtime-wasi host view plus the request's counters.
pub(crate) struct Counted<'a, V> {
    inner: V,
    counter: &'a mut HostCallCounter,
}

struct CountedFs;
impl HasData for CountedFs {
    type Data<'a> = Counted<'a, WasiFilesystemCtxView<'a>>;
}

struct CountedIo;
impl HasData for CountedIo {
    type Data<'a> = Counted<'a, &'a mut ResourceTable>;
}

struct CountedClocks;
impl HasData for CountedClocks {
    type Data<'a> = Counted<'a, WasiClocksCtxView<'a>>;
}

struct CountedRandom;
impl HasData for CountedRandom {
    type Data<'a> = Counted<'a, &'a mut WasiRandomCtx>;
}

struct CountedCli;
impl HasData for CountedCli {
    type Data<'a> = Counted<'a, WasiCliCtxView<'a>>;
}

fn counted_fs(s: &mut RequestState) -> Counted<'_, WasiFilesystemCtxView<'_>> {
    let (ctx, table, counter) = s.parts();
    Counted {
        inner: WasiFilesystemCtxView {
            ctx: ctx.filesystem(),
            table,
        },
        counter,
    }
}

fn counted_io(s: &mut RequestState) -> Counted<'_, &mut ResourceTable> {
    let (_, table, counter) = s.parts();
    Counted {
        inner: table,
        counter,
    }
}

fn counted_clocks(s: &mut RequestState) -> Counted<'_, WasiClocksCtxView<'_>> {
    let (ctx, table, counter) = s.parts();
    Counted {
        inner: WasiClocksCtxView {
            ctx: ctx.clocks(),
            table,
        },
        counter,
    }
}

fn counted_random(s: &mut RequestState) -> Counted<'_, &mut WasiRandomCtx> {
    let (ctx, _, counter) = s.parts();
    Counted {
        inner: ctx.random(),
        counter,
    }
}

fn counted_cli(s: &mut RequestState) -> Counted<'_, WasiCliCtxView<'_>> {
    let (ctx, table, counter) = s.parts();
    Counted {
        inner: WasiCliCtxView {
            ctx: ctx.cli(),
            table,
        },
        counter,
    }
}

/// Gives the wasmtime-wasi value whose `Host*` implementation a wrapper
/// delegates to: the view itself, or what an `&mut X` view points to.
trait Inner {
    type Target: ?Sized;
    fn inner(&mut self) -> &mut Self::Target;
}

macro_rules! inner {
    (view $view:ident) => {
        impl<'b> Inner for Counted<'_, $view<'b>> {
            type Target = $view<'b>;
            #[inline(always)]
            fn inner(&mut self) -> &mut $view<'b> {
                &mut self.inner
            }
        }
    };
    (ref $target:ty) => {
        impl Inner for Counted<'_, &mut $target> {
            type Target = $target;
            #[inline(always)]
            fn inner(&mut self) -> &mut $target {
                self.inner
            }
        }
    };
}

inner!(view WasiFilesystemCtxView);
inner!(view WasiClocksCtxView);
inner!(view WasiCliCtxView);
inner!(ref ResourceTable);
inner!(ref WasiRandomCtx);

/// Implements `$trait` for `Counted<'_, $view>`: each listed method counts
/// `HostFn::$fnid` (or nothing, for `-`) and calls wasmtime-wasi's
/// implementation of the same method (see [`Inner`]).
macro_rules! delegate {
    (
        $trait:path, $view:ty {
            $( $fnid:tt fn $name:ident($($arg:ident: $argty:ty),*) -> $ret:ty; )*
        }
    ) => {
        impl $trait for Counted<'_, $view> {
            $(
                #[inline]
                fn $name(&mut self $(, $arg: $argty)*) -> $ret {
                    delegate!(@body self $fnid, $trait, $name, ($($arg),*))
                }
            )*
        }
    };
    (@one $arg:ident) => { 1 };
    // Not a guest call (the bindings' error conversion): no count.
    (@body $self:ident -, $t:path, $f:ident, ($($arg:ident),*)) => {
        <_ as $t>::$f($self.inner() $(, $arg)*)
    };
    (@body $self:ident $fnid:ident, $t:path, $f:ident, ($($arg:ident),*)) => {{
        $self.counter.hit(HostFn::$fnid);
        if $self.counter.tracing() {
            #[allow(unused_imports)]
            use self::describe::{DescribeFallback as _, DescribeKnown as _};
            let args: [Option<String>; 0 $(+ delegate!(@one $arg))*] =
                [$((&describe::Arg(&$arg)).describe()),*];
            let args: Vec<String> = args
                .into_iter()
                .flatten()
                .collect();
            let result = <_ as $t>::$f($self.inner() $(, $arg)*);
            let described = (&describe::Arg(&result)).describe();
            $self.counter.record(HostFn::$fnid, args, described);
            return result;
        }
        <_ as $t>::$f($self.inner() $(, $arg)*)
    }};
}

/// Describing arguments and results for [`HostCallEvent`] by
/// "autoref specialisation": `(&Arg(&x)).describe()` picks `DescribeKnown`
/// when `Arg<T>` implements it and otherwise falls back to `None`.
mod describe {
    use super::fs;
    use std::fmt::Display;
    use wasmtime::component::Resource;

    pub struct Arg<'a, T>(pub &'a T);

    pub trait DescribeKnown {
        fn describe(&self) -> Option<String>;
    }

    pub trait DescribeFallback {
        fn describe(&self) -> Option<String>;
    }

    impl<T> DescribeFallback for &Arg<'_, T> {
        fn describe(&self) -> Option<String> {
            None
        }
    }

    impl DescribeKnown for Arg<'_, String> {
        fn describe(&self) -> Option<String> {
            Some(format!("{:?}", self.0))
        }
    }

    impl DescribeKnown for Arg<'_, u64> {
        fn describe(&self) -> Option<String> {
            Some(self.0.to_string())
        }
    }

    impl DescribeKnown for Arg<'_, Vec<u8>> {
        fn describe(&self) -> Option<String> {
            Some(format!("{} bytes", self.0.len()))
        }
    }

    impl<T: 'static> DescribeKnown for Arg<'_, Resource<T>> {
        fn describe(&self) -> Option<String> {
            Some(format!("#{}", self.0.rep()))
        }
    }

    impl DescribeKnown for Arg<'_, fs::OpenFlags> {
        fn describe(&self) -> Option<String> {
            Some(format!("{:?}", self.0))
        }
    }

    impl DescribeKnown for Arg<'_, fs::DescriptorFlags> {
        fn describe(&self) -> Option<String> {
            Some(format!("{:?}", self.0))
        }
    }

    /// The `Ok` values worth showing; others show as `ok`.
    pub trait OkValue {
        fn ok_value(&self) -> String {
            "ok".into()
        }
    }

    impl OkValue for () {}
    impl OkValue for fs::DescriptorStat {
        fn ok_value(&self) -> String {
            format!("size {}", self.size)
        }
    }
    impl OkValue for fs::MetadataHashValue {}
    impl OkValue for bool {
        fn ok_value(&self) -> String {
            self.to_string()
        }
    }
    impl OkValue for u64 {
        fn ok_value(&self) -> String {
            self.to_string()
        }
    }
    impl OkValue for Vec<u8> {
        fn ok_value(&self) -> String {
            format!("{} bytes", self.len())
        }
    }
    impl OkValue for (Vec<u8>, bool) {
        fn ok_value(&self) -> String {
            format!(
                "{} bytes{}",
                self.0.len(),
                if self.1 { ", eof" } else { "" }
            )
        }
    }
    impl<T: 'static> OkValue for Resource<T> {
        fn ok_value(&self) -> String {
            format!("#{}", self.rep())
        }
    }

    impl<T: OkValue, E: Display> DescribeKnown for Arg<'_, Result<T, E>> {
        fn describe(&self) -> Option<String> {
            Some(match self.0 {
                Ok(v) => v.ok_value(),
                Err(e) => format!("err: {e}"),
            })
        }
    }
}

type Desc = Resource<fs::Descriptor>;

delegate!(fs::Host, WasiFilesystemCtxView<'_> {
    - fn convert_error_code(err: FsError) -> wasmtime::Result<fs::ErrorCode>;
    FsErrorCode fn filesystem_error_code(err: Resource<IoError>) -> wasmtime::Result<Option<fs::ErrorCode>>;
});

delegate!(fs::HostDescriptor, WasiFilesystemCtxView<'_> {
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

delegate!(fs::HostDirectoryEntryStream, WasiFilesystemCtxView<'_> {
    DirEntryRead fn read_directory_entry(stream: Resource<fs::DirectoryEntryStream>) -> FsResult<Option<fs::DirectoryEntry>>;
    DirEntryDrop fn drop(stream: Resource<fs::DirectoryEntryStream>) -> wasmtime::Result<()>;
});

delegate!(filesystem::preopens::Host, WasiFilesystemCtxView<'_> {
    GetDirectories fn get_directories() -> wasmtime::Result<Vec<(Desc, String)>>;
});

type In = Resource<streams::InputStream>;
type Out = Resource<streams::OutputStream>;

delegate!(streams::Host, &mut ResourceTable {
    - fn convert_stream_error(err: StreamError) -> wasmtime::Result<streams::StreamError>;
});

delegate!(streams::HostInputStream, &mut ResourceTable {
    InDrop fn drop(stream: In) -> wasmtime::Result<()>;
    InRead fn read(stream: In, len: u64) -> StreamResult<Vec<u8>>;
    InBlockingRead fn blocking_read(stream: In, len: u64) -> StreamResult<Vec<u8>>;
    InSkip fn skip(stream: In, len: u64) -> StreamResult<u64>;
    InBlockingSkip fn blocking_skip(stream: In, len: u64) -> StreamResult<u64>;
    InSubscribe fn subscribe(stream: In) -> wasmtime::Result<Resource<DynPollable>>;
});

delegate!(streams::HostOutputStream, &mut ResourceTable {
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

delegate!(poll::Host, &mut ResourceTable {
    Poll fn poll(pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>>;
});

delegate!(poll::HostPollable, &mut ResourceTable {
    PollableReady fn ready(pollable: Resource<DynPollable>) -> wasmtime::Result<bool>;
    PollableBlock fn block(pollable: Resource<DynPollable>) -> wasmtime::Result<()>;
    PollableDrop fn drop(pollable: Resource<DynPollable>) -> wasmtime::Result<()>;
});

delegate!(io_error::Host, &mut ResourceTable {});

delegate!(io_error::HostError, &mut ResourceTable {
    ErrorToDebugString fn to_debug_string(err: Resource<IoError>) -> wasmtime::Result<String>;
    ErrorDrop fn drop(err: Resource<IoError>) -> wasmtime::Result<()>;
});

delegate!(clocks::wall_clock::Host, WasiClocksCtxView<'_> {
    WallNow fn now() -> wasmtime::Result<clocks::wall_clock::Datetime>;
    WallResolution fn resolution() -> wasmtime::Result<clocks::wall_clock::Datetime>;
});

delegate!(clocks::monotonic_clock::Host, WasiClocksCtxView<'_> {
    MonoNow fn now() -> wasmtime::Result<clocks::monotonic_clock::Instant>;
    MonoResolution fn resolution() -> wasmtime::Result<clocks::monotonic_clock::Duration>;
    MonoSubscribeInstant fn subscribe_instant(when: clocks::monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>>;
    MonoSubscribeDuration fn subscribe_duration(duration: clocks::monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>>;
});

delegate!(random::random::Host, &mut WasiRandomCtx {
    GetRandomBytes fn get_random_bytes(len: u64) -> wasmtime::Result<Vec<u8>>;
    GetRandomU64 fn get_random_u64() -> wasmtime::Result<u64>;
});

delegate!(random::insecure::Host, &mut WasiRandomCtx {
    GetInsecureRandomBytes fn get_insecure_random_bytes(len: u64) -> wasmtime::Result<Vec<u8>>;
    GetInsecureRandomU64 fn get_insecure_random_u64() -> wasmtime::Result<u64>;
});

delegate!(random::insecure_seed::Host, &mut WasiRandomCtx {
    InsecureSeed fn insecure_seed() -> wasmtime::Result<(u64, u64)>;
});

delegate!(cli::environment::Host, WasiCliCtxView<'_> {
    GetEnvironment fn get_environment() -> wasmtime::Result<Vec<(String, String)>>;
    GetArguments fn get_arguments() -> wasmtime::Result<Vec<String>>;
    InitialCwd fn initial_cwd() -> wasmtime::Result<Option<String>>;
});

delegate!(cli::stdin::Host, WasiCliCtxView<'_> {
    GetStdin fn get_stdin() -> wasmtime::Result<Resource<streams::InputStream>>;
});

delegate!(cli::stdout::Host, WasiCliCtxView<'_> {
    GetStdout fn get_stdout() -> wasmtime::Result<Resource<streams::OutputStream>>;
});

delegate!(cli::stderr::Host, WasiCliCtxView<'_> {
    GetStderr fn get_stderr() -> wasmtime::Result<Resource<streams::OutputStream>>;
});
