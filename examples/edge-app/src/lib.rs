//! The edge demo: a small `wasi:http` app component whose sessions live in the
//! `sqlite-sessions` store.
//!
//! It exports `wasi:http/incoming-handler` and imports
//! `sqlite-sessions:store/sessions@0.1.0`; `wac plug` fills that import with
//! the store component, giving one `.wasm` that `wasmtime serve`, the
//! `edge-server` example, or Spin (as a component dependency) can run. The session
//! directory is whatever the host preopens as `/sessions`; built with the
//! `kv` feature (and composed with the store's key-value build), it keeps
//! its sessions in the `wasi:keyvalue` bucket `default` instead.
//!
//! Pages (see `pages.rs`): `/` counts visits and shows a flash message once,
//! `POST /login` regenerates the session id, `POST /logout` destroys the
//! session, and `/session` lists the session's keys and expiry.
//!
//! Everything but the HTML helpers is wasm-only: on the host the crate holds
//! just those and their unit tests, so workspace-wide cargo commands pass
//! over it (`make lint` also lints it for `wasm32-wasip2`).

// Used only by the wasm build's pages; unit-tested on the host.
#[cfg(target_arch = "wasm32")]
mod component;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod html;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod pages;
