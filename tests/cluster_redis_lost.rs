//! A cluster's Redis restarted without persistence (it lost everything it held): the
//! nodes give it their quota counts, usage and flush generations again, so a spent
//! quota stays spent, `GET /usage` shows every node's counts, and a cache flush still
//! reaches every node. Two real nodes, a real `redis-server`, both drivers.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";
const KEY: &str = "quota-key-0123456789abcdef";
const LIMIT: u64 = 30;

struct Node {
    p: Portico,
    admin: SocketAddr,
}

fn start(redis: &Redis, name: &str, driver: &str, origin: SocketAddr) -> Node {
    reached_redis(launch(redis, name, driver, origin, &temp_dir("state")))
}

/// `node` once its health says Redis is up (before that, `on_failure: deny` refuses).
fn reached_redis(node: Node) -> Node {
    assert!(
        eventually(|| common::admin(node.admin, "GET", "/health", None, None)
            .text()
            .contains(r#""redis":"up""#)),
        "a node never reached Redis: {}",
        node.p.log_text()
    );
    node
}

/// A node with its state store in `state`, Redis up or not.
fn launch(redis: &Redis, name: &str, driver: &str, origin: SocketAddr, state: &Path) -> Node {
    let admin_port = free_port();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ drain_timeout: 1s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
cluster: {{ redis: {redis}, on_failure: deny, timeout: 200ms, node: {name} }}
upstreams:
  origin: {{ targets: ["{origin}"] }}
apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /q":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
      "GET /items/{{id}}":
        integration: {{ type: http, upstream: origin }}
        cache: {{ ttl: 60s }}
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

/// `n` requests with the key, spread over the nodes; how many were admitted.
fn spend(nodes: &[&Node], n: usize) -> u64 {
    (0..n)
        .filter(|i| get_with_key(nodes[i % nodes.len()].p.addr, "/q", Some(KEY)).status == 200)
        .count() as u64
}

/// Today's use of the key in the cluster, as `GET /usage` on `admin` says (None while
/// Redis does not answer).
fn used_today(admin: SocketAddr) -> Option<u64> {
    used_today_by(admin, "k1")
}

/// `used_today` of the key named `key`.
fn used_today_by(admin: SocketAddr, key: &str) -> Option<u64> {
    let r = common::admin(admin, "GET", "/usage?plan=daily", Some(TOKEN), None);
    if r.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    Some(v["items"][key][0][0].as_u64().unwrap_or(0))
}

fn flush(admin: SocketAddr) {
    let path = "/cache/flush?api=app&stage=%24default";
    let r = common::admin(admin, "POST", path, Some(TOKEN), None);
    assert_eq!(r.status, 202, "{}", r.text());
}

#[test]
fn a_redis_restarted_empty_gets_quota_counts_usage_and_flush_generations_back() {
    for driver in DRIVERS {
        let origin = Origin::fixed(b"item");
        let fetches = || origin.requests.load(Ordering::SeqCst);
        let mut redis = Redis::start();
        let a = start(&redis, "a", driver, origin.addr);
        let b = start(&redis, "b", driver, origin.addr);
        // Exactly the quota, half on each node: neither has been refused, so neither
        // knows the period is spent, only Redis does.
        assert_eq!(
            spend(&[&a, &b], LIMIT as usize),
            LIMIT,
            "{driver}: the quota"
        );
        // Both nodes' counts are in Redis (each writes its own at its next sync).
        assert!(
            eventually(|| used_today(a.admin) == Some(LIMIT)),
            "{driver}: usage before the restart"
        );
        // Generations Redis will forget: a fresh count starts below them.
        for _ in 0..3 {
            flush(a.admin);
        }
        // b has taken those flushes (message or sync, within a tick) and caches again.
        assert!(
            eventually(|| {
                assert_eq!(get_with_key(b.p.addr, "/items/1", None).status, 200);
                let f = fetches();
                std::thread::sleep(std::time::Duration::from_millis(500));
                assert_eq!(get_with_key(b.p.addr, "/items/1", None).status, 200);
                fetches() == f
            }),
            "{driver}: b never cached"
        );
        // The flushing node flushed its own cache once, and did not take its own
        // message for another node's (which flushed it again, and said so).
        let elsewhere = "cache flushed on another node";
        assert!(b.p.log_text().contains(elsewhere), "{driver}: b never said");
        assert!(
            !a.p.log_text().contains(elsewhere),
            "{driver}: a took its own flush for another's\n{}",
            a.p.log_text()
        );
        let before = fetches();

        redis.restart();
        // Each node notices at its first sync with the new Redis, and says so once it
        // has given Redis its quota counts (what follows asserts the outcome).
        let noticed = |n: &Node| n.p.log_text().contains("Redis lost what it held");
        eventually(|| noticed(&a) && noticed(&b));
        assert!(
            eventually(|| used_today(a.admin) == Some(LIMIT)),
            "{driver}: usage after Redis lost it: {:?}",
            used_today(a.admin),
        );
        assert_eq!(
            spend(&[&a, &b], 10),
            0,
            "{driver}: a spent quota was granted again"
        );
        assert_eq!(get_with_key(b.p.addr, "/items/1", None).status, 200);
        assert_eq!(
            fetches(),
            before,
            "{driver}: b still caches\n{}",
            b.p.log_text()
        );
        flush(a.admin);
        assert!(
            eventually(|| {
                get_with_key(b.p.addr, "/items/1", None);
                fetches() > before
            }),
            "{driver}: b ignored the flush"
        );
    }
}

/// The same loss while the nodes were down: they stop (their counts in their state
/// stores), Redis goes away, they start again without it, and Redis comes back empty.
/// The epoch marker each node last saw is kept in its store, so each still sees the
/// loss and gives Redis its count: the spent quota stays spent (it was granted again).
#[test]
fn a_redis_that_came_back_empty_while_the_nodes_restarted_gets_their_counts() {
    for driver in DRIVERS {
        let origin = Origin::fixed(b"item");
        let mut redis = Redis::start();
        let states = [temp_dir("state-a"), temp_dir("state-b")];
        let a = reached_redis(launch(&redis, "a", driver, origin.addr, &states[0]));
        let b = reached_redis(launch(&redis, "b", driver, origin.addr, &states[1]));
        assert!(eventually(|| used_today(a.admin) == Some(0)), "{driver}");
        assert_eq!(spend(&[&a, &b], LIMIT as usize), LIMIT, "{driver}");
        assert!(
            eventually(|| used_today(a.admin) == Some(LIMIT)),
            "{driver}: usage before the restart"
        );
        redis.kill();
        assert!(a.p.stop().success() && b.p.stop().success(), "{driver}");
        let a = launch(&redis, "a", driver, origin.addr, &states[0]);
        let b = launch(&redis, "b", driver, origin.addr, &states[1]);
        redis.restart();
        let noticed = |n: &Node| n.p.log_text().contains("Redis lost what it held");
        assert!(
            eventually(|| noticed(&a) && noticed(&b)),
            "{driver}: a node did not see the loss\n{}",
            a.p.log_text()
        );
        assert_eq!(
            spend(&[&a, &b], 10),
            0,
            "{driver}: a spent quota was granted again"
        );
    }
}

/// A key revoked before a node restarted has no counter in the node's new run, only
/// its counts in the node's state store: when Redis then comes back empty, the node
/// gives Redis those too (they were lost: the cluster's usage of the key said 0).
#[test]
fn usage_of_a_key_revoked_before_a_node_restarted_survives_redis_coming_back_empty() {
    let origin = Origin::fixed(b"item");
    let mut redis = Redis::start();
    let state = temp_dir("state-a");
    let a = reached_redis(launch(&redis, "a", "epoll", origin.addr, &state));
    let value = "gone-key-0123456789abcdef";
    let body = format!(r#"{{"name": "gone", "plan": "daily", "value": "{value}"}}"#);
    let r = common::admin(a.admin, "POST", "/api-keys", Some(TOKEN), Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    for _ in 0..5 {
        assert_eq!(get_with_key(a.p.addr, "/q", Some(value)).status, 200);
    }
    let r = common::admin(a.admin, "DELETE", "/api-keys/gone", Some(TOKEN), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(eventually(|| used_today_by(a.admin, "gone") == Some(5)));
    assert!(a.p.stop().success());
    let a = reached_redis(launch(&redis, "a", "epoll", origin.addr, &state));
    assert_eq!(used_today_by(a.admin, "gone"), Some(5));
    redis.restart();
    assert!(
        eventually(|| a.p.log_text().contains("Redis lost what it held")),
        "a did not see the loss\n{}",
        a.p.log_text()
    );
    assert!(
        eventually(|| used_today_by(a.admin, "gone") == Some(5)),
        "usage of the revoked key after Redis lost it: {:?}",
        used_today_by(a.admin, "gone")
    );
}

/// Redis at its maxmemory under a `volatile-*` policy evicts the quota counters first
/// (they expire; the `epoch` marker that reveals a loss does not), and the quota went on
/// from zero unsaid. The node warns about such a policy and says at error when keys were
/// evicted.
#[test]
fn a_policy_that_evicts_and_keys_evicted_are_said() {
    let origin = Origin::fixed(b"ok");
    for driver in DRIVERS {
        let redis = Redis::start();
        redis.cmd(&["CONFIG", "SET", "maxmemory", "1gb"]);
        redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
        let a = start(&redis, "a", driver, origin.addr);
        let within = |secs: u64, what: &str| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            while std::time::Instant::now() < deadline {
                if a.p.log_text().contains(what) {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            false
        };
        assert!(
            within(10, "maxmemory-policy can evict"),
            "{driver}: {}",
            a.p.log_text()
        );
        assert_eq!(spend(&[&a], 3), 3, "{driver}");
        assert!(!a.p.log_text().contains("Redis evicted keys"), "{driver}");
        // Below what Redis holds: its next write evicts every key that expires.
        redis.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
        std::thread::sleep(std::time::Duration::from_millis(500));
        redis.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        assert!(
            within(15, "Redis evicted keys"),
            "{driver}: {}",
            a.p.log_text()
        );
    }
}
