//! Bounded-time fuzzing of the parsers that face untrusted input: session
//! ids, cookie headers and signatures, CBOR values, and `set-in` paths.
//!
//! A small mutation fuzzer (seeded, so a failure replays): each target starts
//! from valid inputs, mutates them (flip, insert, delete, splice, truncate,
//! repeat) and checks that the code under test never panics and that what it
//! accepts is consistent. It runs natively, where millions of executions take
//! seconds; the component runs the same code (the hostile-input tests drive
//! it through wasmtime).
//!
//! CI runs `SQLITE_SESSIONS_FUZZ_SECS` seconds per target (default 4).
//! `SQLITE_SESSIONS_FUZZ_SECS=120 cargo test --release -p sqlite-sessions --test native fuzz -- --nocapture`
//! is the long run reported in the README.

use sqlite_sessions::codec;
use sqlite_sessions::layout::SessionFile;
use sqlite_sessions::nested;
use sqlite_sessions::Segment;
use sqlite_sessions::SessionId;
use sqlite_sessions::Signer;
use sqlite_sessions::StoreConfig;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        const INTERESTING: &[u8] =
            b"\x00\xff\x7f\x80./%-_=;,\" \\\x1f\x18\x19\x1a\x1b\x9f\xbf\xf7\xf9\xfa\xfb";
        if self.below(2) == 0 {
            INTERESTING[self.below(INTERESTING.len())]
        } else {
            self.next() as u8
        }
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(input.len() + 1);
                input.insert(i, rng.byte());
            }
            2 if !input.is_empty() => {
                let i = rng.below(input.len());
                input.remove(i);
            }
            3 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.byte();
            }
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                let at = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                input.splice(at..at, other[from..to].iter().copied());
            }
            5 if !input.is_empty() => input.truncate(rng.below(input.len())),
            6 if !input.is_empty() && input.len() < 4096 => {
                let from = rng.below(input.len());
                let chunk = input[from..].to_vec();
                input.extend_from_slice(&chunk);
            }
            _ => input.push(rng.byte()),
        }
    }
}

/// Runs `check` on mutated inputs for the configured time; returns the count.
fn fuzz(name: &str, seed: u64, corpus: Vec<Vec<u8>>, mut check: impl FnMut(&[u8])) -> u64 {
    let secs: u64 = std::env::var("SQLITE_SESSIONS_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut rng = Rng(seed);
    let mut execs = 0u64;
    let mut input = Vec::new();
    while Instant::now() < deadline {
        for _ in 0..1000 {
            if rng.below(8) == 0 || input.len() > 8192 {
                input = corpus[rng.below(corpus.len())].clone();
            }
            mutate(&mut rng, &mut input, &corpus);
            if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
                panic!("{name}: crash on input {:02x?}", input);
            }
            execs += 1;
        }
    }
    println!("fuzz {name}: {execs} executions in {secs} s, 0 crashes");
    execs
}

#[test]
fn session_ids_never_panic_and_only_canonical_ones_parse() {
    let corpus: Vec<Vec<u8>> = (0..8)
        .map(|_| SessionId::generate().as_string().into_bytes())
        .chain([b"../../etc/passwd".to_vec(), b"".to_vec()])
        .collect();
    fuzz("session id", 1, corpus, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        if let Ok(id) = SessionId::parse(text) {
            assert_eq!(id.as_string(), text, "only the canonical form parses");
            let file = SessionFile::for_id(&id, None);
            assert!(SessionFile::is_session_file_name(&file.shard, &file.name));
            assert!(!file.name.contains(text));
        }
    });
}

#[test]
fn cookie_headers_and_signatures_never_panic_and_tampering_fails() {
    let keys = vec![vec![7u8; 32], vec![9u8; 40]];
    let signer = Signer::new(keys).unwrap();
    let cookies = StoreConfig::new("/sessions").cookie;
    let signed: Vec<Vec<u8>> = (0..6)
        .map(|_| signer.cookie_value(&SessionId::generate()).into_bytes())
        .collect();
    let mut corpus = signed.clone();
    for value in &signed {
        let v = String::from_utf8(value.clone()).unwrap();
        corpus.push(format!("a=b; {}={v}; c=\"d\"", cookies.name).into_bytes());
    }
    fuzz("cookie header + signature", 2, corpus, |input| {
        let text = String::from_utf8_lossy(input);
        let _ = cookies.value_from_header(&text);
        if let Some(id) = signer.verify(&text) {
            // Accepted: it must be exactly what the signer issues for that id
            // (under one of the keys), never a variant of it.
            let (_, key) = signer.verify_with_key(&text).unwrap();
            let reissued = Signer::new(vec![if key == 0 {
                vec![7u8; 32]
            } else {
                vec![9u8; 40]
            }])
            .unwrap()
            .cookie_value(&id);
            assert_eq!(reissued, text, "a tampered cookie verified");
        }
    });
}

#[test]
fn cbor_validation_never_panics_and_accepted_values_round_trip() {
    let samples = [
        r#"{"user": {"name": "ada", "roles": ["admin", 1, 2.5, null, true]}}"#,
        r#"[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]"#,
        r#""text""#,
        r#"-18446744073709551616"#,
        r#"{"a": {"b": {"c": [1, {"d": 2}]}}}"#,
    ];
    let corpus: Vec<Vec<u8>> = samples
        .iter()
        .map(|j| codec::json_to_cbor(j).unwrap())
        .chain([
            vec![0xd8, 0x20, 0x63, 0x61, 0x62, 0x63],
            vec![0xbf, 0x61, 0x61, 0x01, 0xff],
        ])
        .collect();
    fuzz("cbor value", 3, corpus, |input| {
        if codec::validate(input).is_ok() {
            let value = codec::decode(input).expect("validated values decode");
            let again = codec::encode(&value);
            codec::validate(&again).expect("re-encoded values validate");
            let _ = codec::cbor_to_json(input);
        } else {
            assert!(codec::decode(input).is_err());
        }
    });
}

#[test]
fn set_in_paths_never_panic_and_a_set_value_is_found_again() {
    let root = codec::json_to_value(r#"{"a": [1, {"b": [true]}], "c": {"d": "x"}}"#).unwrap();
    let corpus: Vec<Vec<u8>> = vec![vec![0, b'a', 1, 1], vec![0, b'c', 0, b'd'], vec![1, 9]];
    fuzz("set-in path", 4, corpus, |input| {
        // Bytes → path: tag byte (even: key of the next byte, odd: index).
        let path: Vec<Segment> = input
            .chunks(2)
            .map(|c| match c {
                [tag, b] if tag % 2 == 0 => Segment::Key(char::from((*b % 4) + b'a').to_string()),
                [_, b] => Segment::Index(u32::from(*b % 4)),
                [tag] => Segment::Index(u32::from(*tag)),
                _ => unreachable!(),
            })
            .collect();
        let new = ciborium::Value::Integer(42.into());
        if let Ok(updated) = nested::set_in(Some(root.clone()), &path, new.clone()) {
            codec::validate(&codec::encode(&updated)).unwrap();
            let (after, removed) = nested::remove_in(updated, &path).unwrap();
            assert!(removed, "a value just set at {path:?} is there to remove");
            codec::validate(&codec::encode(&after)).unwrap();
        }
        let _ = nested::remove_in(root.clone(), &path);
    });
}
