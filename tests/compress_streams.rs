//! A worker compresses at most `compression.max_streams` proxied responses at once: each
//! holds its encoder's state (brotli's about 1.3 MiB) for as long as its client takes to
//! read, and clients that asked for `br` and never read held that memory without bound.
//! Past the cap a response is sent as it is, with the `Vary` any eligible response gets.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::codings::unbrotli;
use common::*;

fn body() -> String {
    "{\"id\":1,\"name\":\"compressible\"},".repeat(100)
}

/// `/hold` sends its head and a first chunk, then waits for `release`; `/json` answers
/// whole.
fn origin(release: Arc<AtomicBool>) -> Origin {
    Origin::start(move |req, s| {
        if req.target.starts_with("/hold") {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            let piece = body();
            let _ = s.write_all(format!("{head}{:x}\r\n{piece}\r\n", piece.len()).as_bytes());
            while !release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = s.write_all(b"0\r\n\r\n");
        } else {
            respond(
                s,
                200,
                &[("content-type", "application/json"), ("etag", "\"v1\"")],
                body().as_bytes(),
            );
        }
        true
    })
}

fn config(origin: &Origin) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  compression: {{ max_streams: 1 }}
upstreams:
  origin: {{ targets: ["{}"] }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: origin }} }}
"#,
        origin.addr
    )
}

fn get(p: &Portico, path: &str) -> Response {
    p.raw(
        format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

#[test]
fn past_max_streams_a_response_goes_uncompressed() {
    for driver in DRIVERS {
        let release = Arc::new(AtomicBool::new(false));
        let o = origin(release.clone());
        let p = Portico::start(&config(&o), driver);
        // One stream being compressed: its head says br, its body is still coming.
        let s = p.connect();
        (&s).write_all(
            b"GET /hold HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut held = BufReader::new(s);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert!(held.read_line(&mut head).unwrap() > 0, "{driver}: {head}");
        }
        assert!(head.contains("content-encoding: br"), "{driver}: {head}");
        // The next one, while it lasts, goes as it is (a weak ETag only where compressed).
        let r = get(&p, "/json");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(r.header("content-encoding"), None, "{driver}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{driver}");
        assert_eq!(r.header("etag"), Some("\"v1\""), "{driver}");
        assert_eq!(r.body, body().as_bytes(), "{driver}");
        // Once the first has ended, responses are compressed again.
        release.store(true, Ordering::SeqCst);
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut held, &mut rest);
        drop(held);
        let r = (0..50)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                get(&p, "/json")
            })
            .find(|r| r.header("content-encoding").is_some())
            .expect("compressed again");
        assert_eq!(r.header("content-encoding"), Some("br"), "{driver}");
        assert_eq!(unbrotli(&r.body), body(), "{driver}");
    }
}
