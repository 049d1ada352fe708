//! The response cache end to end: hits that never reach the origin (which counts what it
//! serves), keys, TTL, the byte bound, what is never cached, client invalidation,
//! coalescing across 100 concurrent clients, exact large bodies, reload, flush through
//! the admin API (and the metrics it shows), a flush or refresh while a fetch is in
//! flight, CORS and response mappings on hits, a hit of an answer with nearly 256 header
//! fields, a HEAD route beside a GET route.

#[path = "cache/admin_flush.rs"]
mod admin_flush;
mod common;
#[path = "cache/head_routes.rs"]
mod head_routes;
#[path = "cache/in_flight.rs"]
mod in_flight;
#[path = "cache/many_headers.rs"]
mod many_headers;
#[path = "cache/reload_off_on.rs"]
mod reload_off_on;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// 200 KB that no two offsets share a pattern in.
fn big_body() -> Vec<u8> {
    (0..200 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// Answers by path; every body names its target and the origin's sequence number, so a
/// cached answer is recognisable.
fn origin() -> Origin {
    let seq = Arc::new(AtomicUsize::new(0));
    let big = big_body();
    Origin::start(move |req, s| {
        let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
        let body = format!("{} {} #{n}", req.method, req.target);
        let path = req.target.split('?').next().unwrap_or("");
        if req.header("x-answer-slowly").is_some() {
            thread::sleep(Duration::from_millis(400));
        }
        if req.header("x-answer-no-store").is_some() {
            respond(s, 200, &[("cache-control", "no-store")], body.as_bytes());
            return true;
        }
        match path {
            "/nostore" => respond(
                s,
                200,
                &[("cache-control", "public, no-store")],
                body.as_bytes(),
            ),
            "/private" => respond(s, 200, &[("Cache-Control", "private")], body.as_bytes()),
            "/cookie" => respond(s, 200, &[("set-cookie", "session=1")], body.as_bytes()),
            "/created" => respond(s, 201, &[], body.as_bytes()),
            "/slow" => {
                thread::sleep(Duration::from_millis(300));
                respond(s, 200, &[], body.as_bytes());
            }
            "/big" => respond(
                s,
                200,
                &[("content-type", "application/octet-stream")],
                &big,
            ),
            "/bigchunked" => {
                let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for chunk in big.chunks(7000) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                let _ = s.write_all(&out);
            }
            p if p.starts_with("/churn/") => respond(s, 200, &[], &[b'c'; 4000]),
            _ if req.method == "HEAD" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
            }
            _ => respond(
                s,
                200,
                &[("content-type", "text/plain"), ("age", "3")],
                body.as_bytes(),
            ),
        }
        true
    })
}

/// A known API key (for `client_invalidation: require_api_key`).
const KEY: &str = "cache-test-key-0123456789";
/// A key in a plan for another stage: refused on this one.
const ELSEWHERE: &str = "cache-elsewhere-key-0123456789";

fn config(origin: SocketAddr, workers: usize) -> String {
    let http = "{ type: http, upstream: origin, timeout: 2s }";
    let state = temp_dir("cache-state");
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: {workers}
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 5s }}
state_dir: "{state}"
usage_plans:
  other: {{ stages: [small/tiny] }}
api_keys:
  - {{ name: k1, value: "{KEY}" }}
  - {{ name: k2, value: "{ELSEWHERE}", plan: other }}
upstreams:
  origin:
    targets: ["{origin}"]
    connect_timeout: 1s
apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 8MiB }} }}
    routes:
      "GET /items/{{id}}":
        integration: {http}
        cache: {{ ttl: 60s, key: [path.id, querystring.lang, header.accept] }}
      "GET /short/{{id}}":
        integration: {http}
        cache: {{ ttl: 2s }}
      "ANY /any/{{proxy+}}":
        integration: {http}
        cache: {{}}
      "GET /refresh/allow":
        integration: {http}
        cache: {{ client_invalidation: allow }}
      "GET /refresh/key":
        integration: {http}
        cache: {{ client_invalidation: require_api_key }}
      "GET /{{name}}":
        integration: {http}
        cache: {{ ttl: 1h, statuses: [200, 404] }}
      "$default":
        integration: {http}
  small:
    cors: {{ allow_origins: ["https://a.example"] }}
    stages:
      tiny: {{ cache: {{ capacity: 64KiB }} }}
    routes:
      "GET /churn/{{n}}":
        integration: {http}
        cache: {{}}
      "GET /mapped/{{n}}":
        integration: {http}
        cache: {{}}
        response_parameters:
          "200":
            "overwrite:header.x-req": "$context.requestId"
            "overwrite:header.x-stage": "$context.stage"
"#,
        state = state.display()
    )
}

/// One request on a new connection.
fn send(p: &Portico, method: &str, path: &str, headers: &str) -> Response {
    let mut s = p.connect();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    read_response(&mut BufReader::new(s), method == "HEAD").expect("a response")
}

fn get(p: &Portico, path: &str) -> Response {
    send(p, "GET", path, "")
}

/// How many requests for exactly `target` the origin has served.
fn fetched(origin: &Origin, target: &str) -> usize {
    origin
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.target == target)
        .count()
}

#[test]
fn a_hit_does_not_reach_the_origin() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        let first = get(&p, "/items/1");
        assert_eq!(first.status, 200, "{driver}");
        assert_eq!(first.text(), "GET /items/1 #1");
        assert_eq!(
            first.header("age"),
            Some("3"),
            "a miss relays the origin's age"
        );
        let hit = get(&p, "/items/1");
        assert_eq!(
            hit.text(),
            "GET /items/1 #1",
            "{driver}: served from the cache"
        );
        assert_eq!(fetched(&origin, "/items/1"), 1);
        assert_eq!(
            hit.header("age"),
            Some("3"),
            "the origin's age plus 0 s here"
        );
        assert_eq!(hit.header("content-type"), Some("text/plain"));
        assert_eq!(hit.header("content-length"), Some("15"));
        assert_eq!(
            hit.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("age"))
                .count(),
            1
        );
        let (a, b) = (
            first.header("x-amzn-RequestId"),
            hit.header("x-amzn-RequestId"),
        );
        assert!(a.is_some() && a != b, "each hit gets its own request id");
        assert_eq!(hit.header("apigw-requestid"), b);

        // HEAD is answered from the GET entry, without a body.
        let head = send(&p, "HEAD", "/items/1", "");
        assert_eq!((head.status, head.body.len()), (200, 0));
        assert_eq!(head.header("content-length"), Some("15"));
        assert_eq!(fetched(&origin, "/items/1"), 1);
        // A HEAD miss goes to the origin and stores nothing (there is no body to store).
        assert_eq!(send(&p, "HEAD", "/items/2", "").status, 200);
        assert_eq!(get(&p, "/items/2").text(), "GET /items/2 #3");
        assert_eq!(fetched(&origin, "/items/2"), 2);

        // Routes without `cache` are not cached.
        assert_eq!(get(&p, "/plain/x").text(), "GET /plain/x #4");
        assert_eq!(get(&p, "/plain/x").text(), "GET /plain/x #5");

        // A reload that leaves the route alone keeps its entries.
        p.signal(1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !p.log_text().contains("config reloaded") {
            assert!(Instant::now() < deadline, "no reload: {}", p.log_text());
            thread::sleep(Duration::from_millis(10));
        }
        thread::sleep(Duration::from_millis(100));
        assert_eq!(get(&p, "/items/1").text(), "GET /items/1 #1", "{driver}");
        assert_eq!(fetched(&origin, "/items/1"), 1);
    }
}

