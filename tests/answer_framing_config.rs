//! Answers Portico makes itself (gateway responses, mock integrations) are framed by
//! Portico: check refuses a status that can't carry their body (1xx, and 204/304 with a
//! body) and framing headers of their own (content-length, transfer-encoding, connection,
//! upgrade, ...). These were served as configured: a 204 followed by its body, which a
//! keep-alive client read as the next response, a 101 with a JSON body, and a second
//! content-length beside Portico's with a transfer-encoding.

mod common;

use common::*;

#[test]
fn check_refuses_answers_that_frame_badly() {
    let (code, out) = check(
        r#"apis:
  a:
    stages: { $default: {} }
    gateway_responses:
      DEFAULT_4XX: { headers: { Content-Length: "5", transfer-encoding: chunked, connection: keep-alive, x-ok: fine } }
      MISSING_AUTHENTICATION_TOKEN: { status: 204, body: '{"m":1}' }
      BAD_REQUEST_PARAMETERS: { status: 101, headers: { upgrade: websocket } }
      THROTTLED: { status: 304 }
    routes:
      "GET /a": { integration: { type: mock, status: 204, body: "xyz" } }
      "GET /b": { integration: { type: mock, status: 101, body: "xyz" } }
      "GET /c": { integration: { type: mock, status: 200, headers: { content-length: "9", Transfer-Encoding: chunked, x-ok: fine }, body: "xyz" } }
      "OPTIONS /d": { integration: { type: mock, status: 204, headers: { allow: GET } } }
      "GET /e": { integration: { type: mock, status: 205, body: "xyz" } }
"#,
    );
    assert_ne!(code, 0, "{out}");
    let g = "apis.a.gateway_responses";
    let r = "apis.a.routes";
    for want in [
        format!("{g}.DEFAULT_4XX.headers.Content-Length: Content-Length is reserved"),
        format!("{g}.DEFAULT_4XX.headers.transfer-encoding: transfer-encoding is reserved"),
        format!("{g}.DEFAULT_4XX.headers.connection: connection is hop-by-hop"),
        format!("{g}.MISSING_AUTHENTICATION_TOKEN.status: expected an HTTP status 200–599 other than 204, 205 and 304"),
        format!("{g}.BAD_REQUEST_PARAMETERS.status: expected an HTTP status 200–599"),
        format!("{g}.BAD_REQUEST_PARAMETERS.headers.upgrade: upgrade is hop-by-hop"),
        format!("{g}.THROTTLED.status: expected an HTTP status 200–599 other than 204, 205 and 304"),
        format!("{r}.\"GET /a\".integration.body: a 204 answer has no body"),
        format!("{r}.\"GET /e\".integration.body: a 205 answer has no body"),
        format!("{r}.\"GET /b\".integration.status: must be an HTTP status 200–599, got 101"),
        format!("{r}.\"GET /c\".integration.headers.content-length: content-length is reserved"),
        format!("{r}.\"GET /c\".integration.headers.Transfer-Encoding: Transfer-Encoding is reserved"),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    // Headers that do not frame, and a bodiless 204 mock (a preflight's), are fine.
    assert!(
        !out.contains("x-ok") && !out.contains("OPTIONS /d"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("apis.")).count(),
        12,
        "{out}"
    );
}
