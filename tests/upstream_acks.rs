//! A response that comes in pieces is acknowledged at once. On a kept-alive upstream
//! connection Linux delays the ACK of a lone segment (40 ms at least) to ride it on the
//! next request; a backend that writes its head and then its body with Nagle on (Python's
//! `http.server` does) waits for that ACK before the body leaves: 40 ms added to every
//! response (nginx has it). The origin here writes the head, then watches its own socket
//! (`TCP_INFO`) for the ACK before it writes the body.

// The test origin's threads share what they saw.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Bytes sent and not yet acknowledged by the peer.
fn unacked(s: &TcpStream) -> u32 {
    tcp_info(s).tcpi_unacked
}

/// Serves kept-alive connections; for each request, whether its head was acknowledged
/// within 25 ms (a delayed ACK takes 40 ms or more).
fn split_origin() -> (std::net::SocketAddr, Arc<Mutex<Vec<bool>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let seen = acked.clone();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let seen = seen.clone();
            thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    while line != "\r\n" {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
                        .unwrap();
                    let since = Instant::now();
                    while unacked(&s) > 0 && since.elapsed() < Duration::from_millis(25) {
                        thread::sleep(Duration::from_micros(200));
                    }
                    seen.lock().unwrap().push(unacked(&s) == 0);
                    s.write_all(b"ok").unwrap();
                }
            });
        }
    });
    (addr, acked)
}

#[test]
fn a_response_head_without_its_body_is_acknowledged_at_once() {
    for driver in DRIVERS {
        let (origin, acked) = split_origin();
        let p = Portico::start(&proxy_config(origin, 1), driver);
        let mut c = Client::new(&p);
        for _ in 0..12 {
            assert_eq!(c.get("/x", "t").text(), "ok", "{driver}");
        }
        // The first few exchanges of a connection are acknowledged at once anyway
        // (the kernel's quick-ACK start); the rest are what this is about.
        let acked = acked.lock().unwrap();
        let late: Vec<bool> = acked[4..].to_vec();
        let prompt = late.iter().filter(|a| **a).count();
        assert!(
            prompt >= late.len() - 1,
            "{driver}: heads acknowledged within 25 ms: {acked:?}"
        );
    }
}
