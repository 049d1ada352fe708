//! `Expect: 100-continue` on the admin listener: a request that will be read is told to
//! send its body at once (curl otherwise waits a second for the 100 before sending a body
//! over 1 KiB); one refused on its head (no token, too large) gets the refusal instead.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

const TOKEN: &str = "continue-admin-token";

fn config(admin_port: u16) -> String {
    let state = temp_dir("admin-continue");
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /k":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  gold: {{}}
"#,
        state = state.display()
    )
}

/// Reads until the end of one response head (or EOF); returns what arrived.
fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => got.push(byte[0]),
            Err(e) => panic!(
                "reading the answer: {e} after {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    got
}

fn head(auth: Option<&str>, len: usize) -> String {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /api-keys HTTP/1.1\r\nHost: a\r\n{auth}Content-Type: application/json\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
    )
}

fn connect(admin: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

#[test]
fn admin_answers_100_continue_before_reading_a_body() {
    for driver in DRIVERS {
        let admin_port = free_port();
        let _p = Portico::start(&config(admin_port), driver);
        let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
        // Over 1 KiB, as `curl --data @file` sends with Expect.
        let body = format!(
            r#"{{"name": "big-{driver}", "plan": "gold", "value": "continue-key-0123456789-{driver}"}}{}"#,
            " ".repeat(2048)
        );
        let mut s = connect(admin);
        s.write_all(head(Some(TOKEN), body.len()).as_bytes())
            .unwrap();
        let interim = read_head(&mut s);
        assert_eq!(
            String::from_utf8_lossy(&interim),
            "HTTP/1.1 100 Continue\r\n\r\n",
            "{driver}"
        );
        s.write_all(body.as_bytes()).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        let rest = String::from_utf8_lossy(&rest);
        assert!(rest.starts_with("HTTP/1.1 201"), "{driver}: {rest}");

        // Refused on the head: the refusal, no 100, and the connection closed.
        for (auth, len, status) in [
            (None, 2048, "401"),
            (Some("wrong-token"), 2048, "401"),
            (Some(TOKEN), 4 << 20, "413"),
        ] {
            let mut s = connect(admin);
            s.write_all(head(auth, len).as_bytes()).unwrap();
            let answer = String::from_utf8_lossy(&read_head(&mut s)).into_owned();
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{driver} {auth:?} {len}: {answer}"
            );
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }

        // A chunked body is refused (411) only for a request the token lets in: without
        // one the answer is the 401 every path gives.
        for (auth, status) in [
            (None, "401"),
            (Some("wrong-token"), "401"),
            (Some(TOKEN), "411"),
        ] {
            let mut s = connect(admin);
            let chunked = head(auth, 0).replace(
                "Content-Length: 0\r\nExpect: 100-continue\r\n",
                "Transfer-Encoding: chunked\r\n",
            );
            s.write_all(chunked.as_bytes()).unwrap();
            s.write_all(b"1\r\nx\r\n0\r\n\r\n").unwrap();
            let answer = String::from_utf8_lossy(&read_head(&mut s)).into_owned();
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{driver} {auth:?} chunked: {answer}"
            );
        }

        // Refused on its head without Expect too: the 401 comes while the body is still
        // on its way, and the body is not kept (it was read whole, up to 1 MiB a
        // connection, before the token was looked at).
        let mut s = connect(admin);
        let big = head(Some("wrong-token"), 1 << 20).replace("Expect: 100-continue\r\n", "");
        s.write_all(big.as_bytes()).unwrap();
        s.write_all(&[b' '; 64 << 10]).unwrap();
        let answer = String::from_utf8_lossy(&read_head(&mut s)).into_owned();
        assert!(answer.starts_with("HTTP/1.1 401 "), "{driver}: {answer}");
        // The rest of the body is taken and dropped: no reset lost the answer.
        let _ = s.write_all(&vec![b' '; (1 << 20) - (64 << 10)]);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(
            String::from_utf8_lossy(&rest).contains("Unauthorized"),
            "{driver}: {}",
            String::from_utf8_lossy(&rest)
        );

        // On HTTP/1.0, no 100: the body is simply read.
        let mut s = connect(admin);
        s.write_all(
            b"GET /health HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        )
        .unwrap();
        s.write_all(b"{}").unwrap();
        let answer = String::from_utf8_lossy(&read_head(&mut s)).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "{driver}: {answer}");
    }
}
