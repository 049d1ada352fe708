//! What else a cluster shares through a real `redis-server`: API keys created or revoked
//! on any node, cache flushes, the config hash; and `check` with a cluster block.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::*;

const TOKEN: &str = "cluster-admin-token";

struct Node {
    p: Portico,
    admin: SocketAddr,
}

fn config(redis: &str, admin_port: u16, name: &str, origin: SocketAddr, state: &Path) -> String {
    format!(
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
      "GET /k":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
      "GET /items/{{id}}":
        integration: {{ type: http, upstream: origin }}
        cache: {{ ttl: 60s }}
usage_plans:
  open: {{}}
api_keys:
  - {{ name: from-config, value: "config-key-0123456789abcdef", plan: open }}
"#,
        state = state.display()
    )
}

fn start(redis: &Redis, name: &str, driver: &str, origin: SocketAddr) -> Node {
    start_in(redis, name, driver, origin, &temp_dir("state"))
}

fn start_in(redis: &Redis, name: &str, driver: &str, origin: SocketAddr, state: &Path) -> Node {
    let admin_port = free_port();
    let yaml = config(&redis.url(), admin_port, name, origin, state);
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

/// How long until `status` is what `addr` answers `GET /k` with `key` (None: never, 3 s).
fn until_status(addr: SocketAddr, key: &str, status: u16) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if get_with_key(addr, "/k", Some(key)).status == status {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn keys_created_or_revoked_on_one_node_are_honoured_on_every_node_within_a_second() {
    let origin = Origin::fixed(b"item");
    for driver in DRIVERS {
        let mut redis = Redis::start_persistent();
        let a = start(&redis, "a", driver, origin.addr);
        let b = start(&redis, "b", driver, origin.addr);
        let value = "created-key-0123456789abcdef";
        assert_eq!(get_with_key(b.p.addr, "/k", Some(value)).status, 403);
        let r = common::admin(
            a.admin,
            "POST",
            "/api-keys",
            Some(TOKEN),
            Some(&format!(
                r#"{{"name": "new", "plan": "open", "value": "{value}"}}"#
            )),
        );
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        let took = until_status(b.p.addr, value, 200).expect("the key never worked on b");
        assert!(took < Duration::from_secs(1), "{driver}: {took:?} on b");
        // Revoked on b: a created key, then a config key; both stop on a.
        for (name, v) in [
            ("new", value),
            ("from-config", "config-key-0123456789abcdef"),
        ] {
            assert_eq!(get_with_key(a.p.addr, "/k", Some(v)).status, 200);
            let r = common::admin(
                b.admin,
                "DELETE",
                &format!("/api-keys/{name}"),
                Some(TOKEN),
                None,
            );
            assert_eq!(r.status, 204, "{driver}: {}", r.text());
            let took = until_status(a.p.addr, v, 403).expect("the revoked key still works on a");
            assert!(
                took < Duration::from_secs(1),
                "{driver}: {name} revoked after {took:?}"
            );
        }
        // A Redis restart keeps what it acknowledged: a node started after it knows.
        let again = "second-key-0123456789abcdef";
        let r = common::admin(
            b.admin,
            "POST",
            "/api-keys",
            Some(TOKEN),
            Some(&format!(
                r#"{{"name": "again", "plan": "open", "value": "{again}"}}"#
            )),
        );
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        redis.restart();
        let c = start(&redis, "c", driver, origin.addr);
        assert!(
            until_status(c.p.addr, again, 200).is_some(),
            "{driver}: key lost"
        );
        assert_eq!(
            get_with_key(c.p.addr, "/k", Some("config-key-0123456789abcdef")).status,
            403,
            "{driver}: revocation lost"
        );
        drop((a, b, c));
    }
}

#[test]
fn a_cache_flush_on_one_node_empties_the_others() {
    for driver in DRIVERS {
        let origin = Origin::fixed(b"item");
        let redis = Redis::start();
        let a = start(&redis, "a", driver, origin.addr);
        let b = start(&redis, "b", driver, origin.addr);
        let fetches = || origin.requests.load(std::sync::atomic::Ordering::SeqCst);
        for _ in 0..3 {
            assert_eq!(get_with_key(b.p.addr, "/items/1", None).status, 200);
        }
        assert_eq!(fetches(), 1, "{driver}: b caches");
        let r = common::admin(
            a.admin,
            "POST",
            "/cache/flush?api=app&stage=%24default",
            Some(TOKEN),
            None,
        );
        assert_eq!(r.status, 202, "{driver}: {}", r.text());
        let t0 = Instant::now();
        assert!(
            eventually(|| {
                get_with_key(b.p.addr, "/items/1", None);
                fetches() == 2
            }),
            "{driver}: b still serves its cached copy"
        );
        eprintln!("{driver}: flushed on b after {:?}", t0.elapsed());
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{driver}: {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn health_and_metrics_show_the_config_hash_and_check_compares_it() {
    let origin = Origin::fixed(b"item");
    let redis = Redis::start();
    let admin_port = free_port();
    let yaml = config(
        &redis.url(),
        admin_port,
        "a",
        origin.addr,
        &temp_dir("state"),
    );
    let p = Portico::start(&yaml, "epoll");
    let written = std::fs::read_to_string(&p.config).unwrap();
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let health: serde_json::Value =
        serde_json::from_slice(&common::admin(admin, "GET", "/health", None, None).body).unwrap();
    let hash = health["config_hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 16, "{health}");
    let text = metrics_when(admin, |m| m.contains("portico_config_info"));
    assert!(
        text.contains(&format!(
            r#"portico_config_info{{hash="{hash}",node="a"}} 1"#
        )),
        "{text}"
    );
    // The node publishes its hash; `check` on the same file agrees, on another warns.
    assert!(
        eventually(|| check(&written).1.ends_with(": ok\n")),
        "{}",
        check(&written).1
    );
    let (code, out) = check(&format!("{written}\n# edited\n"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: cluster.redis: this file (config hash"),
        "{out}"
    );
    assert!(out.contains(&format!("last published ({hash})")), "{out}");
    drop(p);
    // No Redis at all: valid, with a warning.
    drop(redis);
    let (code, out) = check(&written);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: cluster.redis: cannot reach Redis"),
        "{out}"
    );
}

#[test]
fn cluster_errors_have_key_paths() {
    let (code, out) = check(
        "cluster: { redis: 'http://x', on_failure: maybe, timeout: 0s, node: '', prefix: 'a b', extra: 1 }\n",
    );
    assert_eq!(code, 1, "{out}");
    for want in [
        "cluster.redis: expected redis://host:port",
        "cluster.on_failure: expected one of local, allow, deny",
        "cluster.timeout: must be between 1ms and 5s",
        "cluster.node: must be 1 to 64",
        "cluster.prefix: must be a non-empty word",
        r#"cluster: unknown key "extra""#,
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let (code, out) = check("cluster: { redis: 'redis://127.0.0.1:1', node: 'web|1' }\n");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cluster.node: must be 1 to 64 printable ASCII characters other than |"),
        "{out}"
    );
    let (code, out) = check("cluster: {}\n");
    assert_eq!(code, 1);
    assert!(out.contains(r#"cluster: missing key "redis""#), "{out}");
}

/// A key created through the admin API under a name a config key on another node also
/// has (the config key wins there) is revoked with that name: it must not start working
/// on the node that revoked the config key, nor go on working on the others.
#[test]
fn revoking_a_config_key_removes_a_created_key_of_that_name_on_every_node() {
    let origin = Origin::fixed(b"item");
    const CONFIGURED: &str = "config-key-0123456789abcdef";
    const CREATED: &str = "created-same-name-0123456789";
    const MARKER: &str = "marker-key-0123456789abcdef";
    for driver in DRIVERS {
        let redis = Redis::start();
        // Node a has no config key named from-config; node b has.
        let admin_port = free_port();
        let yaml = config(&redis.url(), admin_port, "a", origin.addr, &temp_dir("state")).replace(
            "api_keys:\n  - { name: from-config, value: \"config-key-0123456789abcdef\", plan: open }\n",
            "api_keys: []\n",
        );
        assert!(yaml.contains("api_keys: []"));
        let a = Portico::start(&yaml, driver);
        let a_admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
        assert!(eventually(|| common::admin(
            a_admin, "GET", "/health", None, None
        )
        .text()
        .contains(r#""redis":"up""#)));
        let b = start(&redis, "b", driver, origin.addr);
        for (name, value) in [("from-config", CREATED), ("marker", MARKER)] {
            let body = format!(r#"{{"name": "{name}", "plan": "open", "value": "{value}"}}"#);
            let r = common::admin(a_admin, "POST", "/api-keys", Some(TOKEN), Some(&body));
            assert_eq!(r.status, 201, "{driver}: {}", r.text());
        }
        // b has seen both created keys once the second one works there.
        until_status(b.p.addr, MARKER, 200).expect("the marker key never worked on b");
        assert_eq!(get_with_key(b.p.addr, "/k", Some(CONFIGURED)).status, 200);
        assert_eq!(get_with_key(b.p.addr, "/k", Some(CREATED)).status, 403);
        assert_eq!(get_with_key(a.addr, "/k", Some(CREATED)).status, 200);

        let r = common::admin(
            b.admin,
            "DELETE",
            "/api-keys/from-config",
            Some(TOKEN),
            None,
        );
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        until_status(a.addr, CREATED, 403).expect("the created key still works on a");
        // Several syncs later, neither value works on either node.
        std::thread::sleep(Duration::from_millis(500));
        for (node, addr) in [("a", a.addr), ("b", b.p.addr)] {
            for v in [CONFIGURED, CREATED] {
                let s = get_with_key(addr, "/k", Some(v)).status;
                assert_eq!(s, 403, "{driver}: {v} on {node}");
            }
        }
        drop((a, b));
    }
}

/// A label value per the Prometheus text format: `\\`, `\"` and `\n` the only escapes, no
/// bare `"`, `\` or newline. Returns the rest of `s` after the closing quote.
fn label_value(s: &str) -> Option<&str> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(&s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, '\\' | '"' | 'n')) => {}
                _ => return None,
            },
            '\n' => return None,
            _ => {}
        }
    }
    None
}

/// Whether `line` is a valid sample line: `name{l="v",...} value` or `name value`.
fn sample_line_ok(line: &str) -> bool {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    if name_end == 0 {
        return false;
    }
    let mut rest = &line[name_end..];
    if let Some(mut labels) = rest.strip_prefix('{') {
        loop {
            if let Some(r) = labels.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = labels.find('=').unwrap_or(0);
            let label = &labels[..eq];
            if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return false;
            }
            let Some(after) = labels[eq + 1..].strip_prefix('"').and_then(label_value) else {
                return false;
            };
            labels = after.strip_prefix(',').unwrap_or(after);
        }
    }
    rest.strip_prefix(' ')
        .is_some_and(|v| v == "+Inf" || v == "NaN" || v.parse::<f64>().is_ok())
}

#[test]
fn label_values_from_config_are_escaped() {
    // A node name may hold any printable ASCII, `"` and `\` included (a newline is refused
    // by check). (API names, which reach labels too, are letters, digits, `_`, `-`, `.`.)
    let origin = Origin::fixed(b"item");
    let redis = Redis::start();
    for driver in DRIVERS {
        let admin_port = free_port();
        let yaml = config(
            &redis.url(),
            admin_port,
            r#"'n"1\x'"#,
            origin.addr,
            &temp_dir("state"),
        );
        let p = Portico::start(&yaml, driver);
        let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
        p.raw(b"GET /k HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let text = metrics_when(admin, |m| {
            m.contains("portico_config_info{") && m.contains("portico_requests_total{")
        });
        assert!(text.contains(r#"node="n\"1\\x"} 1"#), "{driver}: {text}");
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            assert!(
                sample_line_ok(line),
                "{driver}: not a sample line: {line:?}"
            );
        }
    }
}

/// Today's use of the config key, as `GET /usage` on `admin` says (0 without any).
fn config_key_used_today(admin: SocketAddr) -> u64 {
    let r = common::admin(admin, "GET", "/usage?plan=open", Some(TOKEN), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["items"]["from-config"][0][0].as_u64().unwrap_or(0)
}

/// `n` requests with the config key on `node`, each admitted.
fn use_config_key(node: &Node, n: usize, driver: &str) {
    for _ in 0..n {
        let r = get_with_key(node.p.addr, "/k", Some("config-key-0123456789abcdef"));
        assert_eq!(r.status, 200, "{driver}");
    }
}

#[test]
fn a_node_renamed_over_the_same_state_store_counts_its_usage_once() {
    // A container recreated with another host name keeps its state volume: the counts
    // in the store were published under the old name and must not come back under the new.
    let origin = Origin::fixed(b"item");
    for driver in DRIVERS {
        let redis = Redis::start();
        let state = temp_dir("state");
        let a = start_in(&redis, "first-name", driver, origin.addr, &state);
        use_config_key(&a, 3, driver);
        assert_eq!(config_key_used_today(a.admin), 3, "{driver}");
        a.p.stop();
        let b = start_in(&redis, "second-name", driver, origin.addr, &state);
        use_config_key(&b, 1, driver);
        assert_eq!(
            config_key_used_today(b.admin),
            4,
            "{driver}: {}",
            b.p.log_text()
        );
    }
}

#[test]
fn a_node_that_comes_back_with_an_empty_state_store_counts_from_where_redis_is() {
    // Same name, state lost (a pod rescheduled with an empty volume): Redis's count for
    // the old store must not hide the new one's first requests.
    let origin = Origin::fixed(b"item");
    for driver in DRIVERS {
        let redis = Redis::start();
        let a = start_in(&redis, "same-name", driver, origin.addr, &temp_dir("state"));
        use_config_key(&a, 3, driver);
        assert_eq!(config_key_used_today(a.admin), 3, "{driver}");
        a.p.stop();
        let b = start_in(&redis, "same-name", driver, origin.addr, &temp_dir("state"));
        use_config_key(&b, 1, driver);
        assert_eq!(
            config_key_used_today(b.admin),
            4,
            "{driver}: {}",
            b.p.log_text()
        );
    }
}

/// A config key revoked through another node stays refused on a node that reloads its
/// config (which rebuilds the config keys from the file) and on one that restarts while
/// Redis is away: each node keeps the cluster's revocations in its own store. The key
/// worked again on the reloaded node until its next full read of Redis (up to 5 s), and
/// on the restarted one for as long as Redis stayed away.
#[test]
fn a_config_key_revoked_elsewhere_stays_refused_after_a_reload_and_a_restart_without_redis() {
    let origin = Origin::fixed(b"item");
    let key = "config-key-0123456789abcdef";
    for driver in DRIVERS {
        let mut redis = Redis::start();
        let a = start(&redis, "a", driver, origin.addr);
        let state_b = temp_dir("state");
        let b = start_in(&redis, "b", driver, origin.addr, &state_b);
        assert_eq!(get_with_key(b.p.addr, "/k", Some(key)).status, 200);
        let r = common::admin(
            a.admin,
            "DELETE",
            "/api-keys/from-config",
            Some(TOKEN),
            None,
        );
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        assert!(
            until_status(b.p.addr, key, 403).is_some(),
            "{driver}: never revoked on b"
        );
        let r = common::admin(b.admin, "POST", "/reload", Some(TOKEN), None);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        for i in 0..10 {
            let r = get_with_key(b.p.addr, "/k", Some(key));
            assert_eq!(r.status, 403, "{driver}: request {i} after b's reload");
        }
        // A key created through b and revoked through a.
        let made = "made-on-b-0123456789abcdef";
        let body = format!(r#"{{"name": "made", "plan": "open", "value": "{made}"}}"#);
        let r = common::admin(b.admin, "POST", "/api-keys", Some(TOKEN), Some(&body));
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        assert!(until_status(a.p.addr, made, 200).is_some(), "{driver}");
        let r = common::admin(a.admin, "DELETE", "/api-keys/made", Some(TOKEN), None);
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        assert!(until_status(b.p.addr, made, 403).is_some(), "{driver}");
        drop(b);
        redis.kill();
        let admin_port = free_port();
        let yaml = config(&redis.url(), admin_port, "b", origin.addr, &state_b);
        let b = Portico::start(&yaml, driver);
        for k in [key, made] {
            let r = get_with_key(b.addr, "/k", Some(k));
            assert_eq!(r.status, 403, "{driver}: {k} on b restarted without Redis");
        }
        drop((a, b));
    }
}
