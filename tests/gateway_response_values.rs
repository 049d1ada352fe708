//! Gateway responses whose templates carry `$context` values a client controls (its
//! User-Agent, its path): in a JSON body they stay inside their JSON string, whatever the
//! client sends (quotes, backslashes, bytes that are not UTF-8), so the body parses and
//! has only the template's members; in a text/plain body they are as sent; in a body of
//! any other type (HTML, XML, SVG, one a browser does not know) they are HTML text (no
//! markup from a client's path).

mod common;

use common::*;
use serde_json::Value;

const YAML: &str = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  shop:
    gateway_responses:
      DEFAULT_4XX:
        status: 418
        body: '{"msg": $context.error.messageString, "ua": "$context.identity.userAgent", "path": "$context.path"}'
      INVALID_API_KEY:
        headers: { content-type: "application/problem+json; charset=utf-8" }
        body: '{"ua": "${context.identity.userAgent}"}'
      MISSING_AUTHENTICATION_TOKEN:
        headers: { content-type: text/html; charset=utf-8 }
        body: '<p>No page at $context.path</p>'
      BAD_REQUEST_BODY:
        headers: { content-type: text/plain }
        body: 'ua=$context.identity.userAgent'
    stages: { prod: {} }
    models:
      Order: { type: object, required: [sku] }
    routes:
      "POST /o":
        integration: { type: mock, status: 200, body: ok }
        request_validator: all
        request_model: Order
      "GET /v/{x}":
        integration: { type: mock, status: 200, body: ok }
        request_validator: params-only
        required_parameters: [header.x-tenant]
      "GET /key":
        integration: { type: mock, status: 200, body: ok }
        api_key_required: true
usage_plans:
  plan: { quota: { limit: 1000, period: day } }
api_keys:
  - { name: k, value: "a-key-in-plan-0123456789", plan: plan }
"#;

fn request(path: &str, ua: &[u8]) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: shop\r\nUser-Agent: ").into_bytes();
    r.extend_from_slice(ua);
    r.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    r
}

fn json(r: &Response) -> serde_json::Map<String, Value> {
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(m)) => m,
        other => panic!("not a JSON object ({other:?}): {:?}", r.text()),
    }
}

#[test]
fn client_values_stay_inside_their_json_strings() {
    let ua = br#"x", "admin": true, "y": "\"#;
    let ua_text = String::from_utf8(ua.to_vec()).unwrap();
    for driver in DRIVERS {
        let p = Portico::start(YAML, driver);
        // A missing required header: BAD_REQUEST_PARAMETERS, answered through DEFAULT_4XX.
        let r = p.raw(&request("/prod/v/1", ua));
        assert_eq!(r.status, 418, "{driver}: {}", r.text());
        let m = json(&r);
        assert_eq!(m.len(), 3, "{driver}: {m:?}");
        assert_eq!(m["ua"], Value::String(ua_text.clone()), "{driver}");
        assert!(m["msg"].as_str().unwrap().starts_with("Missing required"));

        // A quote in the path (sent raw, as a client can) and obs-text in the User-Agent.
        let r = p.raw(&request("/prod/v/a\"b", b"caf\xe9 \"q\""));
        assert_eq!(r.status, 418, "{driver}: {}", r.text());
        let m = json(&r);
        assert_eq!(m["path"], "/prod/v/a\"b", "{driver}");
        assert_eq!(m["ua"], "caf\u{fffd} \"q\"", "{driver}");

        // A configured JSON media type (+json, with parameters) is escaped too.
        // (Customised without a status: DEFAULT_4XX's 418, as API Gateway answers.)
        let r = p.raw(&request("/prod/key", ua));
        assert_eq!(r.status, 418, "{driver}: {}", r.text());
        let m = json(&r);
        assert_eq!(m.len(), 1, "{driver}: {m:?}");
        assert_eq!(m["ua"], Value::String(ua_text.clone()), "{driver}");

        // text/html: the client's path is text, not markup.
        let r = p.raw(&request("/prod/<script>alert('x'&1)</script>", b"t"));
        assert_eq!(r.status, 418, "{driver}: {}", r.text());
        assert_eq!(
            r.text(),
            "<p>No page at /prod/&lt;script&gt;alert(&#39;x&#39;&amp;1)&lt;/script&gt;</p>",
            "{driver}"
        );

        // text/plain is neither: the value as sent.
        let mut post = b"POST /prod/o HTTP/1.1\r\nHost: shop\r\nUser-Agent: ".to_vec();
        post.extend_from_slice(ua);
        post.extend_from_slice(b"\r\ncontent-length: 2\r\nConnection: close\r\n\r\n{}");
        let r = p.raw(&post);
        assert_eq!(r.status, 418, "{driver}: {}", r.text());
        assert_eq!(r.body, [&b"ua="[..], ua].concat(), "{driver}");
        p.stop();
    }
}

