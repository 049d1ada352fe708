//! Response compression end to end: real origins, a real Lambda-style function, mocks,
//! the response cache, `curl --compressed` and the raw client, under both drivers.

mod common;

use std::io::Write;
use std::process::Command;
use std::sync::atomic::Ordering;

use common::codings::{gunzip, unbrotli};
use common::*;

/// About 8 KiB of JSON that compresses well (as an API's list answer would).
fn json_body(n: usize) -> String {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < n - 64 {
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user {}\",\"active\":{}}},",
            i * 7919 % 1000,
            i % 3 == 0
        ));
        i += 1;
    }
    s.push_str("{\"id\":-1}]");
    s
}

fn origin() -> Origin {
    let body = json_body(8 * 1024);
    Origin::start(move |req, s| {
        let json = ("content-type", "application/json");
        let path = req.target.split('?').next().unwrap();
        match path {
            "/small" => respond(s, 200, &[json], &body.as_bytes()[..100]),
            "/encoded" => respond(
                s,
                200,
                &[json, ("content-encoding", "gzip")],
                b"not really gzip",
            ),
            "/notransform" => respond(
                s,
                200,
                &[json, ("cache-control", "public, no-transform")],
                body.as_bytes(),
            ),
            "/png" => respond(s, 200, &[("content-type", "image/png")], body.as_bytes()),
            "/chunked" => {
                let mut out =
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
                        .to_vec();
                for piece in body.as_bytes().chunks(1000) {
                    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                let _ = s.write_all(&out);
            }
            "/close" => {
                let head =
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n";
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body.as_bytes());
                return false;
            }
            "/badchunk" => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                let _ = s.write_all(format!("{head}zz\r\nhello\r\n0\r\n\r\n").as_bytes());
                return false;
            }
            "/big" => {
                let big = json_body(300 * 1024);
                respond(s, 200, &[json], big.as_bytes());
            }
            _ => respond(s, 200, &[json, ("etag", "\"v1\"")], body.as_bytes()),
        }
        true
    })
}

