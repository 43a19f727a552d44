//! What only a cluster needs: the list of masters, for a `list-keys` walk that visits each
//! master's keyspace in turn, and pipelines for the batch calls, whose keys usually sit in
//! different slots.
//!
//! A cluster cursor reads `<master index>:<that master's SCAN cursor>`, masters ordered by the
//! lowest slot they serve, so the same cursor means the same thing in every process attached to
//! the same cluster.

use crate::keyvalue::store::{Failure, Traffic};
use redis::cluster::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ErrorKind, RedisError, RedisResult, Value};
use std::sync::{Arc, Mutex, PoisonError};

use super::pool::{Pool, Resend};

/// One master's address, as the cluster announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Master {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// Where a cluster walk stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) master: usize,
    pub(crate) scan: u64,
}

impl Cursor {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (master, scan) = text.split_once(':')?;
        Some(Self {
            master: master.parse().ok()?,
            scan: scan.parse().ok()?,
        })
    }

    pub(crate) fn encode(self) -> String {
        format!("{}:{}", self.master, self.scan)
    }

    /// Where to go after a SCAN of `self.master` answered `next`; `None` when all are done.
    pub(crate) fn after(self, next: u64, masters: usize) -> Option<Self> {
        if next != 0 {
            Some(Self { scan: next, ..self })
        } else if self.master + 1 < masters {
            Some(Self {
                master: self.master + 1,
                scan: 0,
            })
        } else {
            None
        }
    }
}

pub(crate) struct Cluster {
    pub(crate) pool: Pool<ClusterConnection>,
    /// The masters as last fetched; refreshed at the start of every walk and after a failure.
    masters: Mutex<Option<Arc<[Master]>>>,
}

impl Cluster {
    pub(crate) fn new(pool: Pool<ClusterConnection>) -> Self {
        Self {
            pool,
            masters: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<Arc<[Master]>> {
        self.masters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, masters: Option<Arc<[Master]>>) {
        *self.masters.lock().unwrap_or_else(PoisonError::into_inner) = masters;
    }

    fn masters(&self, fresh: bool, traffic: &mut Traffic) -> RedisResult<Arc<[Master]>> {
        if let Some(masters) = self.cached().filter(|_| !fresh) {
            return Ok(masters);
        }
        let reply = self.pool.run(traffic, Resend::IfStale, |conn| {
            conn.route_command(
                redis::cmd("CLUSTER").arg("SLOTS"),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
            )
        })?;
        let masters: Arc<[Master]> = parse_slots(reply)?.into();
        self.remember(Some(masters.clone()));
        Ok(masters)
    }

    /// One SCAN on one master. Returns the raw keys and the cursor to continue with.
    pub(crate) fn scan(
        &self,
        cursor: Option<&str>,
        pattern: &[u8],
        count: u32,
        traffic: &mut Traffic,
    ) -> Result<(Vec<Vec<u8>>, Option<String>), ScanError> {
        let at = match cursor {
            None => Cursor { master: 0, scan: 0 },
            Some(text) => Cursor::parse(text).ok_or(ScanError::BadCursor)?,
        };
        let masters = self.masters(cursor.is_none(), traffic)?;
        let Some(master) = masters.get(at.master) else {
            return Err(ScanError::Failure(Failure(format!(
                "list-keys cursor {:?} names master {} but the cluster has {}; start the walk again",
                cursor.unwrap_or_default(),
                at.master,
                masters.len()
            ))));
        };
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: master.host.clone(),
            port: master.port,
        });
        let scanned = self.pool.run(traffic, Resend::IfStale, |conn| {
            let reply = conn.route_command(
                redis::cmd("SCAN")
                    .arg(at.scan)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(count),
                routing.clone(),
            )?;
            redis::from_redis_value::<(u64, Vec<Vec<u8>>)>(reply).map_err(RedisError::from)
        });
        let (next, keys) = scanned.inspect_err(|_| self.remember(None))?;
        Ok((keys, at.after(next, masters.len()).map(Cursor::encode)))
    }
}

pub(crate) enum ScanError {
    BadCursor,
    Redis(RedisError),
    Failure(Failure),
}

impl From<RedisError> for ScanError {
    fn from(error: RedisError) -> Self {
        Self::Redis(error)
    }
}

/// The masters in a `CLUSTER SLOTS` reply, ordered by the lowest slot each serves.
/// Each range is `[start, end, [host, port, id, ...], replicas...]`.
pub(crate) fn parse_slots(reply: Value) -> RedisResult<Vec<Master>> {
    let malformed = |what: &'static str| RedisError::from((ErrorKind::UnexpectedReturnType, what));
    let Value::Array(ranges) = reply else {
        return Err(malformed("CLUSTER SLOTS did not return a list"));
    };
    let mut found: Vec<(i64, Master)> = Vec::new();
    for range in ranges {
        let Value::Array(range) = range else {
            return Err(malformed(
                "CLUSTER SLOTS returned a range that is not a list",
            ));
        };
        let (Some(Value::Int(start)), Some(Value::Array(node))) = (range.first(), range.get(2))
        else {
            return Err(malformed("CLUSTER SLOTS returned a range without a master"));
        };
        let (Some(Value::BulkString(host)), Some(Value::Int(port))) = (node.first(), node.get(1))
        else {
            return Err(malformed(
                "CLUSTER SLOTS returned a master without an address",
            ));
        };
        let host = String::from_utf8(host.clone())
            .ok()
            .filter(|h| !h.is_empty() && h != "?")
            .ok_or_else(|| malformed("a cluster master announces no address"))?;
        let port = u16::try_from(*port)
            .map_err(|_| malformed("a cluster master's port is out of range"))?;
        let master = Master { host, port };
        match found.iter_mut().find(|(_, m)| *m == master) {
            Some((lowest, _)) => *lowest = (*lowest).min(*start),
            None => found.push((*start, master)),
        }
    }
    found.sort_by_key(|(lowest, _)| *lowest);
    Ok(found.into_iter().map(|(_, m)| m).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.into()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    fn range(start: i64, end: i64, master: Value) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            master,
            node("10.0.0.9", 1),
        ])
    }

    #[test]
    fn masters_are_ordered_by_their_lowest_slot_and_listed_once() {
        let reply = Value::Array(vec![
            range(10923, 16383, node("127.0.0.1", 7002)),
            range(0, 5460, node("127.0.0.1", 7000)),
            range(5461, 10922, node("127.0.0.1", 7001)),
            range(16000, 16001, node("127.0.0.1", 7000)),
        ]);
        let ports: Vec<u16> = parse_slots(reply).unwrap().iter().map(|m| m.port).collect();
        assert_eq!(ports, [7000, 7001, 7002]);
    }

    #[test]
    fn a_master_without_an_address_is_an_error() {
        let reply = Value::Array(vec![range(0, 16383, node("", 7000))]);
        assert!(parse_slots(reply).is_err());
    }

    #[test]
    fn cursors_round_trip_and_advance_through_the_masters() {
        let start = Cursor { master: 0, scan: 0 };
        assert_eq!(Cursor::parse(&start.encode()), Some(start));
        assert_eq!(
            start.after(17, 3),
            Some(Cursor {
                master: 0,
                scan: 17
            })
        );
        assert_eq!(start.after(0, 3), Some(Cursor { master: 1, scan: 0 }));
        assert_eq!(Cursor { master: 2, scan: 5 }.after(0, 3), None);
        for bad in ["", "1", "x:1", "1:y", "-1:0", "1:2:3"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
