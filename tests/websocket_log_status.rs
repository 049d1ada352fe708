//! A WebSocket MESSAGE or DISCONNECT whose integration answers a status other than 200
//! is logged, and counted in `portico_requests_total`, with that status
//! (`$context.status` is the integration's status, as the README says): both were 200
//! whatever the backend answered.

mod common;

use std::io::Write;
use std::time::Duration;

use common::ws::*;
use common::*;

#[test]
fn message_and_disconnect_lines_carry_the_integrations_status() {
    let origin = Origin::start(|req, s| {
        let status = if req.target.ends_with("/503") {
            503
        } else {
            500
        };
        respond(s, status, &[("content-type", "text/plain")], b"nope");
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-log-status");
        let log = dir.join("access.log");
        let admin = free_port();
        let routes = r#"      $disconnect: { integration: { type: http, upstream: be, path: /status/500 } }
      err: { integration: { type: http, upstream: be, path: /status/503 }, route_response: true }
"#;
        let yaml = ws_api_config(admin, &dir.join("state"), "", routes).replace(
            "  workers: 2\n",
            &format!(
                "  workers: 2\n  access_log: {{ path: \"{}\", format: '{{\"ev\":\"$context.eventType\",\"status\":\"$context.status\",\"istatus\":\"$context.integrationStatus\"}}' }}\n",
                log.display()
            ),
        );
        let yaml = format!(
            "{yaml}upstreams: {{ be: {{ targets: [\"{}\"] }} }}\n",
            origin.addr
        );
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = raw_handshake(&mut s, "/prod", "");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(&masked_text(br#"{"action":"err"}"#)).unwrap();
        let (_, answer) = read_small_frame(&mut s);
        assert_eq!(answer, b"nope", "{driver}");
        // A close frame (1000): its DISCONNECT follows.
        let key = [1u8, 2, 3, 4];
        let mut close = vec![0x88, 0x82];
        close.extend_from_slice(&key);
        close.extend([0x03 ^ key[0], 0xE8 ^ key[1]]);
        s.write_all(&close).unwrap();
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            eventually(|| text().contains("DISCONNECT")),
            "{driver}: {}",
            text()
        );
        let text = text();
        assert!(
            text.contains(r#"{"ev":"MESSAGE","status":"503","istatus":"503"}"#),
            "{driver}: {text}"
        );
        assert!(
            text.contains(r#"{"ev":"DISCONNECT","status":"500","istatus":"500"}"#),
            "{driver}: {text}"
        );
        let m = metrics_when(([127, 0, 0, 1], admin).into(), |m| {
            m.contains("route=\"$disconnect\"")
        });
        let counted = |route: &str, status: &str| {
            m.lines().any(|l| {
                l.starts_with("portico_requests_total{")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
                    && !l.ends_with(" 0")
            })
        };
        assert!(
            counted("err", "5xx") || counted("err", "503"),
            "{driver}: {m}"
        );
        assert!(
            !counted("err", "2xx") && !counted("err", "200"),
            "{driver}: {m}"
        );
        assert!(
            !counted("$disconnect", "2xx") && !counted("$disconnect", "200"),
            "{driver}: {m}"
        );
    }
}

/// A function route's line: `$context.integrationStatus` is its endpoint's status (200
/// for an invocation it ran) and `$context.integration.status` the `statusCode` its code
/// returned, as on HTTP routes; both were the `statusCode`.
#[test]
fn a_function_routes_line_has_the_endpoints_status_and_the_functions() {
    let f = Function::start(|_| FnReply::Json(r#"{"statusCode":404,"body":"gone"}"#.into()));
    for driver in DRIVERS {
        let dir = temp_dir("ws-log-fn-status");
        let log = dir.join("access.log");
        let routes = format!(
            "      fn: {{ integration: {{ type: lambda, url: \"{}\" }}, route_response: true }}\n",
            f.url()
        );
        let yaml = ws_api_config(free_port(), &dir.join("state"), "", &routes).replace(
            "  workers: 2\n",
            &format!(
                "  workers: 2\n  access_log: {{ path: \"{}\", format: '{{\"ev\":\"$context.eventType\",\"istatus\":\"$context.integrationStatus\",\"fstatus\":\"$context.integration.status\"}}' }}\n",
                log.display()
            ),
        );
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = raw_handshake(&mut s, "/prod", "");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(&masked_text(br#"{"action":"fn"}"#)).unwrap();
        let (_, answer) = read_small_frame(&mut s);
        assert_eq!(answer, b"gone", "{driver}");
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            eventually(|| text().contains("MESSAGE")),
            "{driver}: {}",
            text()
        );
        assert!(
            text().contains(r#"{"ev":"MESSAGE","istatus":"200","fstatus":"404"}"#),
            "{driver}: {}",
            text()
        );
    }
}

/// An `@connections` call on the stage endpoint is logged with the bytes of its answer's
/// body, as every other request (`responseLength` was 0 whatever it sent).
#[test]
fn management_answers_are_logged_with_their_length() {
    for driver in DRIVERS {
        let dir = temp_dir("ws-log-length");
        let log = dir.join("access.log");
        let yaml = ws_api_config(free_port(), &dir.join("state"), "", ECHO_ROUTES).replace(
            "  workers: 2\n",
            &format!(
                "  workers: 2\n  access_log: {{ path: \"{}\", format: '{{\"status\":\"$context.status\",\"len\":\"$context.responseLength\"}}' }}\n",
                log.display()
            ),
        );
        let p = Portico::start(&yaml, driver);
        // No such connection (an id of worker 0): 410 with `{}`, from this host.
        let r = p.raw(b"POST /prod/@connections/AAAAAAAAAAAAAAA= HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        assert_eq!((r.status, r.text()), (410, "{}".to_string()), "{driver}");
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            eventually(|| text().contains(r#""status":"410""#)),
            "{driver}: {}",
            text()
        );
        assert!(
            text().contains(r#"{"status":"410","len":"2"}"#),
            "{driver}: {}",
            text()
        );
    }
}
