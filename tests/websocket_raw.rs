//! WebSocket APIs over raw sockets, for what a library client never sends: unmasked,
//! oversized and non-UTF-8 frames, fragmented messages past the limits, bad handshakes;
//! the idle timeout, the close echo, the drain and 429s for a client that reads nothing,
//! byte for byte. Config errors of WebSocket APIs are here too.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::ws::*;
use common::*;

fn handshake(p: &Portico, extra: &str) -> (TcpStream, String) {
    let mut s = p.connect();
    let head = raw_handshake(&mut s, "/prod", extra);
    (s, head)
}

fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [1, 2, 3, 4];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads one server frame: (opcode, payload).
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (h[0] & 0x0F, payload)
}

fn close_code(f: &(u8, Vec<u8>)) -> u16 {
    assert_eq!(f.0, 8, "a close frame: {f:?}");
    u16::from_be_bytes([f.1[0], f.1[1]])
}

const LIMITED: &str = "    limits: { frame: 1KiB, message: 2KiB, idle: 1s, max_duration: 1h }\n";

#[test]
fn raw_frames_protocol_errors_limits_and_idle() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-raw");
        let p = Portico::start(
            &ws_api_config(free_port(), &dir, LIMITED, ECHO_ROUTES),
            driver,
        );
        let (mut s, head) = handshake(&p, "");
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
        assert!(
            head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );
        // Ping → pong with the same payload; a fragmented echo is reassembled.
        s.write_all(&frame(true, 9, b"hi", true)).unwrap();
        assert_eq!(read_frame(&mut s), (10, b"hi".to_vec()), "{driver}");
        let mut msg = frame(false, 1, br#"{"action":"#, true);
        msg.extend(frame(true, 0, br#""echo"}"#, true));
        s.write_all(&msg).unwrap();
        assert_eq!(read_frame(&mut s), (1, br#"{"action":"echo"}"#.to_vec()));
        // An unmasked client frame: 1002.
        s.write_all(&frame(true, 1, b"x", false)).unwrap();
        assert_eq!(close_code(&read_frame(&mut s)), 1002, "{driver}");

        let (mut s, _) = handshake(&p, "");
        s.write_all(&frame(true, 1, &[b'a'; 1025], true)).unwrap();
        assert_eq!(
            close_code(&read_frame(&mut s)),
            1009,
            "{driver}: frame limit"
        );

        let (mut s, _) = handshake(&p, "");
        let mut big = frame(false, 1, &[b'a'; 1024], true);
        big.extend(frame(false, 0, &[b'a'; 1024], true));
        big.extend(frame(true, 0, b"a", true));
        s.write_all(&big).unwrap();
        assert_eq!(
            close_code(&read_frame(&mut s)),
            1009,
            "{driver}: message limit"
        );

        let (mut s, _) = handshake(&p, "");
        s.write_all(&frame(true, 1, &[0xff, 0xfe], true)).unwrap();
        assert_eq!(close_code(&read_frame(&mut s)), 1007, "{driver}: not UTF-8");

        // Idle: no data message for 1 s → 1001 Going away (pings don't count).
        let (mut s, _) = handshake(&p, "");
        let quiet = Instant::now();
        s.write_all(&frame(true, 9, b"", true)).unwrap();
        assert_eq!(read_frame(&mut s).0, 10);
        let f = read_frame(&mut s);
        assert_eq!(close_code(&f), 1001, "{driver}");
        assert_eq!(&f.1[2..], b"Going away");
        let waited = quiet.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{waited:?}"
        );

        // A client close is echoed.
        let (mut s, _) = handshake(&p, "");
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        s.write_all(&frame(true, 8, &payload, true)).unwrap();
        assert_eq!(close_code(&read_frame(&mut s)), 1000, "{driver}");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{rest:?}");
        // SIGTERM: open connections are closed with 1001 Going away.
        let (mut s, _) = handshake(&p, "");
        p.signal(15);
        assert_eq!(close_code(&read_frame(&mut s)), 1001, "{driver}: drain");
        p.stop();
    }
}

#[test]
fn bad_handshakes_are_refused() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-hs");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", ECHO_ROUTES), driver);
        let r = p.raw(b"GET /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        assert_eq!(r.status, 400, "{driver}");
        assert_eq!(r.header("sec-websocket-version"), Some("13"));
        let r = p.raw(b"GET /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n");
        assert_eq!(r.status, 400, "{driver}");
        let r = p.raw(b"POST /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        assert_eq!(r.status, 400, "{driver}");
        // Each handshake header at most once: the first can't win over a second.
        for extra in [
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n",
            "Sec-WebSocket-Version: 8\r\n",
        ] {
            let r = p.raw(format!("GET /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n").as_bytes());
            assert_eq!(r.status, 400, "{driver} {extra}");
        }
        assert_eq!(p.get("/prod/other").status, 404, "{driver}");
        p.stop();
    }
}

