//! Response compression where it meets other features: response parameter mapping of
//! the ETag and of Vary, the response cache's client invalidation across encodings,
//! digests of the body. Real origins and a Lambda-style function, under both drivers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::codings::{gunzip, unbrotli};
use common::*;

/// The body as the client reads it, decoded by its `content-encoding`.
fn decoded(r: &Response) -> String {
    match r.header("content-encoding") {
        Some("gzip") => gunzip(&r.body),
        Some("br") => unbrotli(&r.body),
        None => r.text(),
        Some(other) => panic!("unexpected coding {other}"),
    }
}

fn get(p: &Portico, path: &str, extra: &str) -> Response {
    p.raw(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").as_bytes())
}

fn etags(r: &Response) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// One worker, `origin` as the upstream, compression at its defaults (br, gzip, 1 KiB).
fn compressing_head(origin: std::net::SocketAddr) -> String {
    one_origin_head(origin).replacen("  workers: 1\n", "  workers: 1\n  compression: {}\n", 1)
}

/// JSON that is worth compressing (over the 1 KiB minimum).
fn body() -> String {
    format!("[{}0]", "1,".repeat(1500))
}

#[test]
fn a_mapped_etag_is_not_joined_by_the_weakened_original() {
    let origin = Origin::start(|_, s| {
        let headers = [("content-type", "application/json"), ("etag", "\"v1\"")];
        respond(s, 200, &headers, body().as_bytes());
        true
    });
    let result = serde_json::json!({
        "statusCode": 200,
        "headers": { "content-type": "application/json", "etag": "\"f1\"" },
        "body": body(),
    })
    .to_string();
    let function = Function::start(move |_| FnReply::Json(result.clone()));
    let gone = r#"{ "200": { "remove:header.etag": "" } }"#;
    let new = r#"{ "200": { "overwrite:header.etag": '"mapped"' } }"#;
    let http = "{ type: http, upstream: origin, path: / }";
    let lambda = format!("{{ type: lambda, url: \"{}\" }}", function.url());
    let body = body();
    let mock = format!(
        "{{ type: mock, headers: {{ content-type: application/json, etag: '\"m1\"' }}, body: '{body}' }}"
    );
    let mut routes = String::new();
    for (kind, integration) in [("http", http), ("fn", &lambda), ("mock", &mock)] {
        for (what, mapping) in [("gone", gone), ("new", new)] {
            routes.push_str(&format!(
                "      \"GET /{kind}/{what}\":\n        integration: {integration}\n        response_parameters: {mapping}\n"
            ));
        }
    }
    let config = format!(
        r#"{}apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
{routes}"#,
        compressing_head(origin.addr)
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        for kind in ["http", "fn", "mock"] {
            for accept in ["gzip", "br", "identity"] {
                let ae = format!("Accept-Encoding: {accept}\r\n");
                let r = get(&p, &format!("/{kind}/gone"), &ae);
                assert_eq!(r.status, 200, "{driver} {kind} {accept}");
                assert_eq!(decoded(&r), body, "{driver} {kind} {accept}");
                // Removed by the mapping: the original ETag must not come back weakened.
                assert_eq!(etags(&r), Vec::<&str>::new(), "{driver} {kind} {accept}");
                let r = get(&p, &format!("/{kind}/new"), &ae);
                assert_eq!(decoded(&r), body, "{driver} {kind} {accept}");
                assert_eq!(etags(&r), ["\"mapped\""], "{driver} {kind} {accept}");
                if accept != "identity" {
                    assert_eq!(r.header("content-encoding"), Some(accept), "{driver}");
                }
            }
        }
    }
}

#[test]
fn a_functions_etag_in_two_cases_is_its_first_not_a_list() {
    // serde's map gives the names in byte order: `ETag` first.
    let result = serde_json::json!({
        "statusCode": 200,
        "headers": { "content-type": "application/json", "ETag": "\"abc\"", "etag": "\"def\"" },
        "body": body(),
    })
    .to_string();
    let function = Function::start(move |_| FnReply::Json(result.clone()));
    let config = format!(
        "{}apis:\n  app:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /fn\": {{ integration: {{ type: lambda, url: \"{}\" }} }}\n",
        compressing_head(silent_origin()),
        function.url()
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        for (accept, etag) in [("gzip", r#"W/"abc""#), ("identity", r#""abc""#)] {
            let r = get(&p, "/fn", &format!("Accept-Encoding: {accept}\r\n"));
            assert_eq!(decoded(&r), body(), "{driver} {accept}");
            // Was `W/"abc", "def"` compressed (the 2.0 join of a name in two cases).
            assert_eq!(etags(&r), [etag], "{driver} {accept}");
        }
    }
}

#[test]
fn a_205_is_never_compressed() {
    // A 205 has no content (RFC 9110 §15.3.6), whatever its Content-Type says.
    let origin = Origin::start(|_, s| {
        use std::io::Write;
        let head = "HTTP/1.1 205 Reset Content\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        s.write_all(head.as_bytes()).unwrap();
        true
    });
    let result = serde_json::json!({
        "statusCode": 205,
        "headers": { "content-type": "application/json" },
        "body": body(),
    })
    .to_string();
    let function = Function::start(move |_| FnReply::Json(result.clone()));
    let config = format!(
        r#"{}apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /http": {{ integration: {{ type: http, upstream: origin }} }}
      "GET /fn": {{ integration: {{ type: lambda, url: "{}" }} }}
"#,
        compressing_head(origin.addr),
        function.url()
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        for path in ["/http", "/fn"] {
            for accept in ["gzip", "br"] {
                let r = get(&p, path, &format!("Accept-Encoding: {accept}\r\n"));
                assert_eq!(r.status, 205, "{driver} {path} {accept}");
                assert_eq!(
                    (r.header("content-encoding"), r.body.len()),
                    (None, 0),
                    "{driver} {path} {accept}: {:?}",
                    r.headers
                );
            }
        }
    }
}

#[test]
fn a_client_refresh_replaces_the_entry_of_every_encoding() {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let origin = Origin::start(move |_, s| {
        let n = v.load(Ordering::SeqCst);
        let body = format!("[{}{n}]", "\"version\",".repeat(200));
        respond(
            s,
            200,
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        true
    });
    let config = format!(
        r#"{}apis:
  app:
    stages: {{ $default: {{ cache: {{ capacity: 1MiB }} }} }}
    routes:
      "GET /v":
        integration: {{ type: http, upstream: origin }}
        cache: {{ ttl: 300s, client_invalidation: allow }}
"#,
        compressing_head(origin.addr)
    );
    let want = |n: usize| format!("[{}{n}]", "\"version\",".repeat(200));
    for driver in DRIVERS {
        version.store(1, Ordering::SeqCst);
        let p = Portico::start(&config, driver);
        let accepts = ["", "Accept-Encoding: gzip\r\n", "Accept-Encoding: br\r\n"];
        for ae in accepts {
            assert_eq!(decoded(&get(&p, "/v", ae)), want(1), "{driver} {ae}");
            let hit = get(&p, "/v", ae);
            assert!(hit.header("age").is_some(), "{driver} {ae}: stored");
        }
        let calls = origin.requests.load(Ordering::SeqCst);
        // The backend's answer changes; one client (any encoding) asks for a refresh.
        version.store(2, Ordering::SeqCst);
        for (i, refresher) in accepts.into_iter().enumerate() {
            let n = 2 + i;
            version.store(n, Ordering::SeqCst);
            let r = get(
                &p,
                "/v",
                &format!("{refresher}Cache-Control: max-age=0\r\n"),
            );
            assert_eq!(decoded(&r), want(n), "{driver} {refresher}");
            // Every encoding now gets the refreshed answer, not its old stored copy.
            for ae in accepts {
                let r = get(&p, "/v", ae);
                assert_eq!(decoded(&r), want(n), "{driver}: {ae} after {refresher}");
            }
        }
        // Each refresh cost one call for itself and one per other encoding, no more.
        assert_eq!(origin.requests.load(Ordering::SeqCst), calls + 3 * 3);
    }
}

#[test]
fn a_body_with_a_digest_is_relayed_as_the_backend_sent_it() {
    // Stands for a digest over the bytes the backend sent (the test only looks at it).
    let digest = "sha-256=:placeholder-the-client-checks-this=:";
    let origin = Origin::start(move |req, s| {
        let name = req.target.trim_start_matches('/');
        let headers = [("content-type", "application/json"), (name, digest)];
        respond(s, 200, &headers, body().as_bytes());
        true
    });
    let config = format!(
        r#"{}apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "$default":
        integration: {{ type: http, upstream: origin }}
"#,
        compressing_head(origin.addr)
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        for name in ["content-digest", "repr-digest", "digest", "content-md5"] {
            let r = get(&p, &format!("/{name}"), "Accept-Encoding: gzip, br\r\n");
            assert_eq!(r.header("content-encoding"), None, "{driver} {name}");
            assert_eq!(r.header(name), Some(digest), "{driver} {name}");
            assert_eq!(r.text(), body(), "{driver} {name}");
        }
        // Without one, the same answer is compressed.
        let r = get(&p, "/x-other", "Accept-Encoding: gzip, br\r\n");
        assert_eq!(r.header("content-encoding"), Some("br"), "{driver}");
    }
}

#[test]
fn a_mapping_that_removes_vary_leaves_accept_encoding_in_it() {
    let varied = [
        ("content-type", "application/json"),
        ("vary", "Accept-Encoding"),
    ];
    let origin = Origin::start(move |_, s| {
        respond(s, 200, &varied, body().as_bytes());
        true
    });
    let result = serde_json::json!({
        "statusCode": 200,
        "headers": { "content-type": "application/json", "vary": "accept-encoding" },
        "body": body(),
    })
    .to_string();
    let function = Function::start(move |_| FnReply::Json(result.clone()));
    let body = body();
    let config = format!(
        r#"{}apis:
  app:
    stages: {{ $default: {{ cache: {{ capacity: 1MiB }} }} }}
    routes:
      "GET /http":
        integration: {{ type: http, upstream: origin }}
        response_parameters: {{ "200": {{ "remove:header.vary": "" }} }}
      "GET /cached":
        integration: {{ type: http, upstream: origin }}
        cache: {{ ttl: 60s }}
        response_parameters: {{ "200": {{ "overwrite:header.vary": "User-Agent" }} }}
      "GET /fn":
        integration: {{ type: lambda, url: "{}" }}
        response_parameters: {{ "200": {{ "remove:header.vary": "" }} }}
      "GET /mock":
        integration: {{ type: mock, headers: {{ content-type: application/json, vary: Accept-Encoding }}, body: '{body}' }}
        response_parameters: {{ "200": {{ "remove:header.vary": "" }} }}
"#,
        compressing_head(origin.addr),
        function.url()
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        // /cached twice: the miss, then the hit.
        for (i, path) in ["/http", "/cached", "/cached", "/fn", "/mock"]
            .iter()
            .enumerate()
        {
            for accept in ["gzip", "br", "identity"] {
                let r = get(&p, path, &format!("Accept-Encoding: {accept}\r\n"));
                assert_eq!(
                    r.header("age").is_some(),
                    i == 2,
                    "{driver} {path} {accept}"
                );
                assert_eq!(decoded(&r), body, "{driver} {path} {accept}");
                let vary: Vec<&str> = (r.headers.iter())
                    .filter(|(n, _)| n.eq_ignore_ascii_case("vary"))
                    .map(|(_, v)| v.as_str())
                    .collect();
                // What a shared cache in front keys the compressed body by.
                assert!(
                    (vary.iter()).any(|v| v.eq_ignore_ascii_case("accept-encoding")),
                    "{driver} {path} {accept}: {vary:?}"
                );
            }
        }
    }
}
