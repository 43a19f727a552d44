use super::{other, suite, Guest};
use crate::keyvalue::{Buckets, RedisOptions};
use std::collections::BTreeSet;
use test_servers::RedisCluster;

fn options() -> RedisOptions {
    RedisOptions {
        key_prefix: "t:".into(),
        scan_count: 50,
        ..RedisOptions::default()
    }
}

/// A bucket that knows the cluster through one node only: the rest is discovered.
fn buckets(seed: &str) -> Buckets {
    Buckets::builder()
        .redis_cluster("default", &[seed], &options())
        .unwrap()
        .build()
}

#[test]
fn behaves_like_every_backend() {
    let cluster = RedisCluster::start().unwrap();
    let urls = cluster.urls();
    let buckets = buckets(&urls[0]);
    suite::opening(&buckets);
    suite::single_keys(&buckets, "single");
    suite::increments(&buckets, "inc");
    suite::batches(&buckets, "batch");
    suite::compare_and_swap(&buckets, "cas");
    let (pages, repeats) = suite::list_every_key(&buckets, "list", 1000);
    println!("cluster list-keys over 1000 keys: {pages} pages, {repeats} repeated keys");
    for node in cluster.nodes() {
        let size: u64 = node.cli(&["DBSIZE"]).unwrap().trim().parse().unwrap();
        assert!(
            size > 100,
            "keys are not spread over the masters: {size} on one"
        );
    }
    suite::no_lost_updates(&buckets, "race", 8, 100);
    let costs = suite::round_trips(&buckets, "rt");
    println!("cluster round trips: {costs:?}");
    for (operation, &n) in &costs {
        // A walk starts by fetching the list of masters.
        let expected = if *operation == "list-keys (first page)" {
            2
        } else {
            1
        };
        assert_eq!(n, expected, "{operation}: {costs:?}");
    }
}

#[test]
fn a_cursor_means_the_same_to_every_client_of_the_cluster() {
    let cluster = RedisCluster::start().unwrap();
    let urls = cluster.urls();
    let (a, b) = (buckets(&urls[0]), buckets(&urls[2]));
    let mut writer = Guest::new(&a);
    let bucket = writer.open("default").unwrap();
    let written: BTreeSet<String> = (0..600).map(|i| format!("k{i}")).collect();
    let pairs: Vec<(String, Vec<u8>)> = written.iter().map(|k| (k.clone(), vec![1])).collect();
    writer.set_many(&bucket, &pairs).unwrap();

    // Alternate pages between two clients that know the cluster through different nodes.
    let (mut seen, mut cursor, mut masters) = (BTreeSet::new(), None, BTreeSet::new());
    for page in 0.. {
        assert!(page < 10_000, "list-keys does not end");
        let mut guest = Guest::new(if page % 2 == 0 { &a } else { &b });
        let bucket = guest.open("default").unwrap();
        let response = guest.list_keys(&bucket, cursor).unwrap();
        seen.extend(response.keys);
        cursor = response.cursor;
        match &cursor {
            Some(c) => {
                let (master, _) = c.split_once(':').expect("cluster cursor is master:cursor");
                masters.insert(master.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen, written);
    assert_eq!(
        masters.len(),
        3,
        "the walk visits every master: {masters:?}"
    );
}

#[test]
fn a_stopped_master_gives_typed_errors_and_its_restart_serves_again() {
    let mut cluster = RedisCluster::start().unwrap();
    let urls = cluster.urls();
    let buckets = buckets(&urls[0]);
    let mut guest = Guest::new(&buckets);
    let b = guest.open("default").unwrap();
    let pairs: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("k{i}"), vec![1])).collect();
    guest.set_many(&b, &pairs).unwrap();
    // A key kept by the master that is about to stop, and one kept elsewhere.
    let on_victim = cluster.nodes()[1].cli(&["RANDOMKEY"]).unwrap();
    let on_victim = on_victim
        .trim()
        .strip_prefix("t:")
        .expect("a key on master 1")
        .to_string();
    let elsewhere = cluster.nodes()[0].cli(&["RANDOMKEY"]).unwrap();
    let elsewhere = elsewhere
        .trim()
        .strip_prefix("t:")
        .expect("a key on master 0")
        .to_string();

    cluster.node_mut(1).unwrap().stop();
    let port = cluster.nodes()[1].port();
    let message = other(guest.get(&b, &on_victim).unwrap_err());
    assert!(message.contains("Redis cluster"), "{message}");
    other(guest.set(&b, &on_victim, b"v").unwrap_err());
    other(guest.increment(&b, &on_victim, 1).unwrap_err());
    other(guest.cas(&b, &on_victim).unwrap_err());
    other(guest.get_many(&b, &[&on_victim, &elsewhere]).unwrap_err());
    // Keys on the other masters are served until the cluster declares itself down, then
    // refused: either way the guest gets an answer or a typed error.
    match guest.get(&b, &elsewhere) {
        Ok(value) => assert_eq!(value, Some(vec![1])),
        Err(e) => {
            other(e);
        }
    }
    println!("stopped master on port {port}: {message}");

    cluster.node_mut(1).unwrap().restart().unwrap();
    cluster.wait_until_ok().unwrap();
    // The restarted master kept its slots but not its data (no persistence).
    assert_eq!(guest.get(&b, &on_victim).unwrap(), None);
    guest.set(&b, &on_victim, b"back").unwrap();
    let cas = guest.cas(&b, &on_victim).unwrap();
    guest.swap(cas, b"swapped").unwrap();
    assert_eq!(guest.get(&b, &elsewhere).unwrap(), Some(vec![1]));
    assert_eq!(
        guest.get_many(&b, &[&on_victim]).unwrap()[0]
            .as_ref()
            .map(|(_, v)| v.as_slice()),
        Some(&b"swapped"[..])
    );
}
