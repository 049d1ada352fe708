//! `portico openapi import` on paths Portico's router can't serve, or two operations
//! that match the same requests: each is skipped with a warning at its JSON pointer, so
//! what import writes is a config `check` accepts (it wrote `GET /b c`, `GET /d/{x}/{x}`
//! or `GET /h/{a}` beside `GET /h/{b}`, which check then refused, and `/i/` silently
//! replaced `/i`). An export's stage variables come back with it. A WebSocket API is
//! not exported.

mod common;

use std::process::Command;

use common::*;

#[test]
fn paths_the_router_refuses_are_skipped_with_a_warning() {
    let dir = temp_dir("openapi-import");
    let doc = dir.join("paths.yaml");
    let mock = "{ get: { x-amazon-apigateway-integration: { type: mock } } }";
    std::fs::write(
        &doc,
        format!(
            "openapi: 3.0.1\ninfo: {{ title: paths, version: \"1\" }}\npaths:\n  /ok/{{id}}: {mock}\n  /b c: {mock}\n  /d/{{x}}/{{x}}: {mock}\n  /e/{{proxy+}}/more: {mock}\n  /f//g: {mock}\n  /h/{{a}}: {mock}\n  /h/{{b}}: {mock}\n  /i: {mock}\n  /i/: {mock}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["openapi", "import"])
        .arg(&doc)
        .output()
        .unwrap();
    let (yaml, err) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(yaml.contains("GET /ok/{id}:"), "{yaml}");
    assert!(
        yaml.contains("GET /h/{a}:") && yaml.contains("GET /i:"),
        "{yaml}"
    );
    for (pointer, why) in [
        ("#/paths/~1b c", "bad segment \"b c\""),
        (
            "#/paths/~1d~1{x}~1{x}",
            "parameter {x} appears twice in the path",
        ),
        (
            "#/paths/~1e~1{proxy+}~1more",
            "greedy parameter {proxy+} must be the last segment",
        ),
        ("#/paths/~1f~1~1g", "empty path segment"),
        (
            "#/paths/~1h~1{b}/get",
            "matches the same requests as route \"GET /h/{a}\"",
        ),
        (
            "#/paths/~1i~1/get",
            "matches the same requests as route \"GET /i\"",
        ),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("{}{pointer}:", doc.display())))
            .unwrap_or_else(|| panic!("no warning for {pointer} in\n{err}"));
        assert!(line.contains(why) && line.ends_with(" skipped"), "{line}");
    }
    // What import wrote is a config check accepts.
    let config = dir.join("imported.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (code, text) = check(&std::fs::read_to_string(&config).unwrap());
    assert_eq!(code, 0, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An export carries the stage's variables (`x-portico-stage-variables`), so importing
/// it makes a config check accepts and that serves the same backend; the import lacked
/// them, and check refused it ("no variable backend, used by …").
#[test]
fn an_export_with_stage_variables_imports_to_a_config_check_accepts() {
    let dir = temp_dir("openapi-stagevars");
    let config = dir.join("portico.yaml");
    std::fs::write(
        &config,
        r#"upstreams:
  users-v2: { targets: ["127.0.0.1:9"] }
apis:
  shop:
    stages:
      prod: { variables: { backend: users-v2, version: v2 } }
    routes:
      "GET /users/{id}":
        integration: { type: http, upstream: "${stageVariables.backend}", path: "/${stageVariables.version}/users/{id}" }
"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let c = config.display().to_string();
    let doc = run(&[
        "openapi", "export", "-c", &c, "--api", "shop", "--stage", "prod",
    ]);
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(
        v["x-portico-stage-variables"],
        serde_json::json!({ "backend": "users-v2", "version": "v2" })
    );
    // Without integrations there is nothing that reads them.
    let bare = run(&[
        "openapi",
        "export",
        "-c",
        &c,
        "--api",
        "shop",
        "--stage",
        "prod",
        "--extensions",
        "",
    ]);
    assert!(!bare.contains("x-portico-stage-variables"), "{bare}");

    let exported = dir.join("shop.json");
    std::fs::write(&exported, doc).unwrap();
    let yaml = run(&["openapi", "import", &exported.display().to_string()]);
    assert!(yaml.contains("backend: users-v2"), "{yaml}");
    // The upstream the variable names is the config's own, as before the export.
    assert!(!yaml.contains("upstreams:"), "{yaml}");
    let (code, text) = check(&format!(
        "{yaml}upstreams:\n  users-v2: {{ targets: [\"127.0.0.1:9\"] }}\n"
    ));
    assert_eq!(code, 0, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// API Gateway exports HTTP APIs only. A WebSocket API's routes are chosen per message,
/// not by method and path: `export` wrote them as one HTTP route `/$default` (with
/// another route's integration), a document that imported as a different API. Now the
/// CLI fails with a message and admin answers 400.
#[test]
fn a_websocket_api_is_not_exported() {
    let admin_port = free_port();
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:{{PORT}}"] }}
admin: {{ listen: "127.0.0.1:{admin_port}", token: tok }}
state_dir: ./state
apis:
  chat:
    protocol: websocket
    stages: {{ prod: {{}} }}
    routes:
      $default: {{ integration: {{ type: mock }} }}
      echo: {{ integration: {{ type: mock, body: "$request.body" }}, route_response: true }}
"#
    );
    let dir = temp_dir("openapi-export-ws");
    let cfg = dir.join("portico.yaml");
    let port = free_port();
    std::fs::write(&cfg, yaml.replace("{PORT}", &port.to_string())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["openapi", "export", "-c"])
        .arg(&cfg)
        .args(["--api", "chat", "--stage", "prod"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("WebSocket API"), "{err}");
    for driver in DRIVERS {
        let p = Portico::start_at(&std::fs::read_to_string(&cfg).unwrap(), driver, port);
        let admin_addr = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let r = admin(
            admin_addr,
            "GET",
            "/apis/chat/openapi?stage=prod",
            Some("tok"),
            None,
        );
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        assert!(r.text().contains("WebSocket API"), "{driver}: {}", r.text());
        p.stop();
    }
}

/// `--api` names the API in what import writes: a name `check` would refuse (`a/b`, a
/// blank) is refused here, before anything is written.
#[test]
fn import_refuses_an_api_name_check_would_refuse() {
    let dir = temp_dir("openapi-import-name");
    let doc = dir.join("doc.yaml");
    std::fs::write(
        &doc,
        "openapi: 3.0.1\ninfo: { title: t, version: \"1\" }\npaths:\n  /p: { get: { x-amazon-apigateway-integration: { type: mock } } }\n",
    )
    .unwrap();
    let run = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["openapi", "import", "--api", name])
            .arg(&doc)
            .output()
            .unwrap()
    };
    for name in ["a/b", "my api", ""] {
        let out = run(name);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{name:?}: {err}");
        assert!(out.stdout.is_empty(), "{name:?}");
        assert!(
            err.contains("API names are letters, digits"),
            "{name:?}: {err}"
        );
    }
    let out = run("shop.v1");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("shop.v1:"));
}
