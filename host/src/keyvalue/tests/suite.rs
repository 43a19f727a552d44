//! What every backend must do, written once. Each check takes buckets that declare `default`
//! and a namespace for its keys, so that several checks can share one server.

use super::{other, Error, Guest, Lost};
use crate::keyvalue::{Buckets, Traffic};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::thread;

pub(crate) fn opening(buckets: &Buckets) {
    let mut guest = Guest::new(buckets);
    assert!(matches!(guest.open("nope"), Err(Error::NoSuchStore)));
    let bucket = guest.open("default").expect("open default");
    guest.close(bucket);
}

pub(crate) fn single_keys(buckets: &Buckets, ns: &str) {
    let mut guest = Guest::new(buckets);
    let b = guest.open("default").unwrap();
    let (key, empty) = (format!("{ns}/key"), format!("{ns}/empty"));

    assert_eq!(guest.get(&b, &key).unwrap(), None);
    assert!(!guest.exists(&b, &key).unwrap());
    guest.set(&b, &key, b"one").unwrap();
    assert_eq!(guest.get(&b, &key).unwrap().as_deref(), Some(&b"one"[..]));
    assert!(guest.exists(&b, &key).unwrap());
    guest.set(&b, &key, &[7u8; 64 * 1024]).unwrap();
    assert_eq!(guest.get(&b, &key).unwrap(), Some(vec![7u8; 64 * 1024]));

    // An empty value is a value, not an absence.
    guest.set(&b, &empty, b"").unwrap();
    assert_eq!(guest.get(&b, &empty).unwrap(), Some(Vec::new()));
    assert!(guest.exists(&b, &empty).unwrap());

    guest.delete(&b, &key).unwrap();
    guest.delete(&b, &key).unwrap();
    assert_eq!(guest.get(&b, &key).unwrap(), None);
    assert!(!guest.exists(&b, &key).unwrap());

    // Another instance sees the same data.
    let mut other_guest = Guest::new(buckets);
    let b2 = other_guest.open("default").unwrap();
    assert_eq!(other_guest.get(&b2, &empty).unwrap(), Some(Vec::new()));
}

pub(crate) fn increments(buckets: &Buckets, ns: &str) {
    let mut guest = Guest::new(buckets);
    let b = guest.open("default").unwrap();
    let (n, text, big) = (format!("{ns}/n"), format!("{ns}/text"), format!("{ns}/big"));

    assert_eq!(guest.increment(&b, &n, 5).unwrap(), 5);
    assert_eq!(guest.increment(&b, &n, -7).unwrap(), -2);
    assert_eq!(guest.increment(&b, &n, 0).unwrap(), -2);
    // Stored as decimal text, as Spin's Redis store keeps it.
    assert_eq!(guest.get(&b, &n).unwrap().as_deref(), Some(&b"-2"[..]));
    guest.set(&b, &n, b"40").unwrap();
    assert_eq!(guest.increment(&b, &n, 2).unwrap(), 42);

    guest.set(&b, &text, b"not a number").unwrap();
    let message = other(guest.increment(&b, &text, 1).unwrap_err());
    assert!(message.contains("not an integer"), "{message}");
    assert_eq!(
        guest.get(&b, &text).unwrap().as_deref(),
        Some(&b"not a number"[..])
    );

    guest
        .set(&b, &big, i64::MAX.to_string().as_bytes())
        .unwrap();
    let message = other(guest.increment(&b, &big, 1).unwrap_err());
    assert!(message.contains("overflow"), "{message}");
    assert_eq!(guest.increment(&b, &big, -1).unwrap(), i64::MAX - 1);
}

pub(crate) fn batches(buckets: &Buckets, ns: &str) {
    let mut guest = Guest::new(buckets);
    let b = guest.open("default").unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("{ns}/batch-{i}")).collect();
    let pairs: Vec<(String, Vec<u8>)> = keys
        .iter()
        .map(|k| (k.clone(), format!("value of {k}").into_bytes()))
        .collect();
    guest.set_many(&b, &pairs).unwrap();

    let missing = format!("{ns}/missing");
    let asked = [
        keys[0].as_str(),
        missing.as_str(),
        keys[19].as_str(),
        keys[0].as_str(),
    ];
    let got = guest.get_many(&b, &asked).unwrap();
    assert_eq!(
        got,
        vec![
            Some(pairs[0].clone()),
            None,
            Some(pairs[19].clone()),
            Some(pairs[0].clone())
        ]
    );

    let gone: Vec<&str> = keys[..10]
        .iter()
        .map(String::as_str)
        .chain([missing.as_str()])
        .collect();
    guest.delete_many(&b, &gone).unwrap();
    let all: Vec<&str> = keys.iter().map(String::as_str).collect();
    let left = guest.get_many(&b, &all).unwrap();
    assert!(left[..10].iter().all(Option::is_none));
    assert_eq!(
        left[10..],
        pairs[10..].iter().cloned().map(Some).collect::<Vec<_>>()[..]
    );

    // Empty batches are no-ops.
    assert_eq!(guest.get_many(&b, &[]).unwrap(), vec![]);
    guest.set_many(&b, &[]).unwrap();
    guest.delete_many(&b, &[]).unwrap();
}