fn config(origin: &Origin, function: &Function) -> String {
    let mock_body = json_body(2048);
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  compression: {{ min_size: 1KiB, types: [application/json, text/*], algorithms: [br, gzip] }}
upstreams:
  origin: {{ targets: ["{}"] }}
apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 4MiB }} }}
    routes:
      "GET /cached":
        integration: {{ type: http, upstream: origin, path: /json }}
        cache: {{ ttl: 60s }}
      "GET /mock":
        integration: {{ type: mock, headers: {{ content-type: application/json, etag: '"m1"' }}, body: '{mock_body}' }}
      "GET /fn":
        integration: {{ type: lambda, url: "{}" }}
      "$default":
        integration: {{ type: http, upstream: origin }}
  plain:
    compression: off
    stages: {{ off: {{}} }}
    routes:
      "$default":
        integration: {{ type: http, upstream: origin }}
  gz:
    compression: {{ algorithms: [gzip] }}
    stages: {{ gz: {{}} }}
    routes:
      "$default":
        integration: {{ type: http, upstream: origin }}
"#,
        origin.addr,
        function.url()
    )
}

fn get(p: &Portico, path: &str, accept: Option<&str>) -> Response {
    let ae = accept.map_or(String::new(), |a| format!("Accept-Encoding: {a}\r\n"));
    p.raw(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{ae}Connection: close\r\n\r\n").as_bytes())
}

#[test]
fn compression_negotiates_and_skips_what_it_must() {
    let origin = origin();
    let function = Function::start(|_| FnReply::Json(json_body(4096)));
    let json = json_body(8 * 1024);
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin, &function), driver);

        let r = get(&p, "/json", Some("gzip"));
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{driver}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("content-length"), None, "re-framed");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.header("etag"), Some("W/\"v1\""), "weakened as nginx does");
        assert!(r.body.len() < json.len() / 3, "{}", r.body.len());
        assert_eq!(gunzip(&r.body), json);

        // A chunked body broken before anything went out: a 502, not a bare close.
        let r = get(&p, "/badchunk", Some("gzip"));
        assert_eq!(
            (r.status, r.header("content-encoding")),
            (502, None),
            "{driver}"
        );

        let r = get(&p, "/json", Some("gzip;q=0.5, br;q=1"));
        assert_eq!(r.header("content-encoding"), Some("br"));
        assert_eq!(unbrotli(&r.body), json);
        let r = get(&p, "/json", Some("gzip, br;q=0.9, identity;q=0.1"));
        assert_eq!(r.header("content-encoding"), Some("gzip"), "q-values");

        // Refused or not asked for: identity, with Vary all the same.
        for accept in [
            Some("gzip;q=0, br;q=0"),
            Some("identity"),
            Some("*;q=0"),
            None,
        ] {
            let r = get(&p, "/json", accept);
            assert_eq!(r.header("content-encoding"), None, "{accept:?}");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{accept:?}");
            assert_eq!(
                r.header("content-length"),
                Some(json.len().to_string().as_str()),
                "{accept:?}"
            );
            assert_eq!(r.header("etag"), Some("\"v1\""), "{accept:?}");
            assert_eq!(r.text(), json);
        }

        // Never: small, already encoded, no-transform, unlisted type.
        for path in ["/small", "/encoded", "/notransform", "/png"] {
            let r = get(&p, path, Some("gzip, br"));
            assert_eq!(r.header("vary"), None, "{path}");
            assert_ne!(r.header("content-encoding"), Some("br"), "{path}");
            assert!(r.header("content-length").is_some(), "{path}");
        }
        assert_eq!(get(&p, "/encoded", Some("br")).text(), "not really gzip");
        let mut s = p.connect();
        s.write_all(
            b"HEAD /json HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let r = read_response(&mut std::io::BufReader::new(s), true).unwrap();
        // HEAD: the headers its GET gets (RFC 9110 §9.3.2; nginx too), and no body.
        assert_eq!(r.header("content-encoding"), Some("gzip"), "HEAD");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "HEAD");
        assert_eq!(r.header("etag"), Some("W/\"v1\""), "HEAD");
        assert_eq!(r.header("content-length"), None, "HEAD");

        // Upstream chunked and close-delimited bodies, and large ones.
        for (path, te) in [
            ("/chunked", "chunked"),
            ("/close", "chunked"),
            ("/big", "chunked"),
        ] {
            let r = get(&p, path, Some("gzip"));
            assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
            assert_eq!(r.header("transfer-encoding"), Some(te), "{path}");
            let want = if path == "/big" {
                json_body(300 * 1024)
            } else {
                json.clone()
            };
            assert_eq!(gunzip(&r.body), want, "{path}");
        }

        // HTTP/1.0: no chunked framing; the body ends when the connection closes.
        for path in ["/json", "/chunked", "/big"] {
            let r = p.raw(
                format!("GET {path} HTTP/1.0\r\nHost: t\r\nAccept-Encoding: br\r\n\r\n").as_bytes(),
            );
            assert_eq!(r.header("content-encoding"), Some("br"), "{path}");
            assert_eq!(r.header("transfer-encoding"), None, "{path}");
            assert_eq!(r.header("connection"), Some("close"), "{path}");
            let want = if path == "/big" {
                json_body(300 * 1024)
            } else {
                json.clone()
            };
            assert_eq!(unbrotli(&r.body), want, "{path}");
        }

        // Keep-alive: a compressed response, then the next request on the connection.
        let mut c = Client::new(&p);
        for _ in 0..3 {
            let r = c.send(b"GET /chunked HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
            assert_eq!(gunzip(&r.body), json);
        }

        // Per API: `off`, and an API with gzip only.
        let r = get(&p, "/off/json", Some("gzip, br"));
        assert_eq!(
            (r.header("content-encoding"), r.header("vary")),
            (None, None)
        );
        let r = get(&p, "/gz/json", Some("gzip, br"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));

        // Mock and Lambda answers are compressed whole and keep a content-length.
        let r = get(&p, "/mock", Some("gzip"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("etag"), Some("W/\"m1\""));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        assert_eq!(gunzip(&r.body), json_body(2048));
        let r = get(&p, "/fn", Some("br"));
        assert_eq!(r.header("content-encoding"), Some("br"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(unbrotli(&r.body), json_body(4096));
        let r = get(&p, "/fn", None);
        assert_eq!(
            (r.header("content-encoding"), r.text()),
            (None, json_body(4096))
        );
    }
}

#[test]
fn curl_compressed_decodes_what_portico_sends() {
    let origin = origin();
    let function = Function::start(|_| FnReply::Json(json_body(4096)));
    let json = json_body(8 * 1024);
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin, &function), driver);
        for (path, accept, coding) in [
            ("/json", None, "br"),
            ("/chunked", Some("gzip"), "gzip"),
            ("/mock", Some("gzip"), "gzip"),
        ] {
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "--compressed", "-D", "-"]);
            if let Some(a) = accept {
                cmd.args(["-H", &format!("Accept-Encoding: {a}")]);
            }
            let out = cmd
                .arg(format!("http://{}{path}", p.addr))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                head.to_ascii_lowercase()
                    .contains(&format!("content-encoding: {coding}")),
                "{driver} {path}: {head}"
            );
            let want = if path == "/mock" {
                json_body(2048)
            } else {
                json.clone()
            };
            assert_eq!(body, want, "{driver} {path}");
        }
    }
}

#[test]
fn the_cache_keeps_one_entry_per_encoding() {
    let origin = origin();
    let function = Function::start(|_| FnReply::Json(String::new()));
    let json = json_body(8 * 1024);
    for driver in DRIVERS {
        let p = Portico::start(&config(&origin, &function), driver);
        let seen = || origin.requests.load(Ordering::SeqCst);
        let before = seen();
        let gz = get(&p, "/cached", Some("gzip"));
        assert_eq!(
            gz.header("content-encoding"),
            Some("gzip"),
            "{driver}: miss"
        );
        assert_eq!(gunzip(&gz.body), json);
        let hit = get(&p, "/cached", Some("gzip"));
        assert_eq!(
            seen(),
            before + 1,
            "{driver}: the second gzip request is a hit"
        );
        assert!(hit.header("age").is_some());
        assert_eq!(hit.header("content-encoding"), Some("gzip"));
        assert_eq!(hit.header("vary"), Some("Accept-Encoding"));
        assert_eq!(hit.header("etag"), Some("W/\"v1\""));
        assert_eq!(
            hit.header("content-length"),
            Some(hit.body.len().to_string().as_str())
        );
        assert_eq!(gunzip(&hit.body), json);

        // Identity is an entry of its own: a miss, then hits.
        let plain = get(&p, "/cached", None);
        assert_eq!(seen(), before + 2, "{driver}: identity misses");
        assert_eq!(
            (plain.header("content-encoding"), plain.text()),
            (None, json.clone())
        );
        let plain = get(&p, "/cached", Some("identity"));
        assert_eq!(seen(), before + 2, "{driver}: identity hit");
        assert_eq!(plain.header("content-encoding"), None);
        assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
        assert_eq!(plain.text(), json);

        let br = get(&p, "/cached", Some("br"));
        assert_eq!(seen(), before + 3, "{driver}: br misses");
        assert_eq!(unbrotli(&br.body), json);
        let br = get(&p, "/cached", Some("br, gzip"));
        assert_eq!(seen(), before + 3, "{driver}: br hit");
        assert_eq!(unbrotli(&br.body), json);

        // HEAD is answered from the entry of its encoding, as its GET, without a body.
        let mut s = p.connect();
        s.write_all(b"HEAD /cached HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
            .unwrap();
        let r = read_response(&mut std::io::BufReader::new(s), true).unwrap();
        assert_eq!(seen(), before + 3, "{driver}: HEAD hit");
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("content-length"), hit.header("content-length"));
    }
}
