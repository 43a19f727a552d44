//! Buckets kept in Redis or Valkey, on one server or a cluster.
//!
//! Each guest key `k` is stored as the string `<key_prefix>k`; every operation touches one key
//! (batches are pipelines of single-key commands in a cluster), so each is routed to one slot.
//! Nothing is retried behind the caller's back except reads on a pooled connection that turns
//! out to be dead, and requests a cluster node redirected without executing: a write whose
//! reply was lost is reported, never sent twice.

mod cas;
mod cluster;
mod pool;

use crate::keyvalue::store::{Failure, Page, Result, Store, Swap, Traffic};
use cluster::{Cluster, ScanError};
use pool::{Pool, Resend};
use redis::cluster::{cluster_pipe, ClusterClient};
use redis::{Client, ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind};
use std::fmt;
use std::time::Duration;

/// Settings of a bucket kept in Redis or Valkey.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Put before every key, so that several buckets (or other users) can share a database.
    /// In a cluster, a `{hash tag}` here would put the whole bucket in one slot.
    pub key_prefix: String,
    /// The longest wait for a new connection, handshake included.
    pub connect_timeout: Duration,
    /// The longest wait for a request to be written or for its reply.
    pub response_timeout: Duration,
    /// SCAN's COUNT hint: roughly how many keys one `list-keys` call examines.
    pub scan_count: u32,
    /// Connections kept open between requests (a cluster connection holds one socket per
    /// master). More may be open while requests run: one per request in flight.
    pub max_idle_connections: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            key_prefix: String::new(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            scan_count: 256,
            max_idle_connections: 32,
        }
    }
}

/// A bucket that could not be configured.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl RedisOptions {
    fn check(&self) -> std::result::Result<(), ConfigError> {
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return Err(ConfigError(
                "Redis timeouts must be longer than zero".into(),
            ));
        }
        if self.scan_count == 0 {
            return Err(ConfigError("Redis scan_count must be at least 1".into()));
        }
        Ok(())
    }
}

enum Link {
    Standalone(Pool<redis::Connection>),
    Cluster(Cluster),
}

pub(crate) struct RedisStore {
    /// Names the server or cluster in error messages.
    label: String,
    prefix: String,
    /// `<escaped prefix>*`: what SCAN matches.
    pattern: Vec<u8>,
    scan_count: u32,
    link: Link,
}

impl RedisStore {
    /// A bucket on one server, e.g. `redis://127.0.0.1:6379/0`. Nothing is connected yet.
    pub(crate) fn standalone(
        url: &str,
        options: &RedisOptions,
    ) -> std::result::Result<Self, ConfigError> {
        options.check()?;
        let client =
            Client::open(url).map_err(|e| ConfigError(format!("Redis URL {url:?}: {e}")))?;
        let label = client.get_connection_info().addr().to_string();
        let (connect_timeout, response_timeout) =
            (options.connect_timeout, options.response_timeout);
        let pool = Pool::new(options.max_idle_connections, move || {
            let conn = client.get_connection_with_timeout(connect_timeout)?;
            conn.set_read_timeout(Some(response_timeout))?;
            conn.set_write_timeout(Some(response_timeout))?;
            Ok(conn)
        });
        Ok(Self::new(label, options, Link::Standalone(pool)))
    }

    /// A bucket on a cluster reached through any of `nodes` (URLs of some of its masters).
    pub(crate) fn cluster(
        nodes: &[&str],
        options: &RedisOptions,
    ) -> std::result::Result<Self, ConfigError> {
        options.check()?;
        let response_timeout = options.response_timeout;
        // No retries inside the client: it would resend any request whose connection failed,
        // writes included. Redirections are resent by the pool instead.
        let client = ClusterClient::builder(nodes.iter().copied())
            .connection_timeout(options.connect_timeout)
            .response_timeout(response_timeout)
            .retries(0)
            .build()
            .map_err(|e| ConfigError(format!("Redis cluster nodes {nodes:?}: {e}")))?;
        let label = format!("cluster {}", nodes.join(","));
        let pool = Pool::new(options.max_idle_connections, move || {
            let conn = client.get_connection()?;
            conn.set_write_timeout(Some(response_timeout))?;
            Ok(conn)
        });
        Ok(Self::new(label, options, Link::Cluster(Cluster::new(pool))))
    }

