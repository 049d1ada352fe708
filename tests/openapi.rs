//! API definitions end to end: APIs served from OpenAPI files (Swagger 2.0 and OpenAPI 3,
//! modelled on AWS's PetStore and an AWS HTTP API export: tests/data/openapi/README.md),
//! request validation answered by the gateway (raw client and curl), gateway responses,
//! `portico openapi import` / `export`, admin export, the export → import round trip,
//! and `check` on bad definitions.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;

use common::*;

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/openapi")
        .join(name)
        .display()
        .to_string()
}

fn post(p: &Portico, path: &str, headers: &str, body: &str) -> Response {
    p.raw(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn get(p: &Portico, path: &str, headers: &str) -> Response {
    p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn portico(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn petstore_swagger_file_is_served_and_validated() {
    let origin = Origin::echo();
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:{{PORT}}"], workers: 1 }}
upstreams:
  petstore.execute-api.eu-west-1.amazonaws.com: {{ targets: ["{}"] }}
apis:
  petstore:
    openapi: {}
    stages: {{ $default: {{}} }}
"#,
        origin.addr,
        data("petstore-swagger.json")
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        // The mock root page.
        let r = get(&p, "/", "");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(r.header("content-type"), Some("text/html"));
        assert!(r.text().contains("Welcome to your Pet Store API"));
        // http integrations: URI path, REST query mappings, a renamed path parameter.
        let r = get(&p, "/pets?type=dog&page=2", "");
        assert_eq!(r.status, 200, "{driver}");
        let seen = origin.last();
        assert!(
            seen.target.starts_with("/petstore/pets?"),
            "{}",
            seen.target
        );
        assert!(seen.target.contains("type=dog") && seen.target.contains("page=2"));
        assert_eq!(get(&p, "/pets/42", "").status, 200);
        assert_eq!(origin.last().target, "/petstore/pets/42");
        // Body validation against NewPet (enum through a $ref, minimum/maximum).
        let before = origin.requests.load(Ordering::SeqCst);
        let json = "Content-Type: application/json\r\n";
        for bad in [
            r#"{"type":"bird","price":600}"#,
            r#"{"type":"lion","price":100}"#,
            r#"{"price":100}"#,
            "not json",
            "",
            // A backend that reads the first of a repeated name gets a type the model
            // refuses; the validator read the last.
            r#"{"type":"lion","price":100,"type":"dog"}"#,
        ] {
            let r = post(&p, "/pets", json, bad);
            assert_eq!(r.status, 400, "{driver} {bad}");
            assert_eq!(r.text(), r#"{"message":"Invalid request body"}"#);
        }
        // No Content-Type counts as JSON; an empty body fails `required`.
        let r = post(&p, "/pets", "", "");
        assert_eq!(r.json_message(), "Invalid request body");
        assert_eq!(
            origin.requests.load(Ordering::SeqCst),
            before,
            "refused bodies never reach the backend"
        );
        let good = r#"{"type":"cat","price":123.11}"#;
        let r = post(&p, "/pets", json, good);
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(r.text(), good);
        // A chunked body is validated whole and relayed as sent.
        let r = p.raw(
            format!("POST /pets HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n", &good[..5], good.len() - 5, &good[5..]).as_bytes(),
        );
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().body, good.as_bytes());
        let r = p.raw(
            b"POST /pets HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\n{\"ty\r\n0\r\n\r\n",
        );
        assert_eq!(r.json_message(), "Invalid request body");
        // Required parameters: headers first, then query strings; blank counts as missing.
        let r = get(&p, "/validation", "");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json_message(),
            "Missing required request parameters: [h1, q1]"
        );
        let r = get(&p, "/validation?q1=", "h1: yes\r\n");
        assert_eq!(
            r.json_message(),
            "Missing required request parameters: [q1]"
        );
        let r = get(&p, "/validation?q1=fish", "h1: yes\r\n");
        assert_eq!(r.status, 200);
        assert!(origin.last().target.contains("type=fish"));
        // Judged as a backend reads them: decoded query names and values; a repeated
        // header or parameter by every one of its values (backends differ in which
        // they take).
        for (target, headers) in [
            ("/validation?q1=%20", "h1: yes\r\n"),
            ("/validation?q1=+", "h1: yes\r\n"),
            ("/validation?q1=", "h1: \r\n"),
            ("/validation?q1=fish&q1=", "h1: yes\r\n"),
            ("/validation?q1=&q1=fish", "h1: yes\r\n"),
            ("/validation?q1=fish", "h1: yes\r\nh1: \r\n"),
            ("/validation?q1=fish", "h1: \r\nh1: yes\r\n"),
        ] {
            assert_eq!(get(&p, target, headers).status, 400, "{target} {headers}");
        }
        for (target, headers) in [
            ("/validation?%71%31=fish", "h1: yes\r\n"),
            ("/validation?q1=a&q1=fish", "h1: no\r\nh1: yes\r\n"),
        ] {
            assert_eq!(get(&p, target, headers).status, 200, "{target} {headers}");
        }
        // Two Content-Types: the model is chosen by one, the backend may read the other.
        let r = post(
            &p,
            "/pets",
            "Content-Type: text/plain\r\nContent-Type: application/json\r\n",
            r#"{"type":"lion"}"#,
        );
        assert_eq!(r.status, 400, "{driver}");
        assert_eq!(r.json_message(), "Invalid request body");
        // Keep-alive survives a refused request: the body was read.
        let mut c = Client::new(&p);
        let r = c.send(b"POST /pets HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!(r.status, 400);
        assert_eq!(c.get("/pets/7", "t").status, 200);
        // A real client.
        let out = Command::new("curl")
            .args([
                "-s",
                "-i",
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"type":"gecko","price":1}"#,
            ])
            .arg(format!("http://{}/pets", p.addr))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        assert!(
            text.ends_with(r#"{"message":"Invalid request body"}"#),
            "{text}"
        );
        p.stop();
    }
}

#[test]
fn http_api_file_with_lambda_cors_and_gateway_responses() {
    let origin = Origin::echo();
    let function =
        Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"from fn"}"#.into()));
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:{{PORT}}"], workers: 2 }}
upstreams:
  people.internal: {{ targets: ["{}"] }}
apis:
  people:
    openapi: {}
    lambda_functions:
      "arn:aws:lambda:us-east-1:123456789012:function:people-fn": "{}"
    stages: {{ $default: {{}} }}
"#,
        origin.addr,
        data("http-api.yaml"),
        function.url()
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let json = "Content-Type: application/json\r\n";
        let r = post(
            &p,
            "/people",
            json,
            r#"{"name":"ada","house":{"contains":[{"name":"bob"}]}}"#,
        );
        assert_eq!(r.status, 200, "{driver}");
        let seen = origin.last();
        assert_eq!(seen.target, "/v1/people");
        assert_eq!(seen.header("x-source"), Some("openapi"));
        // Circular models validate nested items; the gateway response customises the 400.
        let r = post(
            &p,
            "/people",
            json,
            r#"{"name":"ada","house":{"contains":[{"name":""}]}}"#,
        );
        assert_eq!(r.status, 422, "{driver}");
        assert_eq!(r.header("x-problem"), Some("body"));
        let body: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(body["type"], "BAD_REQUEST_BODY");
        let detail = body["message"].as_str().unwrap();
        assert!(detail.contains("/house/contains/0/name"), "{detail}");
        // Not customised: the default answer.
        let r = get(&p, "/people/1", "");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json_message(),
            "Missing required request parameters: [x-tenant]"
        );
        let r = get(&p, "/people/1", "x-tenant: t1\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(origin.last().target, "/v1/people/1");
        assert_eq!(r.header("cache-control"), Some("public, s-maxage=3"));
        // aws_proxy through the ARN map, on a greedy ANY route.
        let r = get(&p, "/fn/a/b", "");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(r.text(), "from fn");
        // x-amazon-apigateway-cors.
        let r = p.raw(b"OPTIONS /people HTTP/1.1\r\nHost: t\r\nOrigin: https://people.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 204);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://people.example")
        );
        p.stop();
    }
}

