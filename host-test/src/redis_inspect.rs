//! Looking at a bucket from the outside: what the Redis server(s) hold,
//! read with the redis crate directly rather than through the store or the
//! embedding library's key-value host. With several URLs they are the
//! masters of one cluster.

use redis::cluster::ClusterClient;
use redis::{Client, Commands, Connection, ConnectionLike};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

fn connect(url: &str) -> Connection {
    let client = Client::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let conn = client
        .get_connection_with_timeout(TIMEOUT)
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    conn.set_write_timeout(Some(TIMEOUT)).unwrap();
    conn
}

/// A connection that reaches every key: the server, or the cluster.
fn any_key(urls: &[String]) -> Box<dyn ConnectionLike> {
    match urls {
        [one] => Box::new(connect(one)),
        many => Box::new(
            ClusterClient::builder(many.iter().map(String::as_str))
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT)
                .build()
                .and_then(|c| c.get_connection())
                .unwrap_or_else(|e| panic!("connecting to the cluster {many:?}: {e}")),
        ),
    }
}

/// Every key that starts with `prefix`, without it, sorted.
pub fn keys(urls: &[String], prefix: &str) -> Vec<String> {
    let pattern = format!("{}*", escape_glob(prefix));
    let mut found = Vec::new();
    // SCAN visits one master's keyspace; a cluster's keys are spread over all.
    for url in urls {
        let mut conn = connect(url);
        let keys: Vec<Vec<u8>> = conn
            .scan_match::<_, Vec<u8>>(&pattern)
            .unwrap_or_else(|e| panic!("SCAN on {url}: {e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("SCAN on {url}: {e}"));
        found.extend(keys.into_iter().map(|k| {
            let k = String::from_utf8(k).expect("test keys are UTF-8");
            k[prefix.len()..].to_owned()
        }));
    }
    found.sort();
    found
}

/// The value of `key`, if there is one.
pub fn get(urls: &[String], key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut *any_key(urls))
        .unwrap_or_else(|e| panic!("GET {key:?}: {e}"))
}

/// Deletes `key`.
pub fn del(urls: &[String], key: &str) {
    let _: i64 = redis::cmd("DEL")
        .arg(key)
        .query(&mut *any_key(urls))
        .unwrap_or_else(|e| panic!("DEL {key:?}: {e}"));
}

/// Stores `value` under `key`.
pub fn set(urls: &[String], key: &str, value: &[u8]) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query(&mut *any_key(urls))
        .unwrap_or_else(|e| panic!("SET {key:?}: {e}"));
}

fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
