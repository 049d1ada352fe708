//! Gateway responses as API Gateway's REST exports write them, served from an `openapi:`
//! file: a header from a context variable (`context.requestId`), a body that reads the
//! authorizer (`$context.authorizer.user`), a `text/html` template, and stage variables
//! (`stageVariables.env`, `${stageVariables.env}`). Import skipped the first, the second
//! made check refuse the config ("unknown variable"), the third was sent as
//! application/json, and stage variables were skipped or sent as literal text.

mod common;

use common::*;
use serde_json::json;

const DOC: &str = r#"openapi: "3.0.1"
info: { title: "shop", version: "2026-12-01T10:00:00Z" }
paths: {}
x-amazon-apigateway-gateway-responses:
  BAD_REQUEST_BODY:
    statusCode: 422
    responseParameters:
      gatewayresponse.header.x-request-id: "context.requestId"
      gatewayresponse.header.x-origin: "method.request.header.origin"
      gatewayresponse.header.x-env: "stageVariables.env"
    responseTemplates:
      application/json: "{\"message\":$context.error.messageString,\"user\":\"$context.authorizer.user\"}"
  DEFAULT_5XX:
    responseTemplates:
      text/html: "<p>Sorry ($context.requestId) from ${stageVariables.env}: $stageVariables.nope.</p>"
"#;

#[test]
fn rest_export_gateway_responses_serve_as_written() {
    let gate = Function::start(|_| {
        FnReply::Json(json!({"isAuthorized": true, "context": {"user": "u\"1"}}).to_string())
    });
    let dir = temp_dir("openapi-gateway-responses");
    std::fs::write(dir.join("shop.yaml"), DOC).unwrap();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  dead: {{ targets: ["127.0.0.1:9"] }}
apis:
  shop:
    openapi: "{doc}"
    stages: {{ prod: {{ variables: {{ env: "<b>eu</b>" }} }} }}
    authorizers:
      gate: {{ type: lambda, url: "{url}", payload_format: "2.0", simple_responses: true, identity_source: [$request.header.x-token] }}
    models:
      Order: {{ type: object, required: [sku] }}
    routes:
      "POST /orders":
        authorizer: gate
        request_validator: all
        request_model: Order
        integration: {{ type: mock, status: 201, body: ok }}
      "GET /down": {{ integration: {{ type: http, upstream: dead }} }}
"#,
        doc = dir.join("shop.yaml").display(),
        url = gate.url(),
    );
    let (code, text) = check(&yaml.replace("{PORT}", "1"));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("gatewayresponse.header.x-origin") && !text.contains("x-request-id"),
        "{text}"
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let r = p.raw(
            b"POST /prod/orders HTTP/1.1\r\nHost: shop\r\nx-token: t\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        );
        assert_eq!(r.status, 422, "{driver}: {}", r.text());
        let id = r.header("x-amzn-requestid").unwrap().to_string();
        assert_eq!(r.header("x-request-id"), Some(id.as_str()), "{driver}");
        assert_eq!(r.header("x-env"), Some("<b>eu</b>"), "{driver}");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"message": "Invalid request body", "user": "u\"1"}),
            "{driver}"
        );

        let r = p.get("/prod/down");
        assert_eq!(r.status, 502, "{driver}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("text/html"), "{driver}");
        let id = r.header("x-amzn-requestid").unwrap().to_string();
        assert_eq!(
            r.text(),
            format!("<p>Sorry ({id}) from &lt;b&gt;eu&lt;/b&gt;: .</p>"),
            "{driver}"
        );
        p.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
