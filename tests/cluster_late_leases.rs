//! A lease Redis answers after `cluster.timeout` (a stall: SIGSTOP here) still ran in
//! Redis: its counter went up by the grant. The node dropped the reply, so for a quota
//! those tokens were lost for the whole period (six 150 ms stalls with `timeout: 50ms`
//! lost 34 of a quota's 250). A late reply is deposited now: the quota admits exactly
//! its limit. A real node, a real `redis-server`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";
const KEY: &str = "late-lease-key-0123456789abcdef";
const QUOTA: usize = 1000;

fn start(redis: &Redis, driver: &str) -> (Portico, SocketAddr) {
    let admin_port = free_port();
    let yaml = format!(
        r#"{head}apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /q":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  daily: {{ quota: {{ limit: {QUOTA}, period: day }} }}
api_keys:
  - {{ name: k, value: {KEY}, plan: daily }}
"#,
        head = common::redis::node_head(
            &redis.url(),
            admin_port,
            Some(TOKEN),
            "on_failure: deny, timeout: 50ms, node: a"
        ),
    );
    let p = Portico::start(&yaml, driver);
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    assert!(
        eventually(|| redis_up(admin)),
        "never reached Redis: {}",
        p.log_text()
    );
    (p, admin)
}

fn redis_up(admin: SocketAddr) -> bool {
    common::admin(admin, "GET", "/health", None, None)
        .text()
        .contains(r#""redis":"up""#)
}

/// Whether `/q` admitted one request (429 is the quota, or `deny` while Redis stalls).
fn admitted(p: &Portico) -> bool {
    match get_with_key(p.addr, "/q", Some(KEY)).status {
        200 => true,
        429 => false,
        s => panic!("unexpected {s}"),
    }
}

#[test]
fn a_quota_admits_exactly_its_limit_across_redis_stalls() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (p, admin) = start(&redis, driver);
        let mut ok = 0;
        for _ in 0..6 {
            // Some admitted while Redis answers (the node leases chunks of 50), then
            // the rest of what the node holds: its refill is sent into the stall and
            // answered only when Redis resumes.
            for _ in 0..30 {
                ok += usize::from(admitted(&p));
            }
            redis.signal(19); // SIGSTOP
            let t0 = Instant::now();
            for _ in 0..200 {
                if !admitted(&p) {
                    break;
                }
                ok += 1;
            }
            std::thread::sleep(Duration::from_millis(150).saturating_sub(t0.elapsed()));
            redis.signal(18); // SIGCONT
            assert!(eventually(|| redis_up(admin)), "{driver}: {}", p.log_text());
        }
        assert!(ok < QUOTA, "{driver}: {ok} admitted during the stalls");
        // Spend the rest: every token Redis counted is admitted, and no more.
        let mut refused = 0;
        while refused < 20 {
            if admitted(&p) {
                ok += 1;
                refused = 0;
            } else {
                refused += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let counted: String = redis_get(&redis, "portico:q:daily:k:*");
        assert_eq!(ok, QUOTA, "{driver}: Redis counted {counted}");
        drop(p);
    }
}

/// The value of the one key matching `pattern`.
fn redis_get(redis: &Redis, pattern: &str) -> String {
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg(pattern).query(&mut con).unwrap();
    let values: Vec<String> = keys
        .iter()
        .map(|k| ::redis::cmd("GET").arg(k).query(&mut con).unwrap())
        .collect();
    format!("{keys:?} = {values:?}")
}
