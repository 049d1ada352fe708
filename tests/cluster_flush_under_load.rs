//! A cluster's Redis flushed (FLUSHALL) while it stays up and the nodes are serving: a
//! quota must not be over-admitted (README: never, under `on_failure: deny`). Between
//! the flush and each node's next sync, nodes leased tokens against the emptied counter
//! and three nodes admitted up to 656 of a quota of 500. Leases now carry the epoch
//! marker the node's counts are in, and Redis refuses them under another. Under
//! `on_failure: local` (each node its share of the quota while the breaker is held open
//! after the loss), the flush took the others' heartbeats with it: the first node to
//! notice counted itself alone and admitted a whole quota's share (353 of 300 on two
//! nodes). Three real nodes, a real `redis-server`, client threads on every node, both
//! drivers.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";
const KEY: &str = "flush-key-0123456789abcdef";
const LIMIT: u64 = 500;

fn node(redis: &Redis, name: &str, on_failure: &str, driver: &str) -> (Portico, SocketAddr) {
    let admin_port = free_port();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ drain_timeout: 1s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
cluster: {{ redis: {redis}, on_failure: {on_failure}, timeout: 1s, node: {name} }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /q":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  daily: {{ quota: {{ limit: {LIMIT}, period: day }} }}
api_keys:
  - {{ name: k1, value: "{KEY}", plan: daily }}
"#,
        state = temp_dir("state").display(),
        redis = redis.url(),
    );
    let p = Portico::start(&yaml, driver);
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    assert!(
        eventually(|| common::admin(admin, "GET", "/health", None, None)
            .text()
            .contains(r#""redis":"up""#)),
        "a node never reached Redis: {}",
        p.log_text()
    );
    (p, admin)
}

fn flushall(redis: &Redis) {
    let mut s = TcpStream::connect(redis.addr()).unwrap();
    s.write_all(b"*1\r\n$8\r\nFLUSHALL\r\n").unwrap();
    let mut ok = [0u8; 5];
    s.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
}

#[test]
fn a_flush_under_load_never_over_admits_a_quota() {
    flush_under_load("deny");
}

/// Each node admits a third of the quota at most while Redis is away, and the load is
/// spread evenly: the quota is not over-admitted either.
#[test]
fn a_flush_under_load_with_local_fallback_keeps_each_node_to_its_share() {
    flush_under_load("local");
}

fn flush_under_load(on_failure: &str) {
    for driver in DRIVERS {
        let redis = Redis::start();
        let nodes: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| node(&redis, n, on_failure, driver))
            .collect();
        // Every node counts the three before the load: the fallback's share is a third.
        for (_, admin) in &nodes {
            assert!(
                eventually(|| common::admin(*admin, "GET", "/health", None, None)
                    .text()
                    .contains(r#""nodes":3"#)),
                "{driver}: a node never saw the other two"
            );
        }
        let admitted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // Two clients per node, each with a keep-alive connection, as fast as answered.
        let clients: Vec<_> = (0..6)
            .map(|i| {
                let addr = nodes[i % 3].0.addr;
                let (admitted, stop) = (admitted.clone(), stop.clone());
                std::thread::spawn(move || {
                    let request = format!("GET /q HTTP/1.1\r\nHost: t\r\nx-api-key: {KEY}\r\n\r\n");
                    let mut s = TcpStream::connect(addr).unwrap();
                    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                    while !stop.load(Ordering::Relaxed) {
                        s.write_all(request.as_bytes()).unwrap();
                        let resp = read_response(&mut r, false).unwrap();
                        if resp.status == 200 {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        // Flushed once part of the quota is spent, the rest still to be leased.
        assert!(
            eventually(|| admitted.load(Ordering::Relaxed) >= LIMIT / 4),
            "{driver}: no load got through"
        );
        flushall(&redis);
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let total = admitted.load(Ordering::Relaxed);
        assert!(
            total <= LIMIT,
            "{on_failure}, {driver}: {total} admitted of a quota of {LIMIT}"
        );
        // Spent to the end or nearly (tokens leased just after the flush are counted
        // twice when the nodes give their counts back: under-admission, never over).
        assert!(total >= LIMIT / 2, "{driver}: only {total} admitted");
        for (p, _) in &nodes {
            assert!(
                p.log_text().contains("Redis lost what it held"),
                "{driver}: a node never noticed the flush"
            );
        }
    }
}
