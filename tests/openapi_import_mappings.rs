//! `portico openapi import` of parameter mappings Portico can't serve as written, as API
//! Gateway's exports can hold them: `$response.body.NAME` in an HTTP API's
//! `responseParameters`, and `$context.authorizer.*` on an operation with no authorizer.
//! Each is skipped with a warning at its JSON pointer and the rest of the operation's
//! mappings are kept, so what import writes is a config `check` accepts; it copied them
//! as they were, and check refused the whole config. So are a 204 mock's template and a
//! gateway response's 204 status, which check refuses (the body would follow a 204).
//! An integration's tlsConfig and cacheKeyParameters are warned about (they were dropped
//! without a word), and an aws_proxy (Lambda) integration's requestParameters are skipped
//! with a warning: they were written onto the lambda route, which check refuses.

mod common;

use std::process::Command;

use common::*;

const DOC: &str = r#"openapi: "3.0.1"
info: { title: "maps", version: "2026-12-01 10:00:00UTC" }
paths:
  /a:
    get:
      x-amazon-apigateway-integration:
        payloadFormatVersion: "1.0"
        type: "http_proxy"
        httpMethod: "ANY"
        uri: "http://127.0.0.1:9/a"
        connectionType: "INTERNET"
        tlsConfig: { serverNameToVerify: "a.example.com" }
        cacheNamespace: "abc1"
        cacheKeyParameters: ["method.request.querystring.q"]
        requestParameters:
          overwrite:header.x-sub: "$context.authorizer.claims.sub"
          overwrite:header.x-stage: "$context.stage"
        responseParameters:
          "200":
            overwrite:header.x-id: "$response.body.id"
            append:header.x-ok: "static"
          "404":
            overwrite:header.x-name: "${response.body.name}"
  /b:
    get:
      security:
      - jwt: []
      x-amazon-apigateway-integration:
        payloadFormatVersion: "1.0"
        type: "http_proxy"
        httpMethod: "ANY"
        uri: "http://127.0.0.1:9/b"
        requestParameters:
          overwrite:header.x-sub: "$context.authorizer.claims.sub"
  /c:
    get:
      x-amazon-apigateway-integration:
        type: "http"
        httpMethod: "GET"
        uri: "http://127.0.0.1:9/c"
        requestParameters:
          integration.request.header.x-user: "context.authorizer.principalId"
          integration.request.header.x-req: "context.requestId"
  /d:
    options:
      x-amazon-apigateway-integration:
        type: mock
        responses:
          default:
            statusCode: "204"
            responseParameters: { method.response.header.Allow: "'GET'" }
            responseTemplates: { application/json: "{}" }
  /f/{id}:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:f/invocations"
        requestParameters:
          integration.request.path.id: "method.request.path.id"
          integration.request.header.x-a: "'1'"
x-amazon-apigateway-gateway-responses:
  THROTTLED:
    statusCode: 204
    responseTemplates: { application/json: "{}" }
  DEFAULT_5XX:
    responseTemplates: { application/json: "{\"message\": \"$util.escapeJavaScript($context.error.message)\"}" }
components:
  securitySchemes:
    jwt:
      type: "oauth2"
      flows: {}
      x-amazon-apigateway-authorizer:
        identitySource: "$request.header.Authorization"
        jwtConfiguration: { audience: ["aud"], issuer: "https://issuer.example.com" }
        type: "jwt"
"#;

#[test]
fn mappings_portico_cannot_serve_are_skipped_with_their_pointer() {
    let dir = temp_dir("openapi-import-maps");
    let doc = dir.join("maps.yaml");
    std::fs::write(&doc, DOC).unwrap();
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
    let warning = |pointer: &str, why: &str| {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("{}{pointer}:", doc.display())) && l.contains(why))
            .unwrap_or_else(|| panic!("no warning {why:?} for {pointer} in\n{err}"));
        assert!(line.ends_with("skipped"), "{line}");
    };
    let integ = "#/paths/~1a/get/x-amazon-apigateway-integration";
    warning(
        &format!("{integ}/responseParameters/200/overwrite:header.x-id"),
        "$response.body.id is not supported",
    );
    warning(
        &format!("{integ}/responseParameters/404/overwrite:header.x-name"),
        "$response.body.name is not supported",
    );
    warning(
        &format!("{integ}/requestParameters"),
        "overwrite:header.x-sub: $context.authorizer.claims.sub reads the authorizer",
    );
    warning(
        "#/paths/~1c/get/x-amazon-apigateway-integration/requestParameters",
        "overwrite:header.x-user: ${context.authorizer.principalId} reads the authorizer",
    );
    // Integration settings Portico has elsewhere are named, not dropped silently.
    for (pointer, why) in [
        ("tlsConfig", "set tls (server_name, verify) on the upstream"),
        (
            "cacheKeyParameters",
            "a route's cache key is its cache.key setting",
        ),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("{integ}/{pointer}:")))
            .unwrap_or_else(|| panic!("no warning for {pointer} in\n{err}"));
        assert!(line.contains(why), "{line}");
    }
    // VTL in a gateway response's template is named: it is sent as written.
    let line = err
        .lines()
        .find(|l| l.contains("#/x-amazon-apigateway-gateway-responses/DEFAULT_5XX/responseTemplates/application~1json:"))
        .unwrap_or_else(|| panic!("no DEFAULT_5XX warning in\n{err}"));
    assert!(line.contains("VTL is not evaluated"), "{line}");
    // A Lambda route gets the whole request: no request mapping (check refuses one).
    warning(
        "#/paths/~1f~1{id}/get/x-amazon-apigateway-integration/requestParameters",
        "request parameter mapping applies to http integrations",
    );
    // A 204 has no body: the mock's template and the gateway response's status go.
    warning(
        "#/paths/~1d/options/x-amazon-apigateway-integration/responses/default/responseTemplates",
        "a 204 or 304 answer has no body; template skipped",
    );
    let line = err
        .lines()
        .find(|l| l.contains("#/x-amazon-apigateway-gateway-responses/THROTTLED/statusCode:"))
        .unwrap_or_else(|| panic!("no THROTTLED warning in\n{err}"));
    assert!(line.contains("204 can't carry the answer's body"), "{line}");
    // The rest of each operation's mappings are kept, and an authorized route keeps its
    // authorizer's claims.
    for kept in [
        "overwrite:header.x-stage: $context.stage",
        "append:header.x-ok: static",
        "overwrite:header.x-sub: $context.authorizer.claims.sub",
        "overwrite:header.x-req: ${context.requestId}",
    ] {
        assert!(yaml.contains(kept), "{kept} missing from\n{yaml}");
    }
    assert!(
        !yaml.contains("$response.body") && !yaml.contains("'404'"),
        "{yaml}"
    );
    assert_eq!(yaml.matches("authorizer.").count(), 1, "{yaml}");
    // The mock keeps its status and header; the gateway response its body and the
    // type's own 429.
    assert!(
        yaml.contains("OPTIONS /d:\n        integration:\n          headers:\n            Allow: GET\n          status: 204\n          type: mock\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("THROTTLED:\n        body: '{}'\n    routes:"),
        "{yaml}"
    );
    // What import wrote is a config check accepts.
    let (code, text) = check(&yaml);
    assert_eq!(code, 0, "{text}\n{yaml}");
    let _ = std::fs::remove_dir_all(&dir);
}
