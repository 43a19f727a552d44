//! The component's exported functions, found and type-checked once per
//! [`Runtime`](crate::Runtime) instead of once per instance.
//!
//! `bindgen!`'s generated `instantiate` looks every export up and
//! type-checks it against its Rust signature on each new instance, although
//! an export's type is a property of the component: it cannot differ
//! between two instances of one `InstancePre`. `Exports::new` does that
//! work once, on one throwaway instance, with exactly the signatures the
//! calls use; a request then instantiates with the plain `InstancePre` and
//! each call turns its export index into a typed function without checking
//! again. The records and variants still come from `bindgen!` (the
//! `bindings` module), so a WIT change that is not mirrored here fails in
//! `Exports::new`, when the runtime is built.

use anyhow::Context as _;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, ResourceAny, TypedFunc};
use wasmtime::{AsContextMut, Store};

use crate::bindings::exports::sqlite_sessions::store::admin::{CheckResult, Listing, SessionDump};
use crate::bindings::exports::sqlite_sessions::store::sessions::{
    BatchError, BatchOp, BatchResult, Config, Error, ExpirySettings, PathSegment, SweepProgress,
};

/// Declares [`Exports`]: one field per exported function, with the
/// interface and name it is found under and the Rust signature it is
/// checked against, and a method per field that returns the function,
/// typed, for one instance.
macro_rules! exports {
    ($(
        $field:ident = $iface:ident $name:literal: fn($($param:ty),*) -> $result:ty;
    )*) => {
        /// Where each exported function the library calls is, by index.
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct Exports {
            $($field: ComponentExportIndex,)*
        }

        /// Every function the library calls, as (interface, name).
        pub const BOUND: &[(&str, &str)] = &[$(($iface, $name),)*];

        impl Exports {
            /// Finds every export by name, then type-checks each against its
            /// signature on `instance`, an instance of the `InstancePre` the
            /// indices will be used with.
            // `'a` is the lifetime of the borrowed parameters in the
            // signatures; some exports borrow none.
            #[allow(clippy::extra_unused_lifetimes)]
            fn find_and_check<'a, T: 'static>(
                pre: &InstancePre<T>,
                mut store: impl AsContextMut<Data = T>,
                instance: &Instance,
            ) -> anyhow::Result<Self> {
                let component = pre.component();
                let find = |iface: &str, name: &str| -> anyhow::Result<ComponentExportIndex> {
                    let (_, outer) = component
                        .get_export(None, iface)
                        .with_context(|| format!("the component exports no `{iface}`"))?;
                    let (_, index) = component
                        .get_export(Some(&outer), name)
                        .with_context(|| format!("`{iface}` has no export `{name}`"))?;
                    Ok(index)
                };
                let exports = Exports {
                    $($field: find($iface, $name)?,)*
                };
                $(
                    instance
                        .get_typed_func::<($($param,)*), ($result,)>(
                            &mut store,
                            exports.$field,
                        )
                        .map_err(anyhow::Error::from)
                        .with_context(|| format!("type-checking `{}` `{}`", $iface, $name))?;
                )*
                Ok(exports)
            }

            $(
                /// The export, typed, in `instance`.
                #[allow(clippy::extra_unused_lifetimes)]
                pub(crate) fn $field<'a>(
                    &self,
                    store: impl AsContextMut,
                    instance: &Instance,
                ) -> TypedFunc<($($param,)*), ($result,)> {
                    let func = instance
                        .get_func(store, self.$field)
                        .expect("an export index of this instance's component");
                    // SAFETY: `find_and_check` checked this export of this
                    // component against exactly these types, and every
                    // instance given here is of the same `InstancePre`
                    // (`Request` holds the `Exports` of the runtime that
                    // instantiated it).
                    unsafe { TypedFunc::new_unchecked(func) }
                }
            )*
        }
    };
}

const SESSIONS: &str = "sqlite-sessions:store/sessions@0.1.0";
const ADMIN: &str = "sqlite-sessions:store/admin@0.1.0";

