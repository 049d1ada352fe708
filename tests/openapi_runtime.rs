//! API definitions while Portico runs: an API served from an OpenAPI file follows the
//! file on reload (SIGHUP and the admin `POST /reload`) and a broken file is refused with
//! its key path and JSON pointer while the running API stays; `$context.error.*`
//! (`message`, `responseType`, `validationErrorString`) in access logs and gateway
//! response templates; gateway responses for requests that reach an API but none of its
//! routes.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn spec(routes: &[(&str, &str)]) -> String {
    let mut y = String::from("openapi: 3.0.1\ninfo: { title: shop, version: 1 }\npaths:\n");
    for (path, body) in routes {
        y.push_str(&format!(
            "  {path}:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n        responses: {{ default: {{ statusCode: \"200\", responseTemplates: {{ application/json: {body} }} }} }}\n"
        ));
    }
    y
}

fn wait_for(p: &Portico, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} not visible: {}",
            p.log_text()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn reload_follows_the_openapi_file_and_a_broken_one_keeps_the_running_api() {
    for driver in DRIVERS {
        let dir = temp_dir(&format!("openapi-reload-{driver}"));
        let file = dir.join("shop.yaml");
        std::fs::write(&file, spec(&[("/a", "a1")])).unwrap();
        let admin_port = free_port();
        let yaml = format!(
            "server: {{ listen: [\"127.0.0.1:{{PORT}}\"], workers: 2 }}\nadmin: {{ listen: \"127.0.0.1:{admin_port}\", token: tok }}\napis:\n  shop:\n    openapi: {}\n    stages: {{ $default: {{}} }}\n",
            file.display()
        );
        let a = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let p = Portico::start(&yaml, driver);
        assert_eq!(p.get("/a").text(), "a1", "{driver}");
        assert_eq!(p.get("/b").status, 404);

        // SIGHUP: the edited file's routes are served; the config file did not change.
        std::fs::write(&file, spec(&[("/a", "a2"), ("/b", "b")])).unwrap();
        p.signal(1);
        wait_for(&p, "SIGHUP reload", || p.get("/b").status == 200);
        assert_eq!(p.get("/a").text(), "a2", "{driver}");

        // Admin reload: a route removed.
        std::fs::write(&file, spec(&[("/a", "a3")])).unwrap();
        let r = admin(a, "POST", "/reload", Some("tok"), None);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(p.get("/a").text(), "a3");
        assert_eq!(p.get("/b").status, 404);

        // A broken file: the error names the key, the file and the JSON pointer; the
        // running API stays, through the admin reload and SIGHUP alike.
        std::fs::write(
            &file,
            "openapi: 3.0.1\ninfo: { title: shop, version: 1 }\npaths: 5\n",
        )
        .unwrap();
        let r = admin(a, "POST", "/reload", Some("tok"), None);
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        let errors: Value = serde_json::from_slice(&r.body).unwrap();
        let e = &errors["errors"][0];
        assert_eq!(e["path"], "apis.shop.openapi", "{errors}");
        let message = e["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("shop.yaml") && message.contains("#/paths"),
            "{errors}"
        );
        p.signal(1);
        wait_for(&p, "the refused SIGHUP reload", || {
            p.log_text().matches("apis.shop.openapi").count() >= 2
        });
        assert_eq!(p.get("/a").text(), "a3", "{driver}: the running API stays");
        p.stop();
    }
}