/// The body is quoted for the media type a browser reads from the content-type as it goes
/// out: a stage variable's value (the template's text `$stageVariables.ct` chose no
/// quoting), the last type of a list (`application/json, text/html` renders as a page;
/// the first one chose JSON's quoting, which leaves `<` alone), and SVG or XML, which
/// run markup and were not quoted at all.
#[test]
fn values_are_quoted_for_the_type_a_browser_renders() {
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  pages:
    stages:
      prod: { variables: { ct: "application/json, text/html" } }
      svg: { variables: { ct: "image/svg+xml" } }
    gateway_responses:
      MISSING_AUTHENTICATION_TOKEN:
        headers: { content-type: "$stageVariables.ct" }
        body: '<p>$context.identity.userAgent</p>'
      BAD_REQUEST_PARAMETERS:
        headers: { content-type: "text/xml" }
        body: '<r>$context.identity.userAgent</r>'
    routes:
      "GET /v":
        integration: { type: mock, status: 200, body: ok }
        request_validator: params-only
        required_parameters: [header.x-tenant]
"#;
    let ua = b"<script>alert('x')</script>";
    let quoted = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;";
    for driver in DRIVERS {
        let p = Portico::start(yaml, driver);
        for (path, status, want) in [
            ("/prod/nope", 404, format!("<p>{quoted}</p>")),
            ("/svg/nope", 404, format!("<p>{quoted}</p>")),
            ("/prod/v", 400, format!("<r>{quoted}</r>")),
        ] {
            let r = p.raw(&request(path, ua));
            assert_eq!(r.status, status, "{driver} {path}: {}", r.text());
            assert_eq!(r.text(), want, "{driver} {path}");
        }
        p.stop();
    }
}

/// A page that shows why a body was refused: the reason quotes the client's body, so in
/// text/html it is HTML text as well (it was JSON-escaped only, which leaves `<` alone).
#[test]
fn validation_errors_in_a_page_are_html_text() {
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
apis:
  pages:
    stages: { prod: {} }
    gateway_responses:
      BAD_REQUEST_BODY:
        headers: { content-type: text/html }
        body: '<p>$context.error.message: $context.error.validationErrorString</p>'
    models:
      Pick: { type: object, properties: { color: { enum: [red, blue] } } }
    routes:
      "POST /pick":
        integration: { type: mock, status: 200, body: ok }
        request_validator: all
        request_model: Pick
"#;
    for driver in DRIVERS {
        let p = Portico::start(yaml, driver);
        let body = br#"{"color":"<img src=x onerror=alert(1)>"}"#;
        let mut req = format!(
            "POST /prod/pick HTTP/1.1\r\nHost: pages\r\ncontent-type: application/json\r\ncontent-length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let r = p.raw(&req);
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        let page = r.text();
        // Only the template's own markup: <p> and </p>.
        assert_eq!(page.matches('<').count(), 2, "{driver}: {page}");
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{driver}: {page}"
        );
        assert!(
            page.starts_with("<p>Invalid request body: "),
            "{driver}: {page}"
        );
        p.stop();
    }
}

