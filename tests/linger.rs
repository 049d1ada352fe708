//! An upload the gateway answers without reading it whole (a 413 for its declared size, a
//! 404 whose body is past what is read and dropped) ends with a lingering close, as
//! nginx's: the answer, a FIN, and the rest of the body read and dropped. Closing with the
//! body unread sent a reset while the client was still sending, and a client that stops
//! at a failed send (curl: "Send failure: Connection reset by peer") never read the
//! answer. The bodies are larger than loopback's socket buffers, so without the lingering
//! close the client's send fails. Under both drivers; the worker keeps serving.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Far past what socket buffers on both ends hold, so the send is under way at the close.
const BODY_LEN: usize = 48 * 1024 * 1024;

fn config() -> String {
    r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
  limits: { header_timeout: 5s, idle_timeout: 5s, drain_timeout: 1s, max_body_bytes: 10MiB }
apis:
  app:
    stages:
      $default: {}
    routes:
      "POST /upload":
        integration: { type: mock, status: 200, body: "stored" }
"#
    .to_string()
}

/// Sends `head` and then `body` whole, and only then reads the answer, as a client that
/// streams an upload before it looks at the response.
fn upload(p: &Portico, head: &[u8], body: &[u8]) -> (std::io::Result<()>, Option<Response>) {
    let mut s: TcpStream = p.connect();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let sent = s.write_all(head).and_then(|_| s.write_all(body));
    let answer = read_response(&mut BufReader::new(s), false).ok();
    (sent, answer)
}

fn chunked(len: usize) -> Vec<u8> {
    let chunk = vec![b'x'; 64 * 1024];
    let mut out = Vec::with_capacity(len + len / chunk.len() * 16);
    for _ in 0..len / chunk.len() {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(&chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn a_refused_upload_is_read_and_dropped_until_the_client_has_its_answer() {
    let body = vec![b'x'; BODY_LEN];
    let chunked_body = chunked(BODY_LEN);
    for driver in DRIVERS {
        let p = Portico::start(&config(), driver);
        // Refused at its head: the declared length is past max_body_bytes.
        let head =
            format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {BODY_LEN}\r\n\r\n");
        let (sent, answer) = upload(&p, head.as_bytes(), &body);
        assert!(sent.is_ok(), "{driver}: the body's send failed: {sent:?}");
        let r = answer.unwrap_or_else(|| panic!("{driver}: no answer"));
        assert_eq!(r.status, 413, "{driver}");
        assert_eq!(r.header("connection"), Some("close"), "{driver}");

        // Answered without its body (no route), which is past what is read and dropped.
        let head = "POST /elsewhere HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (sent, answer) = upload(&p, head.as_bytes(), &chunked_body);
        assert!(
            sent.is_ok(),
            "{driver}: the chunked body's send failed: {sent:?}"
        );
        let r = answer.unwrap_or_else(|| panic!("{driver}: no answer to the chunked upload"));
        assert_eq!(r.status, 404, "{driver}");

        // The worker keeps serving.
        let r = p.raw(
            b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        );
        assert_eq!((r.status, r.text().as_str()), (200, "stored"), "{driver}");
    }
}

/// The same over plain HTTP and HTTPS (close_notify, then the lingering reads), with curl.
#[test]
fn curl_uploading_too_much_gets_the_413() {
    let file = temp_dir("linger").join("body");
    std::fs::write(&file, vec![b'x'; BODY_LEN]).unwrap();
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/certs");
    for driver in DRIVERS {
        let tls_port = free_port();
        let yaml = config().replace(
            "  workers: 1\n",
            &format!("  workers: 1\n  tls_listen: [\"127.0.0.1:{tls_port}\"]\n  default_domain: localhost\n"),
        ) + &format!(
            "domains:\n  localhost:\n    cert: \"{}\"\n    key: \"{}\"\n    mappings: {{ \"\": app/$default }}\n",
            certs.join("localhost.pem").display(),
            certs.join("localhost.key").display()
        );
        let p = Portico::start(&yaml, driver);
        assert!(eventually(
            || TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
        ));
        let plain = format!("http://{}/upload", p.addr);
        let tls = format!("https://localhost:{tls_port}/upload");
        for url in [plain, tls] {
            // `Expect:` off: curl sends the body at once instead of waiting for a 100.
            let out = Command::new("curl")
                .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-H", "Expect:"])
                .args(["--resolve", &format!("localhost:{tls_port}:127.0.0.1")])
                .arg("--cacert")
                .arg(certs.join("demo-ca.pem"))
                .arg("--data-binary")
                .arg(format!("@{}", file.display()))
                .arg(&url)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.ends_with("\n413"), "{driver} {url}: {out:?}");
        }
    }
}

/// A backend that reads a request's head, waits, and closes without an answer or reading
/// the body: the client, still uploading, gets the 502 (it got a reset, the gateway
/// having closed with the upload's bytes unread).
#[test]
fn an_upload_whose_backend_fails_midway_gets_the_502() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in backend.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            });
        }
    });
    let yaml =
        config().replace(
            "        integration: { type: mock, status: 200, body: \"stored\" }\n",
            "        integration: { type: http, upstream: dropper }\n",
        ) + &format!("upstreams:\n  dropper: {{ targets: [\"127.0.0.1:{backend_port}\"] }}\n");
    let body = vec![b'x'; 9 * 1024 * 1024];
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let (sent, answer) = upload(&p, head.as_bytes(), &body);
        assert!(sent.is_ok(), "{driver}: the body's send failed: {sent:?}");
        let r = answer.unwrap_or_else(|| panic!("{driver}: no answer"));
        assert_eq!(r.status, 502, "{driver}");
        assert_eq!(r.header("connection"), Some("close"), "{driver}");
    }
}

