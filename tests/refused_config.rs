//! A config that is refused (at start, by `POST /reload`, by SIGHUP) is reported as
//! `check` reports it: every error and every warning, each with its key path. The
//! warnings were dropped whenever there was an error.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "refused-config-token";

/// One error (`nope` is no upstream) and two warnings (an access-log directory that does
/// not exist, an API nothing reaches), on `listen`.
fn broken(listen: &str, dir: &std::path::Path, admin: &str) -> String {
    format!(
        r#"server:
  listen: ["{listen}"]
  workers: 1
  access_log: {{ path: "{dir}/missing/access.log" }}
{admin}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /x": {{ integration: {{ type: http, upstream: nope }} }}
  hidden:
    disable_default_endpoint: true
    stages: {{ $default: {{}} }}
    routes:
      "GET /y": {{ integration: {{ type: mock }} }}
"#,
        dir = dir.display()
    )
}

fn warnings_of(dir: &std::path::Path) -> [String; 2] {
    [
        format!(
            "server.access_log.path: directory {}/missing does not exist: access-log lines are dropped until it does",
            dir.display()
        ),
        "apis.hidden.disable_default_endpoint: true and no domain maps this API: nothing reaches it"
            .into(),
    ]
}

const ERROR: &str = r#"apis.app.routes."GET /x".integration.upstream: no upstream named "nope""#;

#[test]
fn a_refused_start_prints_the_warnings_with_the_errors() {
    let dir = temp_dir("refused-start");
    let file = dir.join("portico.yaml");
    std::fs::write(&file, broken("127.0.0.1:1", &dir, "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["run", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let head = format!("{}: 1 error(s), 2 warning(s); not starting", file.display());
    assert!(err.lines().any(|l| l == head), "{err}");
    assert!(err.lines().any(|l| l == ERROR), "{err}");
    for w in warnings_of(&dir) {
        assert!(
            err.lines().any(|l| l == format!("warning: {w}")),
            "{w}\n{err}"
        );
    }
}

#[test]
fn a_refused_reload_answers_and_logs_the_warnings_with_the_errors() {
    let dir = temp_dir("refused-reload");
    let admin_port = free_port();
    let a = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let admin_block = format!("admin: {{ listen: \"127.0.0.1:{admin_port}\", token: {TOKEN} }}");
    let good = broken("127.0.0.1:{PORT}", &dir, &admin_block)
        .replace("upstream: nope", "upstream: u")
        .replace(
            "apis:",
            "upstreams:\n  u: { targets: [\"127.0.0.1:1\"] }\napis:",
        );
    let p = Portico::start(&good, DRIVERS[0]);
    let listen = format!("127.0.0.1:{}", p.addr.port());
    std::fs::write(&p.config, broken(&listen, &dir, &admin_block)).unwrap();

    let r = admin(a, "POST", "/reload", Some(TOKEN), None);
    assert_eq!(r.status, 400, "{}", r.text());
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let lines = |key: &str| -> Vec<String> {
        (body[key].as_array().unwrap().iter())
            .map(|e| {
                format!(
                    "{}: {}",
                    e["path"].as_str().unwrap(),
                    e["message"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(lines("errors"), [ERROR], "{body}");
    assert_eq!(lines("warnings"), warnings_of(&dir), "{body}");

    // A SIGHUP logs them, each a WARN line with its key path, after the errors.
    p.signal(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = |log: &str, w: &str| {
        let (path, message) = w.split_once(": ").unwrap();
        let after = log
            .rsplit("reload refused; the running config stays")
            .next()
            .unwrap();
        after.lines().any(|l| {
            l.contains(" WARN ") && l.contains(message) && l.contains(&format!("key={path}"))
        })
    };
    loop {
        let log = p.log_text();
        let refusals = log
            .matches("reload refused; the running config stays")
            .count();
        if refusals == 2 && warnings_of(&dir).iter().all(|w| logged(&log, w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the SIGHUP's warnings were not logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The running config stays: its upstream refuses connections.
    assert_eq!(p.get("/x").status, 502);
    assert!(p.stop().success());
}

/// Plans and keys a reload brings to a process that started without a state store
/// (none of plans, keys, admin or cluster then) count in memory only: a restart the same
/// day gave a spent quota afresh, unsaid. The reload says so, at the keys' paths.
#[test]
fn plans_a_reload_brings_without_a_state_store_are_said_to_stay_in_memory() {
    for driver in DRIVERS {
        let dir = temp_dir("no-store");
        let head = format!(
            "server: {{ listen: [\"127.0.0.1:{{PORT}}\"], workers: 1 }}\nstate_dir: \"{}\"\napis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /q\": {{ integration: {{ type: mock, status: 200 }} }}\n",
            dir.display()
        );
        let p = Portico::start(&head, driver);
        let port = p.addr.port().to_string();
        let with_plans = head.replace("{PORT}", &port).replace(
            "status: 200 }",
            "status: 200 }, api_key_required: true",
        ) + "usage_plans: { daily: { quota: { limit: 2, period: day } } }\napi_keys: [ { name: k, value: \"k-value-0123456789abcdef\", plan: daily } ]\n";
        std::fs::write(&p.config, with_plans).unwrap();
        p.signal(1);
        let said = "quota counts and usage are kept in memory only until the next restart";
        let reloaded = eventually(|| {
            let log = p.log_text();
            ["usage_plans", "api_keys"].iter().all(|k| {
                log.lines()
                    .any(|l| l.contains(said) && l.contains(&format!("key={k}")))
            })
        });
        assert!(reloaded, "{driver}: {}", p.log_text());
        assert_eq!(
            get_with_key(p.addr, "/q", Some("k-value-0123456789abcdef")).status,
            200
        );
        assert!(p.stop().success());
    }
}
