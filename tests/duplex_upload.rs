//! A backend that answers while it still reads the upload (full-duplex HTTP/1.1: the
//! head of a streamed answer at once, its body once the upload is in) gets the whole
//! body, as from nginx: an answer not yet whole stops nothing while the backend reads.
//! One that answers in part and stops reading has its answer relayed once the body
//! write stalls, well within the integration timeout. Under both drivers.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// What the raw backend does after reading a request head.
#[derive(Clone, Copy)]
enum After {
    /// Sends `200` with a chunked body's head at once, reads the whole body, then sends
    /// one chunk saying how much it got, and the last chunk.
    Duplex,
    /// Sends a whole `202 Accepted` at once, then reads (and drops) the whole body.
    AcceptThenRead,
    /// Sends a 413 head and 3 of its 7 body bytes, reads nothing more, and sends the
    /// other 4 a second later.
    PartAnswerThenStopReading,
    /// Sends a 401 head cut off inside a field, reads nothing more, and holds.
    PartHeadThenStopReading,
    /// Sends `200` with a chunked body's head at once, and echoes each read of the body
    /// as a chunk; the last chunk once the body is in.
    Echo,
    /// Sends a whole 413 whose body (`LONG_REFUSAL` bytes) is longer than what Portico
    /// peeks at, reads nothing more, and holds.
    LongRefusalThenStopReading,
}

const LONG_REFUSAL: usize = 40_000;

fn raw_origin_after(after: After) -> SocketAddr {
    raw_origin(move |s| serve(s, after))
}

fn serve(s: TcpStream, after: After) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        match after {
            After::Duplex => {
                w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .unwrap();
                let mut got = 0;
                let mut buf = vec![0; 64 * 1024];
                while got < content_length {
                    match r.read(&mut buf[..(content_length - got).min(64 * 1024)]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let m = format!("got {got} of {content_length}");
                let last = format!("{:x}\r\n{m}\r\n0\r\n\r\n", m.len());
                if w.write_all(last.as_bytes()).is_err() {
                    return;
                }
            }
            After::Echo => {
                w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .unwrap();
                let mut got = 0;
                let mut buf = vec![0; 64 * 1024];
                while got < content_length {
                    let n = match r.read(&mut buf[..(content_length - got).min(64 * 1024)]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    got += n;
                    let mut chunk = format!("{n:x}\r\n").into_bytes();
                    chunk.extend_from_slice(&buf[..n]);
                    chunk.extend_from_slice(b"\r\n");
                    if w.write_all(&chunk).is_err() {
                        return;
                    }
                }
                if w.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
            }
            After::AcceptThenRead => {
                let _ = w.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\n\r\naccepted");
                let _ = std::io::copy(
                    &mut (&mut r).take(content_length as u64),
                    &mut std::io::sink(),
                );
            }
            After::PartAnswerThenStopReading => {
                let _ =
                    w.write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\n\r\ntoo");
                thread::sleep(Duration::from_secs(1));
                let _ = w.write_all(b" big");
                thread::sleep(Duration::from_secs(15));
                return;
            }
            After::LongRefusalThenStopReading => {
                let head =
                    format!("HTTP/1.1 413 Too Big\r\nContent-Length: {LONG_REFUSAL}\r\n\r\n");
                let _ = w.write_all(head.as_bytes());
                let _ = w.write_all(&vec![b'r'; LONG_REFUSAL]);
                thread::sleep(Duration::from_secs(15));
                return;
            }
            After::PartHeadThenStopReading => {
                let _ = w.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Le");
                thread::sleep(Duration::from_secs(15));
                return;
            }
        }
    }
}

fn config(origin: SocketAddr) -> String {
    // A 10 s integration timeout: an answer that waited for it would be seen.
    proxy_config(origin, 1).replace("timeout: 2s }", "timeout: 10s }")
}

/// Past the 64 KiB `request_buffer_bytes`: the body streams to the backend.
const DUPLEX_LEN: usize = 200_000;

#[test]
fn a_backend_that_answers_while_it_reads_the_upload_gets_all_of_it() {
    let origin = raw_origin_after(After::Duplex);
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        let mut s = p.connect();
        let head = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {DUPLEX_LEN}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        // Half, a pause (the backend's answer has begun meanwhile), then the rest.
        s.write_all(&vec![b'a'; DUPLEX_LEN / 2]).unwrap();
        thread::sleep(Duration::from_millis(200));
        s.write_all(&vec![b'b'; DUPLEX_LEN - DUPLEX_LEN / 2])
            .unwrap();
        let started = Instant::now();
        let mut reader = BufReader::new(s);
        let r = read_response(&mut reader, false).expect("the whole chunked answer");
        assert_eq!(
            (r.status, r.text()),
            (200, format!("got {DUPLEX_LEN} of {DUPLEX_LEN}")),
            "{driver}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{driver}");
        // Relayed as any answer: the connection goes on.
        assert_ne!(r.header("connection"), Some("close"), "{driver}");
        reader
            .get_mut()
            .write_all(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = read_response(&mut reader, false).expect("a second answer");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "got 0 of 0"),
            "{driver}"
        );
    }
}

