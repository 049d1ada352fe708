//! Framing and connection reuse between client, Portico and backend (docs/HTTP-FRAMING.md):
//! one client's bytes never reach another client. The backend here is a deliberately
//! lenient HTTP/1.1 server, as many are: it frames requests by their headers alone, answers
//! a line it can't parse with 400 and keeps the connection, and can be told to send bytes
//! nobody asked for on an idle keep-alive connection. Everything runs under both drivers.

// The test backend's threads share one log; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;

/// What the backend saw: one line per request it read ("POST /x te=chunked body=hello"),
/// or "unparsable: LINE" for a request line that is no request line.
type Log = Arc<Mutex<Vec<String>>>;

/// What the backend does after answering a request with this path.
fn after_answer(path: &str, s: &mut TcpStream) -> bool {
    match path {
        // An idle-timeout answer sent on its own, then the close (as nginx and Node do).
        "/then-408" => {
            thread::sleep(Duration::from_millis(150));
            let _ = s.write_all(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 7\r\nconnection: close\r\n\r\ntimeout",
            );
            false
        }
        // A whole response nobody asked for, and the connection stays open.
        "/then-extra" => {
            thread::sleep(Duration::from_millis(150));
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale");
            true
        }
        "/te-gzip" | "/cl-past-2-63" | "/chunk-past-2-63" => false,
        _ => true,
    }
}

/// The answer to one request: its own description, framed by `path`'s choice.
fn answer(path: &str, described: &str) -> Vec<u8> {
    let body = described.as_bytes();
    let head = match path {
        // Connection names the framing header of a keep-alive response.
        "/cl-named" => format!(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, content-length\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
        "/te-named" => {
            let mut out = b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n0\r\n\r\n");
            return out;
        }
        // A chunked body with trailer fields, one of them a framing field, and 10 KiB more
        // of them (as nginx, taken: they were a 502 past 8 KiB).
        "/trailers" => {
            let mut out = b"HTTP/1.1 200 OK\r\nTrailer: x-checksum\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n0\r\nx-checksum: 1234\r\ncontent-length: 99\r\n");
            for i in 0..10 {
                out.extend_from_slice(format!("x-big-{i}: {}\r\n", "a".repeat(1000)).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            return out;
        }
        // A transfer-coding besides chunked; the "coded" body is the description.
        "/te-gzip-chunked" => {
            let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec();
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n0\r\n\r\n");
            return out;
        }
        "/te-gzip" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n".to_string(),
        // Lengths past 2^63 - 1; the body is what came (then the backend closes).
        "/cl-past-2-63" => "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n".to_string(),
        "/chunk-past-2-63" => {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n".to_string()
        }
        // Interim answers first, one of them a 100 nobody asked for (no Expect was sent).
        "/interim" => format!(
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            body.len()
        ),
        _ => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()),
    };
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn start_backend() -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let seen = seen.clone();
            thread::spawn(move || serve(s, &seen));
        }
    });
    (addr, log)
}

fn serve(s: TcpStream, log: &Mutex<Vec<String>>) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let parts: Vec<&str> = line.trim_end().split(' ').collect();
        if parts.len() != 3 || !parts[2].starts_with("HTTP/") {
            log.lock()
                .unwrap()
                .push(format!("unparsable: {}", line.trim_end()));
            let _ =
                w.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n\r\nbad request");
            continue;
        }
        let (method, path) = (parts[0].to_string(), parts[1].to_string());
        let (mut length, mut chunked, mut te) = (0usize, false, "none".to_string());
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap_or((h, ""));
            if n.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            if n.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
                te = v.trim().to_string();
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(length, 0);
            r.read_exact(&mut body).unwrap();
        }
        let described = format!(
            "{method} {path} te={te} body={}",
            String::from_utf8_lossy(&body)
        );
        log.lock().unwrap().push(described.clone());
        if w.write_all(&answer(&path, &described)).is_err() || !after_answer(&path, &mut w) {
            return;
        }
    }
}

/// One worker and one backend, so every request shares the worker's pool.
fn config(backend: SocketAddr) -> String {
    proxy_config(backend, 1)
}

/// A request whose Connection header names Transfer-Encoding reaches the backend framed,
/// or not at all; either way the next client gets its own answer. (Each chunked body here
/// comes whole with its head, so it goes with its length: "te=none".)
#[test]
fn connection_naming_transfer_encoding_does_not_desync_the_backend() {
    let cases: [&[u8]; 4] = [
        b"POST /x HTTP/1.1\r\nHost: t\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\nConnection: TRANSFER-ENCODING\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        // Any spelling the parser accepts reaches the backend as the one every server reads.
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ChUnKeD\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ];
    for driver in DRIVERS {
        for (i, smuggle) in cases.iter().enumerate() {
            let (backend, log) = start_backend();
            let p = Portico::start(&config(backend), driver);
            let r = p.raw(smuggle);
            let method = if i == 1 { "GET" } else { "POST" };
            assert_eq!(r.status, 200, "{driver} case {i}: {}", r.text());
            assert_eq!(
                r.text(),
                format!("{method} /x te=none body=hello"),
                "{driver} case {i}"
            );
            // Another client, another connection: the pooled backend connection is reused.
            let next = p.get("/next");
            assert_eq!(next.text(), "GET /next te=none body=", "{driver} case {i}");
            let seen = log.lock().unwrap().clone();
            assert_eq!(
                seen,
                [
                    format!("{method} /x te=none body=hello"),
                    "GET /next te=none body=".to_string()
                ],
                "{driver} case {i}: the backend read something else"
            );
        }
    }
}

