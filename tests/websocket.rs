//! WebSocket APIs (`protocol: websocket`) end to end: Python `websockets` clients, a
//! Lambda-style function for `$connect`/`$default`/`$disconnect`, mock echo routes,
//! `@connections` through boto3's unmodified `apigatewaymanagementapi` client and the
//! admin listener, route selection and the Forbidden notice, reloads under open
//! connections, an http integration, API keys on `$connect`, wss and max_duration.
//! Raw-socket cases are in websocket_raw.rs.

// The test function records events from its own threads; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ws::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn mock_echo_route_selection_and_the_forbidden_notice() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-echo");
        let admin = free_port();
        let p = Portico::start(&ws_api_config(admin, &dir, "", ECHO_ROUTES), driver);
        // The start's log gives the URL to connect to (WebSocket APIs are not in `routes`).
        let url = format!("ws://{}/prod", p.addr);
        let logged = || {
            p.log_text().lines().any(|l| {
                l.contains("serving WebSocket API stage")
                    && l.contains("api=chat")
                    && l.contains(&format!("urls={url}"))
            })
        };
        assert!(eventually(logged), "{}", p.log_text());
        let mut ws = WsClient::connect(&url, json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin));
        let open =
            |n: u8| format!("portico_websocket_connections{{api=\"chat\",stage=\"prod\"}} {n}\n");
        let m = common::metrics_when(admin_addr, |t| t.contains(&open(1)));
        assert!(m.contains(&open(1)), "{driver}: {m}");
        let h = &ws.opened["headers"];
        assert!(h["x-amzn-requestid"].is_string(), "{h}");
        assert!(
            h.get("sec-websocket-extensions").is_none(),
            "no deflate: {h}"
        );
        let msg = r#"{"action":"echo","n":1}"#;
        assert_eq!(ws.ask(msg), msg, "{driver}");
        // A route without route_response answers nothing: the next answer is the echo.
        ws.send(r#"{"action":"quiet"}"#);
        assert_eq!(
            ws.ask(r#"{"action":"echo","n":2}"#),
            r#"{"action":"echo","n":2}"#
        );
        // No match and no $default: API Gateway's Forbidden notice, connection kept.
        for unmatched in [r#"{"action":"nope"}"#, "not json", r#"{"other":1}"#] {
            let notice: Value = serde_json::from_str(&ws.ask(unmatched)).unwrap();
            assert_eq!(notice["message"], "Forbidden", "{driver}: {notice}");
            let id = notice["connectionId"].as_str().unwrap();
            assert_eq!((id.len(), id.ends_with('=')), (16, true), "{id}");
            assert!(notice["requestId"].is_string());
        }
        assert_eq!(ws.cmd("ping")["event"], "pong", "{driver}");
        // A 100 KB message in 32 KiB fragments is within API Gateway's limits.
        let big = format!(r#"{{"action":"echo","pad":"{}"}}"#, "p".repeat(100_000));
        assert_eq!(ws.cmd(&format!("sendfrag 32000 {big}"))["event"], "sent");
        assert_eq!(ws.recv_text(), big, "{driver}");
        // A binary frame is closed with 1003, as API Gateway does.
        assert_eq!(ws.cmd("sendb 0102")["event"], "sent");
        let closed = ws.cmd("wait_closed");
        assert_eq!(closed["code"], 1003, "{driver}: {closed}");
        let m = common::metrics_when(admin_addr, |t| t.contains(&open(0)));
        assert!(m.contains(&open(0)), "{driver}: {m}");
        // Messages count in their route's request metrics.
        let echo = r#"portico_requests_total{api="chat",stage="prod",route="echo",status="200"} 3"#;
        let m = common::metrics_when(SocketAddr::from(([127, 0, 0, 1], admin)), |t| {
            t.contains(echo)
        });
        assert!(m.contains(echo), "{driver}: {m}");
        // A plain request to the stage is told to upgrade.
        let r = p.get("/prod");
        assert_eq!(r.status, 426, "{driver}");
        assert_eq!(r.header("sec-websocket-version"), Some("13"));
        p.stop();
    }
}

#[test]
fn binary_frames_base64_reach_the_default_route() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-b64");
        let routes = r#"      $default: { integration: { type: mock, body: "$request.body" }, route_response: true }
"#;
        let p = Portico::start(
            &ws_api_config(free_port(), &dir, "    binary_frames: base64\n", routes),
            driver,
        );
        let mut ws = WsClient::connect(&format!("ws://{}/prod", p.addr), json!({}));
        assert_eq!(ws.cmd("sendb 00ff01")["event"], "sent");
        assert_eq!(ws.recv_text(), "AP8B", "{driver}");
        assert_eq!(ws.ask("plain text"), "plain text");
        p.stop();
    }
}

