//! A backend whose body breaks after its head went out: closed before its Content-Length,
//! stalled past the integration timeout, broken chunk framing. The client sees the cut
//! (the bytes that came, no last chunk, then a close: never a hang) and the failure is
//! not silent: the access log's `$context.integration.error` (API Gateway's other
//! name for it, `$context.integrationErrorMessage`, too) says what happened,
//! `portico_upstream_requests_total` counts it as error or timeout, and a warn line
//! names the target, as nginx logs "upstream prematurely closed connection while reading
//! upstream". Under both drivers.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

fn cutting_origin() -> Origin {
    Origin::start(|req, s| {
        let partial: &[u8] = match req.target.as_str() {
            "/short" => b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
            "/stall" | "/badchunk" => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"
            }
            "/headalone" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            _ => {
                respond(s, 200, &[], b"whole");
                return true;
            }
        };
        let _ = s.write_all(partial);
        match req.target.as_str() {
            // Well past the route's 1 s timeout; the connection then closes.
            "/stall" => std::thread::sleep(Duration::from_secs(6)),
            "/badchunk" | "/headalone" => {
                // After the head (and the first chunk) went out to the client: in the
                // read that brought the head, bad framing is a 502.
                std::thread::sleep(Duration::from_millis(500));
                let _ = s.write_all(b"zz\r\n");
                std::thread::sleep(Duration::from_millis(300));
            }
            _ => {}
        }
        false
    })
}

fn config(origin: std::net::SocketAddr, log: &std::path::Path, admin: u16) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  access_log: {{ path: "{log}", format: '$context.path $context.status $context.responseLength [$context.integration.error]$context.integrationErrorMessage' }}
admin: {{ listen: "127.0.0.1:{admin}" }}
upstreams:
  origin: {{ targets: ["{origin}"], connect_timeout: 1s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "$default": {{ integration: {{ type: http, upstream: origin, timeout: 1s }} }}
"#,
        log = log.display(),
    )
}

/// The request's whole exchange, until Portico closes the connection.
fn exchange(p: &Portico, path: &str) -> (String, Duration) {
    let mut s = p.connect();
    let started = Instant::now();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(20));
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_body_the_backend_cuts_short_is_cut_for_the_client_and_reported() {
    let origin = cutting_origin();
    for driver in DRIVERS {
        let dir = temp_dir("body-cut");
        let log = dir.join("access.log");
        let admin = free_port();
        let p = Portico::start(&config(origin.addr, &log, admin), driver);

        let (short, _) = exchange(&p, "/short");
        assert!(
            short.starts_with("HTTP/1.1 200") && short.contains("content-length: 10"),
            "{driver}: {short}"
        );
        assert!(short.ends_with("\r\n\r\nabc"), "{driver}: {short:?}");

        let (stall, took) = exchange(&p, "/stall");
        assert!(stall.starts_with("HTTP/1.1 200"), "{driver}: {stall}");
        assert!(
            stall.ends_with("3\r\nabc\r\n"),
            "{driver}: no last chunk: {stall:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{driver}: closed after {took:?}"
        );

        let (bad, _) = exchange(&p, "/badchunk");
        assert!(bad.ends_with("3\r\nabc\r\n"), "{driver}: {bad:?}");

        // The worker goes on serving on a new backend connection.
        assert_eq!(p.get("/whole").text(), "whole", "{driver}");

        let lines = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            eventually(|| lines().lines().count() >= 4),
            "{driver}: {}",
            lines()
        );
        let text = lines();
        let line = |path: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{path} ")))
                .unwrap_or_else(|| panic!("{driver}: no line for {path}: {text}"))
                .to_string()
        };
        assert_eq!(
            line("/short"),
            "/short 200 3 [upstream closed mid-body]upstream closed mid-body",
            "{driver}"
        );
        assert!(
            line("/stall").starts_with("/stall 200 3 [") && line("/stall").contains("timeout"),
            "{driver}: {}",
            line("/stall")
        );
        assert!(
            line("/badchunk").contains("[bad chunked body from upstream]"),
            "{driver}: {}",
            line("/badchunk")
        );
        assert_eq!(line("/whole"), "/whole 200 5 [-]-", "{driver}");

        let admin_addr = format!("127.0.0.1:{admin}").parse().unwrap();
        let error = "portico_upstream_requests_total{upstream=\"origin\",outcome=\"error\"} 2\n";
        let timeout =
            "portico_upstream_requests_total{upstream=\"origin\",outcome=\"timeout\"} 1\n";
        let metrics = metrics_when(admin_addr, |t| t.contains(error) && t.contains(timeout));
        assert!(
            metrics.contains(error) && metrics.contains(timeout),
            "{driver}: {}",
            metrics
                .lines()
                .filter(|l| l.starts_with("portico_upstream_requests_total"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let log_text = p.log_text();
        assert!(
            log_text.contains("upstream failed after the response head was relayed"),
            "{driver}: {log_text}"
        );
    }
}

/// A chunked head that comes alone goes to the client at once (an event stream's head is
/// not held for its first event): framing that breaks later is a cut, no 502 (HTTP-FRAMING
/// rule 12).
#[test]
fn a_chunked_head_that_came_alone_is_relayed_and_a_later_bad_chunk_cuts() {
    let origin = cutting_origin();
    for driver in DRIVERS {
        let dir = temp_dir("body-cut-head");
        let p = Portico::start(
            &config(origin.addr, &dir.join("access.log"), free_port()),
            driver,
        );
        let (got, took) = exchange(&p, "/headalone");
        assert!(got.starts_with("HTTP/1.1 200"), "{driver}: {got}");
        assert!(
            got.ends_with("\r\n\r\n"),
            "{driver}: head only, no last chunk: {got:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{driver}: closed after {took:?}"
        );
    }
}
