//! API keys created through different nodes of a cluster: one value is one key, as on
//! a single node, also when two nodes create it at the same time or before they read
//! each other's keys from Redis (else revoking one name left the value working through
//! the other). Real nodes, a real `redis-server`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::redis::{key_settles, Redis};
use common::*;

const TOKEN: &str = "cluster-admin-token";
const TAKEN: &str = "that value is already in use by another key";

struct Node {
    p: Portico,
    admin: SocketAddr,
}

fn start(redis: &Redis, name: &str, driver: &str) -> Node {
    start_on(&redis.url(), name, driver)
}

/// A node on the Redis at `url` (a user and password in it, say).
fn start_on(url: &str, name: &str, driver: &str) -> Node {
    let admin_port = free_port();
    let yaml = format!(
        r#"{head}apis:
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
        head = common::redis::node_head(
            url,
            admin_port,
            Some(TOKEN),
            &format!("on_failure: deny, timeout: 200ms, node: {name}")
        ),
    );
    let p = Portico::start(&yaml, driver);
    up(p, SocketAddr::from(([127, 0, 0, 1], admin_port)), name)
}

/// `p` once it has reached Redis.
fn up(p: Portico, admin: SocketAddr, name: &str) -> Node {
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

/// [`key_settles`] on these nodes.
fn settles(nodes: &[&Node], key: &str, status: u16) -> bool {
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.p.addr).collect();
    key_settles(&addrs, key, status)
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

/// Lets the user `limited` write every key but the API keys' (`keys`, `keys:v`,
/// `keys:d`, `revoked`): Redis then answers a revocation with NOPERM, and a node's
/// syncs (heartbeat, usage, leases) go on.
fn refuse_key_writes(redis: &Redis) {
    let args = ["ACL", "SETUSER", "limited", "resetkeys", "%R~*"];
    redis.cmd(&[&args[..], &["~portico:[^kr]*", "~portico:rl:*"]].concat());
}

/// A revocation Redis answered with an error (NOPERM from an ACL here; OOM, a
/// read-only replica) was dropped by the side thread, and the next read of Redis's keys
/// brought the revoked key back on the very node that had answered "revoked on this
/// node; … writes it to Redis as soon as Redis answers". It stays pending now: the
/// node keeps refusing the key, says so once, and writes it once Redis takes it.
#[test]
fn a_revocation_redis_refuses_is_kept_until_redis_takes_it() {
    for driver in DRIVERS {
        let redis = Redis::start();
        redis.cmd(&[
            "ACL", "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all",
        ]);
        let url = format!("redis://limited:pw@127.0.0.1:{}", redis.port);
        let (a, b) = (start_on(&url, "a", driver), start(&redis, "b", driver));
        let value = "victim-value-0123456789abcdef";
        let r = create(&a, "victim", "gold", value);
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        assert!(settles(&[&a, &b], value, 200), "{driver}: never live");

        refuse_key_writes(&redis);
        let r = common::admin(a.admin, "DELETE", "/api-keys/victim", Some(TOKEN), None);
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        assert!(r.text().contains("revoked on this node"), "{}", r.text());
        // Another key created through b makes a read Redis's keys again, which still
        // hold the victim: a refuses it all the same.
        let marker = "marker-value-0123456789abcdef";
        assert_eq!(create(&b, "marker", "gold", marker).status, 201);
        assert!(
            settles(&[&a, &b], marker, 200),
            "{driver}: marker never live"
        );
        assert!(
            settles(&[&a], value, 403),
            "{driver}: the revoked key came back"
        );
        assert_eq!(get_with_key(b.p.addr, "/k", Some(value)).status, 200);
        let refused = |log: &str| log.matches("Redis refused a key change").count();
        assert_eq!(refused(&a.p.log_text()), 1, "{driver}: {}", a.p.log_text());

        // Redis takes it again: the revocation reaches every node.
        redis.cmd(&["ACL", "SETUSER", "limited", "allkeys"]);
        assert!(
            settles(&[&a, &b], value, 403),
            "{driver}: b still serves it"
        );
        assert!(
            a.p.log_text()
                .contains("key change written to Redis, which had refused it"),
            "{driver}: {}",
            a.p.log_text()
        );
        assert_eq!(refused(&a.p.log_text()), 1, "{driver}: said more than once");
    }
}

/// A revocation Redis had not taken when its node stopped was kept in memory only:
/// lost, the key came back from Redis on that node when it started again, and the
/// other nodes served it for good. The state store keeps it now: the node says so at
/// stop, refuses the key after it starts, and writes it once Redis takes it.
#[test]
fn a_revocation_redis_has_not_taken_survives_a_restart_of_its_node() {
    for driver in DRIVERS {
        let redis = Redis::start();
        redis.cmd(&[
            "ACL", "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all",
        ]);
        let url = format!("redis://limited:pw@127.0.0.1:{}", redis.port);
        let (mut a, b) = (start_on(&url, "a", driver), start(&redis, "b", driver));
        let value = "restart-victim-0123456789abcdef";
        assert_eq!(create(&a, "victim", "gold", value).status, 201);
        assert!(settles(&[&a, &b], value, 200), "{driver}: never live");

        refuse_key_writes(&redis);
        let r = common::admin(a.admin, "DELETE", "/api-keys/victim", Some(TOKEN), None);
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        a.p.signal(15);
        a.p.wait_exit(Duration::from_secs(40));
        let log = a.p.log_text();
        assert!(
            log.contains("stopping before Redis took a key change; the state store keeps it"),
            "{driver}: {log}"
        );
        // Started again while Redis still refuses the write: a refuses the key, also
        // after reading Redis's keys again (a key created through b makes it).
        let (config, port) = (
            std::fs::read_to_string(&a.p.config).unwrap(),
            a.p.addr.port(),
        );
        a = up(Portico::start_at(&config, driver, port), a.admin, "a");
        let marker = "restart-marker-0123456789abcdef";
        assert_eq!(create(&b, "marker", "gold", marker).status, 201);
        assert!(
            settles(&[&a, &b], marker, 200),
            "{driver}: marker never live"
        );
        assert!(
            settles(&[&a], value, 403),
            "{driver}: the revoked key came back"
        );

        // Redis takes it again: the revocation reaches every node.
        redis.cmd(&["ACL", "SETUSER", "limited", "allkeys"]);
        assert!(
            settles(&[&a, &b], value, 403),
            "{driver}: b still serves it"
        );
    }
}

/// Nodes a and b, and a key created through a that both serve.
fn two_nodes_with_a_live_key(redis: &Redis, driver: &str, name: &str, value: &str) -> (Node, Node) {
    let (a, b) = (start(redis, "a", driver), start(redis, "b", driver));
    let r = create(&a, name, "gold", value);
    assert_eq!(r.status, 201, "{driver}: {}", r.text());
    assert!(settles(&[&a, &b], value, 200), "{driver}: never live");
    (a, b)
}

/// At `maxmemory` (`noeviction`) Redis refuses writes with OOM, but takes a delete: a
/// revocation was answered 204 ("Redis has the revocation"), and the other nodes served
/// the key on until Redis took writes again, since each sync failed at its first write
/// (the heartbeat) before it read the keys. The keys are read all the same now.
#[test]
fn a_revocation_reaches_the_other_nodes_while_redis_refuses_writes() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let value = "oom-value-0123456789abcdef";
        let (a, b) = two_nodes_with_a_live_key(&redis, driver, "oom", value);

        redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
        redis.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
        // Redis refuses the syncs' writes: both nodes see it.
        for n in [&a, &b] {
            assert!(
                eventually(|| common::admin(n.admin, "GET", "/health", None, None)
                    .text()
                    .contains("OOM")),
                "{driver}: Redis never refused a write"
            );
        }
        let r = common::admin(a.admin, "DELETE", "/api-keys/oom", Some(TOKEN), None);
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        assert!(
            settles(&[&a, &b], value, 403),
            "{driver}: b served the revoked key while Redis refused writes"
        );
        redis.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    }
}

/// Redis refusing every write (an ACL without `@write`, a read-only replica) fails each
/// sync at its first write, before the queued revocation is tried: the keys read after
/// such a sync brought the revoked key back on the very node that revoked it.
#[test]
fn a_revocation_stays_on_its_node_while_redis_refuses_every_write() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let value = "nowrite-value-0123456789abcdef";
        let (a, b) = two_nodes_with_a_live_key(&redis, driver, "nowrite", value);

        redis.cmd(&["ACL", "SETUSER", "default", "-@write"]);
        let r = common::admin(a.admin, "DELETE", "/api-keys/nowrite", Some(TOKEN), None);
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        assert!(r.text().contains("revoked on this node"), "{}", r.text());
        // Several syncs (every 200 ms) fail and read the keys meanwhile.
        std::thread::sleep(Duration::from_millis(1000));
        assert!(
            settles(&[&a], value, 403),
            "{driver}: the revoking node took the key back"
        );
        redis.cmd(&["ACL", "SETUSER", "default", "+@all"]);
        assert!(
            settles(&[&a, &b], value, 403),
            "{driver}: the revocation never reached b"
        );
    }
}
