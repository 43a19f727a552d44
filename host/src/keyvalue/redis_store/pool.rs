//! A small connection pool with the failure handling a request path needs.
//!
//! Why not r2d2: its checkout waits out the whole connection timeout (retrying the connect in a
//! background thread) when the server is down, it keeps stale connections after a server
//! restart until each one fails in turn, and it can only validate a connection with an extra
//! PING round trip. Here a checkout takes the most recently returned connection or opens one
//! (a single bounded attempt), and the first sign of a lost server drops every idle connection
//! at once.

use crate::keyvalue::store::Traffic;
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Which failed requests [`Pool::run`] may send again, once, on a new connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Reads: resent when a connection taken from the pool turns out to be dead (the server
    /// restarted since it was last used). Sending a read twice changes nothing.
    IfStale,
    /// Writes whose outcome is unknown once the connection fails mid-request: never resent, so
    /// an increment or a swap is applied at most once. The failure still empties the pool.
    Never,
}

/// How a failed request left its connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// The server answered with an error; the connection is in step and can be reused.
    Answered,
    /// A cluster node refused the key (MOVED/ASK): nothing was executed, the slot map is stale.
    Redirected,
    /// The connection is gone (refused, reset, closed): the server probably restarted or
    /// stopped, so the other idle connections are as dead as this one.
    Lost,
    /// No answer in time, or an unreadable one: only this connection is out of step.
    Broken,
}

fn fault(error: &RedisError) -> Fault {
    match error.kind() {
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask) => Fault::Redirected,
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType => {
            Fault::Answered
        }
        ErrorKind::ClusterConnectionNotFound => Fault::Lost,
        _ if error.is_timeout() => Fault::Broken,
        _ if error.is_connection_dropped() || error.is_connection_refusal() => Fault::Lost,
        _ => Fault::Broken,
    }
}

type Connector<C> = Box<dyn Fn() -> RedisResult<C> + Send + Sync>;

pub(crate) struct Pool<C> {
    connect: Connector<C>,
    max_idle: usize,
    state: Mutex<State<C>>,
}

struct State<C> {
    /// Most recently returned last.
    idle: Vec<Idle<C>>,
    /// Bumped whenever the server looks lost; connections from older generations are dropped
    /// on return instead of going back to `idle`.
    generation: u64,
}

struct Idle<C> {
    generation: u64,
    conn: C,
}

impl<C> Pool<C> {
    pub(crate) fn new(
        max_idle: usize,
        connect: impl Fn() -> RedisResult<C> + Send + Sync + 'static,
    ) -> Self {
        Self {
            connect: Box::new(connect),
            max_idle,
            state: Mutex::new(State {
                idle: Vec::new(),
                generation: 0,
            }),
        }
    }

