//! Access-log lines and counts of requests refused before they were served:
//! - plain HTTP on a TLS listener gets nginx's 400 and now also a line (its request id,
//!   the client's address, `-` for what was not read) and a count, as every other
//!   unrouted 400 (it had neither);
//! - a 431 or a 408 whose request line came whole logs its method, path and protocol
//!   (they were `-`), as nginx logs the request line of its "Request Header Or Cookie
//!   Too Large" 400;
//! - a refused WebSocket `$connect` is logged as the CONNECT event, with the connection
//!   id its function was called with (both were `-`);
//! - an accepted `$connect` has the integration's status in its line and its count (the
//!   line said 200 and `portico_requests_total` 101).

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::tls::*;
use common::ws::*;
use common::*;
use serde_json::{json, Value};

const FORMAT: &str = r#"{"rid":"$context.requestId","ip":"$context.identity.sourceIp","m":"$context.httpMethod","p":"$context.path","proto":"$context.protocol","s":"$context.status","ev":"$context.eventType","cid":"$context.connectionId","route":"$context.routeKey","t":"$context.requestTimeEpoch"}"#;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The log's lines, parsed, once there are at least `want`.
fn lines(log: &std::path::Path, want: usize) -> Vec<Value> {
    let text = || std::fs::read_to_string(log).unwrap_or_default();
    eventually(|| text().lines().count() >= want);
    text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// `portico_requests_total`'s value for the series whose labels include all of `labels`.
fn requests(m: &str, labels: &[(&str, &str)]) -> u64 {
    m.lines()
        .filter(|l| l.starts_with("portico_requests_total{"))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn plain_http_on_a_tls_listener_is_logged_and_counted() {
    let dir = temp_dir("log-plain-on-tls");
    let ca = Ca::new("Test CA");
    let (crt, key) = ca.server_cert(&["t.example"]).write(&dir, "t");
    for driver in DRIVERS {
        let log = dir.join(format!("{driver}.log"));
        let (tls_port, admin) = (free_port(), free_port());
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 1
  access_log: {{ path: "{}", format: '{FORMAT}' }}
admin: {{ listen: "127.0.0.1:{admin}" }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /ping": {{ integration: {{ type: mock, body: pong }} }}
domains:
  t.example: {{ cert: "{}", key: "{}", mappings: {{ "": app/$default }} }}
"#,
            log.display(),
            crt.display(),
            key.display()
        );
        let _p = Portico::start(&yaml, driver);
        wait_port(tls_port);
        let sent = now_ms();
        let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: t.example\r\n\r\n")
            .unwrap();
        let r = read_response(&mut BufReader::new(s), false).unwrap();
        assert_eq!(r.status, 400, "{driver}");
        let id = r
            .header("x-amzn-RequestId")
            .expect("a request id")
            .to_string();
        let got = lines(&log, 1);
        assert_eq!(got.len(), 1, "{driver}: {got:?}");
        let l = &got[0];
        assert_eq!(
            (&l["rid"], &l["ip"], &l["s"]),
            (&json!(id), &json!("127.0.0.1"), &json!("400")),
            "{driver}: {l}"
        );
        // Its bytes were read as a ClientHello would have been: not its method or path.
        for k in ["m", "p", "proto", "ev", "cid", "route"] {
            assert_eq!(l[k], "-", "{driver} {k}: {l}");
        }
        let t: u64 = l["t"].as_str().unwrap().parse().unwrap();
        assert!(t.abs_diff(sent) < 2000, "{driver}: {t} vs {sent}");
        let m = metrics_when(([127, 0, 0, 1], admin).into(), |m| m.contains("400"));
        let unrouted = [("api", ""), ("route", ""), ("status", "400")];
        assert_eq!(requests(&m, &unrouted), 1, "{driver}: {m}");
    }
}

fn http_config(log: &std::path::Path, admin: u16) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 1s, idle_timeout: 5s, max_header_bytes: 2048 }}
  access_log: {{ path: "{}", format: '{FORMAT}' }}
admin: {{ listen: "127.0.0.1:{admin}" }}
apis:
  a:
    stages: {{ $default: {{}} }}
    routes:
      "GET /m": {{ integration: {{ type: mock, body: "ok" }} }}
"#,
        log.display()
    )
}

