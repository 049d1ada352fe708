//! The response cache and backends whose answers vary by a request header. A body in a
//! content coding is only stored where every request that shares its key can decode it
//! (the key lists `header.accept-encoding`, or the API compresses and the key holds the
//! negotiated coding): stored under a key that leaves Accept-Encoding out, one client's
//! gzip answer was served to every client, those that never asked for gzip too. An
//! answer whose `Vary` names a header the key leaves out (`Origin`, `Accept-Language`) is
//! not stored: one request's answer was served to requests it was not made for.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use common::*;

/// Answers in the first coding the request accepts (gzip or br; the bodies are marked,
/// not really compressed: Portico passes them on as they are), with `Vary:
/// Accept-Encoding`, as nginx's gzip and most frameworks do.
fn origin() -> Origin {
    Origin::start(|req, s| {
        if let Some(by) = ["origin", "accept-language"]
            .into_iter()
            .find(|h| req.target.contains(&format!("/vary-{h}/")))
        {
            // A backend doing its own CORS (or speaking the caller's language).
            let seen = req.header(by).unwrap_or("none").to_string();
            let mut headers = vec![("vary", by)];
            if by == "origin" {
                headers.push(("access-control-allow-origin", &seen));
            }
            respond(s, 200, &headers, format!("for {by} {seen}").as_bytes());
            return true;
        }
        let ae = req.header("accept-encoding").unwrap_or("").to_string();
        let coding = ["gzip", "br"].into_iter().find(|c| ae.contains(c));
        let mut headers = vec![("content-type", "text/plain"), ("vary", "Accept-Encoding")];
        let body = match coding {
            Some(c) => {
                headers.push(("content-encoding", c));
                format!("{c} bytes of {}", req.target)
            }
            None => format!("plain text of {}", req.target),
        };
        respond(s, 200, &headers, body.as_bytes());
        true
    })
}

