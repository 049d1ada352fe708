//! Proxy semantics as nginx has them, end to end under both drivers: X-Real-IP written
//! from the client's address (a client's own replaced, a request mapping's kept), a HEAD
//! answered with the headers compression gives its GET, a backend's 426 keeping its
//! Upgrade, a backend status past 599 answered 502, and a Host port past 65535 refused.

mod common;

use std::io::BufReader;
use std::io::Write;

use common::*;

fn all(s: &Seen, name: &str) -> Vec<String> {
    s.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

/// The origin of every case: `/426` and `/600` answer those statuses, anything else 200
/// with 2700 bytes of text and a strong ETag (a HEAD gets the GET's head, no body).
fn origin() -> Origin {
    Origin::start(|req, s| {
        let path = req.target.split('?').next().unwrap();
        match path {
            "/426" => respond(
                s,
                426,
                &[("upgrade", "HTTP/2.0"), ("connection", "Upgrade")],
                b"use HTTP/2",
            ),
            "/600" => respond(s, 600, &[], b"six"),
            _ if req.method == "HEAD" => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\netag: \"abc\"\r\ncontent-length: 2700\r\n\r\n";
                let _ = s.write_all(head.as_bytes());
            }
            _ => respond(
                s,
                200,
                &[("content-type", "text/plain"), ("etag", "\"abc\"")],
                "hello world ".repeat(225).as_bytes(),
            ),
        }
        true
    })
}

