//! A node started while Redis is away divides `on_failure: local` limits by the live
//! nodes its last run saw (kept in its state store), not by 1: taking itself for the
//! only node, it admitted a whole quota while the others admitted their shares too.
//! Two real nodes, a real `redis-server`, both drivers.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";
const KEY: &str = "quota-key-0123456789abcdef";
const LIMIT: usize = 30;

struct Node {
    p: Portico,
    admin: SocketAddr,
}

fn launch(redis: &Redis, name: &str, driver: &str, state: &Path) -> Node {
    let admin_port = free_port();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ drain_timeout: 1s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
cluster: {{ redis: {redis}, on_failure: local, timeout: 200ms, node: {name} }}
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
        state = state.display(),
        redis = redis.url(),
    );
    let p = Portico::start(&yaml, driver);
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    Node { p, admin }
}

fn health(n: &Node) -> String {
    common::admin(n.admin, "GET", "/health", None, None).text()
}

#[test]
fn a_node_started_while_redis_is_away_counts_the_nodes_it_last_saw() {
    for driver in DRIVERS {
        let mut redis = Redis::start();
        let (state1, state2) = (temp_dir("state"), temp_dir("state"));
        let one = launch(&redis, "one", driver, &state1);
        let two = launch(&redis, "two", driver, &state2);
        for n in [&one, &two] {
            assert!(
                eventually(|| {
                    let h = health(n);
                    h.contains(r#""redis":"up""#) && h.contains(r#""nodes":2"#)
                }),
                "{driver}: {}",
                health(n)
            );
        }
        redis.kill();
        assert!(eventually(|| !health(&two).contains(r#""redis":"up""#)));
        assert!(two.p.stop().success());
        let two = launch(&redis, "two", driver, &state2);
        let h = health(&two);
        assert!(h.contains(r#""nodes":2"#), "{driver}: {h}");
        // Its share of the quota: half, not the whole.
        let admitted = (0..LIMIT)
            .filter(|_| get_with_key(two.p.addr, "/q", Some(KEY)).status == 200)
            .count();
        assert_eq!(admitted, LIMIT / 2, "{driver}");
        drop(one);
    }
}