#[test]
fn keys_differ_by_the_listed_parameters_and_not_by_others() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        let accept = "Accept: text/plain\r\n";
        let base = send(&p, "GET", "/items/7?lang=en", accept).text();
        // Other query parameters and headers share the entry.
        for (path, headers) in [
            ("/items/7?lang=en&debug=1", accept),
            (
                "/items/7?utm=x&lang=en",
                "Accept: text/plain\r\nX-Other: 1\r\n",
            ),
        ] {
            assert_eq!(
                send(&p, "GET", path, headers).text(),
                base,
                "{driver} {path}"
            );
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), 1);
        // Each listed one splits it.
        for (path, headers) in [
            ("/items/8?lang=en", accept),
            ("/items/7?lang=de", accept),
            ("/items/7?lang=en", "Accept: application/json\r\n"),
            ("/items/7?lang=en", ""),
            ("/items/7", accept),
        ] {
            let before = origin.requests.load(Ordering::SeqCst);
            let r = send(&p, "GET", path, headers);
            assert_ne!(r.text(), base, "{driver} {path} {headers:?}");
            assert_eq!(origin.requests.load(Ordering::SeqCst), before + 1);
            assert_eq!(
                send(&p, "GET", path, headers).text(),
                r.text(),
                "now cached too"
            );
        }
    }
}

#[test]
fn entries_expire_after_their_ttl() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        assert_eq!(get(&p, "/short/1").text(), "GET /short/1 #1");
        // The entry is stored just after the client has the response: up to 100 ms on.
        let started = Instant::now();
        thread::sleep(Duration::from_millis(1100));
        let hit = get(&p, "/short/1");
        if started.elapsed() < Duration::from_millis(1900) {
            assert_eq!(hit.text(), "GET /short/1 #1", "{driver}");
            assert_eq!(
                hit.header("age"),
                Some("4"),
                "3 s from the origin, 1 s here"
            );
        }
        thread::sleep(Duration::from_millis(2100).saturating_sub(started.elapsed()));
        assert_eq!(
            get(&p, "/short/1").text(),
            "GET /short/1 #2",
            "{driver}: expired"
        );
        assert_eq!(get(&p, "/short/1").text(), "GET /short/1 #2");
    }
}

#[test]
fn the_byte_bound_holds_under_churn() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        // 40 keys of ~4 KB each (key + head + 4000-byte body) against 64 KiB: at most 16
        // fit, so the second pass must fetch at least 24 again.
        for _pass in 0..2 {
            for n in 0..40 {
                let r = get(&p, &format!("/tiny/churn/{n}"));
                assert_eq!((r.status, r.body.len()), (200, 4000), "{driver}");
            }
        }
        let total = origin.requests.load(Ordering::SeqCst);
        assert!(
            total >= 40 + 24,
            "{driver}: only {total} fetches: over the bound"
        );
        assert!(total < 80, "{driver}: {total} fetches: nothing was kept");
    }
}

#[test]
fn no_store_private_set_cookie_other_statuses_and_post_are_never_cached() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        for path in ["/nostore", "/private", "/cookie", "/created"] {
            let a = get(&p, path);
            let b = get(&p, path);
            assert_ne!(a.text(), b.text(), "{driver} {path}");
            assert_eq!(fetched(&origin, path), 2, "{driver} {path}");
        }
        assert_eq!(get(&p, "/cookie").header("set-cookie"), Some("session=1"));
        for _ in 0..2 {
            let r = send(&p, "POST", "/any/x", "Content-Length: 2\r\n\r\nhi");
            assert_eq!(r.status, 200);
        }
        assert_eq!(fetched(&origin, "/any/x"), 2, "{driver}: POST");
        // Credentials bypass a route whose key does not list header.Authorization.
        for _ in 0..2 {
            send(&p, "GET", "/items/auth", "Authorization: Bearer a\r\n");
        }
        assert_eq!(
            fetched(&origin, "/items/auth"),
            2,
            "{driver}: Authorization"
        );
        // So does Proxy-Authorization (passed on: a backend may answer by it), and the
        // plain request after it is not answered from what it fetched.
        send(
            &p,
            "GET",
            "/items/pa",
            "Proxy-Authorization: Basic YTpi\r\n",
        );
        get(&p, "/items/pa");
        // Its CGI spelling, which CGI, WSGI and Rack backends read as the same header.
        send(
            &p,
            "GET",
            "/items/pb",
            "Proxy_Authorization: Basic YTpi\r\n",
        );
        get(&p, "/items/pb");
        assert_eq!(
            (fetched(&origin, "/items/pa"), fetched(&origin, "/items/pb")),
            (2, 2),
            "{driver}: Proxy-Authorization"
        );
        // The same route caches GET.
        let a = get(&p, "/any/x");
        assert_eq!(get(&p, "/any/x").text(), a.text());
        assert_eq!(fetched(&origin, "/any/x"), 3);
    }
}