#[test]
fn websocket_settings_are_checked_with_their_key_paths() {
    let dir = temp_dir("ws-check");
    let bad = ws_api_config(
        free_port(),
        &dir,
        "    route_selection_expression: \"${request.header.x}\"\n    limits: { frame: 256KiB, message: 128KiB, idle: 0s }\n    binary_frames: maybe\n",
        "      $weird: { integration: { type: mock } }\n      ok: { integration: { type: mock } }\n",
    )
    .replace("{PORT}", "1")
    .replace(
        "    route_selection_expression: $request.body.action\n",
        "",
    );
    let (code, out) = check(&bad);
    assert_ne!(code, 0, "{out}");
    for want in [
        "apis.chat.route_selection_expression: \"request.header.x\": only request.body.PATH can select a route",
        "apis.chat.limits.frame: a frame limit must be above 0 and at most the message limit",
        "apis.chat.limits.idle: must be above 0",
        "apis.chat.binary_frames: expected one of reject, base64",
        "apis.chat.routes.$weird: WebSocket route keys are $connect, $disconnect, $default or an action name",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let http_api = "server: { listen: [\"127.0.0.1:1\"] }\napis:\n  shop:\n    stages: { prod: {} }\n    routes:\n      \"GET /x\": { integration: { type: mock }, route_response: true }\n";
    let (code, out) = check(http_api);
    assert_ne!(code, 0);
    assert!(
        out.contains("apis.shop.routes.\"GET /x\".route_response: route_response is for routes of WebSocket APIs"),
        "{out}"
    );
}

#[test]
fn posts_to_a_client_that_does_not_read_get_429_before_anything_is_queued() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-429");
        let p = Portico::start(&ws_api_config(free_port(), &dir, "", ECHO_ROUTES), driver);
        // A client with a tiny receive buffer that reads nothing for now.
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&p.addr.into()).unwrap();
        let mut s: TcpStream = sock.into();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"GET /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1);
            head.push(b[0]);
        }
        // Learn the id from a Forbidden notice.
        s.write_all(&frame(true, 1, b"who am i", true)).unwrap();
        let notice: serde_json::Value = serde_json::from_slice(&read_frame(&mut s).1).unwrap();
        let id = notice["connectionId"].as_str().unwrap().to_string();
        let enc = id
            .replace('=', "%3D")
            .replace('/', "%2F")
            .replace('+', "%2B");
        let payload = "z".repeat(100 * 1024);
        let mut posted = 0;
        let limited = loop {
            let r = send_to(
                p.addr,
                format!(
                    "POST /prod/@connections/{enc} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                    payload.len()
                )
                .as_bytes(),
            );
            if r.status == 429 {
                break r;
            }
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            posted += 1;
            assert!(posted < 400, "{driver}: never refused");
        };
        assert_eq!(
            limited.header("x-amzn-ErrorType"),
            Some("LimitExceededException")
        );
        // Everything accepted arrives, nothing refused does.
        for i in 0..posted {
            let (op, data) = read_frame(&mut s);
            assert_eq!(
                (op, data.len()),
                (1, payload.len()),
                "{driver}: message {i}"
            );
        }
        let r = send_to(
            p.addr,
            format!("POST /prod/@connections/{enc} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes(),
        );
        assert_eq!(r.status, 200, "{driver}: room again");
        assert_eq!(read_frame(&mut s), (1, b"ok".to_vec()), "{driver}");
        // A chunked body (curl -T -, Python requests with a generator) arrives decoded.
        let r = send_to(
            p.addr,
            format!("POST /prod/@connections/{enc} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nchu\r\n4;x=y\r\nnked\r\n0\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200, "{driver}: chunked: {}", r.text());
        assert_eq!(read_frame(&mut s), (1, b"chunked".to_vec()), "{driver}");
        // Chunked above the 128 KiB a post may carry: 413, as with a Content-Length.
        let chunk = "z".repeat(64 * 1024);
        let big = format!("{:x}\r\n{chunk}\r\n", chunk.len()).repeat(3);
        let r = send_to(
            p.addr,
            format!("POST /prod/@connections/{enc} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{big}0\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 413, "{driver}: chunked, too long: {}", r.text());
        p.stop();
    }
}

/// More open connections than a worker lets wait with a read buffer (256): the rest wait
/// for readability holding none and take one when a frame comes. Every connection must
/// still get its echo, a pong, a message split across two writes and a close echo.
#[test]
fn connections_waiting_without_a_buffer_get_every_frame() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-parked");
        // One worker, so that its 256 waits with a buffer are surely taken.
        let config = ws_api_config(free_port(), &dir, "", ECHO_ROUTES);
        let p = Portico::start(&config.replace("workers: 2", "workers: 1"), driver);
        let mut conns: Vec<TcpStream> = (0..300)
            .map(|i| {
                let (s, head) = handshake(&p, "");
                assert!(head.starts_with("HTTP/1.1 101 "), "{driver} #{i}: {head}");
                s
            })
            .collect();
        // Let every connection reach its wait.
        std::thread::sleep(Duration::from_millis(300));
        for (i, s) in conns.iter_mut().enumerate().rev() {
            let text = format!(r#"{{"action":"echo","n":{i}}}"#);
            s.write_all(&frame(true, 1, text.as_bytes(), true)).unwrap();
            assert_eq!(read_frame(s), (1, text.into_bytes()), "{driver} #{i}");
        }
        for (i, s) in conns.iter_mut().enumerate().step_by(7) {
            s.write_all(&frame(true, 9, b"p", true)).unwrap();
            assert_eq!(read_frame(s), (10, b"p".to_vec()), "{driver} #{i}: pong");
            let whole = frame(true, 1, br#"{"action":"echo","split":true}"#, true);
            s.write_all(&whole[..5]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(&whole[5..]).unwrap();
            assert_eq!(
                read_frame(s),
                (1, br#"{"action":"echo","split":true}"#.to_vec()),
                "{driver} #{i}: split message"
            );
        }
        for (i, s) in conns.iter_mut().enumerate().step_by(13) {
            s.write_all(&frame(true, 8, &1000u16.to_be_bytes(), true))
                .unwrap();
            assert_eq!(close_code(&read_frame(s)), 1000, "{driver} #{i}: close");
        }
        // The worker still serves new connections.
        let (mut s, _) = handshake(&p, "");
        s.write_all(&frame(true, 1, br#"{"action":"echo"}"#, true))
            .unwrap();
        assert_eq!(read_frame(&mut s), (1, br#"{"action":"echo"}"#.to_vec()));
    }
}
