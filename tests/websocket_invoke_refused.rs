//! A WebSocket route's Lambda Invoke endpoint refusing the call (a non-2xx without
//! `X-Amz-Function-Error`, e.g. a throttled 429: the function did not run) is told apart
//! from a function error, as on HTTP routes: a `$connect` handshake answers 500 (502 for
//! a function error), a message route sends the client
//! `{"message":"Internal server error","connectionId":…,"requestId":…}`, and the access
//! log's integration error names the endpoint's `x-amzn-ErrorType`; the failures are
//! logged at warn. A function that does not answer within the integration's timeout is
//! a 504 handshake and `{"message":"Endpoint request timed out",…}` (it was "Internal
//! server error", 502 and 500 in the log).

mod common;

use std::time::Duration;

use common::ws::*;
use common::*;
use serde_json::Value;

/// A raw handshake for `/prod?mode=MODE`; returns the status of the answer.
fn handshake(p: &Portico, mode: &str) -> u16 {
    let mut s = p.connect();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let head = raw_handshake(&mut s, &format!("/prod?mode={mode}"), "");
    head[9..12].parse().unwrap_or_else(|_| panic!("{head}"))
}

#[test]
fn an_invoke_api_refusal_is_a_500_and_names_its_error_type() {
    require_websockets();
    // CONNECT and MESSAGE events: `mode` (query) or the message says how to answer.
    let function = Origin::start(|req, s| {
        let ev: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let mode = ev["queryStringParameters"]["mode"]
            .as_str()
            .or(ev["body"].as_str())
            .unwrap_or("");
        match mode {
            "throttle" => respond(
                s,
                429,
                &[("x-amzn-ErrorType", "TooManyRequestsException")],
                br#"{"message":"Rate Exceeded."}"#,
            ),
            "fail" => respond(
                s,
                200,
                &[("X-Amz-Function-Error", "Unhandled")],
                br#"{"errorMessage":"boom"}"#,
            ),
            "slow" => {
                std::thread::sleep(Duration::from_millis(2500));
                respond(s, 200, &[], br#"{"statusCode":200,"body":"late"}"#)
            }
            _ => respond(s, 200, &[], br#"{"statusCode":200,"body":"ok"}"#),
        }
        true
    });
    let url = format!(
        "http://{}/2015-03-31/functions/f/invocations",
        function.addr
    );
    let routes = format!(
        "      $connect: {{ integration: {{ type: lambda, url: \"{url}\", timeout: 1s }} }}\n      $default: {{ integration: {{ type: lambda, url: \"{url}\", timeout: 1s }}, route_response: true }}\n"
    );
    for driver in DRIVERS {
        let dir = temp_dir("ws-refused");
        let log = dir.join("a.log");
        let cfg = ws_api_config(free_port(), &dir, "", &routes).replace(
            "admin: {",
            &format!(
                "  access_log: {{ path: \"{}\", format: '{{\"status\":\"$context.status\",\"err\":\"$context.integration.error\"}}' }}\nadmin: {{",
                log.display()
            ),
        );
        let p = Portico::start(&cfg, driver);
        assert_eq!(handshake(&p, "throttle"), 500, "{driver}");
        assert_eq!(handshake(&p, "fail"), 502, "{driver}");
        assert_eq!(handshake(&p, "slow"), 504, "{driver}");
        assert_eq!(handshake(&p, "ok"), 101, "{driver}");
        // A message route: the client gets API Gateway's notice either way.
        let mut ws = WsClient::connect(
            &format!("ws://{}/prod?mode=ok", p.addr),
            serde_json::json!({}),
        );
        for message in ["throttle", "fail"] {
            let notice: Value = serde_json::from_str(&ws.ask(message)).unwrap();
            assert_eq!(notice["message"], "Internal server error", "{driver}");
            assert!(notice["connectionId"].is_string(), "{driver}: {notice}");
            assert!(notice["requestId"].is_string(), "{driver}: {notice}");
        }
        let notice: Value = serde_json::from_str(&ws.ask("slow")).unwrap();
        assert_eq!(notice["message"], "Endpoint request timed out", "{driver}");
        assert_eq!(ws.ask("hello"), "ok", "{driver}");
        let throttled = |l: &Value| {
            l["err"]
                .as_str()
                .is_some_and(|e| e.contains("429 TooManyRequestsException"))
        };
        let logged = eventually(|| {
            let lines = read_log_lines(&log);
            lines.iter().filter(|l| throttled(l)).count() == 2
        });
        assert!(logged, "{driver}: {:?}", read_log_lines(&log));
        // And in Portico's own log at the default level, as an http route's failures.
        let text = p.log_text();
        for line in [
            "WebSocket $connect integration failed",
            "WebSocket integration failed",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.contains(" WARN ") && l.contains(line)),
                "{driver}: no {line:?}:\n{text}"
            );
        }
        p.stop();
    }
}

fn read_log_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