/// A function that records every event and answers by event type: CONNECT 200 with a
/// subprotocol (403 when the query says deny), MESSAGE "fail" as a function error,
/// "whoami" with the connection id, anything else "got: BODY".
fn chat_function() -> (Function, Arc<Mutex<Vec<Value>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let f = Function::start(move |ev| {
        seen.lock().unwrap().push(ev.clone());
        let rc = &ev["requestContext"];
        match rc["eventType"].as_str().unwrap_or("") {
            "CONNECT" if ev["queryStringParameters"]["deny"] == "1" => {
                FnReply::Json(r#"{"statusCode":403,"body":"go away"}"#.into())
            }
            "CONNECT" => FnReply::Json(
                r#"{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat.v1"}}"#.into(),
            ),
            "MESSAGE" if ev["body"] == "fail" => FnReply::Error(r#"{"errorMessage":"boom"}"#.into()),
            "MESSAGE" if ev["body"] == "whoami" => FnReply::Json(
                json!({"statusCode": 200, "body": rc["connectionId"]}).to_string(),
            ),
            "MESSAGE" => FnReply::Json(
                json!({"statusCode": 200, "body": format!("got: {}", ev["body"].as_str().unwrap_or(""))})
                    .to_string(),
            ),
            _ => FnReply::Json(r#"{"statusCode":200}"#.into()),
        }
    });
    (f, events)
}

fn lambda_routes(url: &str) -> String {
    format!(
        r#"      $connect: {{ integration: {{ type: lambda, url: "{url}" }} }}
      $disconnect: {{ integration: {{ type: lambda, url: "{url}" }} }}
      $default: {{ integration: {{ type: lambda, url: "{url}" }}, route_response: true }}
"#
    )
}

fn events_of(events: &Mutex<Vec<Value>>, kind: &str) -> Vec<Value> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["requestContext"]["eventType"] == kind)
        .cloned()
        .collect()
}

/// A subprotocol the `$connect` answer names goes into the 101 only when the client
/// offered it: any other makes its client fail the handshake (RFC 6455 §4.2.2).
#[test]
fn a_subprotocol_the_client_did_not_offer_is_left_out_of_the_101() {
    let (f, _events) = chat_function();
    for driver in DRIVERS {
        let dir = temp_dir("ws-subprotocol");
        let cfg = ws_api_config(free_port(), &dir, "", &lambda_routes(&f.url()));
        let p = Portico::start(&cfg, driver);
        for offer in ["", "Sec-WebSocket-Protocol: chat.v2, chat.v1x\r\n"] {
            let mut s = p.connect();
            let head = raw_handshake(&mut s, "/prod", offer).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 101 "), "{driver}: {head}");
            assert!(!head.contains("sec-websocket-protocol"), "{driver}: {head}");
        }
        let mut s = p.connect();
        let offer = "Sec-WebSocket-Protocol: chat.v2\r\nSec-WebSocket-Protocol: chat.v1\r\n";
        let head = raw_handshake(&mut s, "/prod", offer).to_ascii_lowercase();
        assert!(
            head.contains("sec-websocket-protocol: chat.v1\r\n"),
            "{driver}: {head}"
        );
        p.stop();
    }
}

#[test]
fn lambda_connect_message_and_disconnect_events() {
    let (f, events) = chat_function();
    for driver in DRIVERS {
        events.lock().unwrap().clear();
        let dir = temp_dir("ws-lambda");
        let log = dir.join("access.log");
        let format = r#"{"event":"$context.eventType","conn":"$context.connectionId","route":"$context.routeKey","msg":"$context.messageId","status":"$context.status"}"#;
        let cfg = ws_api_config(free_port(), &dir, "", &lambda_routes(&f.url()))
            .replace(
                "  limits:",
                &format!(
                    "  access_log: {{ path: \"{}\", format: '{format}' }}\n  limits:",
                    log.display()
                ),
            )
            .replace("prod: {}", "prod: { variables: { table: chat-prod } }");
        let p = Portico::start(&cfg, driver);
        let url = format!("ws://{}/prod?token=abc&x=1&x=2", p.addr);
        let mut ws = WsClient::connect(&url, json!({"subprotocols": ["chat.v1"]}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        // $connect's headers went into the 101.
        assert_eq!(ws.opened["subprotocol"], "chat.v1", "{driver}");
        let connect = events_of(&events, "CONNECT").pop().unwrap();
        let rc = &connect["requestContext"];
        assert_eq!(rc["routeKey"], "$connect");
        assert_eq!(rc["stage"], "prod");
        assert_eq!(rc["apiId"], "chat");
        assert_eq!(rc["messageDirection"], "IN");
        assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
        assert_eq!(rc["requestId"], rc["extendedRequestId"]);
        assert!(rc["connectedAt"].is_u64() && rc["requestTimeEpoch"].is_u64());
        let id = rc["connectionId"].as_str().unwrap().to_string();
        assert_eq!((id.len(), id.ends_with('=')), (16, true), "{id}");
        let headers = connect["headers"].as_object().unwrap();
        assert!(headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("sec-websocket-key")));
        assert!(
            !headers.keys().any(|k| k.eq_ignore_ascii_case("upgrade")),
            "{headers:?}"
        );
        assert!(!headers.keys().any(|k| k.eq_ignore_ascii_case("connection")));
        assert_eq!(headers["X-Forwarded-Proto"], "http");
        let trace = headers["X-Amzn-Trace-Id"].as_str().unwrap_or_default();
        assert!(
            trace.starts_with("Root=1-") && trace.contains(";Parent="),
            "{headers:?}"
        );
        assert_eq!(connect["queryStringParameters"]["token"], "abc");
        assert_eq!(
            connect["multiValueQueryStringParameters"]["x"],
            json!(["1", "2"])
        );
        assert_eq!(connect["isBase64Encoded"], false);
        // Every event of the connection carries the stage's variables.
        let vars = json!({"table": "chat-prod"});
        assert_eq!(connect["stageVariables"], vars, "{driver}: {connect}");

        assert_eq!(ws.ask("hello"), "got: hello", "{driver}");
        assert_eq!(ws.ask("whoami"), id, "{driver}");
        let msg = events_of(&events, "MESSAGE").remove(0);
        assert_eq!(msg["body"], "hello");
        assert_eq!(msg["requestContext"]["routeKey"], "$default");
        assert_eq!(msg["requestContext"]["connectionId"], id.as_str());
        assert!(msg["requestContext"]["messageId"].is_string());
        assert!(
            msg.get("headers").is_none(),
            "MESSAGE has no headers: {msg}"
        );
        assert_eq!(msg["stageVariables"], vars, "{driver}: {msg}");
        // A function error is a notice; the connection stays.
        let notice: Value = serde_json::from_str(&ws.ask("fail")).unwrap();
        assert_eq!(notice["message"], "Internal server error", "{driver}");
        assert_eq!(notice["connectionId"], id.as_str());
        assert_eq!(ws.ask("still here"), "got: still here");

        assert_eq!(ws.cmd("close 4000")["code"], 4000);
        assert!(
            eventually(|| !events_of(&events, "DISCONNECT").is_empty()),
            "{driver}"
        );
        let d = events_of(&events, "DISCONNECT").remove(0);
        assert_eq!(
            d["requestContext"]["disconnectStatusCode"], 4000,
            "{driver}: {d}"
        );
        assert_eq!(d["requestContext"]["connectionId"], id.as_str());
        assert_eq!(d["headers"]["x-api-key"], "");
        assert_eq!(d["stageVariables"], vars, "{driver}: {d}");
        // One access-log line per event, with the WebSocket $context variables.
        let lines = || -> Vec<Value> {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        assert!(
            eventually(|| lines().iter().any(|l| l["event"] == "DISCONNECT")),
            "{driver}"
        );
        let lines = lines();
        let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "CONNECT",
                "MESSAGE",
                "MESSAGE",
                "MESSAGE",
                "MESSAGE",
                "DISCONNECT"
            ],
            "{driver}"
        );
        assert!(lines.iter().all(|l| l["conn"] == id.as_str()), "{lines:?}");
        assert_eq!(lines[1]["route"], "$default");
        assert_eq!(lines[1]["msg"], msg["requestContext"]["messageId"]);
        assert_eq!(lines[3]["status"], "500", "the failed message: {lines:?}");
        assert_eq!(lines[5]["route"], "$disconnect");

        // $connect answering 403 refuses the handshake with its status and body.
        let denied = WsClient::connect(&format!("ws://{}/prod?deny=1", p.addr), json!({}));
        assert_eq!(
            denied.opened["event"], "rejected",
            "{driver}: {}",
            denied.opened
        );
        assert_eq!(denied.opened["status"], 403);
        assert_eq!(denied.opened["body"], "go away");

        // An absolute-form target's authority is the Host the event names, as the
        // domainName beside it (RFC 9112 §3.2.2), not the Host line.
        events.lock().unwrap().clear();
        let mut s = p.connect();
        let head = raw_handshake(&mut s, "http://b.test/prod", "");
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver}: {head}");
        let connect = events_of(&events, "CONNECT").pop().unwrap();
        assert_eq!(
            connect["requestContext"]["domainName"], "b.test",
            "{driver}"
        );
        assert_eq!(connect["headers"]["Host"], "b.test", "{driver}: {connect}");
        assert_eq!(connect["multiValueHeaders"]["Host"], json!(["b.test"]));
        drop(s);
        p.stop();
    }
}

