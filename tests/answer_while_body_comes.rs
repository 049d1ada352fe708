//! A large answer the gateway gives without reading the request body (a mock here),
//! to a client that writes its whole request before it reads, as Python's `requests`
//! does: both sides' socket buffers filled and the two waited on each other until the
//! kernel gave up (a 14 MiB mock answer to a GET carrying 9 MiB). Now the body is taken
//! while the answer goes out, as nginx does (on TLS, before it). Under both drivers.

mod common;

use std::io::{BufReader, Write};
use std::time::Duration;

use common::tls::*;
use common::*;

const ANSWER: usize = 6 * 1024 * 1024;

fn config(tls: &str) -> String {
    let body = "x".repeat(ANSWER);
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  {tls}
  workers: 1
  limits: {{ max_body_bytes: 20000000 }}
apis:
  m:
    stages: {{ $default: {{}} }}
    routes:
      "ANY /big": {{ integration: {{ type: mock, status: 200, body: "{body}" }} }}
"#
    )
}

/// Writes `request` whole (failing after 20 s, which the hang did not reach before the
/// write timed out), then reads the answers.
fn send_then_read(p: &Portico, request: &[u8], answers: usize) -> (Vec<Response>, bool) {
    let mut s = p.connect();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request)
        .expect("the request written whole while the gateway answers");
    let mut r = BufReader::new(s);
    let got = (0..answers)
        .map(|_| read_response(&mut r, false).expect("an answer"))
        .collect();
    let mut rest = Vec::new();
    let closed = std::io::Read::read_to_end(&mut r, &mut rest).is_ok_and(|n| n == 0);
    (got, closed)
}

fn post(host: &str, len: usize) -> Vec<u8> {
    let mut r =
        format!("POST /big HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    r.resize(r.len() + len, b'b');
    r
}

#[test]
fn a_large_answer_goes_out_while_a_large_body_comes_in() {
    let cfg = config("");
    for driver in DRIVERS {
        let p = Portico::start(&cfg, driver);
        // Past what is dropped to keep the connection: answered, then closed.
        let (got, closed) = send_then_read(&p, &post("t", 9 * 1024 * 1024), 1);
        assert_eq!(got[0].status, 200, "{driver}");
        assert_eq!(got[0].body.len(), ANSWER, "{driver}");
        assert!(closed, "{driver}: kept after a body it did not read whole");

        // A body it drops (1 MiB), then the next request on the same connection: both
        // answered in order, the body read past exactly.
        let mut two = post("t", 1024 * 1024);
        two.extend_from_slice(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let (got, closed) = send_then_read(&p, &two, 2);
        let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200], "{driver}");
        assert!(got.iter().all(|r| r.body.len() == ANSWER), "{driver}");
        assert!(closed, "{driver}");

        // Chunked, kept: the same.
        let mut chunked =
            b"POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..64 {
            chunked.extend_from_slice(b"4000\r\n");
            chunked.resize(chunked.len() + 0x4000, b'c');
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(
            b"0\r\n\r\nGET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        let (got, _) = send_then_read(&p, &chunked, 2);
        let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200], "{driver}");
        assert_eq!(p.get("/big").status, 200, "{driver}: still serving");
    }
}

/// Over TLS, whose writes wait for the socket to take each record: the body first, then
/// the answer.
#[test]
fn over_tls_too() {
    let dir = temp_dir("answer-tls");
    let ca = Ca::new("Test CA");
    let (crt, key) = ca.server_cert(&["t.example"]).write(&dir, "t");
    let client = TlsClient::trusting(&ca).build();
    for driver in DRIVERS {
        let tls_port = free_port();
        let mut cfg = config(&format!(r#"tls_listen: ["127.0.0.1:{tls_port}"]"#));
        cfg.push_str(&format!(
            "domains:\n  t.example: {{ cert: \"{}\", key: \"{}\", mappings: {{ \"\": m/$default }} }}\n",
            crt.display(),
            key.display()
        ));
        let _p = Portico::start(&cfg, driver);
        wait_port(tls_port);
        // Past what is dropped to keep the connection: answered, then closed.
        let mut c = client.connect(tls_port, "t.example").unwrap();
        c.write(&post("t.example", 9 * 1024 * 1024))
            .expect("the request written whole while the gateway answers");
        let r = c.read().expect("an answer");
        assert_eq!((r.status, r.body.len()), (200, ANSWER), "{driver}");
        // A body it drops, then the next request: both answered in order.
        let mut c = client.connect(tls_port, "t.example").unwrap();
        let mut two = post("t.example", 1024 * 1024);
        two.extend_from_slice(b"GET /big HTTP/1.1\r\nHost: t.example\r\n\r\n");
        c.write(&two).expect("written whole");
        for _ in 0..2 {
            let r = c.read().expect("an answer");
            assert_eq!((r.status, r.body.len()), (200, ANSWER), "{driver}");
        }
        // A client waiting for a 100 Continue sends no body: answered at once, not after
        // `header_timeout` (10 s) of waiting for a body that never comes.
        let mut c = client.connect(tls_port, "t.example").unwrap();
        let started = std::time::Instant::now();
        c.write(b"POST /big HTTP/1.1\r\nHost: t.example\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
            .unwrap();
        let r = c.read().expect("an answer");
        assert_eq!((r.status, r.body.len()), (200, ANSWER), "{driver}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{driver}: {:?}",
            started.elapsed()
        );
    }
}