/// A response whose Connection header names its framing header still reaches the client
/// framed, so the next response on the same client connection is not read as its body.
#[test]
fn connection_naming_response_framing_keeps_the_client_in_step() {
    let (backend, _log) = start_backend();
    for driver in DRIVERS {
        let p = Portico::start(&config(backend), driver);
        for path in ["/cl-named", "/te-named"] {
            let mut c = Client::new(&p);
            let first = c.get(path, "t");
            assert_eq!(first.status, 200, "{driver} {path}");
            let framed = first.header("content-length").is_some()
                || first.header("transfer-encoding") == Some("chunked");
            let closes = first.header("connection") == Some("close");
            assert!(
                framed || closes,
                "{driver} {path}: unframed response on a kept connection: {:?}",
                first.headers
            );
            assert_eq!(
                first.text(),
                format!("GET {path} te=none body="),
                "{driver}"
            );
            if closes {
                continue;
            }
            let second = c.get("/second", "t");
            assert_eq!(
                second.text(),
                "GET /second te=none body=",
                "{driver} {path}"
            );
        }
        // HEAD keeps the length of what a GET would get, with no body.
        let mut c = Client::new(&p);
        let head = c.send(b"HEAD /cl-named HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            head.header("content-length"),
            Some("HEAD /cl-named te=none body=".len().to_string().as_str()),
            "{driver}: {:?}",
            head.headers
        );
        assert!(head.body.is_empty(), "{driver}");
        let after = c.get("/after-head", "t");
        assert_eq!(after.text(), "GET /after-head te=none body=", "{driver}");
    }
}

/// Bytes a backend sends on an idle pooled connection (an idle-timeout 408, or a response
/// nobody asked for) are never the answer to the next request.
#[test]
fn unsolicited_bytes_on_an_idle_pooled_connection_are_never_a_response() {
    for driver in DRIVERS {
        for trigger in ["/then-408", "/then-extra"] {
            let (backend, log) = start_backend();
            let p = Portico::start(&config(backend), driver);
            let first = p.get(trigger);
            assert_eq!(first.text(), format!("GET {trigger} te=none body="));
            // Let the unsolicited bytes arrive on the now idle pooled connection.
            thread::sleep(Duration::from_millis(400));
            for n in 0..3 {
                let r = p.get(&format!("/after/{n}"));
                assert_eq!(r.status, 200, "{driver} {trigger}: {}", r.text());
                assert_eq!(
                    r.text(),
                    format!("GET /after/{n} te=none body="),
                    "{driver} {trigger}: another response was delivered"
                );
            }
            assert_eq!(log.lock().unwrap().len(), 4, "{driver} {trigger}");
        }
    }
}

/// A chunked request's trailer fields are not forwarded (nginx drops them too): a backend
/// that reads no trailers, as this one, took them for its next request and answered it on
/// the pooled connection; one that merges them would see fields no gateway check saw. A
/// chunked body in hand whole (read with its head, or buffered) goes with its length, as
/// nginx sends a buffered one, so a backend that reads no chunked requests (HTTP/1.0)
/// is not handed chunk lines as its next request; one that streams goes chunked.
#[test]
fn request_trailers_are_not_forwarded_and_whole_chunked_bodies_go_with_their_length() {
    let whole = b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Api-Key: stolen\r\nContent-Length: 50\r\n\r\n";
    let head = b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    let rest = b"5\r\nhello\r\n0\r\nX-Api-Key: stolen\r\nContent-Length: 50\r\n\r\n";
    // (what the client sends at once, whether the rest trickles in later, request
    // buffering, what the backend sees)
    let cases: [(&[u8], bool, bool, &str); 4] = [
        (whole, false, true, "te=none"),
        (whole, false, false, "te=none"),
        // Trailers after the head went out: relayed from the connection's later reads.
        (head, true, true, "te=none"),
        (head, true, false, "te=chunked"),
    ];
    for driver in DRIVERS {
        for (i, (request, trickle, buffered, te)) in cases.into_iter().enumerate() {
            let (backend, log) = start_backend();
            let mut cfg = config(backend);
            if !buffered {
                cfg = cfg.replace(
                    "max_body_bytes: 12MiB",
                    "max_body_bytes: 12MiB, request_buffer_bytes: 0",
                );
                assert!(cfg.contains("request_buffer_bytes: 0"));
            }
            let p = Portico::start(&cfg, driver);
            let mut s = p.connect();
            s.write_all(request).unwrap();
            if trickle {
                thread::sleep(Duration::from_millis(200));
                for part in rest.chunks(7) {
                    s.write_all(part).unwrap();
                    thread::sleep(Duration::from_millis(20));
                }
            }
            let r = read_response(&mut BufReader::new(s), false).unwrap();
            let want = format!("POST /x {te} body=hello");
            assert_eq!(r.text(), want, "{driver} case {i}");
            let next = p.get("/next");
            assert_eq!(next.text(), "GET /next te=none body=", "{driver} case {i}");
            let seen = log.lock().unwrap().clone();
            assert_eq!(
                seen,
                [want.as_str(), "GET /next te=none body="],
                "{driver} case {i}: the backend read trailers"
            );
        }
    }
}

