use redis::Commands;
use test_servers::RedisServer;

use crate::listening;

fn connection(server: &RedisServer) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(server.url())?.get_connection()
}

#[test]
fn a_server_answers_stops_and_comes_back_on_the_same_port() {
    let mut server = RedisServer::start().unwrap();
    let port = server.port();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));
    let mut con = connection(&server).unwrap();
    let _: () = con.set("k", "v").unwrap();
    assert_eq!(con.get::<_, String>("k").unwrap(), "v");

    server.stop();
    assert!(!server.is_running());
    assert!(
        !listening(port),
        "a stopped server still accepts connections"
    );
    assert!(connection(&server).is_err());

    server.restart().unwrap();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    let mut con = connection(&server).unwrap();
    // No persistence: a restarted server starts empty.
    assert_eq!(con.get::<_, Option<String>>("k").unwrap(), None);
    let _: () = con.set("k", "again").unwrap();
    assert_eq!(con.get::<_, String>("k").unwrap(), "again");
}

#[test]
fn a_killed_server_can_be_restarted() {
    let mut server = RedisServer::start().unwrap();
    let port = server.port();
    server.kill();
    assert!(!listening(port));
    server.restart().unwrap();
    let pong: String = redis::cmd("PING")
        .query(&mut connection(&server).unwrap())
        .unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn drop_kills_the_server_and_removes_its_directory() {
    let server = RedisServer::start().unwrap();
    let port = server.port();
    let dir = server.log_path().parent().unwrap().to_owned();
    assert!(dir.is_dir());
    drop(server);
    assert!(!listening(port));
    assert!(!dir.exists());
}

#[test]
fn a_panicking_test_still_stops_its_server() {
    let mut port = 0;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let server = RedisServer::start().unwrap();
        port = server.port();
        panic!("the test fails while the server runs");
    }));
    assert!(outcome.is_err());
    assert_ne!(port, 0);
    assert!(!listening(port));
}

#[test]
fn two_servers_get_different_ports() {
    let a = RedisServer::start().unwrap();
    let b = RedisServer::start().unwrap();
    assert_ne!(a.port(), b.port());
}

#[test]
fn redis_cli_runs_against_the_server_and_the_pid_follows_the_process() {
    let mut server = RedisServer::start().unwrap();
    assert_eq!(server.cli(&["SET", "k", "v"]).unwrap().trim(), "OK");
    assert_eq!(server.cli(&["GET", "k"]).unwrap().trim(), "v");
    let pid = server.pid().expect("a running server has a pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    server.stop();
    assert_eq!(server.pid(), None);
    assert!(
        server.cli(&["PING"]).is_err(),
        "redis-cli reached a stopped server"
    );
}
