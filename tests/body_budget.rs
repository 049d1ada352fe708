//! Bodies read whole (here: validated) share `limits.max_buffered_bodies_bytes`, all
//! connections together: a read that would take their buffers past it is 503 and the
//! connection closes; what a body held comes back when it is done. Without it, clients
//! that sent all but the last byte of large bodies held that much memory each for as
//! long as they liked (120 of 8 MB: 1 GB).

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn config(slow: std::net::SocketAddr) -> String {
    config_with_function(slow, slow)
}

/// `function`: where `POST /fn`'s Lambda integration is, a route whose body is read
/// whole twice (validated, then sent in the event).
fn config_with_function(slow: std::net::SocketAddr, function: std::net::SocketAddr) -> String {
    format!("upstreams: {{ slow: {{ targets: [\"{slow}\"] }} }}\n")
        + r#"server:
  listen: ["127.0.0.1:{PORT}"]
  workers: 1
  limits: { max_body_bytes: 8MiB, max_buffered_bodies_bytes: 1MiB }
apis:
  shop:
    stages: { $default: {} }
    models:
      Any: { type: object }
    routes:
      "POST /any":
        integration: { type: mock, status: 200, body: ok }
        request_validator: all
        request_model: Any
      "POST /slow":
        integration: { type: http, upstream: slow, timeout: 10s }
        request_validator: all
        request_model: Any
      "POST /fn":
        request_validator: all
        request_model: Any
        integration:
"# + &format!("          {{ type: lambda, url: \"http://{function}/fn\", timeout: 5s }}\n")
}

/// A JSON object of `len` bytes.
fn body(len: usize) -> Vec<u8> {
    let mut b = b"{\"a\":\"".to_vec();
    b.resize(len - 2, b'x');
    b.extend_from_slice(b"\"}");
    b
}

fn head(len: usize) -> Vec<u8> {
    head_to("/any", len)
}

fn head_to(path: &str, len: usize) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post(p: &Portico, len: usize) -> Response {
    let mut request = head(len);
    request.extend_from_slice(&body(len));
    p.raw(&request)
}

fn status_of(s: TcpStream) -> u16 {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    read_response(&mut BufReader::new(s), false)
        .expect("a response")
        .status
}

#[test]
fn bodies_read_whole_share_one_budget() {
    // Answers after half a second: the validated body it was sent waits in Portico.
    let slow = Origin::start(|_, s| {
        std::thread::sleep(Duration::from_millis(500));
        respond(s, 200, &[], b"ok");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config(slow.addr), driver);
        assert_eq!(post(&p, 100_000).status, 200, "{driver}");
        // One body larger than the budget by itself.
        assert_eq!(post(&p, 2_000_000).status, 503, "{driver}");
        // One that holds half of it, its last bytes not sent yet: a larger one is refused.
        let held = body(400_000);
        let mut slow = p.connect();
        slow.write_all(&head(held.len())).unwrap();
        slow.write_all(&held[..300_000]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(post(&p, 600_000).status, 503, "{driver}: past the budget");
        assert_eq!(
            post(&p, 1000).status,
            200,
            "{driver}: a small one still fits"
        );
        slow.write_all(&held[300_000..]).unwrap();
        assert_eq!(status_of(slow), 200, "{driver}: the held one goes on");
        // Done with, it gave its share back.
        assert_eq!(post(&p, 600_000).status, 200, "{driver}: given back");
        // Read whole at once, a body holds its share while its backend works too.
        let mut waiting = p.connect();
        waiting.write_all(&head_to("/slow", 600_000)).unwrap();
        waiting.write_all(&body(600_000)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            post(&p, 600_000).status,
            503,
            "{driver}: held while sent on"
        );
        assert_eq!(status_of(waiting), 200, "{driver}");
        assert_eq!(post(&p, 600_000).status, 200, "{driver}: given back after");
        p.stop();
    }
}

#[test]
fn a_body_read_whole_twice_gives_its_share_back_once_done() {
    let function = Origin::start(|_, s| {
        respond(s, 200, &[], br#"{"statusCode":200,"body":"ok"}"#);
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&config_with_function(function.addr, function.addr), driver);
        // Each is validated, then read again for the event: 30 × 100 kB through a
        // 1 MiB budget, one at a time, must all fit (the second read's share replaced
        // the first's, which was never given back: 503 for good after a few).
        for i in 0..30 {
            let mut request = head_to("/fn", 100_000);
            request.extend_from_slice(&body(100_000));
            let r = p.raw(&request);
            assert_eq!(r.status, 200, "{driver}: request {i}: {}", r.text());
        }
        assert_eq!(post(&p, 900_000).status, 200, "{driver}: all given back");
        p.stop();
    }
}