/// A backend that echoes the upload as it reads it, 32 KiB or more of answer sent before
/// the client pauses: the answer is not whole, so the body goes on and the echo ends
/// (it was counted whole at the pause, the rest of the body never sent, and the answer
/// hung to the integration timeout, then was cut).
#[test]
fn an_echo_longer_than_the_peek_gets_the_rest_of_a_paused_upload() {
    let origin = raw_origin_after(After::Echo);
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        let mut s = p.connect();
        let len = 70_000 + 4 * 10;
        let head = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&vec![b'e'; 70_000]).unwrap();
        for _ in 0..4 {
            thread::sleep(Duration::from_millis(300));
            s.write_all(&[b'p'; 10]).unwrap();
        }
        let started = Instant::now();
        let mut reader = BufReader::new(s);
        let r = read_response(&mut reader, false).expect("the whole echo");
        assert_eq!((r.status, r.body.len()), (200, len), "{driver}");
        assert!(r.body.ends_with(&[b'p'; 40]), "{driver}");
        assert!(started.elapsed() < Duration::from_secs(5), "{driver}");
    }
}

/// An 8 MiB upload (more than the socket buffers hold while the backend reads nothing):
/// the answer and how long it took.
fn upload(p: &Portico) -> (Response, Duration) {
    const LEN: usize = 8 * 1024 * 1024;
    let mut s = p.connect();
    let head = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {LEN}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    answer_while_pushing(s, |mut writer| {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..LEN / chunk.len() {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_backend_that_answers_in_part_and_stops_reading_is_not_waited_on() {
    for (after, want) in [
        (After::PartAnswerThenStopReading, (413, "too big")),
        (After::PartHeadThenStopReading, (502, "")),
    ] {
        let origin = raw_origin_after(after);
        for driver in DRIVERS {
            let p = Portico::start(&config(origin), driver);
            let (r, took) = upload(&p);
            let what = format!("{want:?}, {driver}");
            assert_eq!(r.status, want.0, "{what}: {}", r.text());
            if want.0 == 413 {
                assert_eq!(r.text(), want.1, "{what}");
            }
            // The client's body is unread: its connection ends after the answer.
            assert_eq!(r.header("connection"), Some("close"), "{what}");
            // The stalled write gives the answer up, not the 10 s integration timeout.
            assert!(took < Duration::from_secs(5), "{what}: {took:?}");
        }
    }
}

/// A whole answer stops the body even from a backend that would read on (nginx relays
/// it at once too): nothing the backend does with the rest can change it.
#[test]
fn a_whole_early_answer_stops_the_body_of_a_backend_that_reads_on() {
    let origin = raw_origin_after(After::AcceptThenRead);
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        let (r, took) = upload(&p);
        assert_eq!((r.status, r.text().as_str()), (202, "accepted"), "{driver}");
        assert_eq!(r.header("connection"), Some("close"), "{driver}");
        assert!(took < Duration::from_secs(2), "{driver}: {took:?}");
    }
}

/// A refusal longer than the peek, while the client pauses its upload (having sent a
/// part the socket buffers absorb): relayed at the pause, not a 408 once the wait for
/// the client is up (10 s here).
#[test]
fn a_long_refusal_is_relayed_while_the_client_pauses() {
    let origin = raw_origin_after(After::LongRefusalThenStopReading);
    for driver in DRIVERS {
        let p = Portico::start(&config(origin), driver);
        let mut s = p.connect();
        s.write_all(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3000000\r\n\r\n")
            .unwrap();
        s.write_all(&vec![b'x'; 100_000]).unwrap();
        let started = Instant::now();
        let mut reader = BufReader::new(s);
        let r = read_response(&mut reader, false).expect("the refusal");
        assert_eq!(
            (r.status, r.body.len()),
            (413, LONG_REFUSAL),
            "{driver}: {}",
            r.text()
        );
        assert_eq!(r.header("connection"), Some("close"), "{driver}");
        assert!(started.elapsed() < Duration::from_secs(5), "{driver}");
    }
}
