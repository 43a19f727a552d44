//! The embedding library binds every function the component exports, each
//! under the name and (checked when a `Runtime` is built) the type the WIT
//! gives it: a function added to the WIT without a binding fails here.

use std::collections::BTreeSet;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Engine;

#[test]
fn every_exported_function_is_bound() {
    let engine = Engine::default();
    let component = Component::from_file(&engine, host_test::component()).unwrap();
    let mut exported = BTreeSet::new();
    for (iface, item) in component.component_type().exports(&engine) {
        if let ComponentItem::ComponentInstance(instance) = item.ty {
            for (name, item) in instance.exports(&engine) {
                if matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                    exported.insert((iface.to_owned(), name.to_owned()));
                }
            }
        }
    }
    let bound: BTreeSet<(String, String)> = sqlite_sessions_host::exports::BOUND
        .iter()
        .map(|(iface, name)| ((*iface).to_owned(), (*name).to_owned()))
        .collect();
    assert!(!exported.is_empty());
    assert_eq!(
        exported.difference(&bound).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "exported but not bound"
    );
    assert_eq!(
        bound.difference(&exported).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "bound but not exported"
    );
}
