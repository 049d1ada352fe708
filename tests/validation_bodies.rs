//! Request validation reads a body as the backend will: a gzip or deflate body is
//! checked decoded (and sent on as it came), one in a coding Portico can't read is a 415,
//! a body nested past the parser's depth says so; required parameters are named as
//! declared, and a path parameter that decodes to blanks is missing.

mod common;

use std::io::Write;

use common::*;

fn config(origin: std::net::SocketAddr) -> String {
    format!(
        r#"server: {{ listen: ["127.0.0.1:{{PORT}}"], workers: 1, limits: {{ max_body_bytes: 64KiB }} }}
upstreams: {{ echo: {{ targets: ["{origin}"] }} }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    gateway_responses:
      BAD_REQUEST_BODY: {{ body: '{{"message":"$context.error.message","why":"$context.error.validationErrorString"}}' }}
    models:
      Pet: {{ type: object, required: [kind], properties: {{ kind: {{ enum: [dog, cat] }} }} }}
      Any: {{ type: object }}
      Qty: {{ type: object, required: [qty], properties: {{ qty: {{ type: integer }}, note: {{ type: string, maxLength: 8 }} }} }}
      Price: {{ type: object, properties: {{ price: {{ type: number, multipleOf: 0.5 }} }} }}
    routes:
      "POST /price":
        integration: {{ type: http, upstream: echo }}
        request_validator: all
        request_model: Price
      "POST /pets":
        integration: {{ type: http, upstream: echo }}
        request_validator: all
        request_model: Pet
      "POST /qty":
        integration: {{ type: http, upstream: echo }}
        request_validator: all
        request_model: Qty
      "POST /any":
        integration: {{ type: mock, status: 200, body: ok }}
        request_validator: all
        request_model: Any
      "GET /o/{{id}}":
        integration: {{ type: mock, status: 200, body: ok }}
        request_validator: all
        required_parameters: [path.id, header.X-Trace, header.X-Tenant, querystring.q]
"#
    )
}

fn post(p: &Portico, path: &str, coding: &str, body: &[u8]) -> Response {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{coding}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    p.raw(&request)
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

fn zlib(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

#[test]
fn encoded_bodies_are_checked_decoded_and_sent_as_they_came() {
    let origin = Origin::echo();
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        let good = gzip(br#"{"kind":"dog"}"#);
        let r = post(&p, "/pets", "Content-Encoding: gzip\r\n", &good);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        // The backend got the gzip bytes and the header, untouched.
        let seen = origin.last();
        assert_eq!(seen.body, good, "{driver}");
        assert_eq!(seen.header("content-encoding"), Some("gzip"), "{driver}");
        let r = post(
            &p,
            "/pets",
            "Content-Encoding: deflate\r\n",
            &zlib(br#"{"kind":"cat"}"#),
        );
        assert_eq!(r.status, 200, "{driver}");
        // Decoded, it is checked like any other body.
        let bad = gzip(br#"{"kind":"cow"}"#);
        let r = post(&p, "/pets", "Content-Encoding: gzip\r\n", &bad);
        assert_eq!(
            (r.status, r.json_message().as_str()),
            (400, "Invalid request body"),
            "{driver}"
        );
        // Named as API Gateway's REST APIs name it, for AWS SDKs.
        assert_eq!(
            r.header("x-amzn-ErrorType"),
            Some("BadRequestException"),
            "{driver}"
        );
        // Not what it says it is, or a coding Portico can't read: 415.
        for (coding, body) in [
            ("Content-Encoding: gzip\r\n", &br#"{"kind":"dog"}"#[..]),
            ("Content-Encoding: br\r\n", &br#"{"kind":"dog"}"#[..]),
            ("Content-Encoding: gzip, gzip\r\n", &good[..]),
        ] {
            let r = post(&p, "/pets", coding, body);
            assert_eq!(
                (r.status, r.json_message().as_str()),
                (415, "Unsupported Media Type"),
                "{driver} {coding}"
            );
        }
        // A bomb: 4 MiB of zeros in a few KiB inflate past max_body_bytes.
        let bomb = gzip(&vec![b' '; 4 << 20]);
        assert!(bomb.len() < 64 << 10);
        let r = post(&p, "/pets", "Content-Encoding: gzip\r\n", &bomb);
        assert_eq!(r.status, 413, "{driver}");
    }
}

/// Within `max_body_bytes` decoded, but 64 times its size and more: a small request that
/// cost the worker a large body's validation (a 10 KB gzip of a 10 MB array held it for
/// half a second, every other request on it waiting).
#[test]
fn a_body_that_inflates_past_64_times_its_size_is_refused() {
    let origin = Origin::echo();
    let yaml = config(origin.addr).replace("max_body_bytes: 64KiB", "max_body_bytes: 8MiB");
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let array = format!(r#"{{"kind":"dog","b":[{}0]}}"#, "0,".repeat(500_000));
        let packed = gzip(array.as_bytes());
        assert!(
            packed.len() * 64 + (64 << 10) < array.len(),
            "{}",
            packed.len()
        );
        let r = post(&p, "/pets", "Content-Encoding: gzip\r\n", &packed);
        assert_eq!(r.status, 413, "{driver}: {}", r.text());
        // A JSON body as it compresses (about 10 times) passes.
        let pets: String = (0..20_000)
            .map(|i| format!(r#"{{"id":{i},"name":"pet {i}","tags":["a{}"]}},"#, i % 7))
            .collect();
        let listed = format!(r#"{{"kind":"dog","all":[{pets}null]}}"#);
        let r = post(
            &p,
            "/pets",
            "Content-Encoding: gzip\r\n",
            &gzip(listed.as_bytes()),
        );
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
    }
}

#[test]
fn deep_bodies_and_parameters_are_reported_as_a_client_reads_them() {
    for driver in DRIVERS {
        let p = Portico::start(&config(Origin::echo().addr), driver);
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let r = post(&p, "/any", "", deep.as_bytes());
        assert_eq!(r.status, 400, "{driver}");
        let why: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(why["why"], "[body nests 128 levels or deeper]", "{driver}");
        let shallow = format!("{{\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(post(&p, "/any", "", shallow.as_bytes()).status, 200);

        // Named as declared; `%20` decodes to a blank, so the path parameter is missing.
        let r = p
            .raw(b"GET /o/%20?q=1 HTTP/1.1\r\nHost: t\r\nX-Tenant: a\r\nConnection: close\r\n\r\n");
        assert_eq!(
            (r.status, r.json_message().as_str()),
            (400, "Missing required request parameters: [X-Trace, id]"),
            "{driver}"
        );
        assert_eq!(
            r.header("x-amzn-ErrorType"),
            Some("BadRequestException"),
            "{driver}"
        );
        let r = p.raw(b"GET /o/7?q=1 HTTP/1.1\r\nHost: t\r\nx-tenant: a\r\nX-TRACE: b\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        // `X_Tenant` is the same HTTP_X_TENANT to CGI-style backends: blank beside a
        // filled X-Tenant, which one they read is theirs; alone, it is not X-Tenant.
        for extra in ["X-Tenant: a\r\nX_Tenant: \r\n", "X_Tenant: a\r\n"] {
            let r = p.raw(format!("GET /o/7?q=1 HTTP/1.1\r\nHost: t\r\n{extra}X-Trace: b\r\nConnection: close\r\n\r\n").as_bytes());
            assert_eq!(r.status, 400, "{driver}: {extra}");
        }
    }
}

/// `-0` is the integer 0, as API Gateway's validator reads it (serde_json's float -0.0
/// failed `type: integer`); `-0.0` is still a float, a string's `-0` is text, and the
/// body is sent on as it came.
#[test]
fn a_negative_zero_is_an_integer() {
    let origin = Origin::echo();
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        for body in [&br#"{"qty": -0}"#[..], br#"{"qty":-0,"note":"a -0 b"}"#] {
            let r = post(&p, "/qty", "", body);
            assert_eq!(
                r.status,
                200,
                "{driver}: {}: {}",
                String::from_utf8_lossy(body),
                r.text()
            );
            assert_eq!(origin.last().body, body, "{driver}: sent on as it came");
        }
        for body in [
            &br#"{"qty": -0.0}"#[..],
            br#"{"qty": -0e0}"#,
            br#"{"qty": "-0"}"#,
            br#"{"qty": -00}"#,
        ] {
            let r = post(&p, "/qty", "", body);
            assert_eq!(r.status, 400, "{driver}: {}", String::from_utf8_lossy(body));
        }
    }
}

/// A negative exponent of zero (`1e-0`, RFC 8259's `e [minus] 1*DIGIT`) is a number:
/// the `-0` fix above blanked its sign and refused the body as not JSON. A body of a
/// form feed is not empty JSON: only JSON's whitespace is (it passed as `{}`).
#[test]
fn exponents_of_minus_zero_are_numbers_and_only_json_whitespace_is_empty() {
    let origin = Origin::echo();
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr), driver);
        for body in [&br#"{"price": 1e-0}"#[..], br#"{"price": 2.5E-0}"#] {
            let r = post(&p, "/price", "", body);
            assert_eq!(
                r.status,
                200,
                "{driver}: {}: {}",
                String::from_utf8_lossy(body),
                r.text()
            );
            assert_eq!(origin.last().body, body, "{driver}");
        }
        let r = post(&p, "/price", "", br#"{"price": 1.25e-0}"#);
        assert_eq!(
            r.status,
            400,
            "{driver}: not a multiple of 0.5: {}",
            r.text()
        );
        for body in [&b" \t\r\n"[..], b""] {
            let r = post(&p, "/any", "", body);
            assert_eq!(r.status, 200, "{driver}: {body:?}: {}", r.text());
        }
        for body in [&b"\x0c"[..], b"\x0c\x0c\n", b" \x0b"] {
            let r = post(&p, "/any", "", body);
            assert_eq!(r.status, 400, "{driver}: {body:?}: {}", r.text());
        }
    }
}
