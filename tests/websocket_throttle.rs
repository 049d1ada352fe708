//! WebSocket messages pass the throttles of the route they are routed to: the route's
//! own, the account's (`server.throttle`) and the plan × key of the key `$connect`
//! admitted. A throttled message is not delivered; the client gets a "Too Many Requests"
//! notice shaped as the Forbidden one, the connection stays, and the refusal shows in
//! `portico_throttled_total` and the access log (status 429). Messages used to pass no
//! throttle at all: 20 sent at once to a route limited to one were all answered.
//! Raw-socket clients, so that the 20 messages leave in one write.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::ws::*;
use common::*;
use serde_json::Value;

const ECHO: &[u8] = br#"{"action":"echo","n":1}"#;
const KEY: &str = "alice-key-0123456789";

/// Sends 20 echo messages in one write and returns what the server answered to each.
fn twenty_at_once(s: &mut TcpStream) -> Vec<Vec<u8>> {
    let burst: Vec<u8> = (0..20).flat_map(|_| masked_text(ECHO)).collect();
    s.write_all(&burst).unwrap();
    (0..20)
        .map(|_| {
            let (op, payload) = read_small_frame(s);
            assert_eq!(op, 1, "{}", String::from_utf8_lossy(&payload));
            payload
        })
        .collect()
}

/// The first is echoed, the other 19 get the notice; the connection is still open.
fn first_answered_rest_throttled(s: &mut TcpStream, driver: &str, case: &str) {
    let answers = twenty_at_once(s);
    assert_eq!(answers[0], ECHO, "{driver} {case}");
    for a in &answers[1..] {
        let notice: Value = serde_json::from_slice(a).unwrap_or_else(|_| {
            panic!("{driver} {case}: {}", String::from_utf8_lossy(a));
        });
        assert_eq!(notice["message"], "Too Many Requests", "{driver} {case}");
        let id = notice["connectionId"].as_str().unwrap();
        assert_eq!((id.len(), id.ends_with('=')), (16, true), "{id}");
        assert!(notice["requestId"].is_string(), "{notice}");
    }
    // Still open: a ping is answered.
    s.write_all(&[0x89, 0x82, 1, 2, 3, 4, b'p' ^ 1, b'q' ^ 2])
        .unwrap();
    assert_eq!(read_small_frame(s), (10, b"pq".to_vec()), "{driver} {case}");
}

fn open(p: &Portico, extra: &str) -> TcpStream {
    let mut s = p.connect();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = raw_handshake(&mut s, "/prod", extra);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s
}

/// `ws_api_config` with `routes`, an access log, and `server_extra` lines under `server:`.
fn config(admin: u16, dir: &std::path::Path, server_extra: &str, routes: &str) -> String {
    let log = dir.join("access.log");
    let format = r#"{"event":"$context.eventType","route":"$context.routeKey","status":"$context.status","msg":"$context.messageId"}"#;
    ws_api_config(admin, dir, "", routes).replace(
        "  limits:",
        &format!(
            "{server_extra}  access_log: {{ path: \"{}\", format: '{format}' }}\n  limits:",
            log.display()
        ),
    )
}

/// The access log's MESSAGE lines of route `echo` with status 429, once all 19 are there.
fn throttled_lines(dir: &std::path::Path) -> usize {
    let count = || {
        std::fs::read_to_string(dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains(r#""event":"MESSAGE","route":"echo","status":"429""#)
                    && !l.contains(r#""msg":"""#)
            })
            .count()
    };
    eventually(|| count() >= 19);
    count()
}

const THROTTLED_ECHO: &str =
    r#"portico_throttled_total{api="chat",stage="prod",route="echo",reason="throttle"} 19"#;

#[test]
fn a_route_throttle_limits_its_messages() {
    let routes = r#"      echo: { integration: { type: mock, body: "$request.body" }, route_response: true, throttle: { rate: 1, burst: 1 } }
"#;
    for driver in DRIVERS {
        let dir = temp_dir("ws-throttle-route");
        let admin = free_port();
        let p = Portico::start(&config(admin, &dir, "", routes), driver);
        let mut s = open(&p, "");
        first_answered_rest_throttled(&mut s, driver, "route");
        let admin = SocketAddr::from(([127, 0, 0, 1], admin));
        let m = metrics_when(admin, |t| t.contains(THROTTLED_ECHO));
        assert!(m.contains(THROTTLED_ECHO), "{driver}: {m}");
        let requests =
            r#"portico_requests_total{api="chat",stage="prod",route="echo",status="429"} 19"#;
        assert!(m.contains(requests), "{driver}: {m}");
        assert_eq!(throttled_lines(&dir), 19, "{driver}");
        p.stop();
    }
}

#[test]
fn the_account_throttle_counts_messages() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-throttle-account");
        let admin = free_port();
        let server = "  throttle: { rate: 1, burst: 1 }\n";
        let p = Portico::start(&config(admin, &dir, server, ECHO_ROUTES), driver);
        let mut s = open(&p, "");
        first_answered_rest_throttled(&mut s, driver, "account");
        let admin = SocketAddr::from(([127, 0, 0, 1], admin));
        let m = metrics_when(admin, |t| t.contains(THROTTLED_ECHO));
        assert!(m.contains(THROTTLED_ECHO), "{driver}: {m}");
        assert_eq!(throttled_lines(&dir), 19, "{driver}");
        p.stop();
    }
}

/// The key `$connect` admitted throttles the connection's messages by its plan; the
/// plan's quota counts the handshake, not the messages (a quota of 1 used up by the
/// handshake still lets the first message through).
#[test]
fn the_plan_throttle_of_the_connections_key_counts_messages() {
    let routes = r#"      $connect: { integration: { type: mock }, api_key_required: true }
      echo: { integration: { type: mock, body: "$request.body" }, route_response: true }
"#;
    for driver in DRIVERS {
        let dir = temp_dir("ws-throttle-key");
        let admin = free_port();
        // The handshake takes one token of the burst of 2, the first message the other;
        // at 0.01/s none comes back during the test.
        let cfg = config(admin, &dir, "", routes)
            + &format!(
                r#"usage_plans:
  gold: {{ stages: [chat/prod], throttle: {{ rate: 0.01, burst: 2 }}, quota: {{ limit: 1, period: day }} }}
api_keys:
  - {{ name: alice, value: "{KEY}", plan: gold }}
"#
            );
        let p = Portico::start(&cfg, driver);
        let mut s = open(&p, &format!("x-api-key: {KEY}\r\n"));
        first_answered_rest_throttled(&mut s, driver, "plan × key");
        let admin = SocketAddr::from(([127, 0, 0, 1], admin));
        let m = metrics_when(admin, |t| t.contains(THROTTLED_ECHO));
        assert!(m.contains(THROTTLED_ECHO), "{driver}: {m}");
        p.stop();
    }
}