pub(crate) fn compare_and_swap(buckets: &Buckets, ns: &str) {
    let mut guest = Guest::new(buckets);
    let b = guest.open("default").unwrap();
    let (fresh, shared, empty) = (
        format!("{ns}/fresh"),
        format!("{ns}/shared"),
        format!("{ns}/empty"),
    );

    // Create-if-absent: two handles see no value; only the first swap creates the key.
    let first = guest.cas(&b, &fresh).unwrap();
    let second = guest.cas(&b, &fresh).unwrap();
    assert_eq!(guest.current(&first).unwrap(), None);
    guest.swap(first, b"created").unwrap();
    let Err(Lost::Cas(retry, seen)) = guest.swap(second, b"also created") else {
        panic!("a second create must fail");
    };
    assert_eq!(seen.as_deref(), Some(&b"created"[..]));
    assert_eq!(
        guest.get(&b, &fresh).unwrap().as_deref(),
        Some(&b"created"[..])
    );
    guest.drop_cas(retry);

    // A race on an existing key: exactly one of two handles wins; the loser's new handle holds
    // the winner's value, and swapping with it succeeds.
    guest.set(&b, &shared, b"v1").unwrap();
    let a = guest.cas(&b, &shared).unwrap();
    let mut other_guest = Guest::new(buckets);
    let b2 = other_guest.open("default").unwrap();
    let c = other_guest.cas(&b2, &shared).unwrap();
    assert_eq!(guest.current(&a).unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(
        other_guest.current(&c).unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    guest.swap(a, b"v2 from a").unwrap();
    let Err(Lost::Cas(c2, seen)) = other_guest.swap(c, b"v2 from c") else {
        panic!("the loser of a race must get cas-failed");
    };
    assert_eq!(seen.as_deref(), Some(&b"v2 from a"[..]));
    assert_eq!(
        guest.get(&b, &shared).unwrap().as_deref(),
        Some(&b"v2 from a"[..])
    );
    other_guest.swap(c2, b"v3 from c").unwrap();
    assert_eq!(
        guest.get(&b, &shared).unwrap().as_deref(),
        Some(&b"v3 from c"[..])
    );

    // A handle that saw the key deleted fails once it exists again, and the reverse.
    let expects_absent = guest.cas(&b, &fresh).unwrap();
    guest.delete(&b, &fresh).unwrap();
    let expects_value = guest.cas(&b, &shared).unwrap();
    guest.delete(&b, &shared).unwrap();
    let Err(Lost::Cas(h, None)) = guest.swap(expects_value, b"x") else {
        panic!("a deleted key must fail a swap that expected a value");
    };
    guest.drop_cas(h);
    assert_eq!(guest.get(&b, &shared).unwrap(), None);
    guest.drop_cas(expects_absent);

    // Empty and absent are different expectations.
    guest.set(&b, &empty, b"").unwrap();
    let saw_empty = guest.cas(&b, &empty).unwrap();
    assert_eq!(guest.current(&saw_empty).unwrap(), Some(Vec::new()));
    guest.delete(&b, &empty).unwrap();
    let Err(Lost::Cas(saw_absent, None)) = guest.swap(saw_empty, b"x") else {
        panic!("an absent key must fail a swap that expected an empty value");
    };
    guest.set(&b, &empty, b"").unwrap();
    let Err(Lost::Cas(h, Some(v))) = guest.swap(saw_absent, b"x") else {
        panic!("an empty value must fail a swap that expected no value");
    };
    assert!(v.is_empty());
    guest.swap(h, b"x").unwrap();
    assert_eq!(guest.get(&b, &empty).unwrap().as_deref(), Some(&b"x"[..]));
}

/// Walks the whole bucket; returns every key listed under `ns` (with repeats) and the number
/// of pages, handing each cursor to a new guest to show that cursors outlive an instance.
pub(crate) fn walk(buckets: &Buckets, ns: &str) -> (Vec<String>, usize) {
    let mut listed = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let mut guest = Guest::new(buckets);
        let b = guest.open("default").unwrap();
        let page = guest.list_keys(&b, cursor).unwrap();
        pages += 1;
        assert!(pages < 100_000, "list-keys does not end");
        listed.extend(
            page.keys
                .into_iter()
                .filter(|k| k.starts_with(&format!("{ns}/"))),
        );
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return (listed, pages),
        }
    }
}

