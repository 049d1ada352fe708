//! Access-log lines (and counts) for requests whose head never became a request:
//! - a head that does not parse has `-` for its protocol, as for its method and path
//!   (it logged the previous request's HTTP/1.0 on a kept-alive connection, or HTTP/1.1
//!   for `HTTP/2.0`); a TRACE's 405, whose head parses whole, has its method;
//! - a connection that sends nothing within `header_timeout` is closed silently, with
//!   no line and no 408 counted (as nginx does; a 408 on every preconnect and scan);
//! - part of a head and then the client's close is a 400 line (nginx's), where it left
//!   no line at all; part of a head and then silence is still a 408.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use common::*;

const FORMAT: &str = r#"{"m":"$context.httpMethod","p":"$context.protocol","s":"$context.status","n":"$context.responseLength","l":"$context.responseLatency","t":"$context.requestTimeEpoch"}"#;

/// A line without its `t` (the request's time, which moves from run to run), and `t`.
fn timeless(line: &str) -> (String, u64) {
    let (rest, t) = line.rsplit_once(r#","t":""#).expect(line);
    let t = t.trim_end_matches(r#""}"#).parse().expect(line);
    (format!("{rest}}}"), t)
}

/// A line without its `l` (the latency, which a loaded machine stretches), and `l`.
fn latency_free(line: &str) -> (String, u64) {
    let (rest, l) = line.rsplit_once(r#","l":""#).expect(line);
    let (l, after) = l.split_once('"').expect(line);
    (format!("{rest}{after}"), l.parse().expect(line))
}

fn start(driver: &str) -> (Portico, std::path::PathBuf, std::net::SocketAddr) {
    let dir = temp_dir("access-log-heads");
    let log = dir.join("access.log");
    let admin = free_port();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 1s, idle_timeout: 5s }}
  access_log: {{ path: "{}", format: '{FORMAT}' }}
admin: {{ listen: "127.0.0.1:{admin}" }}
state_dir: "{}"
apis:
  a:
    stages: {{ $default: {{}} }}
    routes:
      "GET /m": {{ integration: {{ type: mock, body: "ok" }} }}
"#,
        log.display(),
        dir.join("state").display()
    );
    let p = Portico::start(&yaml, driver);
    (p, log, ([127, 0, 0, 1], admin).into())
}

fn lines(log: &std::path::Path, want: usize) -> Vec<String> {
    let text = || std::fs::read_to_string(log).unwrap_or_default();
    eventually(|| text().lines().count() >= want);
    text().lines().map(String::from).collect()
}

#[test]
fn a_head_that_does_not_parse_has_no_protocol() {
    for driver in DRIVERS {
        let (p, log, _) = start(driver);
        let mut s = p.connect();
        s.write_all(b"GET /m HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        assert_eq!(
            read_response(&mut r, false).unwrap().status,
            200,
            "{driver}"
        );
        s.write_all(b"GET /m HTTP/1.1\r\nBad Header\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_response(&mut r, false).unwrap().status,
            400,
            "{driver}"
        );
        let mut s = p.connect();
        s.write_all(b"GET /m HTTP/2.0\r\nHost: x\r\n\r\n").unwrap();
        let answer = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(answer.starts_with(b"HTTP/1.1 505"), "{driver}: {answer:?}");
        // A TRACE's head parses whole: its 405 is logged with its method (it had `-`).
        let mut s = p.connect();
        s.write_all(b"TRACE /m HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let answer = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(answer.starts_with(b"HTTP/1.1 405"), "{driver}: {answer:?}");
        let got = lines(&log, 4);
        assert!(
            got[3].starts_with(r#"{"m":"TRACE","#) && got[3].contains(r#""s":"405""#),
            "{driver}: {got:?}"
        );
        let (line, l) = latency_free(&timeless(&got[0]).0);
        assert_eq!(
            line, r#"{"m":"GET","p":"HTTP/1.0","s":"200","n":"2"}"#,
            "{driver}"
        );
        assert!(l < 1000, "{driver}: {got:?}");
        assert!(
            got[1].starts_with(r#"{"m":"-","p":"-","s":"400""#),
            "{driver}: {got:?}"
        );
        assert!(
            got[2].starts_with(r#"{"m":"-","p":"-","s":"505""#),
            "{driver}: {got:?}"
        );
    }
}

#[test]
fn silence_closes_quietly_and_a_cut_head_is_a_400() {
    for driver in DRIVERS {
        let (p, log, admin) = start(driver);
        // Nothing at all: closed after header_timeout, nothing written, logged or counted.
        let mut silent = p.connect();
        let got = read_until_closed(&mut silent, Duration::from_secs(5));
        assert!(got.is_empty(), "{driver}: {got:?}");
        // Part of a head, then silence: 408 as before.
        let mut slow = p.connect();
        let sent = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        slow.write_all(b"GET /m HT").unwrap();
        let got = read_until_closed(&mut slow, Duration::from_secs(5));
        assert!(got.starts_with(b"HTTP/1.1 408"), "{driver}: {got:?}");
        // Part of a head, then the client's close: a 400 line.
        let mut cut = p.connect();
        cut.write_all(b"GET /m HT").unwrap();
        cut.shutdown(Shutdown::Write).unwrap();
        let got = read_until_closed(&mut cut, Duration::from_secs(5));
        assert!(got.is_empty(), "{driver}: {got:?}");
        let got = lines(&log, 2);
        std::thread::sleep(Duration::from_millis(300));
        let got_now = lines(&log, 2);
        assert_eq!(got_now.len(), 2, "{driver}: {got:?} {got_now:?}");
        assert!(
            got_now[0].starts_with(r#"{"m":"-","p":"-","s":"408""#),
            "{driver}: {got_now:?}"
        );
        // Its head began `header_timeout` (1 s) before its answer, not at it: its
        // latency says so, and so does its time (stamped at the answer, it was 1 s late).
        let (slow_line, began) = timeless(&got_now[0]);
        let slow = latency_free(&slow_line).1;
        assert!((1000..1500).contains(&slow), "{driver}: {got_now:?}");
        assert!(
            began.abs_diff(sent) < 400,
            "{driver}: began {began}, sent {sent}"
        );
        let (line, l) = latency_free(&timeless(&got_now[1]).0);
        assert_eq!(line, r#"{"m":"-","p":"-","s":"400","n":"0"}"#, "{driver}");
        assert!(l < 1000, "{driver}: {got_now:?}");
        let m = admin_metrics(admin);
        assert!(m.contains("status=\"408\"} 1"), "{driver}: {m}");
        assert!(m.contains("status=\"400\"} 1"), "{driver}: {m}");
        // The duration histogram counts them too: its count is the request total.
        assert!(
            m.contains("portico_request_duration_seconds_count{api=\"\",stage=\"\",route=\"\"} 2"),
            "{driver}: {m}"
        );
    }
}

fn admin_metrics(addr: std::net::SocketAddr) -> String {
    admin(addr, "GET", "/metrics", None, None).text()
}
