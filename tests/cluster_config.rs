//! `cluster.redis` as `check` and `run` see it: an address redis-rs cannot use is an
//! error at its key path (it passed, and the node served with Redis down for good),
//! without the password in the message; the forms redis-rs takes pass.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn with_redis(url: &str) -> String {
    format!("cluster: {{ redis: '{url}', node: n1 }}\n")
}

#[test]
fn an_unusable_redis_address_is_an_error_at_its_key_path() {
    for url in [
        "redis://127.0.0.1:notaport",
        "redis://127.0.0.1:99999",
        "redis://127.0.0.1:6379/abc",
        "redis://:sec/ret@127.0.0.1:6379",
        "redis://127.0.0.1:0",
        "redis://a host:6379",
        "redis://u:sec@ret@127.0.0.1:6379",
        "redis://admin:2024#Secret@127.0.0.1:6379",
        "redis://localhost:1?Secret@127.0.0.1:6379",
    ] {
        let (code, out) = check(&with_redis(url));
        assert_eq!(code, 1, "{url}: {out}");
        assert!(out.contains("cluster.redis: "), "{url}: {out}");
        assert!(
            !out.contains("sec/ret") && !out.contains("ret@") && !out.contains("Secret"),
            "{url}: {out}"
        );
    }
    let (_, out) = check(&with_redis("redis://:sec/ret@127.0.0.1:6379"));
    assert!(out.contains("percent-encoded"), "{out}");
}

/// An address that does not decode (or none) hides none of its siblings' errors.
#[test]
fn a_redis_value_that_does_not_decode_leaves_the_other_errors_reported() {
    let rest = "on_failure: sometimes, timeout: 9s, node: 'a|b'";
    for redis in [
        "redis: [1], ",
        "redis: '${env:PORTICO_TEST_UNSET_REDIS}', ",
        "",
    ] {
        let (code, out) = check(&format!("cluster: {{ {redis}{rest} }}\n"));
        assert_eq!(code, 1, "{redis}: {out}");
        let missing = redis.is_empty() && out.contains(r#"cluster: missing key "redis""#);
        assert!(missing || out.contains("cluster.redis: "), "{redis}: {out}");
        for key in ["on_failure", "timeout", "node"] {
            assert!(
                out.contains(&format!("cluster.{key}: ")),
                "{redis}: {key}: {out}"
            );
        }
    }
}

/// A Redis that answers the probe and then nothing: `check` says so, not "Resource
/// temporarily unavailable (os error 11)" (a blocking read's timeout).
#[test]
fn a_redis_that_stops_answering_is_no_answer_in_time() {
    let stalled = common::redis::Impostor::hang_after_setup();
    let url = format!("redis://127.0.0.1:{}", stalled.port);
    let (code, out) = check(&with_redis(&url));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cannot reach Redis to compare config hashes (no answer in time)"),
        "{out}"
    );
    assert!(!out.contains("os error"), "{out}");
}

#[test]
fn the_redis_address_forms_redis_rs_takes_pass() {
    for url in [
        "redis://127.0.0.1:1",
        "redis://127.0.0.1",
        "redis://[::1]:1",
        "redis://127.0.0.1:1/3",
        "redis://user:p%2Fw%40rd%23@127.0.0.1:1/2",
        "redis://:pw@localhost:1",
    ] {
        let (code, out) = check(&with_redis(url));
        // Unreachable (port 1): a warning, not an error.
        assert_eq!(code, 0, "{url}: {out}");
        assert!(!out.contains("pw") && !out.contains("p%2F"), "{url}: {out}");
    }
}

