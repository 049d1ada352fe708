//! Conditional and range requests against a cached entry, end to end: a GET or HEAD whose
//! `If-None-Match` names the stored ETag (weakly), or whose `If-Modified-Since` is the
//! stored `Last-Modified`, gets 304 without a body from the cache (on a plain route and on
//! a CORS route, whose hits are edited per request), and the connection goes on; other
//! validators get the whole 200; a `Range` request gets the whole 200 (never the whole
//! body as a 206). Preconditions the cache does not evaluate (`If-Match`,
//! `If-Unmodified-Since`) go to the backend, whose 412 they were answered 200 for.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use common::*;

const ETAG: &str = "\"v1\"";
const MODIFIED: &str = "Wed, 01 Jan 2025 00:00:00 GMT";

/// Answers 200 with a fixed ETag and Last-Modified whatever the request's validators say,
/// so every 304 seen comes from the cache.
fn origin() -> Origin {
    Origin::start(|req, s| {
        let body = format!("{} hello", req.target);
        let headers = [
            ("content-type", "text/plain"),
            ("etag", ETAG),
            ("last-modified", MODIFIED),
        ];
        respond(s, 200, &headers, body.as_bytes());
        true
    })
}

/// One cached route; with `cors`, on an API with CORS (its hits are edited per request).
fn config(origin: SocketAddr, cors: bool) -> String {
    let http = "{ type: http, upstream: origin, timeout: 2s }";
    let cors = if cors {
        "    cors: { allow_origins: [\"https://a.example\"] }\n"
    } else {
        ""
    };
    let head = one_origin_head(origin);
    format!(
        r#"{head}apis:
  app:
{cors}    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /items/{{id}}": {{ integration: {http}, cache: {{ ttl: 60s }} }}
"#
    )
}

#[test]
fn validators_that_match_the_entry_get_304_from_the_cache() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, false), driver);
        let mut c = Client::new(&p);
        let send = |c: &mut Client, method: &str, headers: &str| {
            c.send(format!("{method} /items/1 HTTP/1.1\r\nHost: a\r\n{headers}\r\n").as_bytes())
        };
        let first = send(&mut c, "GET", "");
        assert_eq!((first.status, first.text()), (200, "/items/1 hello".into()));

        for (method, headers) in [
            ("GET", format!("If-None-Match: {ETAG}\r\n")),
            ("GET", "If-None-Match: \"x\", W/\"v1\"\r\n".to_string()),
            ("GET", "If-None-Match: *\r\n".to_string()),
            ("HEAD", format!("If-None-Match: {ETAG}\r\n")),
            ("GET", format!("If-Modified-Since: {MODIFIED}\r\n")),
        ] {
            let r = send(&mut c, method, &headers);
            assert_eq!(r.status, 304, "{driver} {method} {headers}");
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), Some(ETAG), "{driver} {headers}");
            assert!(
                r.header("age").is_some(),
                "{driver}: answered from the cache"
            );
        }
        // The connection went on past each 304: the next answer is read whole.
        for (headers, why) in [
            ("If-None-Match: \"v2\"\r\n", "another tag"),
            (
                "If-None-Match: \"v2\"\r\nIf-Modified-Since: Wed, 01 Jan 2025 00:00:00 GMT\r\n",
                "If-Modified-Since is ignored beside If-None-Match",
            ),
            (
                "If-Modified-Since: Thu, 02 Jan 2025 00:00:00 GMT\r\n",
                "another date",
            ),
            ("Range: bytes=0-1\r\n", "a range gets the whole 200"),
        ] {
            let r = send(&mut c, "GET", headers);
            assert_eq!(r.status, 200, "{driver}: {why}");
            assert_eq!(r.text(), "/items/1 hello", "{driver}: {why}");
            assert_eq!(r.header("content-range"), None, "{driver}: {why}");
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), 1, "{driver}");
    }
}

