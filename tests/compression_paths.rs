//! Response compression where it meets other features: response parameter mapping of
//! the ETag. Real origins and a Lambda-style function, under both drivers.

mod common;

use std::io::Read;

use common::*;

fn gunzip(b: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut out)
        .expect("a gzip body");
    out
}

fn unbrotli(b: &[u8]) -> String {
    let mut out = String::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_string(&mut out)
        .expect("a brotli body");
    out
}

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
