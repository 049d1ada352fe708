//! SIGTERM with WebSockets open: a WebSocket API's connections get close 1001 and an
//! upgrade tunnel is closed at once, and the process exits long before `drain_timeout`
//! (30 s here), under both drivers, with Python `websockets` clients.

mod common;

use std::time::{Duration, Instant};

use common::ws::*;
use common::*;
use serde_json::json;

/// Long enough that a connection left to the drain timeout fails the test.
const DRAIN: &str = "drain_timeout: 30s";
const PROMPT: Duration = Duration::from_secs(5);

/// Sends SIGTERM, waits for the client to see its connection end, then for the exit.
fn stop_and_time(p: Portico, ws: &mut WsClient, driver: &str) -> serde_json::Value {
    let started = Instant::now();
    p.signal(15);
    let closed = ws.cmd("wait_closed 20");
    assert!(
        started.elapsed() < PROMPT,
        "{driver}: closed after {:?}: {closed}",
        started.elapsed()
    );
    p.stop();
    assert!(
        started.elapsed() < PROMPT,
        "{driver}: exited after {:?}",
        started.elapsed()
    );
    closed
}

#[test]
fn websocket_api_connections_close_with_1001_at_once() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-stop");
        let cfg =
            ws_api_config(free_port(), &dir, "", ECHO_ROUTES).replace("drain_timeout: 2s", DRAIN);
        assert!(cfg.contains(DRAIN));
        let p = Portico::start(&cfg, driver);
        let mut ws = WsClient::connect(&format!("ws://{}/prod", p.addr), json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(ws.ask(r#"{"action":"echo"}"#), r#"{"action":"echo"}"#);
        let closed = stop_and_time(p, &mut ws, driver);
        assert_eq!(closed["event"], "closed", "{driver}: {closed}");
        assert_eq!(closed["code"], 1001, "{driver}: {closed}");
    }
}

#[test]
fn upgrade_tunnels_close_at_once() {
    let echo = EchoServer::start(None);
    for driver in DRIVERS {
        let dir = temp_dir("tunnel-stop");
        let cfg = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 2s, idle_timeout: 5s, {DRAIN} }}
state_dir: "{state}"
upstreams:
  backend: {{ targets: ["127.0.0.1:{port}"] }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: backend, upgrade: {{ protocols: [websocket], idle_timeout: 10m }} }} }}
"#,
            state = dir.display(),
            port = echo.port
        );
        let p = Portico::start(&cfg, driver);
        let mut ws = WsClient::connect(&format!("ws://{}/room", p.addr), json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(ws.ask("hello"), "hello", "{driver}");
        // The tunnel is opaque bytes: it ends without a close frame of ours.
        let closed = stop_and_time(p, &mut ws, driver);
        assert_eq!(closed["event"], "closed", "{driver}: {closed}");
    }
}
