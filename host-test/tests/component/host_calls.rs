//! The host-call counter (`Request::host_calls`): it counts, it is
//! deterministic, and it tells operations apart. The filesystem-call budget
//! of the session cycle (at most 13) is asserted as upper bounds per step, so
//! a change that adds calls fails here; `bench` prints the exact figures. Run
//! with `--nocapture` to see them.

use sqlite_sessions_host::{
    default_config, Config, FakeClock, HostCallCounts, Request, RequestOptions, Runtime,
    RuntimeOptions,
};
use std::path::Path;

/// A fixed wall clock: a real one could cross `activity-granularity-seconds`
/// between two runs, and the load that did would write, making more calls.
fn options(clock: &FakeClock) -> RequestOptions {
    RequestOptions {
        wall_clock: Some(clock.clone()),
        ..RequestOptions::default()
    }
}

/// Creates a session holding `user` and `counter` and returns its id.
fn seed(runtime: &Runtime, dir: &Path, clock: &FakeClock) -> anyhow::Result<String> {
    let entries = [
        ("user", r#"{"name":"ada","roles":["admin"]}"#),
        ("counter", "1"),
    ];
    runtime.create_session(dir, options(clock), &default_config(), &entries)
}

/// Host calls of one request cycle, whole and per step.
#[derive(Debug, PartialEq, Eq)]
struct Cycle {
    instantiate: HostCallCounts,
    open: HostCallCounts,
    load: HostCallCounts,
    get: HostCallCounts,
    set: HostCallCounts,
    drop: HostCallCounts,
    /// open + load + get + set, counted in one go (no reset in between).
    open_load_get_set: HostCallCounts,
    whole: HostCallCounts,
    /// `memory.grow`s during the cycle: none, the initial memory is sized
    /// for it (`.cargo/config.toml`), and each grow costs the host.
    grows: u32,
}

/// One cycle: fresh instance, open, load `id`, get `user`, set `counter` to
/// the value it already has (so every run sees the same files), drop.
fn cycle(runtime: &Runtime, dir: &Path, clock: &FakeClock, id: &str) -> Cycle {
    cycle_with(runtime, dir, clock, id, &default_config())
}

/// [`cycle`] with the store opened with `config`.
fn cycle_with(
    runtime: &Runtime,
    dir: &Path,
    clock: &FakeClock,
    id: &str,
    config: &Config,
) -> Cycle {
    let mut req: Request = runtime.request_with(dir, options(clock)).unwrap();
    let instantiate = req.host_calls();
    let step = |req: &mut Request, before: &HostCallCounts| req.host_calls().since(before);

    let t0 = req.host_calls();
    let store = req.open_store(config).unwrap().unwrap();
    let open = step(&mut req, &t0);
    let t1 = req.host_calls();
    let s = req.store(&store).load(id).unwrap().unwrap().unwrap();
    let load = step(&mut req, &t1);
    let t2 = req.host_calls();
    assert!(req.session(&s).get("user").unwrap().unwrap().is_some());
    let get = step(&mut req, &t2);
    let t3 = req.host_calls();
    req.session(&s).set_json("counter", "1").unwrap().unwrap();
    let set = step(&mut req, &t3);
    let open_load_get_set = req.host_calls().since(&t0);
    let t4 = req.host_calls();
    req.drop_session(s).unwrap();
    req.drop_store(store).unwrap();
    let drop = step(&mut req, &t4);
    let whole = req.host_calls();
    let grows = req.memory_stats().grows;
    Cycle {
        instantiate,
        open,
        load,
        get,
        set,
        drop,
        open_load_get_set,
        whole,
        grows,
    }
}

/// `shared-directory` costs a writer exactly one call: the exclusive create
/// of the session file's name that makes the host look it up afresh (and
/// fails, since the file exists). Reads cost what they cost without it.
#[test]
fn a_shared_directory_adds_one_call_to_each_write_and_none_to_reads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = host_test::runtime();
    let clock = FakeClock::default();
    let id = seed(runtime, dir.path(), &clock)?;
    let shared = Config {
        shared_directory: Some(true),
        ..default_config()
    };
    let one_host = cycle(runtime, dir.path(), &clock, &id);
    let several = cycle_with(runtime, dir.path(), &clock, &id, &shared);
    println!("set, one host:          {}", one_host.set);
    println!("set, shared directory:  {}", several.set);
    assert_eq!(several.load, one_host.load);
    assert_eq!(several.get, one_host.get);
    assert_eq!(
        several.set.filesystem(),
        one_host.set.filesystem() + 1,
        "{} against {}",
        several.set,
        one_host.set
    );
    assert_eq!(
        several.set.get("descriptor.open-at"),
        one_host.set.get("descriptor.open-at") + 1
    );
    // The probe created nothing: the session file is as the set left it.
    assert_eq!(
        host_test::fixtures::integrity(&host_test::fixtures::session_path(dir.path(), &id)),
        "ok"
    );
    Ok(())
}

