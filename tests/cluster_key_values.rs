//! What `POST /api-keys` answers in a cluster must be the truth: a revoked config key's
//! value is refused (a leaked value never returns), on the node that revoked it, on
//! another, and before that other has read the revocation; a create Redis refused is
//! not in Redis. Real nodes, a real `redis-server`.

mod common;

use std::net::SocketAddr;

use common::redis::{key_settles, Redis};
use common::*;

const TOKEN: &str = "cluster-admin-token";
const LEAKED: &str = "leaked-ops-value-0123456789abcdef";
const CI: &str = "ci-value-0123456789abcdef";
const REVOKED: &str = "that value belongs to a revoked config key";

struct Node {
    p: Portico,
    admin: SocketAddr,
}

/// A node whose config has the key `ops` and, if `with_ci`, the key `ci`.
fn start(redis: &Redis, name: &str, driver: &str, with_ci: bool) -> Node {
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
api_keys:
  - {{ name: ops, value: {LEAKED}, plan: gold }}
{ci}"#,
        head = common::redis::node_head(
            &redis.url(),
            admin_port,
            Some(TOKEN),
            &format!("on_failure: deny, timeout: 200ms, node: {name}")
        ),
        ci = if with_ci {
            format!("  - {{ name: ci, value: {CI}, plan: gold }}\n")
        } else {
            String::new()
        },
    );
    let p = Portico::start(&yaml, driver);
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    assert!(
        eventually(|| redis_up(admin)),
        "node {name} never reached Redis: {}",
        p.log_text()
    );
    Node { p, admin }
}

fn redis_up(admin: SocketAddr) -> bool {
    common::admin(admin, "GET", "/health", None, None)
        .text()
        .contains(r#""redis":"up""#)
}

fn create(node: &Node, name: &str, value: &str) -> Response {
    let body = format!(r#"{{"name": "{name}", "plan": "gold", "value": "{value}"}}"#);
    common::admin(node.admin, "POST", "/api-keys", Some(TOKEN), Some(&body))
}

/// [`key_settles`] on these nodes.
fn settles(nodes: &[&Node], key: &str, status: u16) -> bool {
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.p.addr).collect();
    key_settles(&addrs, key, status)
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A revoked config key's value was created again through `POST /api-keys` under
/// another name (201) and served on every node, though the revocation is for good.
#[test]
fn a_revoked_config_keys_value_is_refused_on_every_node() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, b) = (
            start(&redis, "a", driver, true),
            start(&redis, "b", driver, false),
        );
        assert!(settles(&[&a, &b], LEAKED, 200), "{driver}: never live");
        let r = common::admin(a.admin, "DELETE", "/api-keys/ops", Some(TOKEN), None);
        assert_eq!(r.status, 204, "{driver}: {}", r.text());
        assert!(settles(&[&a, &b], LEAKED, 403), "{driver}: still served");
        for (node, name) in [(&a, "ops2"), (&b, "ops3"), (&a, "ops")] {
            let r = create(node, name, LEAKED);
            assert_eq!(r.status, 400, "{driver} {name}: {}", r.text());
            assert!(r.text().contains(REVOKED), "{driver}: {}", r.text());
        }

        // `ci` revoked through a a moment ago (b's config lacks it: a reload on its way
        // through the nodes): b has not read the revocation yet (the version left as
        // it was, b rereads the keys every 5 s), and Redis refuses the value.
        assert!(settles(&[&a], CI, 200), "{driver}: ci never live");
        let d = hex(&portico::global::keys::digest(CI.as_bytes()));
        redis.cmd(&["HSET", "portico:revoked", "ci", &d]);
        let r = create(&b, "ci2", CI);
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        assert!(r.text().contains(REVOKED), "{driver}: {}", r.text());
        redis.cmd(&["INCR", "portico:keys:v"]);
        assert!(settles(&[&a, &b], CI, 403), "{driver}: ci still served");
        drop((a, b));
    }
}

/// `keys:v` holding what INCR refuses (written outside Portico): the create script
/// wrote the key before its INCR failed, the admin call answered 503 "the key was not
/// created", and once `keys:v` was fixed every node served it.
#[test]
fn a_create_answered_not_created_never_goes_live() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, b) = (
            start(&redis, "a", driver, true),
            start(&redis, "b", driver, true),
        );
        redis.cmd(&["SET", "portico:keys:v", "not-a-count"]);
        let value = "ghost-value-0123456789abcdef";
        let r = create(&a, "ghost", value);
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        assert!(r.text().contains("not created"), "{driver}: {}", r.text());
        redis.cmd(&["SET", "portico:keys:v", "7"]);
        assert!(eventually(|| redis_up(a.admin) && redis_up(b.admin)));
        assert!(
            settles(&[&a, &b], value, 403),
            "{driver}: the key went live"
        );
        // The name and value are free: created now, it is live everywhere.
        assert_eq!(create(&a, "ghost", value).status, 201, "{driver}");
        assert!(settles(&[&a, &b], value, 200), "{driver}: never live");
        drop((a, b));
    }
}