#[test]
fn a_431_and_a_408_log_their_request_line() {
    for driver in DRIVERS {
        let dir = temp_dir("log-refused-line");
        let log = dir.join("access.log");
        let admin = free_port();
        let p = Portico::start(&http_config(&log, admin), driver);
        // Headers past `max_header_bytes`: 431.
        let mut s = p.connect();
        let big = "x".repeat(3000);
        write!(s, "GET /m?q=1 HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(got.starts_with(b"HTTP/1.1 431"), "{driver}: {got:?}");
        // Its request line and part of its headers, then silence: 408.
        let mut s = p.connect();
        s.write_all(b"POST /m HTTP/1.0\r\nHost: x\r\n").unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(got.starts_with(b"HTTP/1.1 408"), "{driver}: {got:?}");
        // Part of a request line, then silence: still `-`, nothing to say.
        let mut s = p.connect();
        s.write_all(b"GET /m HT").unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(got.starts_with(b"HTTP/1.1 408"), "{driver}: {got:?}");
        let got = lines(&log, 3);
        let fields =
            |l: &Value| ["m", "p", "proto", "s"].map(|k| l[k].as_str().unwrap_or("").to_string());
        assert_eq!(
            got.iter().map(fields).collect::<Vec<_>>(),
            [
                ["GET", "/m", "HTTP/1.1", "431"],
                ["POST", "/m", "HTTP/1.0", "408"],
                ["-", "-", "-", "408"],
            ],
            "{driver}: {got:?}"
        );
        let m = metrics_when(([127, 0, 0, 1], admin).into(), |m| m.contains("408"));
        assert_eq!(requests(&m, &[("status", "431")]), 1, "{driver}: {m}");
        assert_eq!(requests(&m, &[("status", "408")]), 2, "{driver}: {m}");
    }
}

/// A WebSocket API whose `$connect` function refuses `?refuse` (403), dies on `?hang`
/// (502), and accepts anything else; each CONNECT event's connection id, in order.
fn ws_setup(driver: &str) -> (Portico, std::path::PathBuf, SocketAddr, Function) {
    let f = Function::start(|ev| {
        let q = &ev["queryStringParameters"];
        if q["refuse"].is_string() {
            FnReply::Json(json!({"statusCode": 403, "body": "no"}).to_string())
        } else if q["hang"].is_string() {
            FnReply::Hangup
        } else {
            FnReply::Json(json!({"statusCode": 200}).to_string())
        }
    });
    let dir = temp_dir("log-ws-connect");
    let log = dir.join("access.log");
    let admin = free_port();
    let routes = format!(
        "      $connect: {{ integration: {{ type: lambda, url: \"{}\" }} }}\n",
        f.url()
    ) + ECHO_ROUTES;
    let yaml = ws_api_config(admin, &dir.join("state"), "", &routes).replace(
        "  workers: 2\n",
        &format!(
            "  workers: 2\n  access_log: {{ path: \"{}\", format: '{FORMAT}' }}\n",
            log.display()
        ),
    );
    let p = Portico::start(&yaml, driver);
    (p, log, ([127, 0, 0, 1], admin).into(), f)
}

#[test]
fn a_refused_connect_is_logged_as_its_connect_event() {
    for driver in DRIVERS {
        let (p, log, _, f) = ws_setup(driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = raw_handshake(&mut s, "/prod?refuse=1", "");
        assert!(head.starts_with("HTTP/1.1 403"), "{driver}: {head}");
        let called = f.last_event()["requestContext"]["connectionId"]
            .as_str()
            .unwrap()
            .to_string();
        // The function endpoint gone mid-call: 502, logged the same way.
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = raw_handshake(&mut s, "/prod?hang=1", "");
        assert!(head.starts_with("HTTP/1.1 502"), "{driver}: {head}");
        let hung = f.last_event()["requestContext"]["connectionId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(called, hung, "{driver}");
        let got = lines(&log, 2);
        let picked = |l: &Value| {
            ["s", "ev", "cid", "route"].map(|k| l[k].as_str().unwrap_or("").to_string())
        };
        // Two workers: their lines come in either order.
        let mut picked_lines = got.iter().map(picked).collect::<Vec<_>>();
        picked_lines.sort();
        assert_eq!(
            picked_lines,
            [
                ["403", "CONNECT", called.as_str(), "$connect"],
                ["502", "CONNECT", hung.as_str(), "$connect"],
            ],
            "{driver}: {got:?}"
        );
        // A request on the same stage that is not a handshake is no CONNECT.
        let r = p.raw(b"GET /prod HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 426, "{driver}");
        let got = lines(&log, 3);
        let upgrade_required = got.iter().find(|l| l["s"] == "426").expect("a 426 line");
        assert_eq!(
            (&upgrade_required["ev"], &upgrade_required["cid"]),
            (&json!("-"), &json!("-")),
            "{driver}: {got:?}"
        );
    }
}

#[test]
fn an_accepted_connect_has_one_status_in_its_line_and_its_count() {
    for driver in DRIVERS {
        let (p, log, admin, _f) = ws_setup(driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = raw_handshake(&mut s, "/prod", "");
        assert!(head.starts_with("HTTP/1.1 101"), "{driver}: {head}");
        let got = lines(&log, 1);
        assert_eq!(
            (&got[0]["s"], &got[0]["ev"]),
            (&json!("200"), &json!("CONNECT")),
            "{driver}: {got:?}"
        );
        let m = metrics_when(admin, |m| m.contains("route=\"$connect\""));
        let connect = |status| requests(&m, &[("route", "$connect"), ("status", status)]);
        assert_eq!((connect("200"), connect("101")), (1, 0), "{driver}: {m}");
        drop(s);
    }
}