    fn new(label: String, options: &RedisOptions, link: Link) -> Self {
        Self {
            label,
            prefix: options.key_prefix.clone(),
            pattern: match_pattern(&options.key_prefix),
            scan_count: options.scan_count,
            link,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A guest key from a stored one; `None` for keys this bucket could not have written.
    fn guest_key(&self, stored: Vec<u8>) -> Option<String> {
        let key = stored.strip_prefix(self.prefix.as_bytes())?;
        String::from_utf8(key.to_vec()).ok()
    }

    fn run_raw<T>(
        &self,
        traffic: &mut Traffic,
        resend: Resend,
        mut request: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> RedisResult<T> {
        match &self.link {
            Link::Standalone(pool) => pool.run(traffic, resend, |conn| request(conn)),
            Link::Cluster(cluster) => cluster.pool.run(traffic, resend, |conn| request(conn)),
        }
    }

    fn run<T>(
        &self,
        traffic: &mut Traffic,
        resend: Resend,
        request: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T> {
        self.run_raw(traffic, resend, request)
            .map_err(|e| self.failure(&e))
    }

    fn failure(&self, error: &RedisError) -> Failure {
        let what = if error.is_connection_refusal() {
            "cannot connect"
        } else if error.is_timeout() {
            "no answer in time"
        } else if error.is_connection_dropped() {
            "connection lost"
        } else if matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
            "request refused"
        } else {
            "request failed"
        };
        Failure(format!("Redis {}: {what}: {error}", self.label))
    }

    fn scan_standalone(
        &self,
        pool: &Pool<redis::Connection>,
        cursor: Option<&str>,
        traffic: &mut Traffic,
    ) -> std::result::Result<(Vec<Vec<u8>>, Option<String>), ScanError> {
        let start: u64 = match cursor {
            None => 0,
            Some(text) => text.parse().map_err(|_| ScanError::BadCursor)?,
        };
        let (next, keys): (u64, Vec<Vec<u8>>) = pool.run(traffic, Resend::IfStale, |conn| {
            redis::cmd("SCAN")
                .arg(start)
                .arg("MATCH")
                .arg(&self.pattern)
                .arg("COUNT")
                .arg(self.scan_count)
                .query(conn)
        })?;
        Ok((keys, (next != 0).then(|| next.to_string())))
    }
}

/// A SCAN pattern matching exactly the keys that start with `prefix`.
fn match_pattern(prefix: &str) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 1);
    for &byte in prefix.as_bytes() {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

impl Store for RedisStore {
    fn get(&self, key: &str, traffic: &mut Traffic) -> Result<Option<Vec<u8>>> {
        let key = self.key(key);
        self.run(traffic, Resend::IfStale, |conn| {
            redis::cmd("GET").arg(&key).query(conn)
        })
    }

    fn set(&self, key: &str, value: &[u8], traffic: &mut Traffic) -> Result<()> {
        let key = self.key(key);
        self.run(traffic, Resend::Never, |conn| {
            redis::cmd("SET").arg(&key).arg(value).exec(conn)
        })
    }

    fn delete(&self, key: &str, traffic: &mut Traffic) -> Result<()> {
        let key = self.key(key);
        self.run(traffic, Resend::Never, |conn| {
            redis::cmd("DEL").arg(&key).exec(conn)
        })
    }

    fn exists(&self, key: &str, traffic: &mut Traffic) -> Result<bool> {
        let key = self.key(key);
        self.run(traffic, Resend::IfStale, |conn| {
            redis::cmd("EXISTS").arg(&key).query(conn)
        })
    }

    /// SCAN's guarantee carries over: a key present for the whole walk is listed at least once;
    /// one may be listed more than once (SCAN repeats keys while a hash table is resized).
    fn list_keys(&self, cursor: Option<&str>, traffic: &mut Traffic) -> Result<Page> {
        let scanned = match &self.link {
            Link::Standalone(pool) => self.scan_standalone(pool, cursor, traffic),
            Link::Cluster(cluster) => cluster.scan(cursor, &self.pattern, self.scan_count, traffic),
        };
        let (keys, cursor) = scanned.map_err(|e| match e {
            ScanError::BadCursor => Failure(format!(
                "list-keys cursor {:?} was not returned by this bucket",
                cursor.unwrap_or_default()
            )),
            ScanError::Redis(e) => self.failure(&e),
            ScanError::Failure(f) => f,
        })?;
        let keys = keys.into_iter().filter_map(|k| self.guest_key(k)).collect();
        Ok(Page { keys, cursor })
    }

    /// INCRBY: the value is decimal text, as in Spin's Redis key-value store.
    fn increment(&self, key: &str, delta: i64, traffic: &mut Traffic) -> Result<i64> {
        let key = self.key(key);
        self.run(traffic, Resend::Never, |conn| {
            redis::cmd("INCRBY").arg(&key).arg(delta).query(conn)
        })
    }

    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        traffic: &mut Traffic,
    ) -> Result<Swap> {
        let key = self.key(key);
        let by_hash = cas::by_hash(&key, expected, value);
        let reply = match self.run_raw(traffic, Resend::Never, |c| by_hash.query(c)) {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let by_source = cas::by_source(&key, expected, value);
                self.run_raw(traffic, Resend::Never, |c| by_source.query(c))
            }
            other => other,
        };
        reply.and_then(cas::outcome).map_err(|e| self.failure(&e))
    }

    fn get_many(&self, keys: &[String], traffic: &mut Traffic) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.link {
            Link::Standalone(pool) => pool.run(traffic, Resend::IfStale, |conn| {
                redis::cmd("MGET").arg(&keys).query(conn)
            }),
            Link::Cluster(cluster) => {
                let mut pipe = cluster_pipe();
                for key in &keys {
                    pipe.cmd("GET").arg(key);
                }
                cluster
                    .pool
                    .run(traffic, Resend::IfStale, |conn| pipe.query(conn))
            }
        }
        .map_err(|e| self.failure(&e))
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)], traffic: &mut Traffic) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries: Vec<(String, &[u8])> = entries
            .iter()
            .map(|(k, v)| (self.key(k), v.as_slice()))
            .collect();
        match &self.link {
            Link::Standalone(pool) => pool.run(traffic, Resend::Never, |conn| {
                redis::cmd("MSET").arg(&entries).exec(conn)
            }),
            Link::Cluster(cluster) => {
                let mut pipe = cluster_pipe();
                for (key, value) in &entries {
                    pipe.cmd("SET").arg(key).arg(*value).ignore();
                }
                cluster
                    .pool
                    .run(traffic, Resend::Never, |conn| pipe.exec(conn))
            }
        }
        .map_err(|e| self.failure(&e))
    }

    fn delete_many(&self, keys: &[String], traffic: &mut Traffic) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.link {
            Link::Standalone(pool) => pool.run(traffic, Resend::Never, |conn| {
                redis::cmd("DEL").arg(&keys).exec(conn)
            }),
            Link::Cluster(cluster) => {
                let mut pipe = cluster_pipe();
                for key in &keys {
                    pipe.cmd("DEL").arg(key).ignore();
                }
                cluster
                    .pool
                    .run(traffic, Resend::Never, |conn| pipe.exec(conn))
            }
        }
        .map_err(|e| self.failure(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_pattern_escapes_glob_characters() {
        assert_eq!(match_pattern(""), b"*");
        assert_eq!(match_pattern("s:"), b"s:*");
        assert_eq!(match_pattern(r"a*b?[c]\"), br"a\*b\?\[c\]\\*");
    }

    #[test]
    fn bad_options_are_refused_before_connecting() {
        let zero = RedisOptions {
            response_timeout: Duration::ZERO,
            ..RedisOptions::default()
        };
        assert!(RedisStore::standalone("redis://127.0.0.1:1/", &zero).is_err());
        assert!(RedisStore::standalone("not a url", &RedisOptions::default()).is_err());
        assert!(RedisStore::cluster(&["redis://127.0.0.1:1/"], &RedisOptions::default()).is_ok());
    }
}