#[test]
fn preconditions_go_to_the_backend_past_the_entry() {
    // Honours If-Match and If-Unmodified-Since as a backend that writes does.
    let origin = Origin::start(|req, s| {
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let failed = header("if-match").is_some_and(|m| m != ETAG)
            || header("if-unmodified-since").is_some_and(|d| d != MODIFIED);
        let status = if failed { 412 } else { 200 };
        let headers = [("etag", ETAG), ("last-modified", MODIFIED)];
        respond(s, status, &headers, b"hello");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(origin.addr, false), driver);
        let mut c = Client::new(&p);
        let before = origin.requests.load(Ordering::SeqCst);
        let mut send = |headers: &str| {
            c.send(format!("GET /items/1 HTTP/1.1\r\nHost: a\r\n{headers}\r\n").as_bytes())
        };
        assert_eq!(send("").status, 200, "{driver}: fills the entry");
        assert!(send("").header("age").is_some(), "{driver}: a hit");
        for (headers, status) in [
            ("If-Match: \"stale\"\r\n", 412),
            (
                "If-Unmodified-Since: Tue, 31 Dec 2024 00:00:00 GMT\r\n",
                412,
            ),
            (&format!("If-Match: {ETAG}\r\n")[..], 200),
        ] {
            let r = send(headers);
            assert_eq!(r.status, status, "{driver}: {headers}");
            assert!(
                r.header("age").is_none(),
                "{driver}: {headers} was answered from the cache"
            );
        }
        // The fill and the three preconditioned requests; the 412s were not stored.
        assert_eq!(
            origin.requests.load(Ordering::SeqCst) - before,
            4,
            "{driver}"
        );
        assert!(
            send("").header("age").is_some(),
            "{driver}: still the first entry"
        );
    }
}

#[test]
fn a_304_on_a_cors_route_carries_its_cors_headers() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, true), driver);
        let mut c = Client::new(&p);
        let r = c.get("/items/2", "a");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let r = c.send(
            format!(
                "GET /items/2 HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\nIf-None-Match: {ETAG}\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 304, "{driver}");
        assert!(r.body.is_empty());
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://a.example"),
            "{driver}"
        );
        assert_eq!(c.get("/items/2", "a").text(), "/items/2 hello");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 1, "{driver}");
    }
}

/// A 304 the cache makes carries the headers its 200 would: the route's `"200"`
/// mappings, not `"304"`'s (a header the mapping removes went out on every conditional
/// hit); on a route whose mapping sets the status, the mapped answer comes whole (the
/// precondition is for a 2xx only).
#[test]
fn a_304_from_the_cache_carries_the_200_mappings() {
    let origin = Origin::start(|req, s| {
        let headers = [
            ("etag", ETAG),
            ("cache-control", "public, max-age=60"),
            ("x-secret", "internal-10.1.2.3"),
        ];
        respond(s, 200, &headers, req.target.as_bytes());
        true
    });
    let http = "{ type: http, upstream: origin, timeout: 2s }";
    let head = one_origin_head(origin.addr);
    let yaml = format!(
        r#"{head}apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /r/{{id}}":
        integration: {http}
        cache: {{ ttl: 60s }}
        response_parameters:
          "200":
            "remove:header.x-secret": ""
            "overwrite:header.cache-control": "public, max-age=600"
            "overwrite:header.x-served-by": "gateway"
      "GET /g/{{id}}":
        integration: {http}
        cache: {{ ttl: 60s }}
        response_parameters: {{ "200": {{ "overwrite:statuscode": "410" }} }}
"#
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let mut c = Client::new(&p);
        let send = |c: &mut Client, path: &str, headers: &str| {
            c.send(format!("GET {path} HTTP/1.1\r\nHost: a\r\n{headers}\r\n").as_bytes())
        };
        let fresh = send(&mut c, "/r/1", "");
        assert_eq!(fresh.status, 200, "{driver}");
        assert_eq!(fresh.header("x-secret"), None, "{driver}");
        let conditional = format!("If-None-Match: {ETAG}\r\n");
        for _ in 0..2 {
            let r = send(&mut c, "/r/1", &conditional);
            assert_eq!(r.status, 304, "{driver}");
            assert!(r.body.is_empty(), "{driver}");
            assert_eq!(
                r.header("x-secret"),
                None,
                "{driver}: a removed header came back"
            );
            assert_eq!(
                r.header("cache-control"),
                Some("public, max-age=600"),
                "{driver}"
            );
            assert_eq!(r.header("x-served-by"), Some("gateway"), "{driver}");
            assert_eq!(r.header("etag"), Some(ETAG), "{driver}");
        }
        assert_eq!(send(&mut c, "/g/1", "").status, 410, "{driver}");
        let r = send(&mut c, "/g/1", &conditional);
        assert_eq!((r.status, r.text()), (410, "/g/1".to_string()), "{driver}");
        // The connection went on past each answer, and every one came from the cache.
        assert_eq!(send(&mut c, "/r/1", "").text(), "/r/1", "{driver}");
    }
}