#[test]
fn run_refuses_an_unusable_redis_address() {
    let dir = temp_dir("cluster-config");
    let file = dir.join("portico.yaml");
    let yaml = format!(
        "server: {{ listen: [\"127.0.0.1:{}\"], workers: 1 }}\nstate_dir: \"{}\"\n{}apis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /\": {{ integration: {{ type: mock, status: 200 }} }}\n",
        free_port(),
        dir.display(),
        with_redis("redis://127.0.0.1:6379/abc")
    );
    std::fs::write(&file, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["run", "-c"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("run served with an unusable Redis address");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("cluster.redis"), "{err}");
}

fn health(admin: std::net::SocketAddr) -> serde_json::Value {
    let r = common::admin(admin, "GET", "/health", None, None);
    serde_json::from_slice(&r.body).unwrap_or_default()
}

/// A Redis that wants a password: a node with the wrong one, or none, says so in
/// `/health` (it said only "down"); one with the right one (percent-encoded `/` and `@`,
/// and a database number) is up.
#[test]
fn health_says_why_redis_is_down_and_a_percent_encoded_password_works() {
    let redis = common::redis::Redis::start_with_password("s3c/r@t");
    for driver in DRIVERS {
        let mut nodes = Vec::new();
        for (name, auth) in [
            ("wrong", ":nope@"),
            ("none", ""),
            ("right", ":s3c%2Fr%40t@"),
        ] {
            let admin_port = free_port();
            let yaml = format!(
                "server: {{ listen: [\"127.0.0.1:{{PORT}}\"], workers: 1 }}\nstate_dir: \"{}\"\nadmin: {{ listen: \"127.0.0.1:{admin_port}\", token: t }}\ncluster: {{ redis: 'redis://{auth}127.0.0.1:{}/2', node: {name}, timeout: 200ms }}\napis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /\": {{ integration: {{ type: mock, status: 200 }} }}\n",
                temp_dir("cluster-auth").display(),
                redis.port
            );
            let p = Portico::start(&yaml, driver);
            nodes.push((
                name,
                p,
                std::net::SocketAddr::from(([127, 0, 0, 1], admin_port)),
            ));
        }
        let wait = |admin, want: &dyn Fn(&serde_json::Value) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let h = health(admin);
                if want(&h) || Instant::now() > deadline {
                    return h;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let says = |h: &serde_json::Value, what: &str| {
            h["cluster"]["redis"] == "down"
                && h["cluster"]["redis_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(what))
        };
        let h = wait(nodes[0].2, &|h| says(h, "Password authentication failed"));
        assert!(says(&h, "Password authentication failed"), "{driver}: {h}");
        assert!(!h.to_string().contains("nope"), "{driver}: {h}");
        let h = wait(nodes[1].2, &|h| says(h, "Authentication required"));
        assert!(says(&h, "Authentication required"), "{driver}: {h}");
        let h = wait(nodes[2].2, &|h| h["cluster"]["redis"] == "up");
        assert_eq!(h["cluster"]["redis"], "up", "{driver}: {h}");
        assert!(h["cluster"].get("redis_error").is_none(), "{driver}: {h}");
    }
}

fn named_node(
    redis: &common::redis::Redis,
    name: &str,
    driver: &str,
) -> (Portico, std::net::SocketAddr) {
    let admin_port = free_port();
    let yaml = format!(
        "server: {{ listen: [\"127.0.0.1:{{PORT}}\"], workers: 1 }}\nstate_dir: \"{}\"\nadmin: {{ listen: \"127.0.0.1:{admin_port}\", token: t }}\ncluster: {{ redis: '{}', node: {name}, timeout: 200ms }}\napis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /\": {{ integration: {{ type: mock, status: 200 }} }}\n",
        temp_dir("cluster-names").display(),
        redis.url()
    );
    let p = Portico::start(&yaml, driver);
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(admin)["cluster"]["redis"] != "up" {
        assert!(Instant::now() < deadline, "{name} never reached Redis");
        std::thread::sleep(Duration::from_millis(50));
    }
    (p, admin)
}

/// Two live nodes under one name (a file with `node: web-1` copied to both) are told
/// so in the log and in `/health`; Redis counted them as one without a word. A node
/// restarted under its name is not taken for a second one.
#[test]
fn two_live_nodes_under_one_name_are_told_so() {
    for driver in DRIVERS {
        let redis = common::redis::Redis::start();
        let (solo, solo_admin) = named_node(&redis, "solo", driver);
        drop(solo);
        let (_solo, solo_admin2) = named_node(&redis, "solo", driver);
        let (a, a_admin) = named_node(&redis, "web-1", driver);
        let (b, b_admin) = named_node(&redis, "web-1", driver);
        for (p, admin) in [(&a, a_admin), (&b, b_admin)] {
            let deadline = Instant::now() + Duration::from_secs(30);
            while health(admin)["cluster"]["name_clash"].is_null() {
                assert!(Instant::now() < deadline, "{driver}: {}", health(admin));
                std::thread::sleep(Duration::from_millis(50));
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while !p
                .log_text()
                .contains("another live node uses this node's name")
            {
                assert!(Instant::now() < deadline, "{driver}: {}", p.log_text());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The restarted node has synced many times by now.
        let h = health(solo_admin2);
        assert!(h["cluster"]["name_clash"].is_null(), "{driver}: {h}");
        assert_ne!(solo_admin, solo_admin2);
    }
}
