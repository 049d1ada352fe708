//! A WebSocket client that sends and never reads must cost the worker a small bounded
//! queue, not what its frames cost one by one: each empty ping's pong (a 2-byte frame)
//! was counted as 2 bytes and held as ~60, so a ping flood held ~22 MB per connection,
//! and an echo flood of `{}` ~11 MB; and the bound must be one at which the client is
//! not read any more (64 KiB), not the 1 MiB `@connections` posts may fill.

mod common;

use std::io::{BufRead, BufReader, Lines, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
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
        // Four queues, each not read past 64 KiB (1 MiB before), and what the reads
        // hold; it was ~70 MB.
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

/// `tests/python/ws_flood.py` with `args`: the process, its stdin and its output lines.
fn flood_script(args: &[&str]) -> (Child, ChildStdin, Lines<BufReader<ChildStdout>>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/ws_flood.py");
    let mut child = Command::new(python())
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let stdin = child.stdin.take().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, stdin, out)
}

/// The next line `ws_flood.py` printed, as JSON.
fn report(out: &mut Lines<BufReader<ChildStdout>>) -> serde_json::Value {
    let line = out.next().expect("ws_flood.py reports").unwrap();
    serde_json::from_str(&line).unwrap()
}

/// Fifty clients that send pings and read nothing, each with a 4 KiB receive window,
/// cost the worker a few MiB: a client is not read while more than 64 KiB is queued for
/// it, so the rest of its pings wait in the sockets' buffers, the kernel's. Each used to
/// cost ~0.9 MiB (its queue of pongs grew to 1 MiB before it was not read): these 50
/// took +45 MiB, and 200 took a server from 58 to 235 MB. A client that reads still gets
/// every pong, in order.
#[test]
fn clients_that_never_read_are_not_read_either() {
    require_websockets();
    for driver in DRIVERS {
        let dir = temp_dir("ws-deaf-pings");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", ECHO_ROUTES), driver);
        let addr = p.addr.to_string();
        let (mut child, mut stdin, mut out) = flood_script(&["deaf", &addr, "/prod", "50", "3"]);
        assert_eq!(report(&mut out)["open"], 50, "{driver}");
        // From open connections on: what the flood costs, not what the connections do.
        let before = rss_kib(&p);
        writeln!(stdin, "go").unwrap();
        let sent = report(&mut out);
        let grown_kib = rss_kib(&p).saturating_sub(before);
        drop(stdin);
        let _ = child.wait();
        // Measured: +1.4 MiB (epoll) and +3.8 MiB (io_uring); +43 MiB before.
        assert!(
            grown_kib < 8 * 1024,
            "{driver}: +{grown_kib} KiB for 50 clients that read nothing ({sent})"
        );
        let (mut child, stdin, mut out) = flood_script(&["pings", &addr, "/prod", "20000"]);
        let got = report(&mut out);
        drop(stdin);
        let _ = child.wait();
        assert_eq!(
            got,
            serde_json::json!({"pongs": 20000, "in_order": true}),
            "{driver}"
        );
        p.stop();
    }
}

/// Tiny messages to a route whose answer is large: the read-ahead (64 KiB of messages,
/// ~1,000 empty ones) was handled whole, each answer queued for a client that reads
/// nothing: 3,000 empty frames held ~120 MB. A message is not handled while the
/// client's queue is past 64 KiB either.
#[test]
fn small_messages_with_large_answers_wait_for_the_client_to_read() {
    let big = "A".repeat(120_000);
    let routes = format!(
        "      $default: {{ integration: {{ type: mock, body: \"{big}\" }}, route_response: true }}\n"
    );
    for driver in DRIVERS {
        let dir = temp_dir("ws-amplify");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", &routes), driver);
        let mut s = p.connect();
        let head = raw_handshake(&mut s, "/prod", "");
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
        let before = rss_kib(&p);
        let empty_text = [0x81u8, 0x80, 1, 2, 3, 4];
        let frames: Vec<u8> = empty_text.iter().copied().cycle().take(6 * 3000).collect();
        s.write_all(&frames).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let grown_mib = rss_kib(&p).saturating_sub(before) / 1024;
        // What the sockets' buffers take, and one 64 KiB queue; it was ~120 MB.
        assert!(grown_mib < 24, "{driver}: +{grown_mib} MiB");
        // A client that reads gets its answers, in full.
        let mut other = p.connect();
        let head = raw_handshake(&mut other, "/prod", "");
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
        other.write_all(&empty_text).unwrap();
        let mut got = vec![0u8; 4];
        other
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        std::io::Read::read_exact(&mut other, &mut got).unwrap();
        // Text, final; 127: a 64-bit length follows.
        assert_eq!(&got[..2], &[0x81, 127], "{driver}");
    }
}
