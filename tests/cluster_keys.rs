//! API keys created through different nodes of a cluster: one value is one key, as on
//! a single node, also when two nodes create it at the same time or before they read
//! each other's keys from Redis (else revoking one name left the value working through
//! the other). Real nodes, a real `redis-server`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";
const TAKEN: &str = "that value is already in use by another key";

struct Node {
    p: Portico,
    admin: SocketAddr,
}

fn start(redis: &Redis, name: &str, driver: &str) -> Node {
    let admin_port = free_port();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ drain_timeout: 1s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
cluster: {{ redis: {redis}, on_failure: deny, timeout: 200ms, node: {name} }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /k":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  gold: {{}}
  silver: {{}}
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
        "node {name} never reached Redis: {}",
        p.log_text()
    );
    Node { p, admin }
}

fn create(node: &Node, name: &str, plan: &str, value: &str) -> Response {
    let body = format!(r#"{{"name": "{name}", "plan": "{plan}", "value": "{value}"}}"#);
    common::admin(node.admin, "POST", "/api-keys", Some(TOKEN), Some(&body))
}

/// Whether `GET /k` with `key` answers `status` on every node, 300 ms after it first
/// did on all of them (within 3 s).
fn settles(nodes: &[&Node], key: &str, status: u16) -> bool {
    let on_all = || {
        nodes
            .iter()
            .all(|n| get_with_key(n.p.addr, "/k", Some(key)).status == status)
    };
    let t0 = Instant::now();
    while !on_all() {
        if t0.elapsed() > Duration::from_secs(3) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    on_all()
}

#[test]
fn one_value_is_one_key_in_the_cluster_whichever_nodes_create_it() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, b) = (start(&redis, "a", driver), start(&redis, "b", driver));

        // At the same time on two nodes: one is created, the other refused as on one node.
        let value = "race-value-0123456789abcdef";
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| create(&a, "ra", "gold", value));
            let tb = s.spawn(|| create(&b, "rb", "silver", value));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [201, 400],
            "{driver}: a {} {}, b {} {}",
            ra.status,
            ra.text(),
            rb.status,
            rb.text()
        );
        let (winner, name, loser) = if ra.status == 201 {
            (&a, "ra", &rb)
        } else {
            (&b, "rb", &ra)
        };
        assert!(loser.text().contains(TAKEN), "{driver}: {}", loser.text());
        // Revoking the one created stops the value on every node: no other name keeps it.
        assert!(settles(&[&a, &b], value, 200), "{driver}: never live");
        let r = common::admin(
            winner.admin,
            "DELETE",
            &format!("/api-keys/{name}"),
            Some(TOKEN),
            None,
        );
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        assert!(
            settles(&[&a, &b], value, 403),
            "{driver}: the revoked value still works on a node"
        );
        // Revoked, the value is free again.
        let r = create(&b, "again", "gold", value);
        assert_eq!(r.status, 201, "{driver}: {}", r.text());

        // On another node right after (before it read the key from Redis): refused.
        let value = "next-value-0123456789abcdef";
        let r = create(&a, "first", "gold", value);
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        let r = create(&b, "second", "silver", value);
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        assert!(r.text().contains(TAKEN), "{driver}: {}", r.text());
        // The refused name was not created anywhere.
        std::thread::sleep(Duration::from_millis(500));
        for n in [&a, &b] {
            let r = common::admin(n.admin, "DELETE", "/api-keys/second", Some(TOKEN), None);
            assert_eq!(r.status, 404, "{driver}: {}", r.text());
        }

        // Keys Redis holds without the value index (written before it existed): the
        // index is rebuilt from them before a value is checked.
        let client = ::redis::Client::open(redis.url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let _: i64 = ::redis::cmd("DEL")
            .arg("portico:keys:d")
            .query(&mut con)
            .unwrap();
        let r = create(&b, "third", "silver", value);
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        assert!(r.text().contains(TAKEN), "{driver}: {}", r.text());
        drop((a, b));
    }
}
