//! [`HostCallCounts`]: a snapshot of the counters, by function and by
//! interface.

use std::collections::BTreeMap;
use std::fmt;

use super::table::HOST_FNS;

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
