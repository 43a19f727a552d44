//! The edge demo under the real `wasmtime serve` (the wasmtime 48 CLI that
//! `.ci/setup.sh` installs), started as the README tells users to: `-S
//! cli`, a loopback `--addr`, `--dir HOST::/sessions`. Each of the flows
//! `e2e_http.rs` runs against the in-process server (`host_test::http_flow`)
//! runs here twice: with wasmtime's default of a fresh instance per request,
//! and with instances reused (`--max-instance-reuse-count`), where the
//! store's state outlives a request: its kept connection and prepared
//! statements must not carry one request's session into the next.
//!
//! A missing wasmtime CLI fails these tests (the message names
//! `.ci/setup.sh`); it never skips them. Each server is killed when its test
//! ends, also when the test fails, and its log is printed then.

use host_test::http_flow::{self as flow, run, Sessions, Site};
use test_servers::{ServeOptions, WasmtimeServe};

/// Requests one instance serves with reuse on: more than any flow sends, so
/// a flow's requests meet instances that already served others.
const REUSE: u32 = 1000;

/// A running `wasmtime serve` and the site it serves. The server is dropped
/// (killed) before the session directory is removed.
struct Served {
    server: WasmtimeServe,
    site: Site,
}

impl Served {
    fn start(max_instance_reuse_count: Option<u32>) -> Self {
        let demo = sqlite_sessions_artifacts::edge_demo().unwrap_or_else(|e| panic!("{e}"));
        let sessions = Sessions::dir();
        let mut options = ServeOptions::new(demo);
        options.dir = Some((sessions.sessions_dir(), "/sessions".into()));
        options.max_instance_reuse_count = max_instance_reuse_count;
        let server = WasmtimeServe::start(&options).unwrap_or_else(|e| panic!("{e}"));
        Served {
            site: Site::new(&server.url(), sessions),
            server,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "wasmtime serve's log ({}):\n{}",
                self.server.log_path().display(),
                self.server.log_tail(40)
            );
        }
    }
}

/// A module per flow with two tests: `fresh_instances` and
/// `reused_instances`.
macro_rules! under_wasmtime_serve {
    ($flow:ident) => {
        mod $flow {
            use super::*;

            #[test]
            fn fresh_instances() {
                let served = Served::start(None);
                run(flow::$flow(&served.site));
            }

            #[test]
            fn reused_instances() {
                let served = Served::start(Some(REUSE));
                run(flow::$flow(&served.site));
            }
        }
    };
}

under_wasmtime_serve!(counter_login_flash_and_logout);
under_wasmtime_serve!(bad_cookie_values_get_a_fresh_session);
under_wasmtime_serve!(burst_of_visits);
under_wasmtime_serve!(pages_without_a_session_write_nothing);
