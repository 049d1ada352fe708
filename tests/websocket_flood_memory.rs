//! A WebSocket client that sends and never reads must cost the worker about the
//! documented queue (1 MiB), not what its frames cost one by one: each empty ping's pong
//! (a 2-byte frame) was counted as 2 bytes and held as ~60, so a ping flood held ~22 MB
//! per connection, and an echo flood of `{}` ~11 MB.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::ws::*;
use common::*;

fn rss_kib(p: &Portico) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Writes `frame` over and over for `secs`, as far as the server reads.
fn flood(s: &mut TcpStream, frame: &[u8], secs: u64) {
    let batch: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 20_000)
        .collect();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if s.write_all(&batch).is_err() {
            // The server stopped reading (its queue for us is full): so be it.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_client_that_never_reads_costs_its_queue_not_its_frames() {
    let empty_ping = [0x89, 0x80, 1, 2, 3, 4];
    let echo = masked_text(br#"{"action":"echo"}"#);
    for driver in DRIVERS {
        let dir = temp_dir("ws-flood");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", ECHO_ROUTES), driver);
        let mut conns = Vec::new();
        for _ in 0..4 {
            let mut s = p.connect();
            let head = raw_handshake(&mut s, "/prod", "");
            assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
            conns.push(s);
        }
        let before = rss_kib(&p);
        for (i, s) in conns.iter_mut().enumerate() {
            let frame: &[u8] = if i % 2 == 0 { &empty_ping } else { &echo };
            flood(s, frame, 2);
        }
        let grown_mib = rss_kib(&p).saturating_sub(before) / 1024;
        // Four queues of 1 MiB, and what the reads hold; it was ~70 MB.
        assert!(
            grown_mib < 24,
            "{driver}: +{grown_mib} MiB for 4 connections"
        );
        // The worker still serves.
        let mut other = p.connect();
        let head = raw_handshake(&mut other, "/prod", "");
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
    }
}
