//! Hostile session ids: path traversal, odd encodings, and what the session
//! directory reveals to whoever can list it.

use host_test::fixtures::{finish, Env};
use sqlite_sessions_host::{default_config, Error, StorageKind};

fn hostile_ids() -> Vec<String> {
    let good = "3f2b8c1e-9a4d-4b6f-8e2a-1c3d5e7f9a0b";
    vec![
        "../x".into(),
        "../../../../../../etc/passwd".into(),
        "..".into(),
        "/etc/passwd".into(),
        "/sessions/../escape".into(),
        "a/b".into(),
        "a\\..\\b".into(),
        format!("{good}\0"),
        format!("{}\0{}", &good[..18], &good[19..]),
        "\0".into(),
        "x".repeat(100_000),
        "é".repeat(18),
        "日本語のセッション識別子".into(),
        "%2e%2e%2fx".into(),
        good.to_uppercase(),
        format!("{{{good}}}"),
        good.replace('-', ""),
        format!("{good}.db"),
        format!(" {good}"),
        String::new(),
    ]
}

#[test]
fn traversal_ids_are_unknown_and_touch_nothing_outside() {
    let outer = tempfile::tempdir().unwrap();
    let sessions = outer.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    let canary = outer.path().join("x");
    let env = Env::in_dir(
        tempfile::TempDir::new_in(&sessions).unwrap(),
        default_config(),
    );
    let (mut req, store) = env.request();
    for id in hostile_ids() {
        assert!(
            req.store(&store).load(&id).unwrap().unwrap().is_none(),
            "{id:?} loaded"
        );
        assert_eq!(
            req.store(&store).destroy_id(&id).unwrap(),
            Err(Error::InvalidId),
            "{id:?}"
        );
        // The convenience path issues a fresh, well-formed id instead.
        let s = req
            .store(&store)
            .load_or_create(Some(&id))
            .unwrap()
            .unwrap();
        let issued = req.session(&s).id().unwrap();
        assert_ne!(issued, id);
        assert_eq!(issued.len(), 36);
        req.session(&s).set_json("k", "1").unwrap().unwrap();
        req.session(&s).destroy().unwrap().unwrap();
        req.drop_session(s).unwrap();
    }
    req.drop_store(store).unwrap();
    assert!(!canary.exists());
    assert!(env.files().is_empty(), "{:?}", env.files());
    // Nothing appeared anywhere outside the session directory either.
    let outside: Vec<_> = host_test::fixtures::walk(outer.path())
        .into_iter()
        .filter(|p| !p.starts_with(env.path()))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn file_names_never_reveal_an_id() {
    let env = Env::new();
    let ids: Vec<String> = (0..20)
        .map(|i| env.session_with("k", &i.to_string()))
        .collect();
    let files = env.session_files();
    assert_eq!(files.len(), 20);
    let listing: String = env
        .files()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    for id in &ids {
        let simple = id.replace('-', "");
        for fragment in id.split('-').chain([simple.as_str()]) {
            if fragment.len() >= 8 {
                assert!(
                    !listing.contains(fragment),
                    "{fragment} of {id} appears in\n{listing}"
                );
            }
        }
    }
    // Sharded: `<2 hex>/<64 hex>.db`, the shard being the name's first two digits.
    for f in &files {
        let shard = f.parent().unwrap().to_str().unwrap();
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(shard.len(), 2);
        assert!(name.starts_with(shard) && name.len() == 64 + 3, "{f:?}");
    }
}

#[test]
fn a_file_name_secret_changes_every_file_name() {
    let plain = Env::new();
    let mut config = default_config();
    config.file_name_secret = Some(b"server secret".to_vec());
    let keyed = Env::with_config(config.clone());
    let id = keyed.session_with("k", "1");
    // Same id, but the keyed store cannot be read without the secret.
    assert!(plain.load(&id).is_none());
    assert_eq!(keyed.get_json(&id, "k").as_deref(), Some("1"));
    let (mut req, store) = {
        let mut req = host_test::runtime().request(keyed.path()).unwrap();
        let store = req.open_store(&default_config()).unwrap().unwrap();
        (req, store)
    };
    assert!(req.store(&store).load(&id).unwrap().unwrap().is_none());
    req.drop_store(store).unwrap();
}

#[test]
fn a_foreign_file_at_a_session_path_is_a_storage_error_not_a_trap() {
    let env = Env::new();
    let id = env.session_with("k", "1");
    let file = env.path().join(&env.session_files()[0]);
    std::fs::write(&file, b"this is not a database, just some bytes ........").unwrap();
    let (mut req, store) = env.request();
    let got = req.store(&store).load(&id).unwrap();
    assert!(
        matches!(&got, Err(Error::Storage(f)) if f.kind == StorageKind::Corrupt),
        "{got:?}"
    );
    // The store stays usable for other sessions.
    let s = req.store(&store).create().unwrap();
    req.session(&s).set_json("k", "2").unwrap().unwrap();
    finish(req, store, s);
}