fn read_lines(path: &std::path::Path, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn error_variables_reach_access_logs_and_gateway_responses_and_unrouted_requests() {
    for driver in DRIVERS {
        let dir = temp_dir(&format!("openapi-errors-{driver}"));
        let log = dir.join("access.log");
        let format = r#"{"path":"$context.path","status":"$context.status","err":"$context.error.message","type":"$context.error.responseType","detail":"$context.error.validationErrorString"}"#;
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ max_body_bytes: 1024 }}
  access_log: {{ path: "{}", format: '{format}' }}
apis:
  shop:
    stages: {{ prod: {{}} }}
    models:
      Order: {{ type: object, required: [sku], properties: {{ sku: {{ type: string }} }} }}
    gateway_responses:
      DEFAULT_4XX: {{ headers: {{ x-default: "4xx" }} }}
      BAD_REQUEST_BODY: {{ status: 422, body: '{{"detail":"$context.error.validationErrorString","type":"$context.error.responseType","msg":"$context.error.message"}}' }}
      MISSING_AUTHENTICATION_TOKEN: {{ status: 403, headers: {{ x-stage: "$context.stage" }}, body: '{{"message":"Missing Authentication Token","route":"$context.routeKey"}}' }}
    routes:
      "POST /orders":
        request_validator: all
        request_model: Order
        required_parameters: [header.x-tenant]
        integration: {{ type: mock, status: 201, body: ok }}
  plain:
    stages: {{ dev: {{}} }}
    routes:
      "GET /x": {{ integration: {{ type: mock, status: 200, body: x }} }}
"#,
            log.display()
        );
        let p = Portico::start(&yaml, driver);
        let post = |headers: &str, body: &str| {
            p.raw(format!(
                "POST /prod/orders HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ).as_bytes())
        };
        // The body's detail, in the API's BAD_REQUEST_BODY template.
        let r = post("x-tenant: a\r\n", r#"{"qty":1}"#);
        assert_eq!(r.status, 422, "{driver}: {}", r.text());
        let body: Value = serde_json::from_slice(&r.body).expect("the template stays JSON");
        assert!(body["detail"].as_str().unwrap().contains("sku"), "{body}");
        assert_eq!(body["type"], "BAD_REQUEST_BODY");
        assert_eq!(body["msg"], "Invalid request body");
        let r = post("", "{}");
        assert_eq!(
            r.json_message(),
            "Missing required request parameters: [x-tenant]"
        );
        assert_eq!(r.header("x-default"), Some("4xx"), "through DEFAULT_4XX");
        // REQUEST_TOO_LARGE is never customised, not even through DEFAULT_4XX.
        let big = "x".repeat(1500);
        let r = p.raw(format!(
            "POST /prod/orders HTTP/1.1\r\nHost: t\r\nx-tenant: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
            big.len()
        ).as_bytes());
        assert_eq!((r.status, r.header("x-default")), (413, None), "{driver}");
        // A path of the API that no route matches: its MISSING_AUTHENTICATION_TOKEN.
        let r = p.get("/prod/nope");
        assert_eq!(r.status, 403, "{driver}");
        assert_eq!(r.header("x-stage"), Some("prod"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["message"], "Missing Authentication Token");
        assert_eq!(body["route"], "", "no route matched");
        // An API without gateway responses, and no API at all: 404 Not Found.
        for path in ["/dev/nope", "/elsewhere"] {
            let r = p.get(path);
            assert_eq!((r.status, r.json_message().as_str()), (404, "Not Found"));
        }
        assert_eq!(p.get("/dev/x").text(), "x");

        let lines = read_lines(&log, 7);
        let line = |path: &str, status: &str| {
            lines
                .iter()
                .find(|l| l["path"] == path && l["status"] == status)
                .unwrap_or_else(|| panic!("{path} {status} in {lines:?}"))
                .clone()
        };
        let bad = line("/prod/orders", "422");
        assert_eq!(bad["err"], "Invalid request body");
        assert_eq!(bad["type"], "BAD_REQUEST_BODY");
        let detail = bad["detail"].as_str().unwrap();
        assert!(detail.contains("sku") && detail.starts_with('['), "{bad}");
        let params = line("/prod/orders", "400");
        assert_eq!(
            params["err"],
            "Missing required request parameters: [x-tenant]"
        );
        assert_eq!(params["type"], "BAD_REQUEST_PARAMETERS");
        assert_eq!(params["detail"], "-");
        let unrouted = line("/prod/nope", "403");
        assert_eq!(unrouted["type"], "MISSING_AUTHENTICATION_TOKEN");
        assert_eq!(
            line("/elsewhere", "404")["type"],
            "MISSING_AUTHENTICATION_TOKEN"
        );
        p.stop();
    }
}
