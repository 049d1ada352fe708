//! A client that leaves (its TCP stream ends without a close frame, or it sends a close)
//! while one of its messages is with a slow integration: the connection is gone at once,
//! not when the integration returns. `@connections` answers 410 GoneException for it
//! (GET and POST answered 200, the posted data lost), a close frame is echoed without
//! waiting for the backend (RFC 6455 §5.5.1; it came after the integration, up to its
//! 29 s timeout), and `$disconnect` comes once with the right code: 1006 for a vanished
//! client (it was 1000 after a DeleteConnection meanwhile), the client's own code for a
//! close. The integration call in flight and those of messages sent before the close
//! still finish (their answers go nowhere), and `$disconnect` comes after them; so does
//! the call under way when the server closes (DeleteConnection). A client that resets
//! its connection while `$connect` runs gets its `$disconnect` once `$connect` accepted.

// The function records calls from its own threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ws::*;
use common::*;
use serde_json::Value;

/// How long the function takes on a `slow` message: far longer than anything the test
/// waits for before it.
const SLOW: Duration = Duration::from_secs(5);

/// A masked, final client frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8, 9, 8, 7, 6];
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [9, 8, 7, 6][i % 4]),
    );
    out
}

fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let len = (h[1] & 0x7F) as usize;
    assert!(len < 126, "a short frame");
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (h[0] & 0x0F, payload)
}

/// Opens a connection and learns its id from the Forbidden notice of an unrouted message.
fn open(p: &Portico) -> (TcpStream, String) {
    let mut s = p.connect();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = raw_handshake(&mut s, "/prod", "");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s.write_all(&frame(1, b"who am i")).unwrap();
    let (_, notice) = read_frame(&mut s);
    let notice: Value = serde_json::from_slice(&notice).unwrap();
    (s, notice["connectionId"].as_str().unwrap().to_string())
}

fn connection_path(id: &str) -> String {
    let escaped = id
        .replace('=', "%3D")
        .replace('/', "%2F")
        .replace('+', "%2B");
    format!("/@connections/{escaped}")
}

/// What the function saw for connection `id`, in order: "slow", "slow done", "note",
/// "disconnect CODE".
fn calls(log: &Mutex<Vec<(String, String)>>, id: &str) -> Vec<String> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(c, _)| c == id)
        .map(|(_, what)| what.clone())
        .collect()
}

