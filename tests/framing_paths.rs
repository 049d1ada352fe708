//! The gateway's own answers (gateway responses, mocks with response mappings) keep a head
//! that every client can parse, whatever bytes a client gets into the values they carry,
//! and the connection goes on in step: the next pipelined request gets its own answer.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn yaml(authorizer_url: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  shop:
    stages: {{ $default: {{}} }}
    gateway_responses:
      BAD_REQUEST_BODY:
        status: 422
        headers: {{ x-err: "$context.error.validationErrorString" }}
    models:
      Order: {{ type: object, properties: {{ n: {{ type: integer }} }} }}
    authorizers:
      gate:
        type: lambda
        url: "{authorizer_url}"
        payload_format: "2.0"
        simple_responses: true
        identity_source: [$request.header.x-token]
    routes:
      "POST /o":
        request_validator: all
        request_model: Order
        integration: {{ type: mock, status: 200, body: ok }}
      "GET /who":
        authorizer: gate
        integration: {{ type: mock, status: 200, body: who }}
        response_parameters: {{ "200": {{ "overwrite:header.x-name": "$context.authorizer.name" }} }}
      "GET /ok":
        integration: {{ type: mock, status: 200, body: ok }}
"#
    )
}

/// Sends `first` and a `GET /ok` that closes the connection in one write; returns the
/// first answer's head and everything after it.
fn pipelined(p: &Portico, first: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut s = p.connect();
    let mut out = first.to_vec();
    out.extend_from_slice(b"GET /ok HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n");
    s.write_all(&out).unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(20));
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head")
        + 4;
    (got[..end].to_vec(), got[end..].to_vec())
}

/// A head's bytes hold no control character but the CRLFs ending its lines (and tabs).
fn assert_clean_head(head: &[u8]) {
    let text = String::from_utf8_lossy(head);
    // Without the empty line: each line is its text and CR, split at LF.
    for line in head[..head.len() - 3].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").expect("every line ends with CRLF");
        assert!(
            !line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
            "a control character in {:?} of {text:?}",
            String::from_utf8_lossy(line)
        );
    }
}

fn header_line<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {head:?}"))
}

#[test]
fn control_characters_a_client_sends_never_reach_an_answers_head() {
    let gate = Function::start(|_| {
        FnReply::Json(
            r#"{"isAuthorized": true, "context": {"name": "a\u0001b\u001bc\u007fd\te"}}"#.into(),
        )
    });
    for driver in DRIVERS {
        let p = Portico::start(&yaml(&gate.url()), driver);

        // A body the model refuses, with DEL in the value the error quotes.
        let body = b"{\"n\": \"x\x7fy\"}";
        let mut req = format!(
            "POST /o HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let (head, rest) = pipelined(&p, &req);
        let text = String::from_utf8_lossy(&head).into_owned();
        assert!(text.starts_with("HTTP/1.1 422 "), "{driver}: {text}");
        assert_clean_head(&head);
        assert!(
            header_line(&text, "x-err").contains("x y"),
            "{driver}: {text}"
        );
        let rest = String::from_utf8_lossy(&rest).into_owned();
        assert!(rest.contains("HTTP/1.1 200 OK"), "{driver}: {rest}");
        assert!(rest.ends_with("ok"), "{driver}: {rest}");

        // An authorizer's context value mapped onto a header of the answer.
        let (head, rest) = pipelined(&p, b"GET /who HTTP/1.1\r\nHost: shop\r\nx-token: t\r\n\r\n");
        let text = String::from_utf8_lossy(&head).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 "), "{driver}: {text}");
        assert_clean_head(&head);
        assert_eq!(
            header_line(&text, "x-name"),
            "x-name: a b c d\te",
            "{driver}"
        );
        let rest = String::from_utf8_lossy(&rest).into_owned();
        assert!(rest.starts_with("who"), "{driver}: {rest}");
        assert!(rest.ends_with("ok"), "{driver}: {rest}");
        p.stop();
    }
}
