//! A chunked body's last chunk goes on only once its whole final section (the last-chunk
//! line, trailer fields, the empty line) is in (docs/HTTP-FRAMING.md rules 2 and 12).
//! A backend that closed after `0\r\n` had its client sent `0\r\n` and a close, which
//! clients that end a body at the last-chunk line (Python's http.client, requests) took
//! for a whole 200; a size line split across reads (`…\r\n0` then `1a\r\n`) is held
//! whole, since its `0` may start a size. The same holds for a client's body on its way
//! to a backend. Under both drivers.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
const PAUSE: Duration = Duration::from_millis(150);
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// The backend's writes for `path`, paused between; after the last one it closes.
fn parts(path: &str) -> Vec<Vec<u8>> {
    let whole_split = [
        b"1a\r\n".as_slice(),
        LETTERS,
        b"\r\n0;e=1\r\nX-T: 1\r\n\r\n",
    ]
    .concat();
    let parts: Vec<&[u8]> = match path {
        "/cut-after-last-chunk-line" => vec![b"2\r\nok\r\n0\r\n"],
        "/cut-split" => vec![b"2\r\nok\r\n0", b"\r\n"],
        "/cut-in-trailers" => vec![b"2\r\nok\r\n", b"0\r\nX-T: 1\r\n"],
        "/cut-before-the-last-lf" => vec![b"2\r\nok\r\n0\r\n\r"],
        // Whole: the size line `01a` split after its `0`.
        "/whole-split" => vec![b"2\r\nok\r\n0", &whole_split],
        _ => vec![b"0\r\n\r\n"],
    };
    let mut out = vec![[HEAD, parts[0]].concat()];
    out.extend(parts[1..].iter().map(|p| p.to_vec()));
    out
}

fn backend() -> Origin {
    Origin::start(|req, s| {
        for (i, part) in parts(&req.target).iter().enumerate() {
            if i > 0 {
                thread::sleep(PAUSE);
            }
            let _ = s.write_all(part);
        }
        thread::sleep(PAUSE);
        false
    })
}

fn config(origin: SocketAddr, log: &std::path::Path) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ request_buffer_bytes: 0 }}
  access_log: {{ path: "{log}", format: '$context.path $context.status [$context.integration.error]' }}
upstreams:
  origin: {{ targets: ["{origin}"], connect_timeout: 1s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: origin, timeout: 2s }} }}
"#,
        log = log.display(),
    )
}