#[test]
fn client_invalidation_only_where_the_route_allows_it() {
    let fresh = "Cache-Control: max-age=0\r\n";
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        // Default (ignore): max-age=0 is answered from the cache.
        let a = get(&p, "/items/9");
        assert_eq!(
            send(&p, "GET", "/items/9", fresh).text(),
            a.text(),
            "{driver}"
        );
        // allow: refreshed, and the fresh copy is what later hits get.
        get(&p, "/refresh/allow");
        let b = send(&p, "GET", "/refresh/allow", fresh);
        assert_eq!(fetched(&origin, "/refresh/allow"), 2, "{driver}");
        assert_eq!(get(&p, "/refresh/allow").text(), b.text());
        // A refresh whose answer can't be stored drops the entry: the old copy is not
        // served on for the rest of its TTL.
        let unstored = format!("{fresh}x-answer-no-store: 1\r\n");
        assert_ne!(
            send(&p, "GET", "/refresh/allow", &unstored).text(),
            b.text()
        );
        let after = get(&p, "/refresh/allow");
        assert_ne!(
            after.text(),
            b.text(),
            "{driver}: the refreshed entry was served"
        );
        assert_eq!(fetched(&origin, "/refresh/allow"), 4, "{driver}");
        assert_eq!(get(&p, "/refresh/allow").text(), after.text(), "{driver}");
        // require_api_key: only with a known API key.
        let c = get(&p, "/refresh/key");
        assert_eq!(send(&p, "GET", "/refresh/key", fresh).text(), c.text());
        let unknown = format!("{fresh}x-api-key: not-a-key-0123456789\r\n");
        assert_eq!(send(&p, "GET", "/refresh/key", &unknown).text(), c.text());
        // A key this stage refuses (its plan lists another) flushes nothing either.
        let refused = format!("{fresh}x-api-key: {ELSEWHERE}\r\n");
        assert_eq!(send(&p, "GET", "/refresh/key", &refused).text(), c.text());
        let keyed = format!("{fresh}x-api-key: {KEY}\r\n");
        assert_ne!(send(&p, "GET", "/refresh/key", &keyed).text(), c.text());
        assert_eq!(fetched(&origin, "/refresh/key"), 2, "{driver}");
    }
}

#[test]
fn a_refresh_reaches_every_workers_copy() {
    let fresh = "Cache-Control: max-age=0\r\n";
    let fetch_number =
        |r: Response| -> usize { r.text().rsplit('#').next().unwrap().parse().unwrap() };
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 2), driver);
        // New connections spread over both workers: each fills its own copy.
        for _ in 0..12 {
            get(&p, "/refresh/allow");
        }
        let copies = fetched(&origin, "/refresh/allow");
        assert!(copies <= 2, "{driver}: {copies} fetches for two workers");
        send(&p, "GET", "/refresh/allow", fresh);
        assert_eq!(fetched(&origin, "/refresh/allow"), copies + 1, "{driver}");
        // Whichever worker a later client reaches, it does not get a copy from before
        // the refresh (the other worker fetches its own again, once).
        for _ in 0..12 {
            let n = fetch_number(get(&p, "/refresh/allow"));
            assert!(n > copies, "{driver}: #{n} was fetched before the refresh");
        }
        assert!(fetched(&origin, "/refresh/allow") <= copies + 2, "{driver}");
    }
}

