//! Usage counts in Redis that are no count (changed by hand or by another program
//! sharing the Redis). One in this node's own field failed its usage write, and with it
//! every sync: the breaker stayed open, the whole node on `on_failure`, until someone
//! fixed the field. One in another node's field made every `GET /usage` of the plan 503.
//! A real node, a real `redis-server`.

mod common;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";
const KEY: &str = "usage-key-0123456789abcdefghij";

fn config(redis: &str, admin: u16) -> String {
    format!(
        r#"{head}apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /q":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  gold: {{}}
api_keys:
  - {{ name: k, value: "{KEY}", plan: gold }}
"#,
        head = common::redis::node_head(
            redis,
            admin,
            Some(TOKEN),
            "on_failure: deny, timeout: 200ms, node: n1"
        ),
    )
}

fn hgetall(redis: &Redis, hash: &str) -> Vec<(String, String)> {
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    ::redis::cmd("HGETALL").arg(hash).query(&mut con).unwrap()
}

#[test]
fn a_usage_count_that_is_no_count_fails_no_sync_and_no_usage_call() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let day = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        let hash = format!("portico:usage:gold:{day}");
        let admin = free_port();
        let p = Portico::start(&config(&redis.url(), admin), driver);
        let admin = SocketAddr::from(([127, 0, 0, 1], admin));
        let health = || common::admin(admin, "GET", "/health", None, None).text();
        assert!(
            eventually(|| health().contains(r#""redis":"up""#)),
            "{}",
            p.log_text()
        );
        for _ in 0..3 {
            assert_eq!(get_with_key(p.addr, "/q", Some(KEY)).status, 200);
        }
        // This node's field, once written (`k|n1~<random>`).
        let own = || {
            hgetall(&redis, &hash)
                .into_iter()
                .find(|(f, _)| f.starts_with("k|n1~"))
        };
        assert!(
            eventually(|| own().is_some_and(|(_, n)| n == "3")),
            "{driver}"
        );
        let field = own().unwrap().0;
        redis.cmd(&["HSET", &hash, &field, "abc"]);
        redis.cmd(&["HSET", &hash, "k|ghost~00000000", "1.5"]);
        assert_eq!(get_with_key(p.addr, "/q", Some(KEY)).status, 200);
        // The next sync replaces it with this node's count, and says so.
        assert!(
            eventually(|| own().is_some_and(|(_, n)| n == "4")),
            "{driver}: {:?} {}",
            own(),
            p.log_text()
        );
        assert!(p.log_text().contains("were no count"), "{}", p.log_text());
        assert!(
            health().contains(r#""redis":"up""#),
            "{driver}: {}",
            health()
        );
        assert!(!p.log_text().contains("breaker open"), "{}", p.log_text());
        // The other node's bad field is left out of the cluster's usage, said.
        let r = common::admin(admin, "GET", "/usage?plan=gold&key=k", Some(TOKEN), None);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["items"]["k"][0][0].as_u64(), Some(4), "{}", r.text());
        assert!(p.log_text().contains("left out"), "{}", p.log_text());
        p.stop();
    }
}
