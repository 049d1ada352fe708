//! Throttling, API keys and quotas end to end: 2 workers, real connections, real
//! restarts (SIGTERM and kill -9), under both drivers.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;

const RATE: f64 = 200.0;
const BURST: f64 = 100.0;
const RUN: Duration = Duration::from_secs(2);

fn throttle_config() -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ drain_timeout: 2s }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /limited":
        integration: {{ type: mock, status: 200, body: "ok" }}
        throttle: {{ rate: {RATE}, burst: {BURST} }}
"#
    )
}

/// `conns` keep-alive connections send as fast as answered for `RUN`; returns
/// (admitted, elapsed seconds, a 429 seen).
fn hammer(addr: SocketAddr, conns: usize) -> (u64, f64, Option<Response>) {
    let admitted = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(conns + 1));
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (admitted, start) = (admitted.clone(), start.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut refused = None;
                start.wait();
                let end = Instant::now() + RUN;
                while Instant::now() < end {
                    let r = c.send(b"GET /limited HTTP/1.1\r\nHost: t\r\n\r\n");
                    match r.status {
                        200 => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        429 => refused = Some(r),
                        s => panic!("unexpected status {s}"),
                    }
                }
                refused
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let refused = threads.into_iter().filter_map(|t| t.join().unwrap()).last();
    (
        admitted.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
        refused,
    )
}

#[test]
fn route_limit_admits_rate_times_t_plus_burst_from_many_and_one_connection() {
    for driver in DRIVERS {
        let p = Portico::start(&throttle_config(), driver);
        for conns in [32, 1] {
            let (admitted, t, refused) = hammer(p.addr, conns);
            let expected = RATE * t + BURST;
            let err = (admitted as f64 - expected).abs() / expected;
            eprintln!("{driver}, {conns} connection(s): admitted {admitted} in {t:.2}s, expected {expected:.0}");
            assert!(
                err <= 0.05,
                "{driver}, {conns} connection(s): admitted {admitted} in {t:.2}s, expected {expected:.0} ± 5%"
            );
            let r = refused.expect("some requests were throttled");
            assert_eq!(r.json_message(), "Too Many Requests");
            let kind = r.header("x-amzn-errortype");
            assert_eq!(kind, Some("TooManyRequestsException"));
            let wait: u64 = r
                .header("retry-after")
                .expect("retry-after")
                .parse()
                .unwrap();
            assert!((1..=2).contains(&wait), "retry-after {wait}");
            // The bucket refills to its burst before the next round.
            std::thread::sleep(Duration::from_secs_f64(1.5 * BURST / RATE));
        }
        assert!(p.stop().success());
    }
}

const K1: &str = "key-one-0123456789abcdef";
const K2: &str = "key-two-0123456789abcdef";
const TOKEN: &str = "test-admin-token";

fn quota_config(state: &Path, admin_port: u16) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ drain_timeout: 2s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /q":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  daily: {{ quota: {{ limit: 50, period: day }} }}
api_keys:
  - {{ name: k1, value: "{K1}", plan: daily }}
  - {{ name: k2, value: "{K2}", plan: daily }}
"#,
        state = state.display()
    )
}

