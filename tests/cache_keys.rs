//! What the response cache keys on beyond a route's `key` list, end to end: the scheme
//! and host the backend is told (`x-forwarded-proto`, `x-forwarded-host`), so an answer
//! built for one is never served for another; query names and values as the backend
//! decodes them, so a percent-encoded spelling can't file an answer under the wrong key;
//! and a backend `age` too large to add to.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::tls::*;
use common::*;

/// Every body names the origin's sequence number and what it was told of the request,
/// so a cached answer is recognisable and shows whom it was built for.
fn origin() -> Origin {
    let seq = Arc::new(AtomicUsize::new(0));
    Origin::start(move |req, s| {
        let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
        let told = |name| req.header(name).unwrap_or("-");
        let body = format!(
            "{} proto={} host={} #{n}",
            req.target,
            told("x-forwarded-proto"),
            told("x-forwarded-host")
        );
        let age: &[(&str, &str)] = if req.target.starts_with("/age/") {
            &[("age", "18446744073709551615")]
        } else {
            &[]
        };
        respond(s, 200, age, body.as_bytes());
        true
    })
}

fn config(
    origin: SocketAddr,
    tls_port: u16,
    cert: &(std::path::PathBuf, std::path::PathBuf),
) -> String {
    let (chain, key) = (cert.0.display(), cert.1.display());
    let http = "{ type: http, upstream: origin, timeout: 2s }";
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
upstreams:
  origin: {{ targets: ["{origin}"], connect_timeout: 1s }}
apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /c/{{proxy+}}":
        integration: {http}
        cache: {{ ttl: 60s }}
      "GET /k/{{proxy+}}":
        integration: {http}
        cache: {{ ttl: 60s, key: [querystring.a] }}
      "GET /age/{{proxy+}}":
        integration: {http}
        cache: {{ ttl: 60s }}
domains:
  a.test:
    cert: "{chain}"
    key: "{key}"
    mappings: {{ "": app/$default }}
"#
    )
}

struct Setup {
    origin: Origin,
    p: Portico,
    tls_port: u16,
    tls: TlsClient,
}

fn start(driver: &str, dir: &Path) -> Setup {
    let ca = Ca::new("Cache CA");
    let cert = ca
        .server_cert(&["a.test"])
        .write(dir, &format!("a-{driver}"));
    let origin = origin();
    let tls_port = free_port();
    let p = Portico::start(&config(origin.addr, tls_port, &cert), driver);
    let tls = TlsClient::trusting(&ca).build();
    Setup {
        origin,
        p,
        tls_port,
        tls,
    }
}

/// One request with this request-target and Host on a new plain connection.
fn plain(p: &Portico, target: &str, host: &str) -> String {
    let r = p.raw(
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 200, "{target} {host}: {}", r.text());
    r.text()
}

#[test]
fn an_answer_built_for_one_host_or_scheme_is_not_served_for_another() {
    let dir = temp_dir("cache-keys");
    for driver in DRIVERS {
        let Setup {
            origin,
            p,
            tls_port,
            tls,
        } = start(driver, &dir);
        // The backend builds its answer from x-forwarded-host: the next Host must not
        // get it.
        let evil = plain(&p, "/c/h", "evil.example");
        assert_eq!(evil, "/c/h proto=http host=evil.example #1", "{driver}");
        assert_eq!(
            plain(&p, "/c/h", "a.test"),
            "/c/h proto=http host=a.test #2",
            "{driver}: served what was built for Host: evil.example"
        );
        // The same host in another case is the same entry.
        assert_eq!(
            plain(&p, "/c/h", "A.Test"),
            "/c/h proto=http host=a.test #2"
        );
        // An absolute-form target's authority is what the backend is told, over Host.
        assert_eq!(
            plain(&p, "http://evil.example/c/abs", "a.test"),
            "/c/abs proto=http host=evil.example #3",
            "{driver}"
        );
        assert_eq!(
            plain(&p, "/c/abs", "a.test"),
            "/c/abs proto=http host=a.test #4",
            "{driver}: served what was built for an absolute-form authority"
        );
        assert_eq!(
            plain(&p, "/c/abs", "evil.example"),
            "/c/abs proto=http host=evil.example #3"
        );

        // An answer built for http is not served to https, and the reverse.
        assert_eq!(
            plain(&p, "/c/s", "a.test"),
            "/c/s proto=http host=a.test #5"
        );
        let https = |path: &str| {
            let r = tls.try_get(tls_port, "a.test", "a.test", path).unwrap();
            assert_eq!(r.status, 200, "{driver}");
            r.text()
        };
        assert_eq!(
            https("/c/s"),
            "/c/s proto=https host=a.test #6",
            "{driver}: served the http answer to https"
        );
        assert_eq!(https("/c/s"), "/c/s proto=https host=a.test #6", "a hit");
        assert_eq!(
            plain(&p, "/c/s", "a.test"),
            "/c/s proto=http host=a.test #5"
        );
        assert_eq!(origin.requests.load(Ordering::SeqCst), 6, "{driver}");
    }
}

#[test]
fn query_names_and_values_count_as_the_backend_decodes_them() {
    let dir = temp_dir("cache-keys");
    for driver in DRIVERS {
        let Setup { origin, p, .. } = start(driver, &dir);
        // `%61` is `a` to the backend: filed under "a absent", this answer would be
        // served to every request without `a`.
        let evil = plain(&p, "/k/q?%61=evil", "t");
        assert_eq!(evil, "/k/q?%61=evil proto=http host=t #1", "{driver}");
        assert_eq!(
            plain(&p, "/k/q", "t"),
            "/k/q proto=http host=t #2",
            "{driver}: served the answer for a=evil to a request without a"
        );
        // Spelled plainly, it is the same entry.
        assert_eq!(plain(&p, "/k/q?a=evil", "t"), evil, "{driver}");
        // Values too, `+` being a space.
        let spaced = plain(&p, "/k/v?a=x+y", "t");
        assert_eq!(plain(&p, "/k/v?a=x%20y", "t"), spaced, "{driver}");
        assert_ne!(plain(&p, "/k/v?a=x%2By", "t"), spaced, "{driver}: %2B is +");
        assert_eq!(origin.requests.load(Ordering::SeqCst), 4, "{driver}");
    }
}

#[test]
fn a_huge_backend_age_saturates() {
    let dir = temp_dir("cache-keys");
    for driver in DRIVERS {
        let Setup { origin, p, .. } = start(driver, &dir);
        let miss = p.get("/age/1");
        assert_eq!(miss.status, 200, "{driver}");
        assert_eq!(
            miss.header("age"),
            Some("18446744073709551615"),
            "relayed as sent"
        );
        // A second on, the hit's age is the backend's plus one: past u64::MAX, which
        // wrapped (and panicked in a debug build) before it saturated.
        std::thread::sleep(Duration::from_millis(1100));
        for _ in 0..2 {
            let hit = p.get("/age/1");
            assert_eq!((hit.status, hit.text()), (200, miss.text()), "{driver}");
            // RFC 9111 §1.2.2: an age too large to represent is the largest one can.
            assert_eq!(hit.header("age"), Some("18446744073709551615"), "{driver}");
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), 1, "{driver}");
    }
}
