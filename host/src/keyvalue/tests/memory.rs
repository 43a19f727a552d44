use super::{suite, Guest};
use crate::keyvalue::Buckets;

fn buckets() -> Buckets {
    Buckets::builder()
        .memory("default")
        .memory("second")
        .build()
}

#[test]
fn opening() {
    suite::opening(&buckets());
}

#[test]
fn single_keys() {
    suite::single_keys(&buckets(), "single");
}

#[test]
fn increments() {
    suite::increments(&buckets(), "inc");
}

#[test]
fn batches() {
    suite::batches(&buckets(), "batch");
}

#[test]
fn compare_and_swap() {
    suite::compare_and_swap(&buckets(), "cas");
}

#[test]
fn list_keys_visits_every_key_once() {
    let (pages, repeats) = suite::list_every_key(&buckets(), "list", 1000);
    assert_eq!((pages, repeats), (10, 0));
}

#[test]
fn no_lost_updates() {
    suite::no_lost_updates(&buckets(), "race", 4, 200);
}

#[test]
fn every_operation_is_one_round_trip() {
    let costs = suite::round_trips(&buckets(), "rt");
    assert!(costs.values().all(|&n| n == 1), "{costs:?}");
}

#[test]
fn buckets_are_separate() {
    let buckets = buckets();
    let mut guest = Guest::new(&buckets);
    let (a, b) = (
        guest.open("default").unwrap(),
        guest.open("second").unwrap(),
    );
    guest.set(&a, "k", b"in default").unwrap();
    assert_eq!(guest.get(&b, "k").unwrap(), None);
    let mut identifiers: Vec<&str> = buckets.identifiers().collect();
    identifiers.sort();
    assert_eq!(identifiers, ["default", "second"]);
}