#[test]
fn counts_are_positive_deterministic_and_tell_operations_apart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = host_test::runtime();
    assert!(runtime.counts_host_calls(), "counting is on by default");
    let clock = FakeClock::default();
    let id = seed(runtime, dir.path(), &clock)?;

    let first = cycle(runtime, dir.path(), &clock, &id);
    let second = cycle(runtime, dir.path(), &clock, &id);

    println!("instantiate:            {}", first.instantiate);
    println!("open store:             {}", first.open);
    println!("load (existing):        {}", first.load);
    println!("get:                    {}", first.get);
    println!("set:                    {}", first.set);
    println!("drop session + store:   {}", first.drop);
    println!("open+load+get+set:      {}", first.open_load_get_set);
    println!("whole cycle:            {}", first.whole);

    let olgs = &first.open_load_get_set;
    assert!(olgs.total > 0, "open + load + get + set made no host calls");
    assert!(olgs.filesystem() > 0, "no wasi:filesystem calls: {olgs}");
    assert_eq!(
        olgs.total,
        olgs.by_function.values().sum::<u64>(),
        "total is the sum of the breakdown"
    );
    assert_eq!(
        olgs.total,
        first.open.total + first.load.total + first.get.total + first.set.total,
        "the steps add up to the whole"
    );
    for name in olgs.by_function.keys() {
        assert!(
            HostCallCounts::interface_of(name).is_some(),
            "{name} has no interface"
        );
    }

    assert_eq!(first, second, "two identical cycles made different calls");

    assert!(
        first.get.total < first.load.total,
        "get on an open session ({}) should make fewer host calls than load ({})",
        first.get,
        first.load
    );

    // The budget, step by step (see `src/vfs/mod.rs` for why each call is
    // there): open = get-directories; load = open + read; get = the loaded
    // file's identity and the name's (`metadata-hash`, `metadata-hash-at`);
    // set = lock-file create, the name's identity (the file's is known by
    // then), write, sync, rename, set-times on the published file, drop of
    // the replaced file; drop = the descriptor.
    let budget = [
        ("open store", &first.open, 1),
        ("load", &first.load, 2),
        ("get", &first.get, 2),
        ("set", &first.set, 7),
        ("drop", &first.drop, 1),
    ];
    for (step, counts, max) in budget {
        assert!(
            counts.filesystem() <= max,
            "{step}: {} filesystem calls, budget {max}: {counts}",
            counts.filesystem()
        );
    }
    assert_eq!(first.grows, 0, "the cycle grew the instance's memory");
    assert!(
        first.whole.filesystem() <= 13,
        "cycle: {} filesystem calls, budget 13: {}",
        first.whole.filesystem(),
        first.whole
    );
    // A replaced file is told by identity (never by its link count, which a
    // trash keeps up), and the file's identity is asked once per version.
    assert_eq!(
        first.get.get("descriptor.metadata-hash"),
        1,
        "{}",
        first.get
    );
    assert_eq!(
        first.get.get("descriptor.metadata-hash-at"),
        1,
        "{}",
        first.get
    );
    assert_eq!(
        first.set.get("descriptor.metadata-hash"),
        0,
        "{}",
        first.set
    );
    assert_eq!(
        first.set.get("descriptor.metadata-hash-at"),
        1,
        "{}",
        first.set
    );
    for step in [&first.get, &first.set] {
        assert_eq!(step.get("descriptor.stat"), 0, "{step}");
    }
    // SQLite's rollback journal lives in its own memory (journal_mode
    // MEMORY), so no journal header asks for a random nonce.
    assert_eq!(first.whole.random(), 0, "{}", first.whole);
    // Reads take no lock: nothing but the set creates or renames anything.
    for (step, counts) in [("load", &first.load), ("get", &first.get)] {
        for f in [
            "descriptor.open-at",
            "descriptor.rename-at",
            "descriptor.write",
        ] {
            let n = counts.get(f);
            let allowed = u64::from(step == "load" && f == "descriptor.open-at");
            assert!(n <= allowed, "{step} called {f} {n} times: {counts}");
        }
    }
    Ok(())
}