exports! {
    open = SESSIONS "[static]store.open": fn(&'a Config) -> Result<ResourceAny, Error>;
    load = SESSIONS "[method]store.load": fn(ResourceAny, &'a str) -> Result<Option<ResourceAny>, Error>;
    create = SESSIONS "[method]store.create": fn(ResourceAny) -> ResourceAny;
    load_or_create = SESSIONS "[method]store.load-or-create":
        fn(ResourceAny, Option<&'a str>) -> Result<ResourceAny, Error>;
    cookie_value_from_header = SESSIONS "[method]store.cookie-value-from-header":
        fn(ResourceAny, &'a str) -> Option<String>;
    destroy_id = SESSIONS "[method]store.destroy-id": fn(ResourceAny, &'a str) -> Result<bool, Error>;
    sweep = SESSIONS "[method]store.sweep":
        fn(ResourceAny, Option<&'a str>, u32) -> Result<SweepProgress, Error>;

    id = SESSIONS "[method]session.id": fn(ResourceAny) -> String;
    is_new = SESSIONS "[method]session.is-new": fn(ResourceAny) -> bool;
    regenerate = SESSIONS "[method]session.regenerate": fn(ResourceAny) -> Result<(), Error>;
    set_expiry = SESSIONS "[method]session.set-expiry":
        fn(ResourceAny, ExpirySettings) -> Result<(), Error>;
    expires_at = SESSIONS "[method]session.expires-at": fn(ResourceAny) -> Result<Option<u64>, Error>;
    get = SESSIONS "[method]session.get": fn(ResourceAny, &'a str) -> Result<Option<Vec<u8>>, Error>;
    get_json = SESSIONS "[method]session.get-json":
        fn(ResourceAny, &'a str) -> Result<Option<String>, Error>;
    set = SESSIONS "[method]session.set": fn(ResourceAny, &'a str, &'a [u8]) -> Result<(), Error>;
    set_json = SESSIONS "[method]session.set-json": fn(ResourceAny, &'a str, &'a str) -> Result<(), Error>;
    remove = SESSIONS "[method]session.remove": fn(ResourceAny, &'a str) -> Result<bool, Error>;
    take = SESSIONS "[method]session.take": fn(ResourceAny, &'a str) -> Result<Option<Vec<u8>>, Error>;
    take_json = SESSIONS "[method]session.take-json":
        fn(ResourceAny, &'a str) -> Result<Option<String>, Error>;
    contains = SESSIONS "[method]session.contains": fn(ResourceAny, &'a str) -> Result<bool, Error>;
    keys = SESSIONS "[method]session.keys": fn(ResourceAny) -> Result<Vec<String>, Error>;
    len = SESSIONS "[method]session.len": fn(ResourceAny) -> Result<u32, Error>;
    clear = SESSIONS "[method]session.clear": fn(ResourceAny) -> Result<(), Error>;
    destroy = SESSIONS "[method]session.destroy": fn(ResourceAny) -> Result<(), Error>;
    set_in = SESSIONS "[method]session.set-in":
        fn(ResourceAny, &'a str, &'a [PathSegment], &'a [u8]) -> Result<(), Error>;
    set_in_json = SESSIONS "[method]session.set-in-json":
        fn(ResourceAny, &'a str, &'a [PathSegment], &'a str) -> Result<(), Error>;
    remove_in = SESSIONS "[method]session.remove-in":
        fn(ResourceAny, &'a str, &'a [PathSegment]) -> Result<bool, Error>;
    append = SESSIONS "[method]session.append": fn(ResourceAny, &'a str, &'a [u8]) -> Result<u32, Error>;
    append_json = SESSIONS "[method]session.append-json":
        fn(ResourceAny, &'a str, &'a str) -> Result<u32, Error>;
    increment = SESSIONS "[method]session.increment": fn(ResourceAny, &'a str, i64) -> Result<i64, Error>;
    compare_and_swap = SESSIONS "[method]session.compare-and-swap":
        fn(ResourceAny, &'a str, Option<&'a [u8]>, Option<&'a [u8]>) -> Result<bool, Error>;
    batch = SESSIONS "[method]session.batch":
        fn(ResourceAny, &'a [BatchOp]) -> Result<Vec<BatchResult>, BatchError>;
    cookie_value = SESSIONS "[method]session.cookie-value": fn(ResourceAny) -> Option<String>;
    set_cookie = SESSIONS "[method]session.set-cookie": fn(ResourceAny) -> Option<String>;

    list_sessions = ADMIN "list-sessions":
        fn(ResourceAny, Option<&'a str>, u32) -> Result<Listing, Error>;
    inspect = ADMIN "inspect": fn(ResourceAny, &'a str) -> Result<Option<SessionDump>, Error>;
    check_directory = ADMIN "check-directory": fn(ResourceAny) -> Result<Vec<CheckResult>, Error>;
}

impl Exports {
    /// The exports of `pre`'s component, each type-checked once, on an
    /// instance made in `store` (which the caller then drops).
    pub(crate) fn new<T: 'static>(
        pre: &InstancePre<T>,
        mut store: Store<T>,
    ) -> anyhow::Result<Self> {
        let instance = pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)
            .context("instantiating the component to check its exports")?;
        Self::find_and_check(pre, &mut store, &instance)
    }
}
