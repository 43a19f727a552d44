use super::{other, suite, Guest, Lost};
use crate::keyvalue::{Buckets, RedisOptions};
use std::process::Command;
use std::time::{Duration, Instant};
use test_servers::RedisServer;

fn options(prefix: &str) -> RedisOptions {
    RedisOptions {
        key_prefix: prefix.into(),
        scan_count: 50,
        ..RedisOptions::default()
    }
}

fn buckets(server: &RedisServer, options: &RedisOptions) -> Buckets {
    Buckets::builder()
        .redis("default", &server.url(), options)
        .unwrap()
        .build()
}

#[test]
fn behaves_like_every_backend() {
    let server = RedisServer::start().unwrap();
    let buckets = buckets(&server, &options("t:"));
    suite::opening(&buckets);
    suite::single_keys(&buckets, "single");
    suite::increments(&buckets, "inc");
    suite::batches(&buckets, "batch");
    suite::compare_and_swap(&buckets, "cas");
    let (pages, repeats) = suite::list_every_key(&buckets, "list", 1000);
    println!("standalone list-keys over 1000 keys: {pages} pages, {repeats} repeated keys");
    suite::no_lost_updates(&buckets, "race", 8, 100);
    let costs = suite::round_trips(&buckets, "rt");
    println!("standalone round trips: {costs:?}");
    assert!(costs.values().all(|&n| n == 1), "{costs:?}");
}

#[test]
fn keys_carry_the_prefix_and_nothing_else_is_listed() {
    let server = RedisServer::start().unwrap();
    let prefix = "a*[b]?\\:";
    let buckets = buckets(&server, &options(prefix));
    server.cli(&["SET", "foreign", "1"]).unwrap();
    server.cli(&["SET", "a-b]?\\:look-alike", "1"]).unwrap();
    let mut guest = Guest::new(&buckets);
    let b = guest.open("default").unwrap();
    guest.set(&b, "k", b"v").unwrap();
    assert_eq!(
        server.cli(&["GET", &format!("{prefix}k")]).unwrap().trim(),
        "v"
    );
    let page = guest.list_keys(&b, None).unwrap();
    assert_eq!((page.keys, page.cursor), (vec!["k".to_string()], None));

    // Counters are plain decimal strings, shared with anything else that uses INCRBY.
    server.cli(&["SET", &format!("{prefix}n"), "41"]).unwrap();
    assert_eq!(guest.increment(&b, "n", 1).unwrap(), 42);
    assert_eq!(
        server
            .cli(&["INCRBY", &format!("{prefix}n"), "1"])
            .unwrap()
            .trim(),
        "43"
    );

    // A cursor this bucket never returned is an error, not a trap or an empty page.
    let message = other(
        guest
            .list_keys(&b, Some("not-a-cursor".into()))
            .unwrap_err(),
    );
    assert!(message.contains("cursor"), "{message}");

    // A key of another type is an error too.
    server
        .cli(&["HSET", &format!("{prefix}h"), "f", "v"])
        .unwrap();
    let message = other(guest.get(&b, "h").unwrap_err());
    assert!(message.contains("WRONGTYPE"), "{message}");
}

#[test]
fn a_forgotten_script_costs_one_more_round_trip() {
    let server = RedisServer::start().unwrap();
    let buckets = buckets(&server, &options(""));
    let mut guest = Guest::new(&buckets);
    let b = guest.open("default").unwrap();
    let swap_cost = |guest: &mut Guest, value: &[u8]| {
        let cas = guest.cas(&b, "k").unwrap();
        let before = guest.traffic().round_trips;
        guest.swap(cas, value).unwrap();
        guest.traffic().round_trips - before
    };
    assert_eq!(
        swap_cost(&mut guest, b"1"),
        2,
        "EVALSHA, NOSCRIPT, then EVAL"
    );
    assert_eq!(swap_cost(&mut guest, b"2"), 1);
    server.cli(&["SCRIPT", "FLUSH"]).unwrap();
    assert_eq!(swap_cost(&mut guest, b"3"), 2);
    assert_eq!(guest.get(&b, "k").unwrap().as_deref(), Some(&b"3"[..]));
}

