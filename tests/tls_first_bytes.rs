//! A TLS listener's first bytes and first head: `header_timeout` is one budget from the
//! connect, the handshake included, as nginx's `client_header_timeout` (the head's timer
//! started again after the handshake, so a client held a connection for twice it); and
//! plain HTTP is recognised as nginx recognises it, a blank line or a lower-case method
//! first (those got a TLS alert instead of the plain-HTTP 400).

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::tls::*;
use common::*;

fn config(tls_port: u16, crt: &std::path::Path, key: &std::path::Path) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 20s, drain_timeout: 1s }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /ping": {{ integration: {{ type: mock, status: 200, body: pong }} }}
domains:
  t.example:
    cert: "{}"
    key: "{}"
    mappings: {{ "": app/$default }}
"#,
        crt.display(),
        key.display()
    )
}

#[test]
fn the_head_timeout_counts_from_the_connect_and_plain_http_is_recognised() {
    let dir = temp_dir("tls-first-bytes");
    let ca = Ca::new("Test CA");
    let (crt, key) = ca.server_cert(&["t.example"]).write(&dir, "t");
    let client = TlsClient::trusting(&ca).build();
    for driver in DRIVERS {
        let tls_port = free_port();
        let p = Portico::start(&config(tls_port, &crt, &key), driver);
        wait_port(tls_port);

        // A handshake 1.3 s after the connect, then part of a head: closed 2 s after the
        // connect (header_timeout), not 2 s after the handshake.
        let t0 = Instant::now();
        let sock = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        std::thread::sleep(Duration::from_millis(1300));
        let mut c = client.handshake(sock, "t.example").unwrap();
        c.write(b"GET /ping HTTP/1.1\r\nHost: t.example\r\n")
            .unwrap();
        let _ = c.read_to_end();
        let closed = t0.elapsed();
        assert!(
            closed > Duration::from_millis(1800) && closed < Duration::from_millis(2900),
            "{driver}: closed {closed:?} after the connect (header_timeout 2s)"
        );
        // A head that comes in time is served.
        let mut c = client.connect(tls_port, "t.example").unwrap();
        assert_eq!(
            c.get("/ping", "t.example").unwrap().text(),
            "pong",
            "{driver}"
        );

        for plain in [
            &b"GET /ping HTTP/1.1\r\nHost: t.example\r\n\r\n"[..],
            b"\r\nGET /ping HTTP/1.1\r\nHost: t.example\r\n\r\n",
            b"get /ping HTTP/1.1\r\nHost: t.example\r\n\r\n",
        ] {
            let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(plain).unwrap();
            let r = read_response(&mut BufReader::new(s), false)
                .unwrap_or_else(|e| panic!("{driver}: {plain:?}: no plaintext answer: {e}"));
            assert_eq!(r.status, 400, "{driver}: {plain:?}");
            assert_eq!(
                r.json_message(),
                "The plain HTTP request was sent to HTTPS port",
                "{driver}"
            );
        }
        drop(p);
    }
}
