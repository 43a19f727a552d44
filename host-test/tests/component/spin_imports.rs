//! The key-value build of the store imports nothing that Spin 3.6's
//! `platform` world lacks, so Spin can run it as a component dependency with
//! `key_value_stores = ["default"]` (Spin itself cannot be installed here;
//! this is the check instead). The world's interfaces are vendored in
//! `spin-platform-3.6.txt`; the component's imports are read from the
//! component itself.
//!
//! The rule is wasmtime's (Spin's runtime) semver linking: an import of
//! `wasi:x/y@0.2.a` is satisfied by the world's `wasi:x/y@0.2.b` when
//! `b >= a`; any other version must match exactly.

use wasmtime::component::Component;
use wasmtime::Engine;

const SPIN_PLATFORM: &str = include_str!("spin-platform-3.6.txt");

/// `(package/interface, version)` of `name@version`.
fn split(name: &str) -> (&str, &str) {
    name.rsplit_once('@').unwrap_or((name, ""))
}

/// `0.2.6` as `(0, 2, 6)`; `None` for a pre-release or anything else.
fn semver(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Some((a, b, c)),
        _ => None,
    }
}

/// Whether `provided` (a world's import) satisfies a component's import of
/// the same interface at `wanted`.
fn satisfies(provided: &str, wanted: &str) -> bool {
    if provided == wanted {
        return true;
    }
    match (semver(provided), semver(wanted)) {
        // Same track (0.x: major and minor; else major), at least as new.
        (Some((0, pm, pp)), Some((0, wm, wp))) => pm == wm && pp >= wp,
        (Some((pa, pm, pp)), Some((wa, wm, wp))) => pa == wa && pa > 0 && (pm, pp) >= (wm, wp),
        _ => false,
    }
}

/// The imports of `component` (instances only: interface names) that the
/// world's `provided` lines do not satisfy.
fn unsatisfied<'a>(imports: &'a [String], provided: &str) -> Vec<&'a String> {
    let world: Vec<(&str, &str)> = provided
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(split)
        .collect();
    imports
        .iter()
        .filter(|import| {
            let (iface, version) = split(import);
            !world
                .iter()
                .any(|(i, v)| *i == iface && satisfies(v, version))
        })
        .collect()
}

fn imports_of(path: &std::path::Path) -> Vec<String> {
    let engine = Engine::default();
    let component = Component::from_file(&engine, path).unwrap();
    let mut names: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_key_value_store_imports_nothing_spin_3_6_lacks() {
    let imports = imports_of(host_test::component_kv());
    let missing = unsatisfied(&imports, SPIN_PLATFORM);
    assert!(
        missing.is_empty(),
        "Spin 3.6's platform world lacks {missing:?} (all imports: {imports:?})"
    );
    // What it stores sessions through; and nothing but WASI besides.
    for needed in [
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/atomics@0.2.0-draft2",
    ] {
        assert!(imports.iter().any(|i| i == needed), "{imports:?}");
    }
    for import in &imports {
        assert!(import.starts_with("wasi:"), "{import}");
        // Sockets and HTTP would be the network; the store needs neither.
        assert!(
            !import.starts_with("wasi:sockets/") && !import.starts_with("wasi:http/"),
            "{import}"
        );
    }
    // It still imports wasi:filesystem (SQLite's built-in unix VFS is
    // compiled in, and with it wasi-libc's file functions), without calling
    // it: see `keyvalue::no_filesystem_call_is_made`.
    println!("the key-value store's imports, all in Spin 3.6's platform world: {imports:?}");
}

#[test]
fn the_check_refuses_what_the_world_lacks() {
    let world = "wasi:io/poll@0.2.6\nwasi:keyvalue/store@0.2.0-draft2\n# a comment\n";
    let imports: Vec<String> = [
        "wasi:io/poll@0.2.0",  // older patch: fine
        "wasi:io/poll@0.2.6",  // exact: fine
        "wasi:io/poll@0.2.12", // newer patch than the world's
        "wasi:io/poll@0.3.0",  // another track
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/store@0.2.0-draft",    // another pre-release
        "wasi:keyvalue/atomics@0.2.0-draft2", // not in the world at all
    ]
    .map(String::from)
    .to_vec();
    let refused: Vec<&str> = unsatisfied(&imports, world)
        .into_iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        refused,
        [
            "wasi:io/poll@0.2.12",
            "wasi:io/poll@0.3.0",
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:keyvalue/atomics@0.2.0-draft2",
        ]
    );
    assert!(satisfies("1.4.0", "1.2.9") && !satisfies("2.0.0", "1.0.0"));
}
