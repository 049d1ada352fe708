//! An OpenAPI integration URI's query string, as the backend gets it: a `{name}` in it is
//! filled as the URI path's is (from the route's parameter, or what an
//! `integration.request.path.name` mapping gives; the method is skipped with a warning
//! when nothing fills it), and `+` is a space, as in any form-encoded query. They were
//! sent as written: `x=%7Ba%7D`, and `c+d` as `c%2Bd`.

mod common;

use common::*;

fn spec(origin: &Origin) -> String {
    let o = origin.addr;
    format!(
        r#"openapi: 3.0.1
info: {{ title: q, version: 1 }}
paths:
  /q/{{a}}:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        payloadFormatVersion: "1.0"
        uri: "http://{o}/q/{{a}}?x={{a}}&y=c+d&z=e%20f&p=1%2B1&w=pre-{{a}}+post&t=1&t=2&e="
  /r:
    get:
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: "http://{o}/r?b={{b}}"
        requestParameters:
          integration.request.path.b: method.request.header.x-b
  /s:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        payloadFormatVersion: "1.0"
        uri: "http://{o}/s?x={{nope}}"
"#
    )
}

#[test]
fn uri_query_fills_path_parameters_and_reads_plus_as_a_space() {
    let origin = Origin::echo();
    let dir = temp_dir("openapi-uri-query");
    let file = dir.join("q.yaml");
    std::fs::write(&file, spec(&origin)).unwrap();
    let yaml = format!(
        "server: {{ listen: [\"127.0.0.1:{{PORT}}\"], workers: 1 }}\napis:\n  q:\n    openapi: {}\n    stages: {{ $default: {{}} }}\n",
        file.display()
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let r = p.get("/q/v1");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            origin.last().target,
            "/q/v1?p=1%2B1&t=1&w=pre-v1%20post&x=v1&y=c%20d&z=e%20f",
            "{driver}"
        );
        let r =
            p.raw(b"GET /r HTTP/1.1\r\nHost: t\r\nx-b: from-header\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/r?b=from-header", "{driver}");
        // A name given twice keeps its first (a mapping sends one value), an empty value
        // is not sent: both said, where they were dropped unsaid.
        let log = p.log_text();
        assert!(
            log.contains(
                r#"query part "t=2": t is given before; a mapping sends one value; dropped"#
            ),
            "{log}"
        );
        assert!(
            log.contains(r#"query part "e=": an empty value is not sent; dropped"#),
            "{log}"
        );
        // Nothing fills {nope}: not served, and said.
        assert_eq!(p.get("/s").status, 404, "{driver}");
        assert!(
            p.log_text()
                .contains("{nope} in the query is not a parameter of the route key"),
            "{}",
            p.log_text()
        );
        p.stop();
    }
}
