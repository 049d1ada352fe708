//! The admin listener end to end: bearer auth, health, API keys created and revoked at
//! run time (live on every worker at once, without a reload: within a second here, a
//! bound a CI machine loaded by other tests keeps; unloaded it is a few milliseconds),
//! and a corrupt state file at startup.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "s3cret-admin-token";

fn config(state: &Path, admin_port: u16) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ drain_timeout: 2s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /secret":
        integration: {{ type: mock, status: 200, body: "secret" }}
        api_key_required: true
usage_plans:
  gold: {{ throttle: {{ rate: 1000, burst: 1000 }}, quota: {{ limit: 100000, period: month, offset: 3 }} }}
api_keys:
  - {{ name: alice, value: "alice-key-0123456789abcdef", plan: gold }}
"#,
        state = state.display()
    )
}

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("JSON body: {}", r.text()))
}

/// Sends GET /secret with `key` on each connection until every one answers `status`;
/// returns how long that took after `since`.
fn all_answer(conns: &mut [Client], key: &str, status: u16, since: Instant) -> Duration {
    let req = format!("GET /secret HTTP/1.1\r\nHost: t\r\nx-api-key: {key}\r\n\r\n");
    let mut pending: Vec<usize> = (0..conns.len()).collect();
    while !pending.is_empty() {
        pending.retain(|&i| conns[i].send(req.as_bytes()).status != status);
        if since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    assert!(
        pending.is_empty(),
        "connections {pending:?} never answered {status}"
    );
    since.elapsed()
}

#[test]
fn created_keys_work_and_revoked_keys_stop_at_once_on_every_worker() {
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let a = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let p = Portico::start(&config(&state, admin_port), driver);
        // Enough keep-alive connections that both workers hold some.
        let mut conns: Vec<Client> = (0..8).map(|_| Client::connect(p.addr)).collect();

        let r = admin(
            a,
            "POST",
            "/api-keys",
            Some(TOKEN),
            Some(r#"{"name":"bob","plan":"gold"}"#),
        );
        let created = Instant::now();
        assert_eq!(r.status, 201, "{driver}: {}", r.text());
        let v = json(&r);
        let value = v["value"].as_str().unwrap().to_string();
        assert_eq!(
            (v["name"].as_str(), v["plan"].as_str()),
            (Some("bob"), Some("gold"))
        );
        assert_eq!(value.len(), 40);
        let took = all_answer(&mut conns, &value, 200, created);
        assert!(
            took < Duration::from_secs(1),
            "{driver}: created key live after {took:?}"
        );

        // Listed without its value; names are unique.
        let list = json(&admin(a, "GET", "/api-keys", Some(TOKEN), None));
        let items = list["items"].as_array().unwrap();
        let names: Vec<&str> = items.iter().map(|k| k["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert!(!list.to_string().contains(&value));
        assert_eq!(items[1]["source"], "admin");
        let again = admin(
            a,
            "POST",
            "/api-keys",
            Some(TOKEN),
            Some(r#"{"name":"bob"}"#),
        );
        assert_eq!(again.status, 409);
        let bad_plan = admin(
            a,
            "POST",
            "/api-keys",
            Some(TOKEN),
            Some(r#"{"name":"x","plan":"nope"}"#),
        );
        assert_eq!(bad_plan.status, 400);
        assert_eq!(
            admin(a, "POST", "/api-keys", Some(TOKEN), Some("{")).status,
            400
        );

        let r = admin(a, "DELETE", "/api-keys/bob", Some(TOKEN), None);
        let revoked = Instant::now();
        assert_eq!(r.status, 204, "{}", r.text());
        let took = all_answer(&mut conns, &value, 403, revoked);
        assert!(
            took < Duration::from_secs(1),
            "{driver}: revoked key refused after {took:?}"
        );
        assert_eq!(
            admin(a, "DELETE", "/api-keys/bob", Some(TOKEN), None).status,
            404
        );

        // A config key revoked through the API, and a created key, across a restart.
        assert_eq!(
            admin(a, "DELETE", "/api-keys/alice", Some(TOKEN), None).status,
            204
        );
        let r = admin(
            a,
            "POST",
            "/api-keys",
            Some(TOKEN),
            Some(r#"{"name":"carol","plan":"gold"}"#),
        );
        let carol = json(&r)["value"].as_str().unwrap().to_string();
        drop(conns);
        assert!(p.stop().success());
        let file = std::fs::read(state.join("portico.redb")).unwrap();
        assert!(
            !file.windows(carol.len()).any(|w| w == carol.as_bytes()),
            "the key value must not be stored"
        );

        let p = Portico::start(&config(&state, admin_port), driver);
        assert_eq!(get_with_key(p.addr, "/secret", Some(&carol)).status, 200);
        assert_eq!(get_with_key(p.addr, "/secret", Some(&value)).status, 403);
        assert_eq!(
            get_with_key(p.addr, "/secret", Some("alice-key-0123456789abcdef")).status,
            403
        );
        let usage = json(&admin(a, "GET", "/usage?plan=gold", Some(TOKEN), None));
        assert_eq!(usage["items"]["carol"][0][0], 1, "{usage}");
        assert_eq!(usage["items"]["bob"][0][0], 8, "{usage}");
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}

#[test]
fn admin_token_is_required_except_for_health() {
    let state = temp_dir("state");
    let admin_port = free_port();
    let a = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let p = Portico::start(&config(&state, admin_port), "epoll");

    let health = admin(a, "GET", "/health", None, None);
    assert_eq!(health.status, 200);
    // As a data-plane answer: `date` in IMF-fixdate, and `server`.
    let date = health.header("date").unwrap_or_default();
    assert!(date.len() == 29 && date.ends_with(" GMT"), "date: {date:?}");
    assert_eq!(health.header("server"), Some("portico"));
    let mut body = json(&health);
    let hash = body["config_hash"].take();
    assert_eq!(
        body,
        serde_json::json!({"status":"ok","workers":2,"driver":"epoll","config_hash":null})
    );
    assert!(
        hash.as_str()
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())),
        "{hash}"
    );

    for (method, path) in [
        ("GET", "/api-keys"),
        ("POST", "/api-keys"),
        ("DELETE", "/api-keys/alice"),
        ("GET", "/usage?plan=gold"),
        ("GET", "/no-such-route"),
    ] {
        for token in [None, Some("wrong"), Some("")] {
            let r = admin(a, method, path, token, Some("{}"));
            assert_eq!(r.status, 401, "{method} {path} with {token:?}");
            assert_eq!(r.json_message(), "Unauthorized");
        }
    }
    // The scheme is case-insensitive; the token is not.
    let r = send_to(
        a,
        format!("GET /api-keys HTTP/1.1\r\nHost: a\r\nAuthorization: bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 200);
    let r = admin(a, "GET", "/api-keys", Some(&TOKEN.to_uppercase()), None);
    assert_eq!(r.status, 401);
    // Two Authorization lines, the right token in either: which one counts is no
    // parser's choice to make.
    for (first, second) in [("wrong", TOKEN), (TOKEN, "wrong")] {
        let r = send_to(
            a,
            format!("GET /api-keys HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {first}\r\nAuthorization: Bearer {second}\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(r.status, 401, "{first} then {second}");
    }

    assert_eq!(
        admin(a, "GET", "/no-such-route", Some(TOKEN), None).status,
        404
    );
    let r = admin(a, "PUT", "/api-keys", Some(TOKEN), None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    let r = admin(a, "GET", "/usage", Some(TOKEN), None);
    assert_eq!(
        (r.status, r.json_message()),
        (400, "plan is required".to_string())
    );
    // Two values of one parameter were read as the first, the second ignored unsaid.
    let r = admin(
        a,
        "GET",
        "/usage?plan=gold&key=bob&plan=silver",
        Some(TOKEN),
        None,
    );
    assert_eq!(
        (r.status, r.json_message()),
        (
            400,
            "plan is given more than once; give it once".to_string()
        )
    );
    assert_eq!(
        admin(a, "GET", "/usage?plan=nope", Some(TOKEN), None).status,
        404
    );
    let r = admin(
        a,
        "GET",
        "/usage?plan=gold&from=2024-01-02&to=2024-01-01",
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 400);
    // 366 days apart (2024 is a leap year) is what the message allows; it was refused.
    let r = admin(
        a,
        "GET",
        "/usage?plan=gold&from=2024-01-01&to=2025-01-01",
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json(&r)["items"]["alice"].as_array().map(Vec::len),
        Some(367)
    );
    let r = admin(
        a,
        "GET",
        "/usage?plan=gold&from=2024-01-01&to=2025-01-02",
        Some(TOKEN),
        None,
    );
    assert_eq!(
        (r.status, r.json_message()),
        (
            400,
            "from must not be after to, and at most 366 days apart".to_string()
        )
    );
    let r = admin(
        a,
        "GET",
        "/usage?plan=gold&from=2024-02-03&to=2024-02-05",
        Some(TOKEN),
        None,
    );
    let v = json(&r);
    assert_eq!(v["startDate"], "2024-02-03");
    assert_eq!(
        v["items"]["alice"],
        serde_json::json!([[0, 100000], [0, 100000], [0, 100000]])
    );
    // A key of the plan by name; a name that is none of its keys is 404, not a key
    // with no usage (it answered [[0, 100000]] for any typo).
    let r = admin(a, "GET", "/usage?plan=gold&key=alice", Some(TOKEN), None);
    assert_eq!(json(&r)["items"]["alice"][0][1], 100000, "{}", r.text());
    let r = admin(a, "GET", "/usage?plan=gold&key=alcie", Some(TOKEN), None);
    assert_eq!(
        (r.status, r.json_message()),
        (
            404,
            r#"no API key named "alcie" in usage plan "gold""#.to_string()
        )
    );
    assert!(p.stop().success());
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_corrupt_state_file_stops_startup_with_a_clear_error() {
    let state = temp_dir("state");
    let garbage: Vec<u8> = (0..32 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(state.join("portico.redb"), &garbage).unwrap();
    let err = Portico::try_start(&config(&state, free_port()), "epoll")
        .err()
        .expect("portico must not start on a corrupt state file");
    assert!(err.contains("exited with exit status: 1"), "{err}");
    assert!(
        err.contains("portico.redb") && err.contains("corrupt"),
        "{err}"
    );
    // Left as it was, for the operator.
    assert_eq!(std::fs::read(state.join("portico.redb")).unwrap(), garbage);
    let _ = std::fs::remove_dir_all(&state);
}

/// A first start that cannot write its new state file (a full disk; here a file size
/// limit) removes the file it made: left, it stopped every later start as "corrupt".
#[test]
fn a_state_file_a_full_disk_kept_from_being_made_stops_no_later_start() {
    let state = temp_dir("state");
    let yaml = config(&state, free_port()).replace("{PORT}", &free_port().to_string());
    let file = state.join("portico.yaml");
    std::fs::write(&file, &yaml).unwrap();
    // Portico ignores SIGXFSZ (its default action killed the process, leaving the file
    // empty): the write fails with EFBIG instead.
    let out = std::process::Command::new("bash")
        .args(["-c", r#"ulimit -f 16; exec "$0" run -c "$1""#])
        .arg(env!("CARGO_BIN_EXE_portico"))
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write the state file") && err.contains("File too large"),
        "{err}"
    );
    assert!(!state.join("portico.redb").exists(), "{err}");
    let p = Portico::start(&config(&state, free_port()), "epoll");
    assert!(p.stop().success());
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&state);
}

fn reload_config(state: &Path, admin_port: u16, keys: &str, extra_route: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /q":
        integration: {{ type: mock, status: 200, body: "q" }}
        api_key_required: true
{extra_route}
usage_plans:
  small: {{ quota: {{ limit: 5, period: week, offset: 2 }} }}
api_keys:
{keys}
"#,
        state = state.display()
    )
}

#[test]
fn reload_through_the_admin_api_updates_keys_and_keeps_usage() {
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let a = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let k1 = "  - { name: k1, value: key-one-0123456789abcdef, plan: small }";
        let k2 = "  - { name: k2, value: key-two-0123456789abcdef, plan: small }";
        let p = Portico::start(&reload_config(&state, admin_port, k1, ""), driver);
        let addr = p.addr;
        let key = |k: &str| get_with_key(addr, "/q", Some(k));
        let statuses: Vec<u16> = (0..7)
            .map(|_| key("key-one-0123456789abcdef").status)
            .collect();
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429], "{driver}");
        assert_eq!(key("key-two-0123456789abcdef").status, 403);

        // A new key and a throttled route: live once /reload answers; k1's quota stays spent.
        let throttled = "      \"GET /t\":\n        integration: { type: mock, status: 200, body: t }\n        throttle: { rate: 1, burst: 1 }";
        let text = std::fs::read_to_string(&p.config).unwrap();
        let port_line = text
            .lines()
            .find(|l| l.contains("listen: ["))
            .unwrap()
            .to_string();
        let next = reload_config(&state, admin_port, &format!("{k1}\n{k2}"), throttled)
            .replace(r#"  listen: ["127.0.0.1:{PORT}"]"#, &port_line);
        std::fs::write(&p.config, &next).unwrap();
        assert_eq!(admin(a, "POST", "/reload", None, None).status, 401);
        let r = admin(a, "POST", "/reload", Some(TOKEN), None);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(json(&r)["generation"], 2);
        assert_eq!(key("key-two-0123456789abcdef").status, 200, "{driver}");
        assert_eq!(
            key("key-one-0123456789abcdef").json_message(),
            "Limit Exceeded"
        );
        let t: Vec<u16> = (0..3)
            .map(|_| get_with_key(addr, "/t", None).status)
            .collect();
        assert_eq!(t, [200, 429, 429]);

        // A broken file: 400 with the errors, and the running config stays.
        std::fs::write(&p.config, next.replace("limit: 5", "limit: lots")).unwrap();
        let r = admin(a, "POST", "/reload", Some(TOKEN), None);
        assert_eq!(r.status, 400);
        assert_eq!(
            json(&r)["errors"][0]["path"],
            "usage_plans.small.quota.limit"
        );
        assert_eq!(key("key-two-0123456789abcdef").status, 200);

        // Metrics are public; the config view is not, and hides secrets.
        let text = metrics_when(a, |t| {
            t.contains(r#"route="GET /q",reason="quota"} 3"#)
                && t.contains(r#"route="GET /t",reason="throttle"} 2"#)
        });
        assert!(
            text.contains(r#"route="GET /q",reason="quota"} 3"#),
            "{driver}: {text}"
        );
        assert!(
            text.contains(r#"route="GET /t",reason="throttle"} 2"#),
            "{text}"
        );
        assert_eq!(admin(a, "GET", "/config", None, None).status, 401);
        let c = admin(a, "GET", "/config", Some(TOKEN), None);
        assert_eq!(c.status, 200);
        assert!(!c.text().contains(TOKEN) && !c.text().contains("key-two-0123456789abcdef"));
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}

/// Secrets written through YAML merge keys (`<<:`), or repeated by an alias under a key
/// that is no secret (the whole redis URL, a key YAML reads as a number), are redacted
/// from `GET /config` as where they are read.
#[test]
fn config_view_redacts_secrets_written_through_merge_keys_and_aliases() {
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let a = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let cfg = format!(
            r#"server: {{ listen: ["127.0.0.1:{{PORT}}"], workers: 1 }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", <<: {{ token: &tok tok-LEAKME-123 }} }}
usage_plans:
  gold: {{ throttle: {{ rate: 1000, burst: 1000 }} }}
api_keys:
  - {{ name: alice, plan: gold, <<: {{ value: alice-LEAKME-0123456789 }} }}
  - {{ name: bob, plan: gold, value: &num 12345678901234567890 }}
iam: {{ principals: {{ rep: {{ <<: {{ secret_access_key: IAM-LEAKME }}, access_key_id: AKID, allow: ["*"] }} }} }}
cluster: {{ redis: &redis "redis://app:REDIS-LEAKME@127.0.0.1:{redis_port}", node: n1 }}
apis:
  app:
    stages:
      $default: {{ variables: {{ copy: *tok, url: *redis, num: *num }} }}
    routes:
      "GET /secret":
        integration: {{ type: mock, status: 200, body: "secret" }}
        api_key_required: true
"#,
            state = state.display(),
            redis_port = free_port()
        );
        let p = Portico::start(&cfg, driver);
        // The merged values are the ones in force.
        let r = Client::connect(p.addr)
            .send(b"GET /secret HTTP/1.1\r\nHost: t\r\nx-api-key: alice-LEAKME-0123456789\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let c = admin(a, "GET", "/config", Some("tok-LEAKME-123"), None);
        assert_eq!(c.status, 200, "{driver}: {}", c.text());
        assert!(!c.text().contains("LEAKME"), "{driver}: {}", c.text());
        assert!(!c.text().contains("1234567890"), "{driver}: {}", c.text());
        let v = json(&c);
        assert_eq!(v["admin"]["token"], "[redacted]", "{driver}");
        assert_eq!(v["api_keys"][0]["value"], "[redacted]", "{driver}");
        assert_eq!(v["api_keys"][0]["plan"], "gold", "{driver}");
        assert_eq!(v["iam"]["principals"]["rep"]["access_key_id"], "AKID");
        assert_eq!(
            v["apis"]["app"]["stages"]["$default"]["variables"]["copy"],
            "[redacted]"
        );
        // An alias of the redis URL shows as the URL does; of a key YAML reads as a
        // number, as the key does.
        let vars = &v["apis"]["app"]["stages"]["$default"]["variables"];
        assert_eq!(vars["url"], v["cluster"]["redis"], "{driver}");
        assert_eq!(vars["num"], "[redacted]", "{driver}");
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}
