use redis::{Commands, ErrorKind};
use test_servers::{RedisCluster, CLUSTER_MASTERS};

use crate::listening;

#[test]
fn every_master_serves_slots_and_a_cluster_client_reads_what_each_one_took() {
    let cluster = RedisCluster::start().unwrap();
    assert_eq!(cluster.nodes().len(), CLUSTER_MASTERS);
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    for node in cluster.nodes() {
        let mut con = redis::Client::open(node.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap();
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
    }

    // Write through each node directly: a node refuses (MOVED) keys whose
    // slot it does not own, so each node takes the first key it owns.
    let mut written = Vec::new();
    for (index, node) in cluster.nodes().iter().enumerate() {
        let mut con = redis::Client::open(node.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let key = (0..1000)
            .map(|n| format!("key-{n}"))
            .find(
                |key| match con.set::<_, _, ()>(key, format!("from node {index}")) {
                    Ok(()) => true,
                    Err(e) if e.kind() == ErrorKind::Server(redis::ServerErrorKind::Moved) => false,
                    Err(e) => panic!("SET {key} on node {index}: {e}"),
                },
            )
            .expect("a node that owns no slot");
        written.push((key, index));
    }

    let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
    let mut con = client.get_connection().unwrap();
    for (key, index) in &written {
        assert_eq!(
            con.get::<_, String>(key).unwrap(),
            format!("from node {index}")
        );
    }

    drop(con);
    drop(cluster);
    for port in ports {
        assert!(!listening(port));
        assert!(!listening(port + 10000), "a cluster bus port is still open");
    }
}
