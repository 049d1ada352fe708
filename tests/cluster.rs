//! Several nodes sharing limits and quotas through a real `redis-server`: two real
//! portico processes with the same config, real requests, under both drivers; and
//! Redis killed mid-load.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";
const K1: &str = "cluster-key-0123456789abcdef";
const RATE: f64 = 200.0;

/// One node of a cluster: every node gets the same file but its own name, admin port
/// and state directory (in production: the same file and the host name).
pub struct Node {
    pub p: Portico,
    pub admin: SocketAddr,
}

pub fn node_config(redis: &str, on_failure: &str, admin_port: u16, name: &str) -> String {
    let state = temp_dir("state");
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ drain_timeout: 2s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
cluster:
  redis: {redis}
  on_failure: {on_failure}
  timeout: 1s
  node: {name}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /limited":
        integration: {{ type: mock, status: 200, body: "ok" }}
        throttle: {{ rate: {RATE}, burst: 100 }}
      "GET /closed":
        integration: {{ type: mock, status: 200, body: "ok" }}
        throttle: {{ rate: 0, burst: 5 }}
      "GET /q":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  daily: {{ quota: {{ limit: 50, period: day }} }}
  open: {{}}
api_keys:
  - {{ name: k1, value: "{K1}", plan: daily }}
"#,
        state = state.display()
    )
}

pub fn start_node(redis: &str, on_failure: &str, driver: &str, name: &str) -> Node {
    start_node_with(redis, on_failure, driver, name, |yaml| yaml)
}

/// `start_node` with the config edited by `edit` first.
pub fn start_node_with(
    redis: &str,
    on_failure: &str,
    driver: &str,
    name: &str,
    edit: impl Fn(String) -> String,
) -> Node {
    let admin_port = free_port();
    let p = Portico::start(
        &edit(node_config(redis, on_failure, admin_port, name)),
        driver,
    );
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    // Wait until the node has reached Redis (its breaker closed).
    assert!(
        eventually(|| {
            let r = common::admin(admin, "GET", "/health", None, None);
            r.text().contains(r#""redis":"up""#)
        }),
        "node {name} never reached Redis: {}",
        p.log_text()
    );
    Node { p, admin }
}

/// Waits until every node counts `n` live nodes (`local` divides by it).
pub fn wait_nodes(nodes: &[&Node], n: u32) {
    for node in nodes {
        assert!(
            eventually(|| {
                let r = common::admin(node.admin, "GET", "/health", None, None);
                r.text().contains(&format!(r#""nodes":{n}"#))
            }),
            "a node never saw {n} nodes"
        );
    }
}

/// `conns` keep-alive connections to each address send `path` as fast as answered for
/// `run`; returns (admitted, elapsed seconds, slowest answer).
fn hammer(addrs: &[SocketAddr], conns: usize, path: &str, run: Duration) -> (u64, f64, Duration) {
    let admitted = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(addrs.len() * conns + 1));
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nx-api-key: {K1}\r\n\r\n");
    let threads: Vec<_> = addrs
        .iter()
        .flat_map(|a| std::iter::repeat_n(*a, conns))
        .map(|addr| {
            let (admitted, slowest, start) = (admitted.clone(), slowest.clone(), start.clone());
            let request = request.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                start.wait();
                let end = Instant::now() + run;
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let r = c.send(request.as_bytes());
                    slowest.fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                    match r.status {
                        200 => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        429 => {}
                        s => panic!("unexpected status {s}: {}", r.text()),
                    }
                }
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    (
        admitted.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
        Duration::from_micros(slowest.load(Ordering::Relaxed)),
    )
}

/// Sends `n` requests for `/q` with K1, alternating between the nodes, each on its own
/// connection; returns how many were admitted.
fn spend(addrs: &[SocketAddr], n: usize) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let r = get_with_key(addrs[i % addrs.len()], "/q", Some(K1));
        match r.status {
            200 => ok += 1,
            429 => assert_eq!(r.json_message(), "Limit Exceeded"),
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    ok
}

/// Today's cluster-wide usage of k1, as `GET /usage` on `admin` says.
fn used_today(admin: SocketAddr) -> u64 {
    let r = common::admin(admin, "GET", "/usage?plan=daily&key=k1", Some(TOKEN), None);
    assert_eq!(r.status, 200, "{}", r.text());
    usage_of_k1(&r.body)
}

/// The same, or None while the node answers 503 (its Redis connection not back yet).
fn used_today_once_reconnected(admin: SocketAddr) -> Option<u64> {
    let r = common::admin(admin, "GET", "/usage?plan=daily&key=k1", Some(TOKEN), None);
    match r.status {
        200 => Some(usage_of_k1(&r.body)),
        503 => None,
        s => panic!("unexpected {s}: {}", r.text()),
    }
}

fn usage_of_k1(body: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["items"]["k1"][0][0].as_u64().unwrap_or(0)
}

/// The stated bound (README, Running a cluster): a window never admits more than the
/// limit across the cluster, so over `t` seconds the cluster admits at most
/// `rate × (t + 1)`; leased tokens stranded on a node at a window's end are the only
/// under-admission.
#[test]
fn a_shared_route_limit_holds_across_two_nodes_under_load() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let a = start_node(&redis.url(), "deny", driver, "a");
        let b = start_node(&redis.url(), "deny", driver, "b");
        let (admitted, t, slowest) =
            hammer(&[a.p.addr, b.p.addr], 4, "/limited", Duration::from_secs(3));
        let expected = RATE * t;
        let rate = admitted as f64 / t;
        eprintln!("{driver}: {admitted} admitted in {t:.2}s = {rate:.0}/s; slowest {slowest:?}");
        assert!(
            admitted as f64 <= expected * 1.05 + RATE,
            "{driver}: {admitted} admitted in {t:.2}s, more than rate×t +5% + one window"
        );
        assert!(
            admitted as f64 >= expected * 0.95 - RATE,
            "{driver}: {admitted} admitted in {t:.2}s: far below the shared rate"
        );
        // One node alone would have admitted the whole rate by itself: proof the two
        // share, not just each enforce 200/s.
        let text = metrics_when(a.admin, |m| m.contains("portico_cluster_leases_total"));
        assert!(text.contains("portico_cluster_breaker_open 0"), "{text}");
        assert!(text.contains("portico_cluster_nodes 2"), "{text}");
        // `rate: 0` blocks on every node, with no time to come back at.
        for addr in [a.p.addr, b.p.addr] {
            let r = send_to(addr, b"GET /closed HTTP/1.1\r\nHost: t\r\n\r\n");
            assert_eq!(r.status, 429, "{driver}: {}", r.text());
            assert_eq!(r.header("retry-after"), None, "{driver}: {:?}", r.headers);
        }
    }
}

#[test]
fn a_quota_of_50_admits_exactly_50_across_nodes_and_usage_is_the_clusters() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let a = start_node(&redis.url(), "deny", driver, "a");
        let b = start_node(&redis.url(), "deny", driver, "b");
        let addrs = [a.p.addr, b.p.addr];
        assert_eq!(spend(&addrs, 70), 50, "{driver}: exactly the quota");
        // Either node's admin API gives the cluster's figure (the other node's counts
        // reach Redis at its next sync, within 200 ms).
        assert!(
            eventually(|| used_today(a.admin) == 50),
            "{driver}: usage on a"
        );
        assert_eq!(used_today(b.admin), 50, "{driver}: usage on b");
        // A third node joining later knows the quota is spent.
        let c = start_node(&redis.url(), "deny", driver, "c");
        assert_eq!(spend(&[c.p.addr], 3), 0, "{driver}: node c");
    }
}