/// Requests pipelined behind one that closes the connection (`Connection: close`, or
/// HTTP/1.0) are never answered, and must not cost the closing answer its end: closing
/// with them unread sent a reset while the answer was still in the socket's send queue,
/// and a slow reader got ~100 KB of a 4 MiB body, then "connection reset".
#[test]
fn requests_pipelined_behind_a_close_do_not_cut_its_answer() {
    const BIG: usize = 4 * 1024 * 1024;
    let body: &'static [u8] = Box::leak(vec![b'b'; BIG].into_boxed_slice());
    let origin = Origin::fixed(body);
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        for first in [
            "GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "GET /big HTTP/1.0\r\nHost: a\r\n\r\n",
        ] {
            let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
            let mut s = p.connect();
            let mut out = first.as_bytes().to_vec();
            while out.len() < 100_000 {
                out.extend_from_slice(b"GET /more HTTP/1.1\r\nHost: a\r\n\r\n");
            }
            s.write_all(&out).unwrap();
            // A slow reader: the answer waits in the send queue when the gateway closes.
            std::thread::sleep(Duration::from_millis(300));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = Vec::new();
            let read = s.read_to_end(&mut got);
            assert!(
                read.is_ok(),
                "{driver}: {first:?}: {read:?} after {} bytes",
                got.len()
            );
            let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_eq!(got.len() - head_end, BIG, "{driver}: {first:?}");
            assert!(got.starts_with(b"HTTP/1.1 200"), "{driver}");
            let after = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(
                after - before,
                1,
                "{driver}: a pipelined request went upstream"
            );
        }
    }
}

/// A small body the route does not read is dropped to keep the connection, but for no
/// longer than a lingering close lasts (30 s, nginx's `lingering_time`), and that is the
/// whole of it: sent a byte every 2 s (each read within `header_timeout`), it held the
/// connection for as long as the client went on, and then (once cut at 30 s) for a
/// lingering close of 30 s more. Both drivers at once: each waits the 30 s.
#[test]
fn a_dribbled_body_the_route_drops_is_cut_at_thirty_seconds() {
    let runs: Vec<_> = DRIVERS
        .iter()
        .map(|&driver| {
            std::thread::spawn(move || {
                let p = Portico::start(&config(), driver);
                let mut s = p.connect();
                s.set_read_timeout(Some(Duration::from_millis(1900)))
                    .unwrap();
                s.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nx")
                    .unwrap();
                let started = std::time::Instant::now();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let mut fin = false;
                // Until a byte of the body can no longer be sent: the socket is gone.
                let gone_at = loop {
                    assert!(
                        started.elapsed() < Duration::from_secs(50),
                        "{driver}: still open at 50 s (FIN: {fin}): {}",
                        String::from_utf8_lossy(&got)
                    );
                    if !fin {
                        match s.read(&mut buf) {
                            Ok(0) => fin = true,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                                break started.elapsed()
                            }
                            Err(_) => {}
                        }
                    } else {
                        std::thread::sleep(Duration::from_millis(1000));
                    }
                    // One more byte of the body, well within `header_timeout` (5 s).
                    if s.write_all(b"x").is_err() {
                        break started.elapsed();
                    }
                };
                let answer = String::from_utf8_lossy(&got).into_owned();
                assert!(answer.starts_with("HTTP/1.1 200"), "{driver}: {answer}");
                assert!(
                    gone_at > Duration::from_secs(25) && gone_at < Duration::from_secs(40),
                    "{driver}: gone after {gone_at:?}"
                );
            })
        })
        .collect();
    for run in runs {
        run.join().unwrap();
    }
}
