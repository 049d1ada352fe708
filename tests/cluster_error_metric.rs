//! `portico_cluster_redis_errors_total` during an outage: each sync tick that cannot
//! reach Redis counts (one every 200 ms). Failed connects were left out, so during a
//! whole outage the count barely moved (once per dropped connection). A real node,
//! a real `redis-server`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::redis::Redis;
use common::*;

fn errors(admin: SocketAddr) -> u64 {
    let text = common::admin(admin, "GET", "/metrics", None, None).text();
    let line = text
        .lines()
        .find(|l| l.starts_with("portico_cluster_redis_errors_total "))
        .unwrap_or_else(|| panic!("{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn every_failed_sync_tick_counts_as_a_redis_error() {
    for driver in DRIVERS {
        let mut redis = Redis::start();
        let admin_port = free_port();
        let yaml = format!(
            r#"{head}apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /x":
        integration: {{ type: mock, status: 200, body: "ok" }}
"#,
            head = common::redis::node_head(
                &redis.url(),
                admin_port,
                None,
                "on_failure: deny, timeout: 50ms, node: a"
            ),
        );
        let p = Portico::start(&yaml, driver);
        let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let health = || common::admin(admin, "GET", "/health", None, None).text();
        assert!(
            eventually(|| health().contains(r#""redis":"up""#)),
            "{}",
            p.log_text()
        );
        redis.kill();
        assert!(eventually(|| health().contains(r#""redis":"down""#)));
        let before = errors(admin);
        std::thread::sleep(Duration::from_secs(2));
        let during = errors(admin) - before;
        // Ten ticks in 2 s; a loaded machine may run a few late.
        assert!(
            during >= 6,
            "{driver}: {during} errors counted in 2 s of outage"
        );
        drop(p);
    }
}