#[test]
fn connections_api_through_boto3_and_the_admin_listener() {
    let (f, events) = chat_function();
    for driver in DRIVERS {
        events.lock().unwrap().clear();
        let dir = temp_dir("ws-conns");
        let admin = free_port();
        let p = Portico::start(
            &ws_api_config(admin, &dir, "", &lambda_routes(&f.url())),
            driver,
        );
        let endpoint = format!("http://{}/prod", p.addr);
        // Several connections, so that calls land on workers that don't own them.
        let mut clients: Vec<(WsClient, String)> = (0..4)
            .map(|_| {
                let mut ws = WsClient::connect(
                    &format!("ws://{}/prod", p.addr),
                    json!({"subprotocols": ["chat.v1"], "headers": {"User-Agent": "tester/1"}}),
                );
                let id = ws.ask("whoami");
                (ws, id)
            })
            .collect();
        for (ws, id) in &mut clients {
            let r = boto3_connections(&endpoint, "post", id, Some("pushed by boto3"));
            assert_eq!(r, json!({"ok": true}), "{driver}");
            assert_eq!(ws.recv_text(), "pushed by boto3", "{driver}");
            let info = boto3_connections(&endpoint, "get", id, None);
            assert_eq!(
                info["identity"]["SourceIp"], "127.0.0.1",
                "{driver}: {info}"
            );
            assert_eq!(
                info["identity"]["UserAgent"], "tester/1",
                "{driver}: {info}"
            );
            assert!(
                info["connectedAt"].as_str().unwrap().starts_with("20"),
                "{info}"
            );
        }
        let (mut ws, id) = clients.remove(0);
        let too_big = boto3_connections(&endpoint, "post", &id, Some("@size:131073"));
        assert_eq!(too_big["error"], "PayloadTooLargeException", "{driver}");
        // The admin listener: same API behind the token.
        let a = SocketAddr::from(([127, 0, 0, 1], admin));
        let enc = id
            .replace('=', "%3D")
            .replace('/', "%2F")
            .replace('+', "%2B");
        let r = send_to(
            a,
            format!("POST /@connections/{enc} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\nContent-Length: 5\r\nConnection: close\r\n\r\nadmin").as_bytes(),
        );
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(ws.recv_text(), "admin", "{driver}");
        // Bytes that are not UTF-8 go as a binary message: as a text frame the client
        // would drop the connection (1007).
        let mut blob = format!("POST /@connections/{enc} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\nContent-Length: 3\r\nConnection: close\r\n\r\n").into_bytes();
        blob.extend_from_slice(&[0xff, 0xfe, 0x00]);
        assert_eq!(send_to(a, &blob).status, 200, "{driver}");
        let m = ws.cmd("recv");
        assert_eq!(m["binary"], "fffe00", "{driver}: {m}");
        assert_eq!(
            ws.ask("whoami"),
            id,
            "{driver}: the connection is still open"
        );
        // Delete: the client sees a normal close, $disconnect says so, then it's gone.
        let r = boto3_connections(&endpoint, "delete", &id, None);
        assert_eq!(r, json!({"ok": true}), "{driver}");
        let closed = ws.cmd("wait_closed");
        assert_eq!(closed["code"], 1000, "{driver}: {closed}");
        assert!(eventually(|| !events_of(&events, "DISCONNECT").is_empty()));
        let d = events_of(&events, "DISCONNECT").remove(0);
        assert_eq!(d["requestContext"]["disconnectStatusCode"], 1000);
        assert_eq!(
            d["requestContext"]["disconnectReason"],
            "Connection Closed Normally"
        );
        for op in ["post", "get", "delete"] {
            let r = boto3_connections(&endpoint, op, &id, Some("late"));
            assert_eq!(r["error"], "GoneException", "{driver} {op}: {r}");
        }
        let m = common::admin(a, "GET", "/metrics", None, None).text();
        assert!(
            m.contains("portico_websocket_management_total{result=\"gone\"} 3"),
            "{m}"
        );
        assert!(
            m.contains("portico_websocket_management_total{result=\"too_large\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("portico_websocket_closes_total{code=\"1000\"} 1"),
            "{m}"
        );
        let r = admin_raw(a, "GET", &enc);
        assert_eq!(r.status, 410, "{driver}");
        assert_eq!(r.header("x-amzn-ErrorType"), Some("GoneException"));
        assert_eq!(
            boto3_connections(&endpoint, "get", "AAAAAAAAAAAAAAA=", None)["error"],
            "GoneException"
        );
        p.stop();
    }
}

fn admin_raw(a: SocketAddr, method: &str, id: &str) -> Response {
    send_to(
        a,
        format!("{method} /@connections/{id} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn a_reload_keeps_connections_and_routes_their_next_messages_by_the_new_ws_api_config() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-reload");
        let port = free_port();
        let cfg =
            ws_api_config(free_port(), &dir, "", ECHO_ROUTES).replace("{PORT}", &port.to_string());
        let p = Portico::start_at(&cfg, driver, port);
        let mut ws = WsClient::connect(&format!("ws://{}/prod", p.addr), json!({}));
        assert_eq!(ws.ask(r#"{"action":"echo"}"#), r#"{"action":"echo"}"#);
        let reloaded = cfg.replace(
            r#"body: "$request.body" }, route_response: true }"#,
            r#"body: "reloaded" }, route_response: true }"#,
        );
        assert_ne!(reloaded, cfg);
        std::fs::write(&p.config, reloaded).unwrap();
        p.signal(1);
        assert!(
            eventually(|| { ws.ask(r#"{"action":"echo"}"#) == "reloaded" }),
            "{driver}"
        );
        p.stop();
    }
}

/// A reload's stage variables reach an open connection's next events: the integration
/// is chosen by the config current when a message arrives, and its event carried the
/// variables of the `$connect` config.
#[test]
fn a_reload_gives_open_connections_events_the_new_stage_variables() {
    let (f, events) = chat_function();
    for driver in DRIVERS {
        events.lock().unwrap().clear();
        let dir = temp_dir("ws-reload-vars");
        let port = free_port();
        let cfg = ws_api_config(free_port(), &dir, "", &lambda_routes(&f.url()))
            .replace("{PORT}", &port.to_string())
            .replace("prod: {}", "prod: { variables: { color: blue } }");
        let p = Portico::start_at(&cfg, driver, port);
        let mut ws = WsClient::connect(&format!("ws://{}/prod", p.addr), json!({}));
        assert_eq!(ws.ask("one"), "got: one", "{driver}");
        std::fs::write(&p.config, cfg.replace("color: blue", "color: green")).unwrap();
        p.signal(1);
        let green = json!({"color": "green"});
        assert!(
            eventually(|| {
                ws.ask("again");
                events_of(&events, "MESSAGE").last().unwrap()["stageVariables"] == green
            }),
            "{driver}"
        );
        assert_eq!(ws.cmd("close 1000")["code"], 1000);
        assert!(eventually(|| !events_of(&events, "DISCONNECT").is_empty()));
        let d = events_of(&events, "DISCONNECT").remove(0);
        assert_eq!(d["stageVariables"], green, "{driver}: {d}");
        assert_eq!(
            events_of(&events, "CONNECT")[0]["stageVariables"]["color"],
            "blue"
        );
        p.stop();
    }
}

#[test]
fn http_integration_api_keys_on_connect_tls_and_max_duration() {
    let backend = Origin::start(|req, s| {
        let body = format!(
            "ack {} from {} {}",
            String::from_utf8_lossy(&req.body),
            req.header("x-amzn-event-type").unwrap_or("-"),
            req.header("x-amzn-route-key").unwrap_or("-"),
        );
        respond(s, 200, &[], body.as_bytes());
        true
    });
    let dir = temp_dir("ws-http");
    let ca = common::tls::Ca::new("ws api CA");
    let ca_file = ca.write(&dir, "ca");
    let (cert, key) = ca.server_cert(&["chat.example"]).write(&dir, "chat");
    for driver in DRIVERS {
        let admin_port = free_port();
        let tls_port = free_port();
        let routes = r#"      $connect: { integration: { type: mock }, api_key_required: true }
      $default: { integration: { type: http, upstream: backend, path: /messages }, route_response: true }
"#;
        let mut cfg = ws_api_config(
            admin_port,
            &dir,
            "    limits: { max_duration: 3s }\n",
            routes,
        );
        cfg = cfg.replace(
            "  workers: 2\n",
            &format!("  workers: 2\n  tls_listen: [\"127.0.0.1:{tls_port}\"]\n"),
        );
        cfg.push_str(&format!(
            r#"upstreams:
  backend: {{ targets: ["{}"] }}
usage_plans:
  chatters: {{ stages: ["chat/prod"] }}
api_keys:
  - {{ name: alice, value: "alice-key-0123456789", plan: chatters }}
domains:
  chat.example:
    cert: "{}"
    key: "{}"
    mappings: {{ "": chat/prod }}
"#,
            backend.addr,
            cert.display(),
            key.display()
        ));
        let p = Portico::start(&cfg, driver);
        common::tls::wait_port(tls_port);
        // The key is checked on $connect only.
        let no_key = WsClient::connect(&format!("ws://{}/prod", p.addr), json!({}));
        assert_eq!(no_key.opened["status"], 403, "{driver}: {}", no_key.opened);
        let opts = json!({
            "headers": {"x-api-key": "alice-key-0123456789"},
            "ca": ca_file.display().to_string(),
            "server_hostname": "chat.example",
        });
        // By address: the Host names no domain, so the default endpoint serves /prod.
        let mut ws = WsClient::connect(&format!("wss://127.0.0.1:{tls_port}/prod"), opts);
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        let opened = Instant::now();
        assert_eq!(
            ws.ask("hello"),
            "ack hello from MESSAGE $default",
            "{driver}"
        );
        let seen = backend.last();
        assert_eq!(
            (seen.method.as_str(), seen.target.as_str()),
            ("POST", "/messages")
        );
        let id = seen.header("x-amzn-connection-id").unwrap().to_string();
        assert_eq!(id.len(), 16, "{id}");
        // Past max_duration the connection is closed with 1001, even while busy.
        let closed = loop {
            let m = ws.cmd("send busy");
            if m["event"] == "closed" {
                break m;
            }
            let m = ws.cmd("recv 5");
            if m["event"] == "closed" {
                break m;
            }
            assert!(
                opened.elapsed() < Duration::from_secs(8),
                "{driver}: still open"
            );
        };
        assert_eq!(closed["code"], 1001, "{driver}: {closed}");
        let waited = opened.elapsed();
        assert!(
            waited >= Duration::from_millis(2500),
            "{driver}: {waited:?}"
        );
        let a = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let m = admin(a, "GET", "/metrics", None, None).text();
        assert!(
            m.contains("portico_websocket_closes_total{code=\"1001\"} 1"),
            "{m}"
        );
        assert!(m.contains("portico_websocket_connections_active 0"), "{m}");
        p.stop();
    }
}
