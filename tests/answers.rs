//! What explains a failure and what every answer carries: upstream failures logged at
//! warn (rate-limited), the default access-log line, `Date` and `Server` headers.

mod common;

use std::io::{BufReader, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn warn_lines(p: &Portico, message: &str) -> Vec<String> {
    p.log_text()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains(message))
        .map(String::from)
        .collect()
}

#[test]
fn upstream_failures_are_warned_once_a_second_with_the_cause() {
    let dead = free_port(); // nothing listens there: connection refused
    let silent = silent_origin();
    for driver in DRIVERS {
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
upstreams:
  dead: {{ targets: ["127.0.0.1:{dead}"] }}
  silent: {{ targets: ["{silent}"] }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /dead": {{ integration: {{ type: http, upstream: dead }} }}
      "GET /slow": {{ integration: {{ type: http, upstream: silent, timeout: 300ms }} }}
"#
        );
        let p = Portico::start(&yaml, driver);
        let started = Instant::now();
        for _ in 0..20 {
            assert_eq!(p.get("/dead").status, 502, "{driver}");
        }
        let fast = started.elapsed() < Duration::from_millis(900);
        assert!(eventually(|| !warn_lines(&p, "upstream failed").is_empty()));
        let lines = warn_lines(&p, "upstream failed");
        let first = &lines[0];
        assert!(
            first.contains(&format!("target=127.0.0.1:{dead}")),
            "{first}"
        );
        assert!(
            first.contains("upstream=dead") && first.contains("status=502"),
            "{first}"
        );
        assert!(
            first.contains("cause=") && first.contains("refused"),
            "{first}"
        );
        if fast {
            // 20 failures within one second (or across one tick of it): at most 2 lines.
            assert!(lines.len() <= 2, "{driver}: {lines:#?}");
        }
        thread::sleep(Duration::from_millis(1100));
        assert_eq!(p.get("/dead").status, 502);
        assert!(eventually(|| {
            warn_lines(&p, "upstream failed")
                .iter()
                .any(|l| l.contains("held_back=") && !l.contains("held_back=0"))
        }));

        // The next second: the two targets' keys share one of the limiter's 256 slots
        // once in a while (their ports are random), and a shared slot lets one line
        // through per second for both.
        thread::sleep(Duration::from_millis(1100));
        let r = p.get("/slow");
        assert_eq!(r.status, 504, "{driver}");
        assert!(eventually(|| warn_lines(&p, "upstream failed").iter().any(
            |l| l.contains("upstream=silent") && l.contains("status=504")
        )));
    }
}

#[test]
fn the_default_access_log_line_is_api_gateways_with_path_and_latency() {
    let origin = Origin::fixed(b"hello");
    for driver in DRIVERS {
        let dir = temp_dir("default-log");
        let log = dir.join("access.log");
        let yaml = proxy_config(origin.addr, 1).replace(
            "  limits:",
            &format!("  access_log: {{ path: \"{}\" }}\n  limits:", log.display()),
        );
        let p = Portico::start(&yaml, driver);
        let r = p.get("/items/7?x=1");
        assert_eq!(r.status, 200);
        let id = r.header("x-amzn-RequestId").unwrap().to_string();
        let mut line = String::new();
        assert!(eventually(|| {
            line = std::fs::read_to_string(&log).unwrap_or_default();
            !line.is_empty()
        }));
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = [
            "requestId",
            "ip",
            "requestTime",
            "httpMethod",
            "routeKey",
            "status",
            "protocol",
            "responseLength",
            "path",
            "responseLatency",
        ];
        want.sort_unstable(); // serde_json's map is sorted
        assert_eq!(keys, want, "{driver}: {line}");
        assert_eq!(v["requestId"], id.as_str());
        assert_eq!(v["ip"], "127.0.0.1");
        assert!(v["requestTime"].as_str().unwrap().ends_with(" +0000"));
        assert_eq!(v["httpMethod"], "GET");
        assert_eq!(v["routeKey"], "$default");
        assert_eq!(v["status"], "200");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["responseLength"], "5");
        assert_eq!(v["path"], "/items/7");
        assert!(v["responseLatency"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok());
    }
}

fn assert_date_and_server(r: &Response, server: &str, what: &str) {
    let dates: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
        .collect();
    assert_eq!(dates.len(), 1, "{what}: one Date: {:?}", r.headers);
    let date = &dates[0].1;
    assert!(
        date.len() == 29 && date.ends_with(" GMT") && date.as_bytes()[3] == b',',
        "{what}: {date}"
    );
    let servers: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("server"))
        .collect();
    assert_eq!(servers.len(), 1, "{what}: one Server: {:?}", r.headers);
    assert_eq!(servers[0].1, server, "{what}");
}

#[test]
fn answers_carry_date_and_server() {
    let origin = Origin::start(|req, s| {
        if req.target == "/own" {
            common::respond(
                s,
                200,
                &[
                    ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                    ("Server", "origin"),
                ],
                b"x",
            );
        } else {
            common::respond(s, 200, &[], b"x");
        }
        true
    });
    for driver in DRIVERS {
        let yaml = proxy_config(origin.addr, 1).replace(
            "      \"$default\":",
            "      \"GET /mock\":\n        integration: { type: mock, body: hi }\n      \"$default\":",
        );
        let p = Portico::start(&yaml, driver);
        assert_date_and_server(&p.get("/mock"), "portico", "mock");
        assert_date_and_server(&p.get("/plain"), "portico", "proxied without its own");
        let own = p.get("/own");
        assert_date_and_server(&own, "origin", "proxied with its own");
        assert_eq!(own.header("date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));

        // The gateway's own answers, including ones for requests that never parsed.
        let yaml404 = yaml.replace("      \"$default\":\n        integration: { type: http, upstream: origin, timeout: 2s }\n", "");
        drop(p);
        let p = Portico::start(&yaml404, driver);
        let r = p.get("/nope");
        assert_eq!(r.status, 404, "{driver}");
        assert_date_and_server(&r, "portico", "404");
        let r = p.raw(b"BAD\r\n\r\n");
        assert_eq!(r.status, 400);
        assert_date_and_server(&r, "portico", "400");
        let mut s = p.connect();
        s.write_all(b"HEAD /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let r = read_response(&mut BufReader::new(s), true).unwrap();
        assert_date_and_server(&r, "portico", "HEAD 404");
    }
}
