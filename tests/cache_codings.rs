//! The response cache and backends that compress by Accept-Encoding: a body in a
//! content coding is only stored where every request that shares its key can decode it
//! (the key lists `header.accept-encoding`, or the API compresses and the key holds the
//! negotiated coding). Stored under a key that leaves Accept-Encoding out, one client's
//! gzip answer was served to every client, those that never asked for gzip too.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use common::*;

/// Answers in the first coding the request accepts (gzip or br; the bodies are marked,
/// not really compressed: Portico passes them on as they are), with `Vary:
/// Accept-Encoding`, as nginx's gzip and most frameworks do.
fn origin() -> Origin {
    Origin::start(|req, s| {
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
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
upstreams:
  origin: {{ targets: ["{origin}"], connect_timeout: 1s }}
apis:
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
