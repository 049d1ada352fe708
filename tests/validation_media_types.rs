//! A request body is matched to its model by the request's media type (its parameters
//! left out); a model keyed by a content type with parameters
//! (`application/json; charset=utf-8`, as generated OpenAPI documents write it) is keyed
//! by its media type too. It matched no request, so every body went through unvalidated.

mod common;

use common::*;

fn post(p: &Portico, path: &str, ctype: &str, body: &str) -> u16 {
    p.raw(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .status
}

#[test]
fn a_model_keyed_with_parameters_validates_its_media_type() {
    let dir = temp_dir("media-types");
    std::fs::write(
        dir.join("api.yaml"),
        r#"openapi: 3.0.1
info: { title: t, version: "1" }
x-amazon-apigateway-request-validators:
  all: { validateRequestBody: true, validateRequestParameters: true }
x-amazon-apigateway-request-validator: all
paths:
  /imported:
    post:
      requestBody:
        content:
          "application/json; charset=utf-8":
            schema: { type: object, required: [a] }
      x-amazon-apigateway-integration: { type: mock, responses: { default: { statusCode: "200" } } }
"#,
    )
    .unwrap();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  shop:
    openapi: {}
    models:
      Order: {{ type: object, required: [sku] }}
    stages:
      $default: {{}}
    routes:
      "POST /orders":
        integration: {{ type: mock, body: "ok" }}
        request_validator: body-only
        request_model: {{ "Application/JSON; charset=UTF-8": Order }}
"#,
        dir.join("api.yaml").display()
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        for ctype in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
        ] {
            assert_eq!(post(&p, "/orders", ctype, "{}"), 400, "{driver} {ctype}");
            assert_eq!(
                post(&p, "/orders", ctype, r#"{"sku":"a"}"#),
                200,
                "{driver} {ctype}"
            );
            assert_eq!(post(&p, "/imported", ctype, "{}"), 400, "{driver} {ctype}");
            assert_eq!(
                post(&p, "/imported", ctype, r#"{"a":1}"#),
                200,
                "{driver} {ctype}"
            );
        }
        // Another media type has no model: unchecked, as before.
        assert_eq!(post(&p, "/orders", "text/plain", "{}"), 200, "{driver}");
    }
}

/// `Content-Type:` with no media type is no content type, so application/json's model
/// applies, as without the header; the body went through unchecked, to backends that read
/// it as JSON just as they read one without a content type.
#[test]
fn a_blank_content_type_is_application_json() {
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  shop:
    models:
      Order: { type: object, required: [sku] }
    stages:
      $default: {}
    routes:
      "POST /orders":
        integration: { type: mock, body: "ok" }
        request_validator: body-only
        request_model: Order
"#;
    for driver in DRIVERS {
        let p = Portico::start(yaml, driver);
        for ctype in ["", " ", "; charset=utf-8", "application/json"] {
            assert_eq!(post(&p, "/orders", ctype, "{}"), 400, "{driver} {ctype:?}");
            assert_eq!(
                post(&p, "/orders", ctype, r#"{"sku":"a"}"#),
                200,
                "{driver} {ctype:?}"
            );
        }
    }
}

/// A model keyed by a range (`*/*`, `application/*`, as OpenAPI 3 documents write them)
/// covers every type it names: imported as the literal key, it matched no request, and
/// no body was checked. A Content-Type that is not one media type (`application/json,
/// text/plain`, `application/json x`) found no model either, while a backend matching a
/// prefix parsed the body as JSON: it is 400 on a route that validates bodies.
#[test]
fn media_type_ranges_and_malformed_content_types() {
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  shop:
    models:
      Any: { type: object, required: [any] }
      App: { type: object, required: [app] }
      Json: { type: object, required: [json] }
    stages:
      $default: {}
    routes:
      "POST /any":
        integration: { type: mock, body: "ok" }
        request_validator: body-only
        request_model: { "*/*": Any }
      "POST /ranges":
        integration: { type: mock, body: "ok" }
        request_validator: body-only
        request_model: { "application/json": Json, "application/*": App, "*/*": Any }
      "POST /json":
        integration: { type: mock, body: "ok" }
        request_validator: body-only
        request_model: { "application/json": Json }
"#;
    for driver in DRIVERS {
        let p = Portico::start(yaml, driver);
        for ctype in ["application/json", "text/plain", "image/png; q=1"] {
            assert_eq!(post(&p, "/any", ctype, "{}"), 400, "{driver} {ctype}");
            assert_eq!(
                post(&p, "/any", ctype, r#"{"any":1}"#),
                200,
                "{driver} {ctype}"
            );
        }
        // The most specific model: the type's own, then its type's range, then */*.
        for (ctype, field) in [
            ("application/json", "json"),
            ("application/json;", "json"),
            ("application/json; charset=\"utf-8\"; ;", "json"),
            ("application/json;odata=verbose", "json"),
            ("Application/XML", "app"),
            ("text/csv", "any"),
            ("multipart/form-data; boundary=a:b=c/d", "any"),
        ] {
            let body = format!(r#"{{"{field}":1}}"#);
            assert_eq!(post(&p, "/ranges", ctype, &body), 200, "{driver} {ctype}");
            assert_eq!(post(&p, "/ranges", ctype, "{}"), 400, "{driver} {ctype}");
        }
        for ctype in [
            "application/json, text/plain",
            "application/json,",
            "application/json text/plain",
            "application/json/x",
            "application / json",
            "json",
        ] {
            assert_eq!(
                post(&p, "/ranges", ctype, r#"{"json":1}"#),
                400,
                "{driver} {ctype}"
            );
        }
        // A text/plain body has no model on /json and passes unchecked, unless its
        // parameters are no `name=value` list: a backend that looks for application/json
        // anywhere in the header reads JSON there.
        assert_eq!(post(&p, "/json", "text/plain; charset=utf-8", "{}"), 200);
        for ctype in [
            "text/plain;application/json",
            "text/plain; charset",
            "text/plain; charset=\"utf-8",
            "text/plain; charset=utf-8,application/json",
            "text/plain; charset=utf-8 application/json",
        ] {
            assert_eq!(post(&p, "/json", ctype, "{}"), 400, "{driver} {ctype}");
        }
    }
}
