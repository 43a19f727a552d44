//! Linear-memory accounting: a [`ResourceLimiter`] that allows everything
//! Wasmtime's own limits allow and records how large memories got.

use wasmtime::ResourceLimiter;

/// What [`Request::memory_stats`](crate::Request::memory_stats) reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// The largest size, in bytes, any linear memory of the instance reached
    /// (creation counts as growth from 0). Wasm memories never shrink, so
    /// this is also that memory's current size. A Rust component has one
    /// memory, so this is its peak.
    pub peak_bytes: usize,
    /// Linear memories created (normally 1 per instance).
    pub memories_created: u32,
    /// Successful `memory.grow`s after creation.
    pub grows: u32,
}

/// The per-request limiter; lives in `RequestState`.
#[derive(Debug, Default)]
pub(crate) struct MemoryTracker {
    stats: MemoryStats,
}

impl MemoryTracker {
    pub(crate) fn stats(&self) -> MemoryStats {
        self.stats
    }
}

impl ResourceLimiter for MemoryTracker {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Wasmtime still refuses growth past `maximum` (the pooling
        // allocator's `max_memory_size`) after we answer `true`; only record
        // growth that will happen.
        if maximum.is_none_or(|max| desired <= max) {
            self.stats.peak_bytes = self.stats.peak_bytes.max(desired);
            if current == 0 {
                self.stats.memories_created += 1;
            } else {
                self.stats.grows += 1;
            }
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