#[test]
fn concurrent_misses_reach_the_origin_once_per_worker() {
    const CLIENTS: usize = 100;
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 2), driver);
        let addr = p.addr;
        let start = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let start = start.clone();
                thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    start.wait();
                    s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    read_response(&mut BufReader::new(s), false).unwrap()
                })
            })
            .collect();
        let answers: Vec<Response> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let fetches = fetched(&origin, "/slow");
        assert!(
            (1..=2).contains(&fetches),
            "{driver}: {fetches} fetches for {CLIENTS} clients on 2 workers"
        );
        for r in &answers {
            assert_eq!(r.status, 200, "{driver}");
            assert!(r.text().starts_with("GET /slow #"), "{}", r.text());
        }
    }
}

#[test]
fn a_hit_returns_the_exact_bytes_of_a_200_kb_body() {
    let data = big_body();
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        for path in ["/big", "/bigchunked"] {
            // Miss, hit and HEAD on one keep-alive connection: the framing must line up.
            let s = p.connect();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut answers = Vec::new();
            for method in ["GET", "GET", "HEAD", "GET"] {
                w.write_all(format!("{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                    .unwrap();
                answers.push(read_response(&mut r, method == "HEAD").unwrap());
            }
            assert!(answers[0].body == data, "{driver} {path}: the miss");
            for hit in [&answers[1], &answers[3]] {
                assert!(hit.body == data, "{driver} {path}: the hit");
                assert_eq!(hit.header("content-length"), Some("204800"));
                assert_eq!(hit.header("transfer-encoding"), None);
            }
            assert_eq!(answers[2].header("content-length"), Some("204800"));
            assert_eq!(fetched(&origin, path), 1, "{driver} {path}");
        }
    }
}

#[test]
fn hits_carry_this_requests_cors_headers_and_response_mappings() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr, 1), driver);
        let allowed = "Origin: https://a.example\r\n";
        for _ in 0..2 {
            let r = send(&p, "GET", "/tiny/churn/1", allowed);
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some("https://a.example"),
                "{driver}"
            );
        }
        let r = send(&p, "GET", "/tiny/churn/1", "Origin: https://b.example\r\n");
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "{driver}: another origin"
        );
        assert_eq!(
            send(&p, "GET", "/tiny/churn/1", "").header("access-control-allow-origin"),
            None
        );
        assert_eq!(
            fetched(&origin, "/churn/1"),
            1,
            "{driver}: all but the first were hits"
        );

        let miss = get(&p, "/tiny/mapped/1?lang=en");
        let hit = get(&p, "/tiny/mapped/1?lang=de");
        assert_eq!(fetched(&origin, "/mapped/1?lang=en"), 1);
        assert_eq!(
            fetched(&origin, "/mapped/1?lang=de"),
            0,
            "{driver}: lang is not in the key"
        );
        assert_eq!(hit.text(), miss.text());
        for r in [&miss, &hit] {
            assert_eq!(
                r.header("x-req"),
                r.header("x-amzn-RequestId"),
                "{driver}: this request's id"
            );
        }
        assert_eq!(hit.header("x-stage"), Some("tiny"));
        assert_eq!(hit.header("age"), Some("3"));
        // HEAD and a body: a mapped hit on a keep-alive connection stays in step (the
        // same Host as above: the host is part of the key).
        let s = p.connect();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(b"HEAD /tiny/mapped/1 HTTP/1.1\r\nHost: test\r\n\r\nGET /tiny/mapped/1 HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabcGET /tiny/mapped/1 HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let head = read_response(&mut r, true).unwrap();
        assert_eq!(
            head.header("content-length").map(str::to_string),
            Some(miss.body.len().to_string())
        );
        for _ in 0..2 {
            assert_eq!(
                read_response(&mut r, false).unwrap().text(),
                miss.text(),
                "{driver}"
            );
        }
        assert_eq!(fetched(&origin, "/mapped/1"), 0);
    }
}