/// A backend's response trailers are not relayed (nginx drops them too): the client gets
/// the chunked body ending in `0\r\n\r\n`, and its next response right after.
#[test]
fn response_trailers_are_not_relayed() {
    let (backend, _log) = start_backend();
    for driver in DRIVERS {
        let p = Portico::start(&config(backend), driver);
        let mut s = p.connect();
        s.write_all(b"GET /trailers HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut wire = Vec::new();
        s.read_to_end(&mut wire).unwrap();
        let wire = String::from_utf8_lossy(&wire);
        let body = "GET /trailers te=none body=";
        let first_end = format!(
            "\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\nHTTP/1.1 200",
            body.len()
        );
        assert!(wire.contains(&first_end), "{driver}: {wire}");
        assert!(
            !wire.to_ascii_lowercase().contains("x-checksum"),
            "{driver}: {wire}"
        );
        assert!(!wire.contains("x-big"), "{driver}: {wire}");
        assert!(
            wire.ends_with("GET /after te=none body="),
            "{driver}: {wire}"
        );
    }
}

/// A response with a transfer-coding besides chunked is a 502, as from nginx: no relay
/// keeps the coding. An HTTP/1.0 client got `gzip, chunked` de-chunked with nothing saying
/// it was gzip, and a close-delimited `gzip` body was re-chunked for HTTP/1.1 clients
/// under `transfer-encoding: chunked` alone; either way coded bytes passed as the payload.
#[test]
fn a_transfer_coding_besides_chunked_from_the_backend_is_502() {
    let (backend, log) = start_backend();
    for driver in DRIVERS {
        let p = Portico::start(&config(backend), driver);
        for (path, version) in [
            ("/te-gzip-chunked", "1.0"),
            ("/te-gzip-chunked", "1.1"),
            ("/te-gzip", "1.1"),
            ("/te-gzip", "1.0"),
        ] {
            let what = format!("{driver} {path} HTTP/{version}");
            let r = p.raw(
                format!("GET {path} HTTP/{version}\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 502, "{what}: {:?} {}", r.headers, r.text());
            assert_eq!(r.json_message(), "Bad Gateway", "{what}");
            // The backend's connection is not reused: the next request is answered by
            // its own response.
            let next = p.get("/next");
            assert_eq!(next.text(), "GET /next te=none body=", "{what}");
        }
    }
    assert_eq!(log.lock().unwrap().len(), 16);
}

/// Interim answers (103, 102, a 100 the client never asked for) are not relayed: the
/// client gets the final answer alone, and its connection and the backend's go on.
#[test]
fn interim_answers_from_the_backend_are_not_relayed() {
    let (backend, log) = start_backend();
    for driver in DRIVERS {
        let p = Portico::start(&config(backend), driver);
        let mut s = p.connect();
        s.write_all(b"GET /interim HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut wire = Vec::new();
        s.read_to_end(&mut wire).unwrap();
        let wire = String::from_utf8_lossy(&wire);
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{driver}: {wire}");
        assert!(!wire.contains("HTTP/1.1 1"), "{driver}: {wire}");
        assert!(
            !wire.to_ascii_lowercase().contains("link:"),
            "{driver}: {wire}"
        );
        assert!(
            wire.contains("GET /interim te=none body="),
            "{driver}: {wire}"
        );
        assert!(
            wire.ends_with("GET /after te=none body="),
            "{driver}: {wire}"
        );
    }
    assert_eq!(log.lock().unwrap().len(), 4);
}

/// A Content-Length or chunk size past 2^63 - 1 from a backend is a 502, as from nginx
/// (its largest file offset), before any byte is relayed: relayed, curl (which holds
/// lengths in a signed 64-bit number) took the close after a timeout for the end of a
/// whole body.
#[test]
fn lengths_past_2_63_from_the_backend_are_502() {
    let (backend, _log) = start_backend();
    for driver in DRIVERS {
        let p = Portico::start(&config(backend), driver);
        for path in ["/cl-past-2-63", "/chunk-past-2-63"] {
            let mut s = p.connect();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .unwrap();
            let wire = read_until_closed(&mut s, Duration::from_secs(10));
            let wire = String::from_utf8_lossy(&wire);
            assert!(wire.starts_with("HTTP/1.1 502 "), "{driver} {path}: {wire}");
            assert!(
                !wire.contains("ffffffffffffffff"),
                "{driver} {path}: {wire}"
            );
            assert!(
                !wire.contains("18446744073709551615"),
                "{driver} {path}: {wire}"
            );
            let next = p.get("/next");
            assert_eq!(next.text(), "GET /next te=none body=", "{driver} {path}");
        }
    }
}