/// A gateway response to a failed integration (502 after the request went upstream)
/// renders the values of the request it answers: they were read from the connection's
/// buffer after it had moved past that request, so they came out empty, or from the next
/// pipelined request.
#[test]
fn an_integration_failure_is_answered_with_its_own_requests_values() {
    let dead = free_port();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  dead: {{ targets: ["127.0.0.1:{dead}"], connect_timeout: 1s }}
apis:
  shop:
    gateway_responses:
      DEFAULT_5XX:
        headers: {{ x-ua: "$context.identity.userAgent" }}
        body: '{{"ua": "$context.identity.userAgent", "path": "$context.path", "method": "$context.httpMethod"}}'
    stages: {{ prod: {{}} }}
    routes:
      "ANY /dead":
        integration: {{ type: http, upstream: dead }}
"#
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        std::io::Write::write_all(
            &mut s,
            b"GET /prod/dead HTTP/1.1\r\nHost: shop\r\nUser-Agent: first\r\n\r\nPOST /prod/dead HTTP/1.1\r\nHost: shop\r\nUser-Agent: second\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut r = std::io::BufReader::new(s);
        for (ua, method) in [("first", "GET"), ("second", "POST")] {
            let got = read_response(&mut r, false).unwrap();
            assert_eq!(got.status, 502, "{driver}: {}", got.text());
            assert_eq!(got.header("x-ua"), Some(ua), "{driver}");
            let body = json(&got);
            assert_eq!(body["ua"], ua, "{driver}: {body:?}");
            assert_eq!(body["path"], "/prod/dead", "{driver}: {body:?}");
            assert_eq!(body["method"], method, "{driver}: {body:?}");
        }
    }
}

/// `$context.error.messageString` in a page is HTML text too: a SigV4 refusal quotes the
/// client's credential scope, and a presigned link put `<svg onload=…>` into the page
/// as markup (it was JSON-escaped only). A byte that is not UTF-8 in an XML body is
/// U+FFFD, as in JSON: an XML parser refused the whole document for it.
#[test]
fn messages_and_client_bytes_in_pages_are_text() {
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
iam:
  region: us-east-1
  principals:
    rep: { access_key_id: AKIAEXAMPLE, secret_access_key: secret, allow: ["*"] }
apis:
  h:
    stages: { $default: {} }
    gateway_responses:
      DEFAULT_4XX:
        headers: { content-type: "text/html; charset=utf-8" }
        body: '<p>$context.error.messageString</p>'
      MISSING_AUTHENTICATION_TOKEN:
        headers: { content-type: "application/xml" }
        body: '<r ua="$context.identity.userAgent"/>'
    routes:
      "GET /iam": { authorization: iam, integration: { type: mock, status: 200, body: ok } }
"#;
    for driver in DRIVERS {
        let p = Portico::start(yaml, driver);
        let link = "/iam?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261207%2F%3Csvg%20onload%3Dalert(1)%3E%2Fexecute-api%2Faws4_request&X-Amz-Date=20261207T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
        let r = p.raw(&request(link, b"t"));
        assert_eq!(r.status, 403, "{driver}: {}", r.text());
        let page = r.text();
        assert_eq!(page.matches('<').count(), 2, "{driver}: {page}");
        assert!(
            page.contains("&lt;svg onload=alert(1)&gt;"),
            "{driver}: {page}"
        );
        assert!(page.starts_with("<p>&quot;"), "{driver}: {page}");

        let r = p.raw(&request("/nope", b"caf\xe9 <b>"));
        assert_eq!(r.status, 404, "{driver}: {}", r.text());
        assert_eq!(
            r.text(),
            "<r ua=\"caf\u{fffd} &lt;b&gt;\"/>",
            "{driver}: {:?}",
            r.body
        );
        assert!(std::str::from_utf8(&r.body).is_ok(), "{driver}");
        p.stop();
    }
}
