//! The embedding end to end: a value written in one request is read back,
//! by session id, in a fresh instance.

use sqlite_sessions_host::default_config;

#[test]
fn set_json_then_load_in_a_fresh_request() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = host_test::runtime();

    let id = {
        let mut req = runtime.request(dir.path())?;
        let store = req.open_store(&default_config())??;
        let session = req.store(&store).create()?;
        req.session(&session).set_json("a", "1")??;
        let id = req.session(&session).id()?;
        req.drop_session(session)?;
        req.drop_store(store)?;
        id
    };

    let mut req = runtime.request(dir.path())?;
    let store = req.open_store(&default_config())??;
    let session = req
        .store(&store)
        .load(&id)??
        .expect("the session written by the first request");
    assert_eq!(req.session(&session).get_json("a")??.as_deref(), Some("1"));
    assert!(!req.session(&session).is_new()?);
    req.drop_session(session)?;
    req.drop_store(store)?;
    Ok(())
}
