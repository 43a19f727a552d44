//! Where the edge demo's components are: the store, the app
//! (`examples/edge-app`), and the two composed into one `.wasm` that a
//! `wasi:http` host serves. `build.rs` builds them; this crate is only their
//! paths, so a host (host-test's `edge-server`, its tests) depends on it to
//! find them.

include!(concat!(env!("OUT_DIR"), "/paths.rs"));