#[test]
fn a_client_that_leaves_during_a_slow_message_is_gone_at_once() {
    let log: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = log.clone();
    let function = Origin::start(move |req, s| {
        let ev: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let rc = &ev["requestContext"];
        let id = rc["connectionId"].as_str().unwrap_or("").to_string();
        let push = |what: String| seen.lock().unwrap().push((id.clone(), what));
        match rc["eventType"].as_str() {
            Some("DISCONNECT") => push(format!("disconnect {}", rc["disconnectStatusCode"])),
            Some("CONNECT") => {
                // A client that asks for a slow `$connect` (to leave during it).
                if ev["headers"]["x-slow-connect"].is_string() {
                    push("connect".into());
                    std::thread::sleep(Duration::from_millis(800));
                }
            }
            _ => {
                let action: Value =
                    serde_json::from_str(ev["body"].as_str().unwrap_or("")).unwrap_or_default();
                let action = action["action"].as_str().unwrap_or("").to_string();
                push(action.clone());
                if action == "slow" {
                    std::thread::sleep(SLOW);
                    push("slow done".into());
                }
            }
        }
        respond(s, 200, &[], br#"{"statusCode":200,"body":"answer"}"#);
        true
    });
    let url = format!(
        "http://{}/2015-03-31/functions/f/invocations",
        function.addr
    );
    let lambda =
        format!("{{ integration: {{ type: lambda, url: \"{url}\" }}, route_response: true }}");
    let routes = format!(
        "      slow: {lambda}\n      note: {lambda}\n      $connect: {{ integration: {{ type: lambda, url: \"{url}\" }} }}\n      $disconnect: {{ integration: {{ type: lambda, url: \"{url}\" }} }}\n"
    );
    for driver in DRIVERS {
        let dir = temp_dir("ws-leaves");
        let admin_port = free_port();
        let p = Portico::start(&ws_api_config(admin_port, &dir, "", &routes), driver);
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let gone = |id: &str, method: &str| {
            let body = (method == "POST").then_some("lost");
            let r = common::admin(
                admin_addr,
                method,
                &connection_path(id),
                Some("secret"),
                body,
            );
            r.status == 410 && r.header("x-amzn-errortype") == Some("GoneException")
        };

        // The client vanishes (FIN, no close frame) while `slow` is with the function.
        let (mut s, id) = open(&p);
        s.write_all(&frame(1, br#"{"action":"slow"}"#)).unwrap();
        assert!(eventually(|| calls(&log, &id) == ["slow"]), "{driver}");
        drop(s);
        assert!(eventually(|| gone(&id, "GET")), "{driver}: vanished, GET");
        assert!(gone(&id, "POST"), "{driver}: vanished, POST");
        assert!(gone(&id, "DELETE"), "{driver}: vanished, DELETE");
        // Both answered while the function still works on `slow`.
        assert_eq!(calls(&log, &id), ["slow"], "{driver}: answered too late");
        // The call in flight finishes, then $disconnect reports the vanishing, once.
        let expected = ["slow", "slow done", "disconnect 1006"];
        assert!(
            wait_for(|| calls(&log, &id).len() >= 3),
            "{driver}: {:?}",
            calls(&log, &id)
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(calls(&log, &id), expected, "{driver}: vanished");

        // The client closes (4001) behind `slow` and another message.
        let (mut s, id) = open(&p);
        let mut burst = frame(1, br#"{"action":"slow"}"#);
        burst.extend(frame(1, br#"{"action":"note"}"#));
        s.write_all(&burst).unwrap();
        assert!(eventually(|| calls(&log, &id) == ["slow"]), "{driver}");
        s.write_all(&frame(8, &4001u16.to_be_bytes())).unwrap();
        // The echo of its close comes first (no answer before it), while `slow` runs.
        let (op, payload) = read_frame(&mut s);
        assert_eq!(
            (op, &payload[..]),
            (8, &4001u16.to_be_bytes()[..]),
            "{driver}"
        );
        assert_eq!(calls(&log, &id), ["slow"], "{driver}: echoed too late");
        assert!(gone(&id, "GET"), "{driver}: closed, GET");
        assert!(gone(&id, "POST"), "{driver}: closed, POST");
        // Nothing follows the close: the socket ends.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{driver}: {rest:?}");
        // The message sent before the close still reaches the function, after `slow`;
        // then $disconnect with the client's code, once.
        let expected = ["slow", "slow done", "note", "disconnect 4001"];
        assert!(
            wait_for(|| calls(&log, &id).len() >= 4),
            "{driver}: {:?}",
            calls(&log, &id)
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(calls(&log, &id), expected, "{driver}: closed");

        // DeleteConnection while `slow` runs, `note` read behind it: the client gets
        // its close at once, the call under way finishes (it was cut, the function
        // saw a broken connection), the message read ahead is dropped, then
        // $disconnect 1000.
        let (mut s, id) = open(&p);
        let mut burst = frame(1, br#"{"action":"slow"}"#);
        burst.extend(frame(1, br#"{"action":"note"}"#));
        s.write_all(&burst).unwrap();
        assert!(eventually(|| calls(&log, &id) == ["slow"]), "{driver}");
        let r = common::admin(
            admin_addr,
            "DELETE",
            &connection_path(&id),
            Some("secret"),
            None,
        );
        assert_eq!(r.status, 204, "{driver}");
        let (op, payload) = read_frame(&mut s);
        assert_eq!(
            (op, &payload[..2]),
            (8, &1000u16.to_be_bytes()[..]),
            "{driver}"
        );
        assert_eq!(calls(&log, &id), ["slow"], "{driver}: closed too late");
        let expected = ["slow", "slow done", "disconnect 1000"];
        assert!(
            wait_for(|| calls(&log, &id).len() >= 3),
            "{driver}: {:?}",
            calls(&log, &id)
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(calls(&log, &id), expected, "{driver}: deleted");

        // The client resets its connection while a slow `$connect` runs, which then
        // accepts it: the 101 finds no one, and $disconnect still follows (1006), or
        // the backend kept the connection it had just been told of.
        let before: Vec<String> = connected(&log);
        let s = p.connect();
        let mut w = &s;
        write!(
            w,
            "GET /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-slow-connect: 1\r\n\r\n"
        )
        .unwrap();
        assert!(
            eventually(|| connected(&log).len() > before.len()),
            "{driver}"
        );
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
        let id = connected(&log)
            .into_iter()
            .find(|id| !before.contains(id))
            .unwrap();
        assert!(
            wait_for(|| calls(&log, &id).len() >= 2),
            "{driver}: {:?}",
            calls(&log, &id)
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            calls(&log, &id),
            ["connect", "disconnect 1006"],
            "{driver}: reset"
        );
        p.stop();
    }
}

/// The connections that asked for a slow `$connect`, in order.
fn connected(log: &Mutex<Vec<(String, String)>>) -> Vec<String> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(_, what)| what == "connect")
        .map(|(id, _)| id.clone())
        .collect()
}

/// `eventually` with room for the slow call (SLOW) on a loaded machine.
fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + SLOW + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
