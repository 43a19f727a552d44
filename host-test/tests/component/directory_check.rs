//! The directory self-check through the component (`config.check-directory`,
//! `admin.check-directory`) on a local directory, and the settings
//! `shared-directory` refuses. Distributed filesystems, where checks fail:
//! `tests/shared_dir.rs` and `sessions-admin`'s tests.

use host_test::fixtures::Env;
use sqlite_sessions_host::{
    default_config, Config, DirectoryCheck, Durability, Error, RequestOptions, StorageKind,
};

#[test]
fn a_local_directory_passes_every_check_and_keeps_nothing_of_it() {
    let env = Env::with_config(Config {
        check_directory: Some(true),
        ..default_config()
    });
    let id = env.session_with("k", "1");
    let before = host_test::fixtures::tree(env.path());
    let (mut req, store) = env.request();
    let report = req.admin(&store).check_directory().unwrap().unwrap();
    let checks: Vec<DirectoryCheck> = report.iter().map(|r| r.check).collect();
    assert_eq!(
        checks,
        [
            DirectoryCheck::ExclusiveCreate,
            DirectoryCheck::ReplacedIdentity,
            DirectoryCheck::ReplacedLinkCount,
            DirectoryCheck::RenamedInWhole,
            DirectoryCheck::ExactMtime,
            DirectoryCheck::Listing,
        ]
    );
    assert!(report.iter().all(|r| r.passed), "{report:?}");
    req.drop_store(store).unwrap();
    // Nothing of the probes stays; the session is untouched.
    assert_eq!(host_test::fixtures::tree(env.path()), before);
    assert_eq!(env.get_json(&id, "k"), Some("1".into()));
}

#[test]
fn the_check_needs_a_writable_directory() {
    let env = Env::new();
    let read_only = RequestOptions {
        read_only: true,
        ..RequestOptions::default()
    };
    let mut req = host_test::runtime()
        .request_with(env.path(), read_only.clone())
        .unwrap();
    let store = req.open_store(&default_config()).unwrap().unwrap();
    match req.admin(&store).check_directory().unwrap() {
        Err(Error::Storage(f)) if f.kind == StorageKind::ReadOnly => {
            assert!(
                f.message.contains("self-check could not run"),
                "{}",
                f.message
            )
        }
        other => panic!("expected storage read-only, got {other:?}"),
    }
    let mut req = host_test::runtime()
        .request_with(env.path(), read_only)
        .unwrap();
    let checked = Config {
        check_directory: Some(true),
        ..default_config()
    };
    assert!(matches!(
        req.open_store(&checked).unwrap(),
        Err(Error::Storage(f)) if f.kind == StorageKind::ReadOnly
    ));
}

#[test]
fn a_shared_directory_refuses_durability_process_crash() {
    let env = Env::new();
    let mut req = host_test::runtime().request(env.path()).unwrap();
    let config = Config {
        shared_directory: Some(true),
        durability: Some(Durability::ProcessCrash),
        ..default_config()
    };
    match req.open_store(&config).unwrap() {
        Err(Error::Config(m)) => assert!(m.contains("power-loss"), "{m}"),
        other => panic!("expected config, got {:?}", other.map(|_| ())),
    }
    let one_host = Config {
        shared_directory: Some(false),
        ..config
    };
    assert!(req.open_store(&one_host).unwrap().is_ok());
}
