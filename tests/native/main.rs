//! Native tests of the storage core, one test binary: property tests of the
//! value codec and nested paths, the bounded-time fuzzer of everything that
//! parses untrusted input, and the pre-initialisation template.

mod codec_props;
mod fuzz;
mod template;