/// Writes `count` keys under `ns` and checks that one walk lists every one of them.
/// Returns the number of pages and of repeated keys.
pub(crate) fn list_every_key(buckets: &Buckets, ns: &str, count: usize) -> (usize, usize) {
    let mut guest = Guest::new(buckets);
    let b = guest.open("default").unwrap();
    let written: BTreeSet<String> = (0..count).map(|i| format!("{ns}/{i:05}")).collect();
    let pairs: Vec<(String, Vec<u8>)> =
        written.iter().map(|k| (k.clone(), b"v".to_vec())).collect();
    for chunk in pairs.chunks(100) {
        guest.set_many(&b, chunk).unwrap();
    }
    let (listed, pages) = walk(buckets, ns);
    let seen: BTreeSet<String> = listed.iter().cloned().collect();
    let missed: Vec<&String> = written.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "list-keys missed {} keys, e.g. {:?}",
        missed.len(),
        missed.first()
    );
    assert_eq!(
        seen, written,
        "list-keys listed keys that were never written"
    );
    assert!(
        pages > 1,
        "{count} keys fitted in one page: pagination not exercised"
    );
    (pages, listed.len() - seen.len())
}

/// The guest's commit loop, from several threads at once: read with `cas::new`, change, `swap`,
/// on `cas-failed` go again from the handle returned. No update may be lost.
pub(crate) fn no_lost_updates(buckets: &Buckets, ns: &str, threads: usize, rounds: usize) {
    let key = Arc::new(format!("{ns}/counter"));
    let tally = Arc::new(format!("{ns}/tally"));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (buckets, key, tally) = (buckets.clone(), key.clone(), tally.clone());
            thread::spawn(move || {
                let mut guest = Guest::new(&buckets);
                let b = guest.open("default").unwrap();
                let mut conflicts = 0;
                for _ in 0..rounds {
                    let mut cas = guest.cas(&b, &key).unwrap();
                    loop {
                        let seen = guest.current(&cas).unwrap();
                        let n: u64 =
                            seen.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
                        match guest.swap(cas, (n + 1).to_string().as_bytes()) {
                            Ok(()) => break,
                            Err(Lost::Cas(again, _)) => {
                                conflicts += 1;
                                cas = again;
                            }
                            Err(Lost::Store(e)) => panic!("swap failed: {e:?}"),
                        }
                    }
                    guest.increment(&b, &tally, 1).unwrap();
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let mut guest = Guest::new(buckets);
    let b = guest.open("default").unwrap();
    let total = (threads * rounds).to_string().into_bytes();
    assert_eq!(
        guest.get(&b, &key).unwrap(),
        Some(total.clone()),
        "{conflicts} conflicts"
    );
    assert_eq!(guest.get(&b, &tally).unwrap(), Some(total));
}

/// Round trips per operation, once a connection is pooled and the swap script is known to
/// the server. Returns them by operation name; a session load and its write are checked here.
pub(crate) fn round_trips(buckets: &Buckets, ns: &str) -> BTreeMap<&'static str, u64> {
    let (key, warm_key) = (format!("{ns}/session"), format!("{ns}/warm"));
    let mut warm = Guest::new(buckets);
    let b = warm.open("default").unwrap();
    let cas = warm.cas(&b, &warm_key).unwrap();
    warm.swap(cas, b"warm").unwrap();

    let mut guest = Guest::new(buckets);
    let b = guest.open("default").unwrap();
    assert_eq!(guest.traffic(), Traffic::default(), "open costs nothing");
    let mut costs = BTreeMap::new();
    let mut last = guest.traffic();
    let mut mark = |guest: &Guest, name: &'static str| {
        let now = guest.traffic();
        assert_eq!(
            now.connects, last.connects,
            "{name}: a pooled connection was expected"
        );
        costs.insert(name, now.round_trips - last.round_trips);
        last = now;
    };

    let cas = guest.cas(&b, &key).unwrap();
    assert_eq!(guest.current(&cas).unwrap(), None);
    mark(&guest, "load (cas::new + current)");
    guest.swap(cas, b"image").unwrap();
    mark(&guest, "write (swap)");
    guest.get(&b, &key).unwrap();
    mark(&guest, "get");
    guest.set(&b, &key, b"image 2").unwrap();
    mark(&guest, "set");
    guest.exists(&b, &key).unwrap();
    mark(&guest, "exists");
    guest.increment(&b, &format!("{ns}/n"), 1).unwrap();
    mark(&guest, "increment");
    let three: Vec<String> = (0..3).map(|i| format!("{ns}/b{i}")).collect();
    let pairs: Vec<(String, Vec<u8>)> = three.iter().map(|k| (k.clone(), b"v".to_vec())).collect();
    guest.set_many(&b, &pairs).unwrap();
    mark(&guest, "set-many (3 keys)");
    let three: Vec<&str> = three.iter().map(String::as_str).collect();
    guest.get_many(&b, &three).unwrap();
    mark(&guest, "get-many (3 keys)");
    guest.delete_many(&b, &three).unwrap();
    mark(&guest, "delete-many (3 keys)");
    guest.delete(&b, &key).unwrap();
    mark(&guest, "delete");
    let page = guest.list_keys(&b, None).unwrap();
    mark(&guest, "list-keys (first page)");
    if let Some(cursor) = page.cursor {
        guest.list_keys(&b, Some(cursor)).unwrap();
        mark(&guest, "list-keys (next page)");
    }

    assert_eq!(costs["load (cas::new + current)"], 1, "{costs:?}");
    assert_eq!(costs["write (swap)"], 1, "{costs:?}");
    costs
}