/// A Redis timeout of 100 ms, for the test of an outage. The other tests keep
/// `node_config`'s second: they count tokens, and on a busy machine three leases in a
/// row slower than 100 ms opened the breaker mid-test (`deny` then refused what Redis
/// would have granted: 151 of a quota's 196).
fn quick_timeout(yaml: String) -> String {
    replaced(yaml, "timeout: 1s", "timeout: 100ms")
}

/// `yaml` with `from` made `to`; fails loudly when `node_config` no longer has `from`.
fn replaced(yaml: String, from: &str, to: &str) -> String {
    assert!(yaml.contains(from), "node_config has no `{from}` any more");
    yaml.replace(from, to)
}

/// Redis (fsyncing every write) is killed while two nodes serve: no request waits
/// longer than the Redis timeout (plus scheduling), the policy applies (`local`: each
/// node admits until its own count reaches quota ÷ 2, plus tokens it had leased), and
/// once Redis is back — with everything it acknowledged — the usage counted meanwhile
/// reaches it exactly once and the quota counts what was admitted without it.
#[test]
fn redis_killed_mid_load_applies_the_policy_and_reconciles_after() {
    for driver in DRIVERS {
        let mut redis = Redis::start_persistent();
        let a = start_node_with(&redis.url(), "local", driver, "a", quick_timeout);
        let b = start_node_with(&redis.url(), "local", driver, "b", quick_timeout);
        wait_nodes(&[&a, &b], 2);
        let addrs = [a.p.addr, b.p.addr];
        assert_eq!(spend(&addrs, 10), 10, "{driver}: before the outage");
        redis.kill();
        let t0 = Instant::now();
        // `local`: each node may admit up to 50 ÷ 2 of the period on its own count.
        let during = spend(&addrs, 60);
        eprintln!("{driver}: {during} admitted while Redis was down");
        // Quota chunks of 2 (50 ÷ 20): a node can hold up to two leases' worth.
        assert!(
            (40..=48).contains(&during),
            "{driver}: {during}: 25 per node (10 spent before), plus leased tokens"
        );
        let (_, _, slowest) = hammer(&addrs, 2, "/limited", Duration::from_millis(500));
        assert!(
            slowest < Duration::from_secs(1),
            "{driver}: a request waited {slowest:?} on a dead Redis"
        );
        eprintln!("{driver}: outage part took {:?}", t0.elapsed());
        // Admin calls that need Redis say so.
        let usage = common::admin(a.admin, "GET", "/usage?plan=daily", Some(TOKEN), None);
        assert_eq!(usage.status, 503, "{driver}: {}", usage.text());
        let body = r#"{"name": "during", "plan": "open"}"#;
        let created = common::admin(b.admin, "POST", "/api-keys", Some(TOKEN), Some(body));
        assert_eq!(created.status, 503, "{driver}: {}", created.text());
        redis.restart();
        // Back: the counts kept in memory reach Redis, once. Until the node has
        // reconnected, admin calls that need Redis still answer 503.
        let total = 10 + during as u64;
        assert!(
            eventually(|| used_today_once_reconnected(a.admin) == Some(total)),
            "{driver}: usage after Redis returned: {:?} of {total}",
            used_today_once_reconnected(a.admin)
        );
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            used_today(b.admin),
            total,
            "{driver}: nothing counted twice"
        );
        // The quota Redis counts includes what was admitted without it.
        assert_eq!(
            spend(&addrs, 6),
            0,
            "{driver}: the quota is spent cluster-wide"
        );
    }
}