/// The body bytes (after the head) the client got before the close.
fn body_got(p: &Portico, path: &str, version: &str) -> String {
    let mut s = p.connect();
    s.write_all(format!("GET {path} HTTP/{version}\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(10));
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {got}");
    got.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// What Python's http.client makes of the answer: "complete:BODY" or the error's name.
fn python_reads(p: &Portico, path: &str) -> String {
    let script = r#"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("GET", sys.argv[2])
r = c.getresponse()
try:
    print("complete:" + r.read().decode())
except http.client.IncompleteRead:
    print("IncompleteRead")
"#;
    let out = std::process::Command::new(common::py::python())
        .args(["-c", script, &p.addr.port().to_string(), path])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_backend_body_cut_in_its_final_section_reaches_the_client_with_no_last_chunk() {
    let origin = backend();
    let cuts = [
        "/cut-after-last-chunk-line",
        "/cut-split",
        "/cut-in-trailers",
        "/cut-before-the-last-lf",
    ];
    for driver in DRIVERS {
        let dir = temp_dir("final-section");
        let log = dir.join("access.log");
        let p = Portico::start(&config(origin.addr, &log), driver);
        for path in cuts {
            assert_eq!(body_got(&p, path, "1.1"), "2\r\nok\r\n", "{driver} {path}");
        }
        assert_eq!(
            python_reads(&p, "/cut-after-last-chunk-line"),
            "IncompleteRead",
            "{driver}"
        );
        // Whole, the last chunk goes as `0\r\n\r\n` (its extension and trailers left
        // out), the split size line whole.
        let whole = format!(
            "2\r\nok\r\n01a\r\n{}\r\n0\r\n\r\n",
            String::from_utf8_lossy(LETTERS)
        );
        let mut s = p.connect();
        s.write_all(b"GET /whole-split HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let got = String::from_utf8_lossy(&read_until_closed(&mut s, Duration::from_secs(10)))
            .into_owned();
        assert!(
            got.ends_with(&format!("\r\n\r\n{whole}")),
            "{driver}: {got:?}"
        );
        // De-chunked for HTTP/1.0: the payload, then the close.
        assert_eq!(body_got(&p, "/cut-split", "1.0"), "ok", "{driver}");
        assert_eq!(
            body_got(&p, "/whole-split", "1.0"),
            format!("ok{}", String::from_utf8_lossy(LETTERS)),
            "{driver}"
        );
        // Logged as the other cuts are: the status the client got, and the cause.
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            eventually(|| text().lines().count() >= 8),
            "{driver}: {}",
            text()
        );
        let text = text();
        for path in cuts {
            let line = format!("{path} 200 [upstream closed mid-body]");
            assert!(
                text.lines().any(|l| l == line),
                "{driver}: {line} in {text}"
            );
        }
        assert!(
            text.lines().any(|l| l == "/whole-split 200 [-]"),
            "{driver}: {text}"
        );
    }
}

/// A raw backend that keeps everything each connection sent it (until the client's side
/// closes, or a whole chunked body came), answering 200 to a whole one.
fn recording_backend() -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (record, seen) = mpsc::channel();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let record = record.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    if got.ends_with(b"\r\n0\r\n\r\n") {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfine");
                        break;
                    }
                }
                let _ = record.send(got);
            });
        }
    });
    (addr, seen)
}

/// The client's side: its body cut in the final section (it closes) never sends the
/// backend a last chunk; whole, with the size line split after its `0`, the backend gets
/// the chunks as sent and `0\r\n\r\n`.
#[test]
fn a_client_body_cut_in_its_final_section_reaches_the_backend_with_no_last_chunk() {
    let (backend, seen) = recording_backend();
    let head = b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    let whole_rest = [
        b"1a\r\n".as_slice(),
        LETTERS,
        b"\r\n0;e=1\r\nX-T: 1\r\n\r\n",
    ]
    .concat();
    let cases: [(&[&[u8]], bool); 4] = [
        (&[b"2\r\nok\r\n0\r\n"], false),
        (&[b"2\r\nok\r\n0", b"\r\n"], false),
        (&[b"2\r\nok\r\n", b"0\r\nX-T: 1\r\n"], false),
        (&[b"2\r\nok\r\n0", &whole_rest], true),
    ];
    for driver in DRIVERS {
        let dir = temp_dir("final-section-up");
        let p = Portico::start(&config(backend, &dir.join("access.log")), driver);
        for (i, (parts, whole)) in cases.iter().enumerate() {
            let mut s = p.connect();
            s.write_all(&[head.as_slice(), parts[0]].concat()).unwrap();
            for part in &parts[1..] {
                thread::sleep(PAUSE);
                s.write_all(part).unwrap();
            }
            thread::sleep(PAUSE);
            if *whole {
                let r = read_response(&mut BufReader::new(s), false).unwrap();
                assert_eq!((r.status, r.text()), (200, "fine".into()), "{driver} {i}");
            } else {
                s.shutdown(Shutdown::Write).unwrap();
                let _ = read_until_closed(&mut s, Duration::from_secs(10));
            }
            let got = seen
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{driver} case {i}: the backend saw no request"));
            let at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let want = if *whole {
                [b"2\r\nok\r\n01a\r\n".as_slice(), LETTERS, b"\r\n0\r\n\r\n"].concat()
            } else {
                b"2\r\nok\r\n".to_vec()
            };
            assert_eq!(
                String::from_utf8_lossy(&got[at..]),
                String::from_utf8_lossy(&want),
                "{driver} case {i}"
            );
        }
    }
}