    /// A panic while the lock is held cannot leave the idle list inconsistent.
    fn state(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_idle(&self) -> Option<Idle<C>> {
        self.state().idle.pop()
    }

    fn open(&self, traffic: &mut Traffic) -> RedisResult<Idle<C>> {
        let generation = self.state().generation;
        traffic.connects += 1;
        Ok(Idle {
            generation,
            conn: (self.connect)()?,
        })
    }

    fn give_back(&self, idle: Idle<C>) {
        let mut state = self.state();
        if idle.generation == state.generation && state.idle.len() < self.max_idle {
            state.idle.push(idle);
        }
    }

    fn forget_all(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.idle.clear();
    }

    /// Puts the connection back or drops it (and, if the server looks lost, every idle one).
    fn settle(&self, idle: Idle<C>, error: &RedisError) -> Fault {
        let fault = fault(error);
        match fault {
            Fault::Answered => self.give_back(idle),
            Fault::Redirected | Fault::Lost => self.forget_all(),
            Fault::Broken => {}
        }
        fault
    }

    /// Runs `request` (exactly one request and its reply) on a pooled connection, counting one
    /// round trip per attempt; at most one more attempt, on a new connection, as `resend` and
    /// the failure allow. A redirected request is always resent: the node executed nothing.
    pub(crate) fn run<T>(
        &self,
        traffic: &mut Traffic,
        resend: Resend,
        mut request: impl FnMut(&mut C) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let (mut idle, reused) = match self.take_idle() {
            Some(idle) => (idle, true),
            None => (self.open(traffic)?, false),
        };
        traffic.round_trips += 1;
        let error = match request(&mut idle.conn) {
            Ok(value) => {
                self.give_back(idle);
                return Ok(value);
            }
            Err(error) => error,
        };
        let fault = self.settle(idle, &error);
        let again = fault == Fault::Redirected
            || (fault == Fault::Lost && reused && resend == Resend::IfStale);
        if !again {
            return Err(error);
        }
        let mut idle = self.open(traffic)?;
        traffic.round_trips += 1;
        match request(&mut idle.conn) {
            Ok(value) => {
                self.give_back(idle);
                Ok(value)
            }
            Err(error) => {
                self.settle(idle, &error);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// A fake connection: an id, so tests can tell a reused connection from a new one.
    struct Fake(u32);

    fn pool(opened: Arc<AtomicU32>) -> Pool<Fake> {
        Pool::new(4, move || Ok(Fake(opened.fetch_add(1, Ordering::SeqCst))))
    }

    fn reset() -> RedisError {
        io::Error::from(io::ErrorKind::ConnectionReset).into()
    }

    #[test]
    fn reuses_the_connection_last_returned() {
        let opened = Arc::new(AtomicU32::new(0));
        let pool = pool(opened.clone());
        let mut traffic = Traffic::default();
        for _ in 0..3 {
            let id = pool.run(&mut traffic, Resend::Never, |c| Ok(c.0)).unwrap();
            assert_eq!(id, 0);
        }
        assert_eq!(
            traffic,
            Traffic {
                round_trips: 3,
                connects: 1
            }
        );
    }

    #[test]
    fn a_stale_connection_is_resent_for_reads_only_and_empties_the_pool() {
        let opened = Arc::new(AtomicU32::new(0));
        let pool = pool(opened.clone());
        let mut traffic = Traffic::default();
        // Two idle connections, 0 and 1.
        let (a, b) = (
            pool.open(&mut traffic).unwrap(),
            pool.open(&mut traffic).unwrap(),
        );
        pool.give_back(a);
        pool.give_back(b);

        // A write on a dead connection fails and is not resent...
        let err = pool
            .run(&mut traffic, Resend::Never, |_| Err::<(), _>(reset()))
            .unwrap_err();
        assert!(err.is_connection_dropped());
        // ...but it dropped the other idle connection too: the next request opens a new one.
        let id = pool.run(&mut traffic, Resend::Never, |c| Ok(c.0)).unwrap();
        assert_eq!(id, 2);

        // A read on a dead reused connection is resent once on a new connection.
        let mut calls = 0;
        let id = pool
            .run(&mut traffic, Resend::IfStale, |c| {
                calls += 1;
                if c.0 == 2 {
                    Err(reset())
                } else {
                    Ok(c.0)
                }
            })
            .unwrap();
        assert_eq!((id, calls), (3, 2));
        assert_eq!(opened.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_read_failing_on_a_new_connection_is_not_resent() {
        let pool = pool(Arc::new(AtomicU32::new(0)));
        let mut traffic = Traffic::default();
        let mut calls = 0;
        let err = pool
            .run(&mut traffic, Resend::IfStale, |_| {
                calls += 1;
                Err::<(), _>(reset())
            })
            .unwrap_err();
        assert!(err.is_connection_dropped());
        assert_eq!(
            (calls, traffic),
            (
                1,
                Traffic {
                    round_trips: 1,
                    connects: 1
                }
            )
        );
    }

    #[test]
    fn a_server_error_keeps_the_connection() {
        let opened = Arc::new(AtomicU32::new(0));
        let pool = pool(opened.clone());
        let mut traffic = Traffic::default();
        let err = pool
            .run(&mut traffic, Resend::IfStale, |_| {
                Err::<(), _>(RedisError::from((ErrorKind::Extension, "WRONGTYPE")))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Extension);
        assert_eq!(
            pool.run(&mut traffic, Resend::Never, |c| Ok(c.0)).unwrap(),
            0
        );
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_connect_is_reported_and_counted() {
        let pool: Pool<Fake> = Pool::new(4, || {
            Err(io::Error::from(io::ErrorKind::ConnectionRefused).into())
        });
        let mut traffic = Traffic::default();
        let err = pool
            .run(&mut traffic, Resend::IfStale, |c| Ok(c.0))
            .unwrap_err();
        assert!(err.is_connection_refusal());
        assert_eq!(
            traffic,
            Traffic {
                round_trips: 0,
                connects: 1
            }
        );
    }
}
