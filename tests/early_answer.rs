//! A backend that refuses an upload answers before reading the body (a 413 for its size,
//! a 401 for its credentials) and then closes, or stops reading. The client gets that
//! answer, as from nginx: not a 502 for the body write that fails, nor a wait for the
//! integration timeout. An interim `100 Continue` from the backend does not stop the
//! body. Under both drivers; the worker keeps serving afterwards.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const BODY_LEN: usize = 8 * 1024 * 1024;

/// What the raw backend does after reading a request head.
#[derive(Clone, Copy)]
enum After {
    /// Answers 413 and closes with the body unread (the kernel resets the connection).
    RefuseAndClose,
    /// Answers 401 and keeps the connection, reading nothing more.
    RefuseAndHold,
    /// The same after a `103 Early Hints` (RFC 9110 §15.2: any number of interim
    /// responses may come before the final one).
    HintsThenRefuseAndHold,
    /// The same after a 103 of 80 `Link` lines (over 2 KiB).
    BigHintsThenRefuseAndHold,
    /// Sends `100 Continue`, reads the whole body, answers 200 with its length.
    ContinueThenRead,
}

fn raw_origin_after(after: After) -> SocketAddr {
    raw_origin(move |s| serve(s, after))
}

fn serve(s: TcpStream, after: After) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut content_length = 0usize;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap();
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        if line == "\r\n" {
            break;
        }
    }
    match after {
        After::RefuseAndClose => {
            let _ = w.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntoo big",
            );
        }
        After::RefuseAndHold | After::HintsThenRefuseAndHold | After::BigHintsThenRefuseAndHold => {
            if matches!(after, After::HintsThenRefuseAndHold) {
                let _ = w.write_all(
                    b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n",
                );
            }
            if matches!(after, After::BigHintsThenRefuseAndHold) {
                let links: String = (0..80)
                    .map(|i| format!("Link: </assets/style-{i:04}.css>; rel=preload\r\n"))
                    .collect();
                let _ = w.write_all(format!("HTTP/1.1 103 Early Hints\r\n{links}\r\n").as_bytes());
            }
            let _ = w.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\nwho?\r\n");
            thread::sleep(Duration::from_secs(15));
        }
        After::ContinueThenRead => {
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
            assert!(!chunked);
            let mut body = vec![0; content_length];
            r.read_exact(&mut body).unwrap();
            let n = body.len().to_string();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", n.len());
            w.write_all(head.as_bytes()).unwrap();
            w.write_all(n.as_bytes()).unwrap();
        }
    }
}

fn config(origin: SocketAddr) -> String {
    // A 10 s integration timeout: an answer that waited for it would be seen.
    proxy_config(origin, 1).replace("timeout: 2s }", "timeout: 10s }")
}

/// A connection that has sent the head of an 8 MiB upload (chunked or not).
fn upload_head(p: &Portico, chunked: bool) -> TcpStream {
    let mut s = p.connect();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {BODY_LEN}")
    };
    let head = format!("POST /upload HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// Sends an 8 MiB body (chunked or not) from another thread and reads the answer.
fn upload(p: &Portico, chunked: bool) -> (Response, Duration) {
    let s = upload_head(p, chunked);
    answer_while_pushing(s, move |mut writer| {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..BODY_LEN / chunk.len() {
            let sent = if chunked {
                let size = format!("{:x}\r\n", chunk.len());
                writer
                    .write_all(size.as_bytes())
                    .and_then(|_| writer.write_all(&chunk))
                    .and_then(|_| writer.write_all(b"\r\n"))
            } else {
                writer.write_all(&chunk)
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = chunked && writer.write_all(b"0\r\n\r\n").is_ok();
    })
}

#[test]
fn a_backend_that_refuses_and_closes_is_relayed() {
    let origin = raw_origin_after(After::RefuseAndClose);
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        for chunked in [false, true] {
            let (r, _) = upload(&p, chunked);
            let what = format!("{driver}, chunked {chunked}");
            assert_eq!((r.status, r.text().as_str()), (413, "too big"), "{what}");
            // The client's body is unread: its connection ends after the answer.
            assert_eq!(r.header("connection"), Some("close"), "{what}");
        }
        // The worker keeps serving.
        let (r, _) = upload(&p, false);
        assert_eq!(r.status, 413, "{driver}: served afterwards");
    }
}

/// A client that sends part of a long body and then pauses, reading: the backend's
/// answer reached it only with its next bytes, or as a 408 once the wait was over.
#[test]
fn an_answer_reaches_a_client_that_paused_its_upload() {
    let origin = raw_origin_after(After::RefuseAndClose);
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        for chunked in [false, true] {
            let what = format!("{driver}, chunked {chunked}");
            let mut s = upload_head(&p, chunked);
            // Past the 64 KiB read whole before a backend is chosen: the body streams.
            let part = vec![b'x'; 100 * 1024];
            if chunked {
                s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .unwrap();
            }
            s.write_all(&part).unwrap();
            let started = Instant::now();
            let r = read_response(&mut BufReader::new(s), false).expect("an answer");
            assert_eq!((r.status, r.text().as_str()), (413, "too big"), "{what}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{what}: {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn a_backend_that_refuses_and_stops_reading_is_relayed_at_once() {
    for (after, name) in [
        (After::RefuseAndHold, "401"),
        (After::HintsThenRefuseAndHold, "103 then 401"),
        (After::BigHintsThenRefuseAndHold, "2 KiB 103 then 401"),
    ] {
        relayed_at_once(raw_origin_after(after), name);
    }
}

fn relayed_at_once(origin: SocketAddr, name: &str) {
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        for chunked in [false, true] {
            let (r, took) = upload(&p, chunked);
            let what = format!("{name}, {driver}, chunked {chunked}");
            assert_eq!((r.status, r.text().as_str()), (401, "who?\r\n"), "{what}");
            // Not after the 10 s integration timeout.
            assert!(took < Duration::from_secs(5), "{what}: {took:?}");
        }
    }
}

#[test]
fn curl_gets_the_backends_early_answer() {
    let origin = raw_origin_after(After::RefuseAndClose);
    let file = temp_dir("early-answer").join("body");
    std::fs::write(&file, vec![b'x'; BODY_LEN]).unwrap();
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        let out = Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-H", "Expect:"])
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!("http://{}/upload", p.addr))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text, "too big\n413", "{driver}: {out:?}");
    }
}

#[test]
fn an_interim_answer_does_not_stop_the_body() {
    let origin = raw_origin_after(After::ContinueThenRead);
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        let (r, _) = upload(&p, false);
        assert_eq!(
            (r.status, r.text()),
            (200, BODY_LEN.to_string()),
            "{driver}: the whole body reached the backend"
        );
    }
}
