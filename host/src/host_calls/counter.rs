//! The per-store counters the wrappers bump, and the trace they record.

use std::collections::BTreeMap;
use std::fmt;

use super::counts::HostCallCounts;
use super::table::{HostFn, HOST_FNS, N};

/// The raw counters of one store, one per counted function, and the trace
/// of calls while tracing is on.
///
/// An embedder keeps one in its store's data and lends it to the wrappers
/// through [`HostCallsView`](super::HostCallsView); [`Request`] keeps one
/// per request.
///
/// [`Request`]: crate::Request
#[derive(Clone, Debug)]
pub struct HostCallCounter {
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
    pub(super) fn hit(&mut self, f: HostFn) {
        self.counts[f as usize] += 1;
    }

    #[inline(always)]
    pub(super) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    pub(super) fn record(&mut self, f: HostFn, args: Vec<String>, result: Option<String>) {
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
    pub fn set_tracing(&mut self, on: bool) {
        self.trace = on.then(Vec::new);
    }

    /// The calls traced so far; tracing stays as it was.
    pub fn take_trace(&mut self) -> Vec<HostCallEvent> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Sets every counter back to zero.
    pub fn reset(&mut self) {
        self.counts = [0; N];
    }

    /// The counts so far, by function name.
    pub fn snapshot(&self) -> HostCallCounts {
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
