//! Seeing what is served: `portico routes [-c FILE] [--json]`, admin `GET /routes` (the
//! same JSON, for the running config and after a reload), and the startup log line per
//! API stage with its URLs.
//!
//! The admin listener and the startup log do not depend on the workers' driver (the
//! admin listener is plain std sockets and threads), so the running part runs once.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const TOKEN: &str = "routes-token";

fn config(state: &Path, port: u16, admin_port: u16, extra_route: &str) -> String {
    format!(
        r#"state_dir: "{state}"
server:
  listen: ["127.0.0.1:{port}"]
  workers: 1
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
upstreams:
  users: {{ targets: ["127.0.0.1:9"] }}
apis:
  shop:
    stages:
      prod: {{ variables: {{ backend: users }} }}
    routes:
      "GET /users/{{id}}":
        integration: {{ type: http, upstream: "${{stageVariables.backend}}", path: "/u/{{id}}" }}
        api_key_required: true
      "POST /orders":
        integration: {{ type: lambda, url: "http://127.0.0.1:9/2015-03-31/functions/orders/invocations" }}{extra_route}
  status:
    stages:
      $default: {{}}
    routes:
      "GET /ping":
        integration: {{ type: mock, status: 200, body: pong }}
domains:
  api.example.com:
    mappings: {{ v1: shop/prod }}
"#,
        state = state.display()
    )
}

fn write_config(text: &str) -> std::path::PathBuf {
    let dir = temp_dir("routes-cfg");
    let path = dir.join("portico.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `portico ARGS…`: (exit code, stdout, stderr).
fn portico(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn item(url: &str, domain: Value, base: &str, api: &str, stage: &str, route: &str) -> Value {
    json!({"domain": domain, "base_path": base, "url": url, "api": api, "stage": stage, "route": route})
}

#[test]
fn routes_cli_and_admin_agree_on_what_is_served() {
    let (port, admin_port) = (free_port(), free_port());
    let state = temp_dir("state");
    let file = write_config(&config(&state, port, admin_port, ""));
    let f = file.to_str().unwrap();

    // --json: one item per way in and route.
    let (code, out, err) = portico(&["routes", "-c", f, "--json"]);
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let items = cli["routes"].as_array().unwrap();
    let summary: Vec<Value> = items
        .iter()
        .map(|i| {
            let mut s = i.clone();
            for k in ["integration", "auth"] {
                s.as_object_mut().unwrap().remove(k);
            }
            s
        })
        .collect();
    let default = format!("http://127.0.0.1:{port}");
    let domain = format!("http://api.example.com:{port}");
    assert_eq!(
        summary,
        [
            item(
                &format!("{default}/prod"),
                Value::Null,
                "/prod",
                "shop",
                "prod",
                "GET /users/{id}"
            ),
            item(
                &format!("{default}/prod"),
                Value::Null,
                "/prod",
                "shop",
                "prod",
                "POST /orders"
            ),
            item(
                &format!("{domain}/v1"),
                json!("api.example.com"),
                "/v1",
                "shop",
                "prod",
                "GET /users/{id}"
            ),
            item(
                &format!("{domain}/v1"),
                json!("api.example.com"),
                "/v1",
                "shop",
                "prod",
                "POST /orders"
            ),
            item(
                &default,
                Value::Null,
                "/",
                "status",
                "$default",
                "GET /ping"
            ),
        ]
    );
    assert_eq!(
        items[0]["integration"],
        json!({"type": "http", "target": "users", "path": "/u/{id}"})
    );
    assert_eq!(
        items[1]["integration"],
        json!({"type": "lambda", "target": "http://127.0.0.1:9/2015-03-31/functions/orders/invocations"})
    );
    assert_eq!(
        items[4]["integration"],
        json!({"type": "mock", "target": "status 200"})
    );
    assert_eq!(
        items[0]["auth"],
        json!({"api_key_required": true, "authorizer": null})
    );
    assert_eq!(
        items[4]["auth"],
        json!({"api_key_required": false, "authorizer": null})
    );

    // The table, with -c before the subcommand too.
    let (code, text, err) = portico(&["-c", f, "routes"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "DOMAIN",
            "BASE",
            "PATH",
            "API",
            "STAGE",
            "ROUTE",
            "INTEGRATION",
            "AUTH"
        ]
    );
    assert!(
        rows.contains(&vec![
            "*",
            "/prod",
            "shop",
            "prod",
            "GET",
            "/users/{id}",
            "http",
            "users",
            "/u/{id}",
            "api",
            "key"
        ]),
        "{text}"
    );
    assert!(
        rows.contains(&vec![
            "api.example.com",
            "/v1",
            "shop",
            "prod",
            "POST",
            "/orders",
            "lambda",
            "http://127.0.0.1:9/2015-03-31/functions/orders/invocations",
            "none"
        ]),
        "{text}"
    );
    assert!(
        rows.contains(&vec![
            "*", "/", "status", "$default", "GET", "/ping", "mock", "status", "200", "none"
        ]),
        "{text}"
    );
    assert_eq!(rows.len(), 6, "{text}");

    // A bad file: errors, exit 1, nothing on stdout.
    let bad = write_config("apis: { x: { stages: {}, routes: { \"GET /a\": { integration: { type: http, upstream: nope } } } } }\n");
    let (code, out, err) = portico(&["routes", "-c", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(r#"no upstream named "nope""#), "{err}");

    // The running config answers the same JSON, behind the token.
    let p = Portico::start_at(&std::fs::read_to_string(&file).unwrap(), DRIVERS[0], port);
    let a = SocketAddr::from(([127, 0, 0, 1], admin_port));
    assert_eq!(admin(a, "GET", "/routes", None, None).status, 401);
    let r = admin(a, "GET", "/routes", Some(TOKEN), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), cli);

    // One startup line per API stage, with its URLs.
    let log = p.log_text();
    let stage_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("serving API stage"))
        .collect();
    assert_eq!(stage_lines.len(), 2, "{log}");
    assert!(
        stage_lines[0].contains("api=shop stage=prod")
            && stage_lines[0].contains(&format!("urls={default}/prod {domain}/v1")),
        "{log}"
    );
    assert!(
        stage_lines[1].contains("api=status stage=$default")
            && stage_lines[1].contains(&format!("urls={default} ")),
        "{log}"
    );

    // After a reload, the new config's routes.
    let extra =
        "\n      \"DELETE /orders/{id}\":\n        integration: { type: mock, status: 204 }";
    std::fs::write(&p.config, config(&state, port, admin_port, extra)).unwrap();
    assert_eq!(admin(a, "POST", "/reload", Some(TOKEN), None).status, 200);
    let r = admin(a, "GET", "/routes", Some(TOKEN), None);
    let after: Value = serde_json::from_slice(&r.body).unwrap();
    let keys: Vec<&str> = after["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["domain"].is_null() && i["api"] == "shop")
        .map(|i| i["route"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["GET /users/{id}", "POST /orders", "DELETE /orders/{id}"]
    );
}