/// Every operation, each expected to fail with `error::other` naming the server.
fn everything_fails(
    guest: &mut Guest,
    b: &wasmtime::component::Resource<crate::keyvalue::interfaces::Bucket>,
    port: u16,
) {
    let named = |message: String| {
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    };
    named(other(guest.get(b, "k").unwrap_err()));
    named(other(guest.set(b, "k", b"v").unwrap_err()));
    named(other(guest.delete(b, "k").unwrap_err()));
    named(other(guest.exists(b, "k").unwrap_err()));
    named(other(guest.list_keys(b, None).unwrap_err()));
    named(other(guest.increment(b, "n", 1).unwrap_err()));
    named(other(guest.cas(b, "k").unwrap_err()));
    named(other(guest.get_many(b, &["k", "l"]).unwrap_err()));
    named(other(
        guest
            .set_many(b, &[("k".into(), b"v".to_vec())])
            .unwrap_err(),
    ));
    named(other(guest.delete_many(b, &["k"]).unwrap_err()));
}

#[test]
fn a_stopped_server_gives_typed_errors_and_a_restarted_one_serves_again() {
    let mut server = RedisServer::start().unwrap();
    let buckets = buckets(&server, &options("t:"));
    let mut guest = Guest::new(&buckets);
    let b = guest.open("default").unwrap();
    guest.set(&b, "k", b"before").unwrap();
    let held = guest.cas(&b, "k").unwrap();

    server.stop();
    everything_fails(&mut guest, &b, server.port());
    let Err(Lost::Store(e)) = guest.swap(held, b"during") else {
        panic!("a swap against a stopped server must be a store error");
    };
    let message = other(e);
    assert!(message.contains("cannot connect"), "{message}");

    // Back on the same port (empty: no persistence): everything works, at the first attempt.
    server.restart().unwrap();
    assert_eq!(guest.get(&b, "k").unwrap(), None);
    guest.set(&b, "k", b"after").unwrap();
    let cas = guest.cas(&b, "k").unwrap();
    guest.swap(cas, b"swapped").unwrap();
    assert_eq!(guest.increment(&b, "n", 2).unwrap(), 2);
    assert_eq!(guest.list_keys(&b, None).unwrap().keys.len(), 2);

    // A restart between two requests leaves dead connections in the pool. A read finds out,
    // drops them all and is sent again on a new connection: the guest sees nothing.
    server.restart().unwrap();
    let before = guest.traffic();
    assert_eq!(guest.get(&b, "k").unwrap(), None);
    let after = guest.traffic();
    assert_eq!(
        (
            after.round_trips - before.round_trips,
            after.connects - before.connects
        ),
        (2, 1),
        "the read is sent twice, the second time on a new connection"
    );
    guest.set(&b, "k", b"again").unwrap();
    let cas = guest.cas(&b, "k").unwrap();
    guest.swap(cas, b"swapped again").unwrap();

    // A write that finds out is reported, not sent twice (its outcome is unknown in general);
    // the next request connects anew.
    server.restart().unwrap();
    match guest.increment(&b, "n", 1) {
        Ok(n) => assert_eq!(n, 1),
        Err(e) => {
            let message = other(e);
            assert!(message.contains("connection lost"), "{message}");
            println!("write on a connection from before the restart: {message}");
        }
    }
    guest.set(&b, "k", b"fine").unwrap();
    assert_eq!(guest.get(&b, "k").unwrap().as_deref(), Some(&b"fine"[..]));
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn a_server_that_does_not_answer_is_given_up_on_in_bounded_time() {
    let server = RedisServer::start().unwrap();
    let timeout = Duration::from_millis(300);
    let buckets = buckets(
        &server,
        &RedisOptions {
            connect_timeout: timeout,
            response_timeout: timeout,
            ..options("")
        },
    );
    let mut guest = Guest::new(&buckets);
    let b = guest.open("default").unwrap();
    guest.set(&b, "k", b"v").unwrap();

    signal(server.pid().unwrap(), "-STOP");
    let started = Instant::now();
    let on_pooled = other(guest.get(&b, "k").unwrap_err());
    let on_new = other(guest.get(&b, "k").unwrap_err());
    let write = other(guest.set(&b, "k", b"w").unwrap_err());
    let waited = started.elapsed();
    signal(server.pid().unwrap(), "-CONT");

    for message in [&on_pooled, &on_new, &write] {
        assert!(message.contains("no answer in time"), "{message}");
    }
    // Three requests, each given up on after about one timeout (a generous bound: this is a
    // check that nothing waits without limit, not a measurement).
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    assert!(guest.get(&b, "k").unwrap().is_some());
}
