//! Request lines and heads at the edges of HTTP/1.1 (docs/HTTP-FRAMING.md, Requests from
//! clients), from raw sockets under both drivers: what the client gets back and what, if
//! anything, the backend receives.

mod common;

use std::io::{BufReader, Cursor, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;

/// The origin's answer names the request it got: "GET /x HTTP/1.1".
fn describing_origin() -> Origin {
    Origin::start(|req, s| {
        let body = format!("{} {} {}", req.method, req.target, req.version);
        respond(s, 200, &[], body.as_bytes());
        true
    })
}

/// A later HTTP/1 minor version is served as HTTP/1.1, as nginx does: the backend gets an
/// HTTP/1.1 request, the client an HTTP/1.1 answer on a connection that stays open. They
/// were refused with 400.
#[test]
fn a_later_http1_minor_version_is_served_as_http11() {
    let origin = describing_origin();
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let mut s = p.connect();
        s.write_all(b"GET /a?x=1 HTTP/1.2\r\nHost: t\r\n\r\nPOST /b HTTP/1.9\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        let mut rd = BufReader::new(s.try_clone().unwrap());
        for want in ["GET /a?x=1 HTTP/1.1", "POST /b HTTP/1.1"] {
            let r = read_response(&mut rd, false).unwrap_or_else(|e| panic!("{driver}: {e}"));
            assert_eq!((r.status, r.text().as_str()), (200, want), "{driver}");
            assert_eq!(r.header("connection"), None, "{driver}: kept open");
        }
        assert_eq!(origin.last().body, b"hi", "{driver}");
        // Still open: a third request on the same connection is answered.
        s.write_all(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut rd, false).unwrap();
        assert_eq!(r.text(), "GET /c HTTP/1.1", "{driver}");
        // HTTP/1.1's rules hold for it: Host is required, a Connection: close is obeyed.
        let mut s = p.connect();
        s.write_all(b"GET /c HTTP/1.2\r\nX: 1\r\n\r\n").unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(10));
        let r = read_response(&mut Cursor::new(&got[..]), false).unwrap();
        assert_eq!(r.status, 400, "{driver}: no Host");
        let mut s = p.connect();
        s.write_all(b"GET /d HTTP/1.3\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(10));
        let r = read_response(&mut Cursor::new(&got[..]), false).unwrap();
        assert_eq!(r.text(), "GET /d HTTP/1.1", "{driver}");
        assert_eq!(r.header("connection"), Some("close"), "{driver}");
    }
}

/// HTTP/2.0 and later majors in an HTTP/1 request line are 505 HTTP Version Not Supported
/// and a close, as nginx answers (they were 400); the backend never sees them. HTTP/0.9
/// and versions that are no version stay 400.
#[test]
fn a_later_major_version_is_505_and_junk_versions_400() {
    let origin = describing_origin();
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let cases: [(&[u8], u16); 8] = [
            (b"GET /a HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            (b"GET /a HTTP/3.0\r\nHost: t\r\n\r\n", 505),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            (b"GET /a HTTP/0.9\r\nHost: t\r\n\r\n", 400),
            (b"GET /a\r\n\r\n", 400),
            (b"GET /a HTTP/1.10\r\nHost: t\r\n\r\n", 400),
            (b"GET /a HTTP/2\r\nHost: t\r\n\r\n", 400),
            (b"GET /a HTTPS/1.1\r\nHost: t\r\n\r\n", 400),
        ];
        for (request, status) in cases {
            let what = format!("{driver}: {:?}", String::from_utf8_lossy(request));
            let mut s = p.connect();
            s.write_all(request).unwrap();
            let got = read_until_closed(&mut s, Duration::from_secs(10));
            let r = read_response(&mut Cursor::new(&got[..]), false)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(r.status, status, "{what}");
            assert_eq!(r.header("connection"), Some("close"), "{what}");
            let text = String::from_utf8_lossy(&got);
            if status == 505 {
                assert!(
                    text.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
                    "{what}: {text}"
                );
                assert_eq!(r.json_message(), "HTTP Version Not Supported", "{what}");
            }
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), 0, "{driver}");
    }
}

/// Methods as nginx reads them: TRACE is 405 (a backend that echoes it would show the
/// client the headers the gateway added), a method that is not upper-case letters, `_`
/// and `-` is 400 (a backend that folds case would run `get /x` as the GET a route may
/// guard); both were forwarded. Other methods in that shape pass.
#[test]
fn trace_is_405_and_methods_not_in_upper_case_are_400() {
    let origin = describing_origin();
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let before = origin.requests.load(Ordering::SeqCst);
        let cases: [(&[u8], u16, &str); 4] = [
            (
                b"TRACE /a HTTP/1.1\r\nHost: t\r\n\r\n",
                405,
                "Method Not Allowed",
            ),
            (b"get /a HTTP/1.1\r\nHost: t\r\n\r\n", 400, "Bad Request"),
            (b"Delete /a HTTP/1.1\r\nHost: t\r\n\r\n", 400, "Bad Request"),
            (b"GET1 /a HTTP/1.1\r\nHost: t\r\n\r\n", 400, "Bad Request"),
        ];
        for (request, status, message) in cases {
            let what = format!("{driver}: {:?}", String::from_utf8_lossy(request));
            let mut s = p.connect();
            s.write_all(request).unwrap();
            let got = read_until_closed(&mut s, Duration::from_secs(10));
            let r = read_response(&mut Cursor::new(&got[..]), false)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                (r.status, r.json_message().as_str()),
                (status, message),
                "{what}"
            );
            assert_eq!(r.header("connection"), Some("close"), "{what}");
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), before, "{driver}");
        for method in ["PROPFIND", "M-SEARCH", "VERSION_CONTROL"] {
            let r = p.raw(
                format!("{method} /m HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            assert_eq!(r.text(), format!("{method} /m HTTP/1.1"), "{driver}");
        }
    }
}