/// Sends `n` requests with `key`, each on its own connection so that both workers see
/// them; returns how many were admitted. Every refusal must be "Limit Exceeded".
fn spend(addr: SocketAddr, key: &str, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let r = get_with_key(addr, "/q", Some(key));
        match r.status {
            200 => ok += 1,
            429 => {
                assert_eq!(r.json_message(), "Limit Exceeded");
                let kind = r.header("x-amzn-errortype");
                assert_eq!(kind, Some("LimitExceededException"));
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    ok
}

fn used_today(admin_addr: SocketAddr, key: &str) -> u64 {
    let r = admin(
        admin_addr,
        "GET",
        &format!("/usage?plan=daily&key={key}"),
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["usagePlanId"], "daily");
    assert_eq!(v["startDate"], v["endDate"]);
    let day = &v["items"][key][0];
    assert_eq!(
        day[0].as_u64().unwrap() + day[1].as_u64().unwrap(),
        50,
        "{v}"
    );
    day[0].as_u64().unwrap()
}

#[test]
fn daily_quota_is_exact_across_workers_and_survives_restart_and_kill9() {
    for driver in DRIVERS {
        let state = temp_dir("state");
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let config = quota_config(&state, admin_port);

        let p = Portico::start(&config, driver);
        assert_eq!(spend(p.addr, K1, 60), 50, "{driver}: exactly the quota");
        assert_eq!(used_today(admin_addr, "k1"), 50);
        assert!(p.stop().success(), "{driver}: clean stop");

        // After a clean restart k1 is still spent; k2 is spent now, then a crash
        // more than a second later.
        let p = Portico::start(&config, driver);
        assert_eq!(
            spend(p.addr, K1, 3),
            0,
            "{driver}: k1 after SIGTERM + restart"
        );
        assert_eq!(spend(p.addr, K2, 55), 50, "{driver}: k2");
        std::thread::sleep(Duration::from_millis(1300));
        p.kill9();

        let p = Portico::start(&config, driver);
        assert_eq!(spend(p.addr, K1, 3), 0, "{driver}: k1 after kill -9");
        assert_eq!(spend(p.addr, K2, 3), 0, "{driver}: k2 after kill -9");
        assert_eq!(used_today(admin_addr, "k1"), 50);
        assert_eq!(used_today(admin_addr, "k2"), 50);
        assert!(p.stop().success());
        let _ = std::fs::remove_dir_all(&state);
    }
}

#[test]
fn missing_wrong_and_out_of_plan_keys_get_403() {
    let state = temp_dir("state");
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
state_dir: "{}"
apis:
  app:
    stages:
      $default: {{}}
      beta: {{}}
    routes:
      "GET /secret":
        integration: {{ type: mock, status: 200, body: "secret" }}
        api_key_required: true
      "GET /open":
        integration: {{ type: mock, status: 200, body: "open" }}
usage_plans:
  prod_only: {{ stages: ["app/$default"] }}
api_keys:
  - {{ name: good, value: "the-good-key-0123456789", plan: prod_only }}
  - {{ name: free, value: "a-key-in-no-plan-0123456789" }}
"#,
        state.display()
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        for (path, key, status) in [
            ("/secret", None, 403),
            ("/secret", Some(""), 403),
            ("/secret", Some("the-wrong-key-0123456789"), 403),
            ("/secret", Some("the-good-key-012345678"), 403), // one character short
            ("/secret", Some("the-good-key-0123456789"), 200),
            ("/secret", Some("a-key-in-no-plan-0123456789"), 200),
            ("/beta/secret", Some("the-good-key-0123456789"), 403), // plan not on this stage
            ("/beta/secret", Some("a-key-in-no-plan-0123456789"), 200),
            ("/open", None, 200),
        ] {
            let r = get_with_key(p.addr, path, key);
            assert_eq!(r.status, status, "{driver} {path} {key:?}: {}", r.text());
            if status == 403 {
                assert_eq!(r.json_message(), "Forbidden");
                assert_eq!(r.header("content-type"), Some("application/json"));
                assert_eq!(r.header("x-amzn-errortype"), Some("ForbiddenException"));
            }
        }
        // A refused request keeps the connection usable.
        let mut c = Client::connect(p.addr);
        assert_eq!(
            c.send(b"GET /secret HTTP/1.1\r\nHost: t\r\n\r\n").status,
            403
        );
        let ok = c
            .send(b"GET /secret HTTP/1.1\r\nHost: t\r\nX-Api-Key: the-good-key-0123456789\r\n\r\n");
        assert_eq!(ok.text(), "secret");
        assert!(p.stop().success());
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// `conns` connections each send `per_conn` pipelined requests (500 in flight at a time);
/// returns (answered 200, answered 429, seconds taken).
fn pipelined_burst(addr: SocketAddr, conns: usize, per_conn: usize) -> (u64, u64, f64) {
    const DEPTH: usize = 500;
    let t0 = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            std::thread::spawn(move || {
                let mut writer = std::net::TcpStream::connect(addr).unwrap();
                let mut reader = std::io::BufReader::new(writer.try_clone().unwrap());
                let (mut ok, mut throttled) = (0u64, 0u64);
                let mut left = per_conn;
                while left > 0 {
                    let n = left.min(DEPTH);
                    let batch = b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n".repeat(n);
                    std::io::Write::write_all(&mut writer, &batch).unwrap();
                    for _ in 0..n {
                        match read_response(&mut reader, false).unwrap().status {
                            200 => ok += 1,
                            429 => throttled += 1,
                            s => panic!("unexpected status {s}"),
                        }
                    }
                    left -= n;
                }
                (ok, throttled)
            })
        })
        .collect();
    let (mut ok, mut throttled) = (0, 0);
    for t in threads {
        let (o, r) = t.join().unwrap();
        ok += o;
        throttled += r;
    }
    (ok, throttled, t0.elapsed().as_secs_f64())
}

/// No account-wide limit unless asked for: 40,000 requests sent faster than API Gateway's
/// account default (10,000 r/s, burst 5,000) admits are all answered 200 with no
/// `server.throttle` and with `throttle: off`; the same load with that default written out
/// gets 429s, which shows the load is heavy enough to tell.
#[test]
fn no_account_wide_limit_by_default_and_throttle_off() {
    for driver in DRIVERS {
        for (server_throttle, limited) in [
            ("", false),
            ("  throttle: off\n", false),
            ("  throttle: { rate: 10000, burst: 5000 }\n", true),
        ] {
            let yaml = format!(
                "server:\n  listen: [\"127.0.0.1:{{PORT}}\"]\n  workers: 2\n{server_throttle}apis:\n  app:\n    stages: {{ $default: {{ throttle: off }} }}\n    routes:\n      \"GET /open\": {{ integration: {{ type: mock, status: 200, body: ok }}, throttle: off }}\n"
            );
            let p = Portico::start(&yaml, driver);
            let (ok, throttled, secs) = pipelined_burst(p.addr, 4, 10_000);
            eprintln!("{driver} {server_throttle:?}: {ok} ok, {throttled} throttled in {secs:.2}s");
            if limited {
                assert!(
                    throttled > 0,
                    "{driver}: 40,000 requests in {secs:.2}s should exceed 10,000/s + 5,000"
                );
            } else {
                assert_eq!((ok, throttled), (40_000, 0), "{driver} {server_throttle:?}");
            }
            assert!(p.stop().success());
        }
    }
}

/// A burst of 1 at a rate whose interval is not a whole number of nanoseconds (7/s is
/// 142,857,142.86 ns) admits one request per interval, at every level: it used to admit
/// nothing, ever, because the bucket's capacity came out a fraction of a token short.
/// A 429 says when to come back (`retry-after`), unless the rate is 0.
#[test]
fn a_burst_of_one_admits_one_request_per_interval() {
    const KEY: &str = "burst-one-key-0123456789";
    let state = temp_dir("state");
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
state_dir: "{}"
apis:
  app:
    stages:
      $default: {{}}
      slow: {{ throttle: {{ rate: 7, burst: 1 }} }}
    routes:
      "GET /route":
        integration: {{ type: mock, status: 200, body: "ok" }}
        throttle: {{ rate: 7, burst: 1 }}
      "GET /stage":
        integration: {{ type: mock, status: 200, body: "ok" }}
      "GET /key":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
      "GET /closed":
        integration: {{ type: mock, status: 200, body: "ok" }}
        throttle: {{ rate: 0, burst: 5 }}
      "GET /no-burst":
        integration: {{ type: mock, status: 200, body: "ok" }}
        throttle: {{ rate: 1000, burst: 0 }}
usage_plans:
  one: {{ throttle: {{ rate: 7, burst: 1 }} }}
api_keys:
  - {{ name: k, value: "{KEY}", plan: one }}
"#,
        state.display()
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        for path in ["/route", "/slow/stage", "/key"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nx-api-key: {KEY}\r\n\r\n");
            // Three times the interval apart: the bucket is full for each.
            for i in 0..4 {
                let r = send_to(p.addr, request.as_bytes());
                assert_eq!(r.status, 200, "{driver} {path} #{i}: {}", r.text());
                std::thread::sleep(Duration::from_millis(430));
            }
            // Two at once (pipelined, so microseconds apart): the second finds the
            // bucket empty.
            let mut s = p.connect();
            std::io::Write::write_all(&mut s, request.repeat(2).as_bytes()).unwrap();
            let mut reader = std::io::BufReader::new(s);
            let first = read_response(&mut reader, false).unwrap();
            assert_eq!(first.status, 200, "{driver} {path}");
            let r = read_response(&mut reader, false).unwrap();
            assert_eq!(r.status, 429, "{driver} {path}");
            assert_eq!(r.json_message(), "Too Many Requests");
            assert_eq!(r.header("retry-after"), Some("1"), "{driver} {path}");
            std::thread::sleep(Duration::from_millis(430));
        }
        // `rate: 0` never refills: refused with no time to come back at.
        // Nor does `burst: 0`, a bucket that holds nothing, whatever its rate.
        for path in ["/closed", "/no-burst", "/no-burst"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
            let r = send_to(p.addr, request.as_bytes());
            assert_eq!(r.status, 429, "{driver} {path}: {}", r.text());
            assert_eq!(r.header("retry-after"), None, "{driver}: {:?}", r.headers);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(p.stop().success());
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// A reload that changes a plan's quota but not its throttle leaves each key's throttle
/// bucket as it was (README, Hot reload): it was rebuilt full, so raising a quota by one
/// gave every key its burst back. A throttle centuries deep holds its whole burst: the
/// depth was capped at 2^62 ns, and `rate: 1e-9, burst: 10` admitted 4.
#[test]
fn a_reload_of_a_plans_quota_keeps_its_throttle_bucket_and_slow_buckets_hold_their_burst() {
    const KEY: &str = "plan-reload-key-0123456789";
    let state = temp_dir("state");
    let admin_port = free_port();
    let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
state_dir: "{}"
admin: {{ listen: "127.0.0.1:{admin_port}", token: "{TOKEN}" }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /key":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
      "GET /slow":
        integration: {{ type: mock, status: 200, body: "ok" }}
        throttle: {{ rate: 0.000000001, burst: 10 }}
usage_plans:
  p: {{ throttle: {{ rate: 0.001, burst: 2 }}, quota: {{ limit: 100, period: day }} }}
api_keys:
  - {{ name: k, value: "{KEY}", plan: p }}
"#,
        state.display()
    );
    for driver in DRIVERS {
        let p = Portico::start(&config, driver);
        // Each on its own connection, so both workers serve some.
        let statuses = |path: &str, n: usize| -> Vec<u16> {
            (0..n)
                .map(|_| get_with_key(p.addr, path, Some(KEY)).status)
                .collect()
        };
        assert_eq!(statuses("/key", 3), [200, 200, 429], "{driver}");
        let raised = config.replace("limit: 100", "limit: 101");
        std::fs::write(
            &p.config,
            raised.replace("{PORT}", &p.addr.port().to_string()),
        )
        .unwrap();
        let r = admin(admin_addr, "POST", "/reload", Some(TOKEN), None);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(
            statuses("/key", 2),
            [429, 429],
            "{driver}: refilled by the reload"
        );

        let mut slow = statuses("/slow", 11);
        assert_eq!(slow.pop(), Some(429), "{driver}");
        assert_eq!(slow, [200; 10], "{driver}: the whole burst");
        assert!(p.stop().success());
    }
    let _ = std::fs::remove_dir_all(&state);
}
