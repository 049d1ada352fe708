//! Operating Portico: hot reload (SIGHUP), reloads under load that drop nothing, and
//! listeners added and removed by a reload.

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn mock_config(routes: &[(&str, &str)], listen: &[u16]) -> String {
    let listen: Vec<String> = listen
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let mut y = format!(
        "server:\n  listen: [{}]\n  workers: 2\n  limits: {{ idle_timeout: 5s, drain_timeout: 5s }}\napis:\n  app:\n    stages:\n      $default: {{}}\n    routes:\n",
        listen.join(", ")
    );
    for (key, body) in routes {
        y.push_str(&format!("      \"{key}\":\n        integration: {{ type: mock, status: 200, body: \"{body}\" }}\n"));
    }
    y
}

/// Rewrites the running config file and sends SIGHUP; waits until `check` passes.
fn reload_with(p: &Portico, yaml: &str, check: impl Fn() -> bool) {
    std::fs::write(&p.config, yaml).unwrap();
    p.signal(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "reload not visible: {}",
            p.log_text()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_running_config() {
    for driver in DRIVERS {
        let port = free_port();
        let p = Portico::start_at(
            &mock_config(&[("GET /a", "a1"), ("GET /b", "b1")], &[port]),
            driver,
            port,
        );
        assert_eq!(p.get("/b").text(), "b1");

        // /b removed, /a changed: both visible right after the reload.
        reload_with(&p, &mock_config(&[("GET /a", "a2")], &[port]), || {
            p.get("/a").text() == "a2"
        });
        assert_eq!(
            p.get("/b").status,
            404,
            "{driver}: removed route still served"
        );

        // An invalid file: the old config keeps serving and the log names the error.
        std::fs::write(
            &p.config,
            "server:\n  listen: [\"127.0.0.1:1\"]\napis:\n  app:\n    nope: 1\n",
        )
        .unwrap();
        p.signal(1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !p.log_text().contains("reload refused") {
            assert!(
                Instant::now() < deadline,
                "no refusal logged: {}",
                p.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
        assert!(
            p.log_text().contains("apis.app: unknown key \"nope\""),
            "{}",
            p.log_text()
        );
        assert_eq!(
            p.get("/a").text(),
            "a2",
            "{driver}: old config must stay after a bad reload"
        );

        // An empty file (one caught half-written) is refused too, not applied as a
        // config of defaults that drops every API and moves the listener.
        std::fs::write(&p.config, "\n# nothing yet\n").unwrap();
        p.signal(1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !p.log_text().contains("the config is empty") {
            assert!(Instant::now() < deadline, "{}", p.log_text());
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(p.get("/a").text(), "a2", "{driver}: after an empty file");
    }
}

#[test]
fn watch_reloads_a_file_renamed_over_the_config_even_with_its_old_mtime() {
    for driver in DRIVERS {
        let port = free_port();
        let watched =
            |body: &str| format!("watch: true\n{}", mock_config(&[("GET /a", body)], &[port]));
        let p = Portico::start_at(&watched("one"), driver, port);
        assert_eq!(p.get("/a").text(), "one");
        let old_mtime = std::fs::metadata(&p.config).unwrap().modified().unwrap();
        // As `cp -p new tmp && mv tmp config`: a new file, the old file's mtime, the
        // same length.
        let tmp = p.config.with_extension("tmp");
        std::fs::write(&tmp, watched("two")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(old_mtime)
            .unwrap();
        std::fs::rename(&tmp, &p.config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while p.get("/a").text() != "two" {
            assert!(
                Instant::now() < deadline,
                "{driver}: the rename was not noticed"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn reload_adds_and_removes_listeners_without_touching_kept_ones() {
    for driver in DRIVERS {
        let (first, second) = (free_port(), free_port());
        let p = Portico::start_at(&mock_config(&[("GET /a", "x")], &[first]), driver, first);
        let open = |port: u16| {
            let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let r = BufReader::new(s.try_clone().unwrap());
            (s, r)
        };
        let ask = |(s, r): &mut (TcpStream, BufReader<TcpStream>)| {
            s.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            read_response(r, false).unwrap().status
        };
        // A keep-alive connection on a kept listener survives the reloads.
        let mut on_first = open(first);
        assert_eq!(ask(&mut on_first), 200);
        reload_with(
            &p,
            &mock_config(&[("GET /a", "x")], &[first, second]),
            || TcpStream::connect(("127.0.0.1", second)).is_ok(),
        );
        assert_eq!(ask(&mut on_first), 200, "{driver}");
        let mut on_second = open(second);
        assert_eq!(ask(&mut on_second), 200, "{driver}");
        reload_with(&p, &mock_config(&[("GET /a", "x")], &[second]), || {
            TcpStream::connect(("127.0.0.1", first)).is_err()
        });
        assert_eq!(ask(&mut on_second), 200, "{driver}");
        // A removed listener's idle connections close (the port no longer serves, as
        // after nginx's reload): the client reads the end, without asking, well before
        // the 5 s idle_timeout would close it.
        let two_seconds = Some(Duration::from_secs(2));
        on_first.0.set_read_timeout(two_seconds).unwrap();
        let mut rest = Vec::new();
        let end = std::io::Read::read_to_end(&mut on_first.1, &mut rest);
        assert!(
            matches!(end, Ok(0)),
            "{driver}: {end:?} {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

#[test]
fn twenty_reloads_under_load_fail_no_request() {
    let origin = Origin::fixed(b"from-origin");
    for driver in DRIVERS {
        let port = free_port();
        // Load past the account-wide default throttle (10,000 r/s) is not what this
        // tests: lift it (a rate of 1e9 or more is no limit).
        let config_a = proxy_config(origin.addr, 2)
            .replace("{PORT}", &port.to_string())
            .replace(
                "  limits:",
                "  throttle: { rate: 1000000000, burst: 1 }\n  limits:",
            );
        // The same traffic served through a differently shaped config.
        let config_b = config_a.replace("timeout: 2s }", "timeout: 3s }\n      \"GET /extra\":\n        integration: { type: mock, status: 200, body: extra }");
        assert_ne!(config_a, config_b);
        let p = Portico::start_at(&config_a, driver, port);
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let clients: Vec<_> = (0..50)
            .map(|_| {
                let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), p.addr);
                thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    while !stop.load(Ordering::Relaxed) {
                        // A breath between requests keeps 50 connections busy without
                        // starving the test's own thread on a 2-core machine.
                        thread::sleep(Duration::from_millis(1));
                        let sent = s.write_all(b"GET /load HTTP/1.1\r\nHost: t\r\n\r\n");
                        match sent.and_then(|_| read_response(&mut r, false)) {
                            Ok(resp) if resp.status == 200 && resp.body == b"from-origin" => {
                                ok.fetch_add(1, Ordering::Relaxed)
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        };
                    }
                })
            })
            .collect();
        for i in 0..20 {
            std::fs::write(&p.config, if i % 2 == 0 { &config_b } else { &config_a }).unwrap();
            p.signal(1);
            // Each reload done before the next signal: on a loaded machine a reload can
            // outlast 100 ms, and two signals during one are one reload after it.
            let done = |n: usize| p.log_text().matches("config reloaded").count() > n;
            assert!(eventually(|| done(i)), "{driver}: reload {i}");
            thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let log = p.log_text();
        assert_eq!(
            log.matches("config reloaded").count(),
            20,
            "{driver}: {log}"
        );
        assert_eq!(
            failed.load(Ordering::Relaxed),
            0,
            "{driver}: failed or reset requests"
        );
        assert!(
            ok.load(Ordering::Relaxed) > 500,
            "{driver}: too little traffic to mean anything"
        );
    }
}

fn read_lines_eventually(path: &std::path::Path, want: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // The writer may be part-way through a line as it is read: judge whole lines only.
        let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        let lines: Vec<serde_json::Value> = whole
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn access_log_lines_are_json_with_the_configured_fields_and_reopen_on_sigusr1() {
    let origin = Origin::fixed(b"hello");
    for driver in DRIVERS {
        let dir = std::env::temp_dir().join(format!("portico-log-{}-{driver}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        let format = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","ua":"$context.identity.userAgent","method":"$context.httpMethod","path":"$context.path","routeKey":"$context.routeKey","stage":"$context.stage","status":"$context.status","len":"$context.responseLength","latency":"$context.responseLatency","istatus":"$context.integrationStatus","err":"$context.error.message","type":"$context.error.responseType","time":"$context.requestTime","epoch":"$context.requestTimeEpoch","domain":"$context.domainName"}"#;
        let yaml = proxy_config(origin.addr, 2).replace(
            "  limits:",
            &format!(
                "  access_log: {{ path: \"{}\", format: '{format}' }}\n  limits:",
                log.display()
            ),
        );
        let p = Portico::start(&yaml, driver);
        let mut ids = std::collections::HashSet::new();
        for i in 0..20 {
            // A Host with a trailing dot names the same domain.
            let r = p.raw(format!("GET /p{i}?q=1 HTTP/1.1\r\nHost: t.example.:8443\r\nUser-Agent: agent \"x\"\r\nConnection: close\r\n\r\n").as_bytes());
            ids.insert(r.header("x-amzn-RequestId").unwrap().to_string());
        }
        // A gateway answer: no route for a bad request target is a 400 without a route.
        p.raw(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
        // A declared length over max_body_bytes: refused, but its head parsed whole.
        let r = p.raw(b"POST /big HTTP/1.1\r\nHost: t.example\r\nUser-Agent: up\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 413, "{driver}");
        let lines = read_lines_eventually(&log, 22);
        assert_eq!(lines.len(), 22, "{driver}: {lines:?}");
        let logged: std::collections::HashSet<_> = lines
            .iter()
            .filter_map(|l| l["requestId"].as_str().map(String::from))
            .collect();
        assert_eq!(logged.len(), 22, "request ids are unique");
        assert!(
            ids.is_subset(&logged),
            "the ids clients saw are the ones logged"
        );
        let first = lines
            .iter()
            .find(|l| l["path"] == "/p0")
            .expect("a line for /p0");
        assert_eq!(first["ip"], "127.0.0.1");
        assert_eq!(first["ua"], "agent \"x\"");
        assert_eq!(first["method"], "GET");
        assert_eq!(first["routeKey"], "$default");
        assert_eq!(first["stage"], "$default");
        assert_eq!(first["status"], "200");
        assert_eq!(first["len"], "5");
        assert_eq!(first["istatus"], "200");
        assert_eq!(first["err"], "-");
        assert_eq!(
            first["domain"], "t.example",
            "the Host without its port or dot"
        );
        assert!(first["time"].as_str().unwrap().ends_with(" +0000"));
        // Milliseconds since the epoch when the request began: this test's minute.
        let epoch: u128 = first["epoch"].as_str().unwrap().parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert!(epoch <= now && now - epoch < 60_000, "{epoch} vs {now}");
        let bad = lines
            .iter()
            .find(|l| l["status"] == "400")
            .expect("the 400 is logged");
        assert_eq!(bad["err"], "Bad Request");
        assert_eq!(bad["type"], "DEFAULT_4XX");
        // The body the client got: {"message":"Bad Request"}.
        assert_eq!(bad["len"], "25");
        let big = lines
            .iter()
            .find(|l| l["status"] == "413")
            .expect("the 413 is logged");
        assert_eq!(
            (&big["method"], &big["path"], &big["ua"], &big["domain"]),
            (
                &"POST".into(),
                &"/big".into(),
                &"up".into(),
                &"t.example".into()
            ),
            "{driver}: {big}"
        );

        // Rotation: move the file away, SIGUSR1, and new lines go to a new file.
        std::fs::rename(&log, dir.join("access.log.1")).unwrap();
        p.signal(10);
        thread::sleep(Duration::from_millis(300));
        p.get("/after");
        let lines = read_lines_eventually(&log, 1);
        assert_eq!(lines.len(), 1, "{driver}: reopened file");
        assert_eq!(lines[0]["path"], "/after");
        drop(p);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// One sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses Prometheus text format 0.0.4 strictly enough to catch malformed output:
/// every sample line is `name{labels} value`, every family has HELP and TYPE first.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed = std::collections::HashSet::new();
    let mut helped = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(!help.trim().is_empty(), "HELP without text: {line}");
            helped.insert(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_string();
            assert!(
                helped.contains(&name),
                "TYPE without HELP before it: {line}"
            );
            assert!(
                matches!(it.next(), Some("counter" | "gauge" | "histogram")),
                "{line}"
            );
            typed.insert(name);
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (
                n,
                l.strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels: {line}")),
            ),
            None => (series, ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(
            typed.contains(name) || typed.contains(family),
            "sample before its TYPE: {line}"
        );
        let labels = labels
            .split("\",")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label {l:?} in {line}"));
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        samples.push((name.to_string(), labels, value));
    }
    samples
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_what_was_sent() {
    let origin = Origin::fixed(b"ok");
    for driver in DRIVERS {
        let admin_port = free_port();
        let yaml = proxy_config(origin.addr, 2).replace(
            "upstreams:",
            &format!("admin: {{ listen: \"127.0.0.1:{admin_port}\" }}\nupstreams:"),
        );
        let p = Portico::start(&yaml, driver);
        for _ in 0..30 {
            assert_eq!(p.get("/m").status, 200);
        }
        for _ in 0..7 {
            assert_eq!(
                p.raw(b"GET /m HTTP/1.1\r\nConnection: close\r\n\r\n")
                    .status,
                400
            );
        }
        let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let r = admin(admin_addr, "GET", "/metrics", None, None);
        assert!(
            r.header("content-type").unwrap().starts_with("text/plain"),
            "{:?}",
            r.header("content-type")
        );
        let counted = |text: &str| -> f64 {
            parse_prometheus(text)
                .iter()
                .filter(|(n, _, _)| n == "portico_requests_total")
                .map(|(_, _, v)| v)
                .sum()
        };
        let samples = parse_prometheus(&metrics_when(admin_addr, |t| counted(t) >= 37.0));
        let value = |name: &str, want: &[(&str, &str)]| -> f64 {
            samples
                .iter()
                .filter(|(n, l, _)| {
                    n == name
                        && want
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, _, v)| v)
                .sum()
        };
        let route = [("api", "app"), ("stage", "$default"), ("route", "$default")];
        assert_eq!(
            value(
                "portico_requests_total",
                &[route[0], route[1], route[2], ("status", "200")]
            ),
            30.0,
            "{driver}"
        );
        assert_eq!(value("portico_requests_total", &[("status", "400")]), 7.0);
        assert_eq!(
            value("portico_request_duration_seconds_count", &route),
            30.0
        );
        assert_eq!(
            value("portico_integration_duration_seconds_count", &route),
            30.0
        );
        let inf = value(
            "portico_request_duration_seconds_bucket",
            &[route[0], route[1], route[2], ("le", "+Inf")],
        );
        assert_eq!(inf, 30.0);
        let upstream = value("portico_upstream_requests_total", &[("upstream", "origin")]);
        assert_eq!(
            upstream, 30.0,
            "every proxied request counted once by outcome"
        );
        assert_eq!(value("portico_workers", &[("driver", driver)]), 2.0);
        assert!(samples
            .iter()
            .any(|(n, l, _)| n == "portico_connections_active" && l[0].0 == "worker"));
    }
}

/// A clean stop writes every access-log line: the lines of the last requests are still
/// in the workers' buffers and the writer's queue when SIGTERM arrives.
#[test]
fn sigterm_right_after_requests_loses_no_access_log_line() {
    let origin = Origin::fixed(b"hello");
    for driver in DRIVERS {
        let dir = temp_dir(&format!("stoplog-{driver}"));
        let log = dir.join("access.log");
        let yaml = proxy_config(origin.addr, 2).replace(
            "  limits:",
            &format!("  access_log: {{ path: \"{}\" }}\n  limits:", log.display()),
        );
        let p = Portico::start(&yaml, driver);
        for i in 0..3 {
            assert_eq!(p.get(&format!("/last/{i}")).status, 200, "{driver}");
        }
        assert!(p.stop().success(), "{driver}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(text.lines().count(), 3, "{driver}: {text:?}");
    }
}