fn config(origin: SocketAddr) -> String {
    let http = "{ type: http, upstream: origin, timeout: 2s }";
    let head = one_origin_head(origin);
    format!(
        r#"{head}apis:
  plain:
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /unkeyed/{{n}}":
        integration: {http}
        cache: {{ ttl: 60s }}
      "GET /keyed/{{n}}":
        integration: {http}
        cache: {{ ttl: 60s, key: [header.Accept-Encoding] }}
      "GET /unkeyed/{{h}}/{{n}}":
        integration: {http}
        cache: {{ ttl: 60s }}
      "GET /keyed/{{h}}/{{n}}":
        integration: {http}
        cache: {{ ttl: 60s, key: [header.origin, header.accept-language] }}
  cors:
    cors: {{ allow_origins: ["https://app.example"] }}
    stages:
      c: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /vary-origin/{{n}}":
        integration: {http}
        cache: {{ ttl: 60s }}
  squeezed:
    compression: {{ min_size: 0, types: [text/*], algorithms: [gzip] }}
    stages:
      z: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /c/{{n}}":
        integration: {http}
        cache: {{ ttl: 60s }}
"#
    )
}

fn get(p: &Portico, path: &str, accept: Option<&str>) -> Response {
    let ae = accept.map_or(String::new(), |a| format!("Accept-Encoding: {a}\r\n"));
    let r = p
        .raw(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{ae}Connection: close\r\n\r\n").as_bytes());
    assert_eq!(r.status, 200, "{path} {accept:?}: {}", r.text());
    r
}

#[test]
fn an_encoded_answer_is_never_served_to_a_client_that_did_not_accept_it() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr), driver);
        let fetched = || origin.requests.load(Ordering::SeqCst);

        // Key without Accept-Encoding: the gzip answer is relayed, not stored.
        let r = get(&p, "/unkeyed/1", Some("gzip"));
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{driver}");
        let r = get(&p, "/unkeyed/1", None);
        assert_eq!(r.header("content-encoding"), None, "{driver}: {}", r.text());
        assert_eq!(r.text(), "plain text of /unkeyed/1", "{driver}");
        assert_eq!(fetched(), 2, "{driver}");
        // The identity answer is stored: everyone can read it.
        for accept in [None, Some("gzip"), Some("br")] {
            let r = get(&p, "/unkeyed/1", accept);
            assert_eq!(r.text(), "plain text of /unkeyed/1", "{driver} {accept:?}");
        }
        assert_eq!(fetched(), 2, "{driver}: served from the cache");

        // Key with Accept-Encoding: each list has its entry, encoded ones too.
        let before = fetched();
        for _ in 0..2 {
            assert_eq!(
                get(&p, "/keyed/1", Some("gzip")).text(),
                "gzip bytes of /keyed/1"
            );
            assert_eq!(get(&p, "/keyed/1", None).text(), "plain text of /keyed/1");
        }
        assert_eq!(fetched(), before + 2, "{driver}");

        // An API that compresses keys on the negotiated coding: a gzip answer is kept
        // for gzip clients; a br answer under the identity entry (br is not negotiated
        // there) is not.
        let before = fetched();
        for _ in 0..2 {
            let r = get(&p, "/z/c/1", Some("gzip"));
            assert_eq!(r.text(), "gzip bytes of /c/1", "{driver}");
        }
        assert_eq!(fetched(), before + 1, "{driver}: the gzip entry is hit");
        let r = get(&p, "/z/c/2", Some("br"));
        assert_eq!(r.header("content-encoding"), Some("br"), "{driver}");
        let r = get(&p, "/z/c/2", None);
        assert_eq!(r.header("content-encoding"), None, "{driver}: {}", r.text());
        assert_eq!(r.text(), "plain text of /c/2", "{driver}");
        p.stop();
    }
}

fn get_with(p: &Portico, path: &str, header: &str) -> Response {
    let r = p.raw(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{header}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{path} {header}: {}", r.text());
    r
}

#[test]
fn an_answer_that_varies_by_a_header_the_key_leaves_out_is_not_stored() {
    for driver in DRIVERS {
        let origin = origin();
        let p = Portico::start(&config(origin.addr), driver);
        let fetched = || origin.requests.load(Ordering::SeqCst);

        // A backend doing its own CORS: the attacker's Origin must not fill the entry
        // the real site's browsers read.
        let r = get_with(&p, "/unkeyed/vary-origin/1", "Origin: https://evil.example");
        assert_eq!(r.text(), "for origin https://evil.example", "{driver}");
        let r = get_with(&p, "/unkeyed/vary-origin/1", "Origin: https://app.example");
        assert_eq!(r.text(), "for origin https://app.example", "{driver}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example"),
            "{driver}"
        );
        let r = get_with(&p, "/unkeyed/vary-accept-language/1", "Accept-Language: fr");
        assert_eq!(r.text(), "for accept-language fr", "{driver}");
        let r = get_with(&p, "/unkeyed/vary-accept-language/1", "Accept-Language: de");
        assert_eq!(r.text(), "for accept-language de", "{driver}");
        assert_eq!(fetched(), 4, "{driver}: nothing served from the cache");

        // Listed in the key, the same answers are stored, one entry per value.
        for _ in 0..2 {
            for lang in ["fr", "de"] {
                let r = get_with(
                    &p,
                    "/keyed/vary-accept-language/1",
                    &format!("Accept-Language: {lang}"),
                );
                assert_eq!(r.text(), format!("for accept-language {lang}"), "{driver}");
            }
        }
        assert_eq!(fetched(), 6, "{driver}");

        // On a CORS API too: the gateway writes each hit's CORS headers for its own
        // request, but a backend saying Vary: Origin may vary its body by it (an
        // attacker's Origin filled the entry the real site's browsers then read, with
        // their own allow-origin and credentials).
        for from in [
            "https://evil.example",
            "https://app.example",
            "https://app.example",
        ] {
            let r = get_with(&p, "/c/vary-origin/1", &format!("Origin: {from}"));
            assert_eq!(r.text(), format!("for origin {from}"), "{driver}");
            let allowed = (from == "https://app.example").then_some(from);
            assert_eq!(r.header("access-control-allow-origin"), allowed, "{driver}");
        }
        assert_eq!(fetched(), 9, "{driver}");
        p.stop();
    }
}
