//! Native tests of the storage core, one test binary: property tests of the
//! value codec and nested paths, the bounded-time fuzzer of everything that
//! parses untrusted input, how a replaced session file is noticed, and the
//! pre-initialisation template; with the `kv` feature, the store on the
//! key-value backend.

mod codec_props;
mod fuzz;
#[cfg(feature = "kv")]
mod kv;
// These look at session files in a directory.
#[cfg(not(feature = "kv"))]
mod replacement;
#[cfg(not(feature = "kv"))]
mod template;