/// The nodes' config with a quota of 200 a day.
fn quota_of_200(yaml: String) -> String {
    replaced(yaml, "limit: 50, period: day", "limit: 200, period: day")
}

#[test]
fn a_stopped_node_gives_back_the_quota_tokens_it_did_not_spend() {
    // 200 a day: a node leases 10 at a time. Four nodes in turn each admit one request
    // and stop; what they leased and did not spend is the key's again.
    let redis = Redis::start();
    for i in 0..4 {
        let node = start_node_with(
            &redis.url(),
            "deny",
            "epoll",
            &format!("n{i}"),
            quota_of_200,
        );
        assert_eq!(get_with_key(node.p.addr, "/q", Some(K1)).status, 200);
        node.p.stop();
    }
    let node = start_node_with(&redis.url(), "deny", "epoll", "last", quota_of_200);
    assert_eq!(spend(&[node.p.addr], 200), 196, "{}", node.p.log_text());
    assert_eq!(used_today(node.admin), 200);
}

#[test]
fn a_killed_node_strands_at_most_a_chunk_and_a_half_of_a_quota() {
    // 200 a day: chunks of 10. After 5 admissions a node has 5 tokens left and leases the
    // next chunk before they are spent: SIGKILLed then, it strands 15 (the README's
    // bound), not one chunk at most.
    let redis = Redis::start();
    let a = start_node_with(&redis.url(), "deny", "epoll", "a", quota_of_200);
    for _ in 0..5 {
        assert_eq!(get_with_key(a.p.addr, "/q", Some(K1)).status, 200);
    }
    std::thread::sleep(Duration::from_millis(500));
    a.p.kill9();
    let b = start_node_with(&redis.url(), "deny", "epoll", "b", quota_of_200);
    assert_eq!(spend(&[b.p.addr], 250), 200 - 5 - 15, "{}", b.p.log_text());
}

/// A reload that moves a quota to another period counts, in a cluster, what the nodes
/// admitted in that period's days before: each gives Redis's counter of the new period
/// its own count. The new period's counter started empty, and day → week admitted a
/// whole week's limit again. On a Monday the week's counter is the day's (both start
/// today): it has the count already, and given it again it refused the week's last 20.
#[test]
fn a_quota_moved_to_another_period_by_a_reload_keeps_the_clusters_count() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let a = start_node(&redis.url(), "deny", driver, "a");
        let b = start_node(&redis.url(), "deny", driver, "b");
        let addrs = [a.p.addr, b.p.addr];
        assert_eq!(spend(&addrs, 30), 30, "{driver}");
        for node in [&a, &b] {
            let text = std::fs::read_to_string(&node.p.config).unwrap();
            let weekly = text.replace("limit: 50, period: day", "limit: 50, period: week");
            assert_ne!(text, weekly);
            std::fs::write(&node.p.config, weekly).unwrap();
            let r = common::admin(node.admin, "POST", "/reload", Some(TOKEN), None);
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
        }
        // Today is in the new week: 30 of its 50 are used.
        assert_eq!(spend(&addrs, 40), 20, "{driver}: the week's quota");
    }
}
