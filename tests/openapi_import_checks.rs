//! An OpenAPI 3.1 file (`apis.NAME.openapi`) with what API Gateway's exports hold and
//! Portico could not take as written: a mapping to X-Forwarded-For, a URI whose port is past
//! 65535, a CORS preflight mock whose response is keyed "200" rather than `default`, a
//! mock body with `$stageVariables.env`, and a 2020-12 model (`exclusiveMinimum: 0`,
//! `const`). Each was written out as it was and `check` refused the whole config, or the
//! preflight answered without its headers and the model was read as draft 4. Now what
//! can't be kept is skipped with a warning at its pointer, the config passes check, and
//! the API answers as API Gateway does.

mod common;

use common::*;

const DOC: &str = r##"openapi: "3.1.0"
info: { title: "shop", version: "1" }
paths:
  /cors:
    options:
      x-amazon-apigateway-integration:
        type: mock
        passthroughBehavior: when_no_match
        requestTemplates: { application/json: '{"statusCode": 200}' }
        responses:
          "200":
            statusCode: "200"
            responseParameters:
              method.response.header.Access-Control-Allow-Headers: "'Content-Type,X-Api-Key'"
              method.response.header.Access-Control-Allow-Methods: "'POST,OPTIONS'"
              method.response.header.Access-Control-Allow-Origin: "'*'"
            responseTemplates: { application/json: "" }
  /env:
    get:
      x-amazon-apigateway-integration:
        type: mock
        responses:
          default:
            statusCode: "200"
            responseTemplates: { application/json: '{"env": "$stageVariables.env"}' }
  /orders:
    post:
      x-amazon-apigateway-request-validator: all
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Order" }
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: { application/json: '{"statusCode": 201}' }
        responses:
          "2\\d{2}": { statusCode: "201", responseTemplates: { application/json: '{"ok": true}' } }
          default: { statusCode: "500" }
  /ip:
    get:
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: "http://127.0.0.1:9/ip"
        requestParameters:
          integration.request.header.X-Forwarded-For: context.identity.sourceIp
  /port:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: "https://backend.example:99999/a"
x-amazon-apigateway-request-validators:
  all: { validateRequestBody: true, validateRequestParameters: true }
components:
  schemas:
    Order:
      type: object
      required: [kind, qty]
      properties:
        kind: { const: order }
        qty: { type: number, exclusiveMinimum: 0 }
"##;

#[test]
fn an_openapi_file_portico_cannot_take_as_written_passes_check_and_answers() {
    let dir = temp_dir("openapi-import-checks");
    let doc = dir.join("shop.yaml");
    std::fs::write(&doc, DOC).unwrap();
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:{{PORT}}"], workers: 1 }}
apis:
  shop:
    openapi: {}
    stages: {{ $default: {{ variables: {{ env: prod }} }} }}
"#,
        doc.display()
    );
    let (code, text) = check(&yaml.replace("{PORT}", "1"));
    assert_eq!(code, 0, "{text}");
    for (pointer, why) in [
        (
            "#/paths/~1ip/get/x-amazon-apigateway-integration/requestParameters/integration.request.header.X-Forwarded-For",
            "X-Forwarded-For is reserved",
        ),
        (
            "#/paths/~1port/get/x-amazon-apigateway-integration/uri",
            "method skipped",
        ),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("shop.yaml{pointer}:")))
            .unwrap_or_else(|| panic!("no warning for {pointer} in\n{text}"));
        assert!(line.contains(why), "{line}");
    }
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let r = p.raw(b"OPTIONS /cors HTTP/1.1\r\nHost: test\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{driver}"
        );
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("POST,OPTIONS")
        );
        let r = p.get("/env");
        assert_eq!(
            (r.status, r.text()),
            (200, r#"{"env": "prod"}"#.to_string()),
            "{driver}"
        );
        let post = |body: &str| {
            p.raw(format!("POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
        };
        for bad in [r#"{"kind":"order","qty":0}"#, r#"{"kind":"other","qty":1}"#] {
            assert_eq!(post(bad).status, 400, "{driver} {bad}");
        }
        let r = post(r#"{"kind":"order","qty":0.5}"#);
        assert_eq!((r.status, r.text()), (201, r#"{"ok": true}"#.to_string()));
        // The skipped method is not served; the skipped mapping's route is.
        assert_eq!(p.get("/port").status, 404, "{driver}");
        p.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
