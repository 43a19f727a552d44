//! The generated bindings of world `session-store`. Private: the crate
//! root re-exports the types a caller needs, and calls go through
//! [`Request`](crate::Request).

wasmtime::component::bindgen!({
    world: "session-store",
    path: "../wit",
    // So callers can `assert_eq!` on results and errors.
    additional_derives: [PartialEq, Eq],
});
