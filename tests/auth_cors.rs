//! On a CORS API, the gateway's own answers to a routed request (an authorizer's 401, 403
//! and 500, a gateway response) carry the API's CORS headers, as HTTP APIs send them: a
//! browser app must be able to read the 401 of an expired token to sign its user in
//! again, and every answer says `vary: origin`. A gateway response's own
//! access-control-* headers give way to the API's CORS config.

mod common;

use common::*;
use serde_json::json;

fn config(f: &Function) -> String {
    let u = f.url();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 3s, idle_timeout: 5s, drain_timeout: 1s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    cors: {{ allow_origins: ["https://app.example"], allow_headers: [authorization], expose_headers: [x-total] }}
    authorizers:
      users: {{ type: jwt, issuer: "https://issuer.invalid", audience: [shop-api] }}
      gate: {{ type: lambda, url: "{u}", simple_responses: true, identity_source: $request.header.x-token }}
    routes:
      "GET /jwt": {{ authorizer: users, integration: {{ type: mock, status: 200, body: ok }} }}
      "GET /gate": {{ authorizer: gate, integration: {{ type: mock, status: 200, body: ok }} }}
  custom:
    stages: {{ v: {{}} }}
    cors: {{ allow_origins: ["https://app.example"] }}
    gateway_responses:
      UNAUTHORIZED: {{ headers: {{ access-control-allow-origin: "*", x-why: expired }} }}
    authorizers:
      gate: {{ type: lambda, url: "{u}", simple_responses: true, identity_source: $request.header.x-token }}
    routes:
      "GET /custom": {{ authorizer: gate, integration: {{ type: mock, status: 200, body: ok }} }}
domains:
  custom.example: {{ mappings: {{ "": custom/v }} }}
"#
    )
}

fn get(p: &Portico, path: &str, host: &str, headers: &str) -> Response {
    p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn authorizer_refusals_carry_the_apis_cors_headers() {
    for driver in DRIVERS {
        let f = Function::start(|ev| match ev["identitySource"][0].as_str() {
            Some("deny") => FnReply::Json(json!({"isAuthorized": false}).to_string()),
            _ => FnReply::Error(r#"{"errorMessage":"boom"}"#.into()),
        });
        let p = Portico::start(&config(&f), driver);
        let origin = "Origin: https://app.example\r\n";
        for (path, extra, status) in [
            ("/jwt", "", 401),
            ("/jwt", "Authorization: Bearer x.y.z\r\n", 401),
            ("/gate", "", 401),
            ("/gate", "X-Token: deny\r\n", 403),
            ("/gate", "X-Token: error\r\n", 500),
        ] {
            let r = get(&p, path, "t", &format!("{origin}{extra}"));
            assert_eq!(r.status, status, "{path} {extra}: {}", r.text());
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some("https://app.example"),
                "{path} {extra}"
            );
            assert_eq!(r.header("access-control-expose-headers"), Some("x-total"));
            assert_eq!(r.header("vary"), Some("origin"), "{path} {extra}");
        }
        // Another origin: no allow-origin, but the answer still varies by Origin.
        let r = get(&p, "/jwt", "t", "Origin: https://evil.example\r\n");
        assert_eq!(r.status, 401);
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(r.header("vary"), Some("origin"));

        // A gateway response's own allow-origin gives way to the API's CORS config.
        let r = get(&p, "/custom", "custom.example", origin);
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.header("x-why"), Some("expired"));
        let allow: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("access-control-allow-origin"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(allow, ["https://app.example"]);
    }
}