fn config(origin: &Origin, function: &Function) -> String {
    format!(
        r#"{}apis:
  app:
    compression: {{ min_size: 1KiB, types: [text/*, application/json], algorithms: [gzip] }}
    stages:
      $default: {{}}
    routes:
      "GET /mapped":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
        parameters: {{ "overwrite:header.x-real-ip": "$request.header.x-client" }}
      "GET /removed":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
        parameters: {{ "remove:header.x-real-ip": "" }}
      "GET /fn":
        integration: {{ type: lambda, url: "{}", timeout: 2s }}
      "GET /mock":
        integration: {{ type: mock, status: 200, headers: {{ content-type: text/plain }}, body: "{}" }}
      "$default":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
"#,
        one_origin_head(origin.addr),
        function.url(),
        "m".repeat(2000)
    )
}

fn portico(origin: &Origin, function: &Function, driver: &str) -> Portico {
    Portico::start(&config(origin, function), driver)
}

fn function() -> Function {
    Function::start(|_| {
        let body = "hello world ".repeat(225);
        FnReply::Json(format!(
            r#"{{"statusCode":200,"headers":{{"content-type":"text/plain","etag":"\"abc\""}},"body":"{body}"}}"#
        ))
    })
}

fn send(p: &Portico, method: &str, path: &str) -> Response {
    let mut s = p.connect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    read_response(&mut BufReader::new(s), method == "HEAD").expect("a response")
}

#[test]
fn x_real_ip_is_the_client_address_unless_a_mapping_sets_it() {
    let (origin, function) = (origin(), function());
    for driver in DRIVERS {
        let p = portico(&origin, &function, driver);
        let r = p.raw(b"GET /h HTTP/1.1\r\nHost: t\r\nX-Real-IP: 8.8.8.8\r\nX_Real_IP: 8.8.4.4\r\nx-real-ip: 1.1.1.1\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        let seen = origin.last();
        // The address X-Forwarded-For ends with, once, whatever the client claimed.
        assert_eq!(all(&seen, "x-real-ip"), ["127.0.0.1"], "{driver}");
        assert_eq!(all(&seen, "x_real_ip"), Vec::<String>::new(), "{driver}");
        assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));

        // Without a client's, the same.
        assert_eq!(p.get("/h").status, 200);
        assert_eq!(all(&origin.last(), "x-real-ip"), ["127.0.0.1"], "{driver}");

        // A mapping of it is the operator's: overwrite and append are what the backend
        // reads (alone), remove leaves none.
        let r = p.raw(b"GET /mapped HTTP/1.1\r\nHost: t\r\nX-Client: 203.0.113.9\r\nX-Real-IP: 8.8.8.8\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            all(&origin.last(), "x-real-ip"),
            ["203.0.113.9"],
            "{driver}"
        );
        let r = p.raw(b"GET /removed HTTP/1.1\r\nHost: t\r\nX-Real-IP: 8.8.8.8\r\nX_Real_IP: 8.8.4.4\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{driver}");
        let seen = origin.last();
        assert!(
            all(&seen, "x-real-ip").is_empty() && all(&seen, "x_real_ip").is_empty(),
            "{driver}: {:?}",
            seen.headers
        );
    }
}

#[test]
fn a_head_gets_the_headers_compression_gives_its_get() {
    let (origin, function) = (origin(), function());
    for driver in DRIVERS {
        let p = portico(&origin, &function, driver);
        let get = send(&p, "GET", "/text");
        assert_eq!(get.header("content-encoding"), Some("gzip"), "{driver}");
        let head = send(&p, "HEAD", "/text");
        assert_eq!(head.status, 200, "{driver}");
        assert!(head.body.is_empty());
        for name in ["content-encoding", "vary", "etag", "content-length"] {
            assert_eq!(head.header(name), get.header(name), "{driver}: {name}");
        }
        assert_eq!(head.header("etag"), Some("W/\"abc\""), "{driver}");
        assert_eq!(head.header("vary"), Some("Accept-Encoding"), "{driver}");
        assert_eq!(head.header("content-length"), None, "{driver}");
        // Neither chunked framing: a HEAD answer has no body to frame.
        assert_eq!(head.header("transfer-encoding"), None, "{driver}");

        // A function's answer, compressed whole: the same Content-Length too.
        let get = send(&p, "GET", "/fn");
        assert_eq!(get.header("content-encoding"), Some("gzip"), "{driver}");
        let head = send(&p, "HEAD", "/fn");
        for name in ["content-encoding", "vary", "etag", "content-length"] {
            assert_eq!(head.header(name), get.header(name), "{driver}: fn {name}");
        }
        // A mock's too.
        let get = send(&p, "GET", "/mock");
        assert_eq!(get.header("content-encoding"), Some("gzip"), "{driver}");
        let head = send(&p, "HEAD", "/mock");
        assert!(head.body.is_empty());
        for name in ["content-encoding", "vary", "content-length"] {
            assert_eq!(head.header(name), get.header(name), "{driver}: mock {name}");
        }

        // Not accepting gzip: the identity headers, Vary included, as a GET's.
        let mut s = p.connect();
        s.write_all(b"HEAD /text HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let head = read_response(&mut BufReader::new(s), true).unwrap();
        assert_eq!(head.header("content-encoding"), None, "{driver}");
        assert_eq!(head.header("vary"), Some("Accept-Encoding"), "{driver}");
        assert_eq!(head.header("etag"), Some("\"abc\""), "{driver}");
        assert_eq!(head.header("content-length"), Some("2700"), "{driver}");
    }
}

#[test]
fn a_426_keeps_its_upgrade_and_a_status_past_599_is_502() {
    let (origin, function) = (origin(), function());
    for driver in DRIVERS {
        let p = portico(&origin, &function, driver);
        let r = p.get("/426");
        assert_eq!(r.status, 426, "{driver}");
        assert_eq!(r.header("upgrade"), Some("HTTP/2.0"), "{driver}");
        // Its Connection: upgrade is the backend's hop, not the client's.
        assert_eq!(r.header("connection"), Some("close"), "{driver}");
        assert_eq!(r.text(), "use HTTP/2");
        // Other answers still lose a backend's Upgrade (tests/proxy_headers.rs).

        assert_eq!(p.get("/600").status, 502, "{driver}");
    }
}

#[test]
fn a_host_port_past_65535_is_400() {
    let (origin, function) = (origin(), function());
    for driver in DRIVERS {
        let p = portico(&origin, &function, driver);
        for req in [
            "GET /h HTTP/1.1\r\nHost: evil:99999\r\n\r\n",
            "GET /h HTTP/1.1\r\nHost: evil:65536\r\n\r\n",
            "GET /h HTTP/1.1\r\nHost: [::1]:70000\r\n\r\n",
            "GET http://evil:99999/h HTTP/1.1\r\nHost: t\r\n\r\n",
        ] {
            assert_eq!(p.raw(req.as_bytes()).status, 400, "{driver}: {req:?}");
        }
        for (req, host) in [
            (
                "GET /h HTTP/1.1\r\nHost: a:65535\r\nConnection: close\r\n\r\n",
                "a:65535",
            ),
            // An empty port is the scheme's (RFC 3986 §3.2.3), as before.
            (
                "GET /h HTTP/1.1\r\nHost: a:\r\nConnection: close\r\n\r\n",
                "a:",
            ),
            (
                "GET http://b:8080/h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                "b:8080",
            ),
        ] {
            assert_eq!(p.raw(req.as_bytes()).status, 200, "{driver}: {req:?}");
            let seen = origin.last();
            assert_eq!(seen.header("x-forwarded-host"), Some(host), "{driver}");
        }
    }
}