#[test]
fn reset_clears_and_counting_restarts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = host_test::runtime();
    let clock = FakeClock::default();
    let id = seed(runtime, dir.path(), &clock)?;

    let mut req = runtime.request_with(dir.path(), options(&clock))?;
    let store = req.open_store(&default_config())??;
    let s = req.store(&store).load(&id)??.expect("seeded session");
    assert!(req.host_calls().total > 0);

    req.reset_host_calls();
    assert_eq!(req.host_calls(), HostCallCounts::default());

    // A call that never leaves the guest makes no host calls.
    req.session(&s).id()?;
    assert_eq!(req.host_calls().total, 0, "{}", req.host_calls());

    req.session(&s).get("user")??;
    let after_get = req.host_calls();
    assert!(after_get.total > 0);
    req.session(&s).get("user")??;
    // SQLite may keep its page cache across transactions when the file did
    // not change, so the second get can be cheaper, but never dearer.
    let second_get = req.host_calls().since(&after_get);
    println!("first get:  {after_get}\nsecond get: {second_get}");
    assert!(second_get.total > 0);
    assert!(
        second_get.total <= after_get.total,
        "a second identical get made more calls: {second_get} vs {after_get}"
    );

    let mem = req.memory_stats();
    println!("memory after open+load+2 gets: {mem:?}");
    assert!(mem.memories_created >= 1, "{mem:?}");
    assert!(mem.peak_bytes >= 64 << 10, "{mem:?}");
    assert_eq!(req.peak_memory_bytes(), mem.peak_bytes);

    req.drop_session(s)?;
    req.drop_store(store)?;
    Ok(())
}

#[test]
fn counting_off_links_stock_wasi_and_reads_zero() -> anyhow::Result<()> {
    let runtime = host_test::runtime_with(RuntimeOptions {
        count_host_calls: false,
        max_instances: 4,
        ..host_test::runtime_options()
    });
    assert!(!runtime.counts_host_calls());
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::default();
    let id = seed(&runtime, dir.path(), &clock)?;

    let mut req = runtime.request_with(dir.path(), options(&clock))?;
    let store = req.open_store(&default_config())??;
    let s = req.store(&store).load(&id)??.expect("seeded session");
    assert!(req.session(&s).get("user")??.is_some());
    assert_eq!(req.host_calls(), HostCallCounts::default());
    assert!(req.peak_memory_bytes() > 0, "the limiter works either way");
    req.drop_session(s)?;
    req.drop_store(store)?;
    Ok(())
}

#[test]
fn trace_lists_the_counted_calls_in_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = host_test::runtime();
    let clock = FakeClock::default();
    let id = seed(runtime, dir.path(), &clock)?;

    let mut req = runtime.request_with(dir.path(), options(&clock))?;
    req.trace_host_calls(true);
    let store = req.open_store(&default_config())??;
    let s = req.store(&store).load(&id)??.expect("seeded session");
    req.session(&s).get("user")??;
    let counts = req.host_calls();
    let trace = req.take_host_call_trace();
    for event in &trace {
        println!("{event}");
    }
    assert_eq!(
        trace.len() as u64,
        counts.total,
        "one event per counted call"
    );
    assert_eq!(trace[0].function, "get-directories", "{}", trace[0]);
    assert!(
        trace
            .iter()
            .any(|e| e.function == "descriptor.open-at" && e.args.iter().any(|a| a.contains(".db"))),
        "the session file is opened by name"
    );

    // Stopping keeps counting but records nothing more.
    req.trace_host_calls(false);
    req.session(&s).get("user")??;
    assert!(req.take_host_call_trace().is_empty());
    assert!(req.host_calls().total > counts.total);
    req.drop_session(s)?;
    req.drop_store(store)?;
    Ok(())
}

#[test]
fn taking_or_removing_an_absent_key_is_a_read() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = host_test::runtime();
    let clock = FakeClock::default();
    let id = seed(runtime, dir.path(), &clock)?;
    let file = host_test::fixtures::session_path(dir.path(), &id);
    let published = || {
        let meta = std::fs::metadata(&file).unwrap();
        (
            std::os::unix::fs::MetadataExt::ino(&meta),
            meta.modified().unwrap(),
        )
    };
    let before = published();

    let mut req = runtime.request_with(dir.path(), options(&clock))?;
    let store = req.open_store(&default_config())??;
    let s = req.store(&store).load(&id)??.expect("seeded session");
    let t0 = req.host_calls();
    assert_eq!(req.session(&s).take("absent")??, None);
    assert_eq!(req.session(&s).take_json("absent")??, None);
    assert!(!req.session(&s).remove("absent")??);
    let absent = req.host_calls().since(&t0);
    println!("take + take-json + remove of an absent key: {absent}");
    for f in [
        "descriptor.open-at",
        "descriptor.write",
        "descriptor.rename-at",
    ] {
        assert_eq!(absent.get(f), 0, "{f}: {absent}");
    }
    assert_eq!(published(), before, "nothing was published");

    // A key that is there is still taken, and that is a write.
    let t1 = req.host_calls();
    assert!(req.session(&s).take_json("user")??.is_some());
    let present = req.host_calls().since(&t1);
    assert_eq!(present.get("descriptor.rename-at"), 1, "{present}");
    assert_ne!(published(), before);
    assert_eq!(req.session(&s).get("user")??, None);
    req.drop_session(s)?;
    req.drop_store(store)?;
    Ok(())
}