#[test]
fn import_writes_a_config_that_serves_the_same_api() {
    let origin = Origin::echo();
    let dir = temp_dir("openapi-import");
    let doc = dir.join("api.json");
    std::fs::write(
        &doc,
        format!(
            r#"{{"openapi":"3.0.1","info":{{"title":"Orders API","version":3}},
  "x-amazon-apigateway-request-validators":{{"v":{{"validateRequestBody":true,"validateRequestParameters":true}}}},
  "x-amazon-apigateway-policy":{{}},
  "paths":{{"/orders":{{"post":{{"x-amazon-apigateway-request-validator":"v",
    "requestBody":{{"content":{{"application/json":{{"schema":{{"type":"object","required":["sku"]}}}}}}}},
    "x-amazon-apigateway-integration":{{"type":"HTTP_PROXY","httpMethod":"POST","uri":"http://{}/orders","payloadFormatVersion":"1.0"}}}}}}}}}}"#,
            origin.addr
        ),
    )
    .unwrap();
    let doc = doc.display().to_string();
    let (code, yaml, err) = portico(&["openapi", "import", &doc]);
    assert_eq!(code, 0, "{err}");
    assert!(yaml.contains("orders-api:"), "{yaml}");
    assert!(
        err.contains("#/x-amazon-apigateway-policy: not supported"),
        "{err}"
    );
    // --fail-on-warnings turns the warning into a failure and writes nothing.
    let (code, out, err) = portico(&["openapi", "import", &doc, "--fail-on-warnings"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    // The written config is valid and serves the API.
    let yaml = yaml.replace(
        "apis:",
        "server: { listen: [\"127.0.0.1:{PORT}\"], workers: 1 }\napis:",
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let r = post(&p, "/orders", "", r#"{"qty":1}"#);
        assert_eq!(r.json_message(), "Invalid request body", "{driver}");
        let r = post(&p, "/orders", "", r#"{"sku":"a"}"#);
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/orders");
        p.stop();
    }
    // Malformed documents fail at the first problem's pointer.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"openapi":"3.0.1","paths":{"/x":[]}}"#).unwrap();
    let (code, _, err) = portico(&["openapi", "import", &bad.display().to_string()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("#/paths/~1x: expected a Path Item object"),
        "{err}"
    );
    std::fs::write(&bad, "openapi: [").unwrap();
    let (code, _, err) = portico(&["openapi", "import", &bad.display().to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("Invalid OpenAPI input"), "{err}");
    std::fs::write(&bad, r#"{"swagger":"1.2","paths":{}}"#).unwrap();
    let (code, _, err) = portico(&["openapi", "import", &bad.display().to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("expected openapi: 3.0.x"), "{err}");
}

#[test]
fn export_round_trip_and_admin_export() {
    let origin = Origin::echo();
    let function = Function::start(|_| FnReply::Json(r#"{"statusCode":201,"body":"fn"}"#.into()));
    let admin_port = free_port();
    let yaml = format!(
        r##"server: {{ listen: ["127.0.0.1:{{PORT}}"], workers: 1 }}
admin: {{ listen: "127.0.0.1:{admin_port}", token: tok }}
upstreams:
  users: {{ targets: ["{}"] }}
apis:
  shop:
    stages: {{ prod: {{}} }}
    models:
      Order: {{ type: object, required: [sku], properties: {{ sku: {{ type: string }}, line: {{ $ref: "#/models/Line" }} }} }}
      Line: {{ type: object, properties: {{ qty: {{ type: integer, minimum: 1 }} }} }}
    gateway_responses:
      BAD_REQUEST_PARAMETERS: {{ status: 409, body: '{{"why":"$context.error.message","stage":"$context.stage"}}' }}
    routes:
      "POST /orders/{{id}}":
        integration: {{ type: http, upstream: users, path: "/v2/orders/{{id}}" }}
        request_validator: all
        request_model: Order
        required_parameters: [header.x-tenant]
      "GET /ping": {{ integration: {{ type: mock, status: 202, headers: {{ x-m: "1" }}, body: pong }} }}
      "ANY /fn/{{proxy+}}": {{ integration: {{ type: lambda, url: "{}", payload_format: "1.0" }} }}
"##,
        origin.addr,
        function.url()
    );
    let dir = temp_dir("openapi-export");
    let cfg = dir.join("portico.yaml");
    let port = free_port();
    std::fs::write(&cfg, yaml.replace("{PORT}", &port.to_string())).unwrap();
    let (code, exported, err) = portico(&[
        "openapi",
        "export",
        "-c",
        &cfg.display().to_string(),
        "--api",
        "shop",
        "--stage",
        "prod",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(doc["openapi"], "3.0.1");
    let op = &doc["paths"]["/orders/{id}"]["post"];
    assert_eq!(op["x-amazon-apigateway-integration"]["type"], "http_proxy");
    assert_eq!(op["x-amazon-apigateway-request-validator"], "all");
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Order"
    );
    assert_eq!(
        doc["components"]["schemas"]["Order"]["properties"]["line"]["$ref"],
        "#/components/schemas/Line"
    );
    assert_eq!(
        doc["paths"]["/fn/{proxy+}"]["x-amazon-apigateway-any-method"]
            ["x-amazon-apigateway-integration"]["type"],
        "aws_proxy"
    );
    // Without extensions: no integrations or validators (ANY stays x-amazon-apigateway-any-method).
    let (_, plain, _) = portico(&[
        "openapi",
        "export",
        "-c",
        &cfg.display().to_string(),
        "--api",
        "shop",
        "--stage",
        "prod",
        "--extensions",
        "",
    ]);
    assert!(
        !plain.contains("x-amazon-apigateway-integration") && !plain.contains("request-validator"),
        "{plain}"
    );

    // The running config's export is the same document.
    for driver in DRIVERS {
        let p = Portico::start_at(&std::fs::read_to_string(&cfg).unwrap(), driver, port);
        let admin_addr = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let r = admin(
            admin_addr,
            "GET",
            "/apis/shop/openapi?stage=prod",
            Some("tok"),
            None,
        );
        assert_eq!(r.status, 200, "{driver}");
        let served: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(served, doc);
        assert_eq!(
            admin(
                admin_addr,
                "GET",
                "/apis/shop/openapi?stage=nope",
                Some("tok"),
                None
            )
            .status,
            404
        );
        let r = admin(
            admin_addr,
            "GET",
            "/apis/shop/openapi?stage=prod&stage=nope",
            Some("tok"),
            None,
        );
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        p.stop();
    }

    // Import of the export serves the same routes, integrations and validation.
    let file = dir.join("exported.json");
    std::fs::write(&file, &exported).unwrap();
    let again = format!(
        "server: {{ listen: [\"127.0.0.1:{{PORT}}\"], workers: 1 }}\napis:\n  shop:\n    openapi: {}\n    stages: {{ prod: {{}} }}\n",
        file.display()
    );
    for driver in DRIVERS {
        let p = Portico::start(&again, driver);
        let json = "Content-Type: application/json\r\n";
        let r = post(&p, "/prod/orders/7", json, r#"{"sku":"a"}"#);
        assert_eq!(r.status, 409, "{driver}");
        let body: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(
            body["why"],
            "Missing required request parameters: [x-tenant]"
        );
        assert_eq!(body["stage"], "prod");
        let r = post(
            &p,
            "/prod/orders/7",
            &format!("{json}x-tenant: a\r\n"),
            r#"{"sku":"a","line":{"qty":0}}"#,
        );
        assert_eq!(r.json_message(), "Invalid request body");
        let r = post(
            &p,
            "/prod/orders/7",
            &format!("{json}x-tenant: a\r\n"),
            r#"{"sku":"a","line":{"qty":2}}"#,
        );
        assert_eq!(r.status, 200);
        assert_eq!(origin.last().target, "/v2/orders/7");
        let r = get(&p, "/prod/ping", "");
        assert_eq!(
            (r.status, r.header("x-m"), r.text().as_str()),
            (202, Some("1"), "pong")
        );
        let r = get(&p, "/prod/fn/x", "");
        assert_eq!((r.status, r.text().as_str()), (201, "fn"), "{driver}");
        p.stop();
    }
}

#[test]
fn check_reports_bad_definitions_with_key_paths() {
    let dir = temp_dir("openapi-check");
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "openapi: 3.0.1\npaths:\n  /a:\n    get: 5\n").unwrap();
    let yaml = format!(
        r#"apis:
  shop:
    stages: {{ prod: {{}} }}
    models:
      Bad: {{ type: 5 }}
      "Not ok": {{ type: object }}
    gateway_responses:
      SLOW: {{ status: 429 }}
      THROTTLED: {{ body: "$context.nope" }}
    routes:
      "POST /x/{{id}}":
        integration: {{ type: mock }}
        request_validator: sometimes
        request_model: Missing
        required_parameters: [cookie.a, path.other]
  other:
    openapi: {}
    stages: {{ prod: {{}} }}
  gone:
    openapi: /nonexistent/api.yaml
    stages: {{ prod: {{}} }}
"#,
        broken.display()
    );
    let (code, out) = check(&yaml);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "apis.shop.models.Bad: not a valid JSON Schema",
        "apis.shop.models.\"Not ok\": model names are letters, digits, '.', '_' and '-' only",
        "apis.shop.gateway_responses.SLOW: unknown response type",
        "apis.shop.gateway_responses.THROTTLED.body: unknown variable $context.nope",
        "apis.shop.routes.\"POST /x/{id}\".request_validator: expected one of all, params-only, body-only",
        "apis.shop.routes.\"POST /x/{id}\".required_parameters[0]: expected header.NAME",
        "apis.shop.routes.\"POST /x/{id}\".required_parameters[1]: the route key has no {other} segment",
        "#/paths/~1a/get: expected an Operation object",
        "apis.gone.openapi: cannot read /nonexistent/api.yaml",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // Warnings are printed by a passing check, with their pointers.
    let ok = format!(
        "apis:\n  a:\n    openapi: {}\n    stages: {{ $default: {{}} }}\n",
        data("petstore-swagger.json")
    );
    let ok = ok.replace("apis:", "upstreams:\n  petstore.execute-api.eu-west-1.amazonaws.com: { targets: [\"127.0.0.1:9\"] }\napis:");
    let (code, out) = check(&ok);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: apis.a.openapi:")
            && out.contains("#/x-amazon-apigateway-documentation"),
        "{out}"
    );
}

/// Schema names as generators write them (`v1.Pet-tag_x`, `Other_1`: OpenAPI allows
/// `[a-zA-Z0-9._-]`) are models like any other. They were skipped with a warning, which
/// left every body that referred to them unvalidated.
#[test]
fn schema_names_with_dots_dashes_and_underscores_are_validated() {
    let dir = temp_dir("openapi-names");
    let spec = dir.join("names.yaml");
    std::fs::write(
        &spec,
        r##"openapi: 3.0.1
info: { title: names, version: "1" }
x-amazon-apigateway-request-validators:
  all: { validateRequestBody: true, validateRequestParameters: true }
paths:
  /o:
    post:
      x-amazon-apigateway-request-validator: all
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/v1.Pet-tag_x" }
      x-amazon-apigateway-integration:
        type: mock
        responses: { default: { statusCode: "201" } }
components:
  schemas:
    v1.Pet-tag_x: { type: object, required: [a], properties: { a: { $ref: "#/components/schemas/Other_1" } } }
    Other_1: { type: integer }
"##,
    )
    .unwrap();
    let (code, out, err) = portico(&["openapi", "import", &spec.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "no warning: {err}");
    assert!(
        out.contains("request_model:") && out.contains("v1.Pet-tag_x"),
        "{out}"
    );
    assert!(out.contains("$ref: '#/models/Other_1'"), "{out}");
    let yaml = format!(
        "server: {{ listen: [\"127.0.0.1:{{PORT}}\"], workers: 1 }}\napis:\n  n:\n    openapi: {}\n    stages: {{ $default: {{}} }}\n",
        spec.display()
    );
    let (code, out) = check(&yaml.replace("{PORT}", &free_port().to_string()));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("warning"), "{out}");
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let json = "Content-Type: application/json\r\n";
        assert_eq!(post(&p, "/o", json, r#"{"a":1}"#).status, 201, "{driver}");
        for bad in [r#"{"a":"x"}"#, "{}", "[]"] {
            let r = post(&p, "/o", json, bad);
            assert_eq!(r.status, 400, "{driver} {bad}");
            assert_eq!(r.json_message(), "Invalid request body");
        }
        p.stop();
    }
}
