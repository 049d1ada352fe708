//! The access-log file as an operator meets it: lines that stay valid JSON whatever bytes
//! a client sends, a reload that reopens a rotated file, and a file whose directory
//! appears only after the start.

mod common;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The file's lines once there are `want` of them (or after 10 s), as raw bytes.
fn lines_eventually(path: &Path, want: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bytes = std::fs::read(path).unwrap_or_default();
        let lines: Vec<Vec<u8>> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A mock API logging to `log`; the admin listener (and its state) on `admin_port`.
fn config(log: &Path, state: &Path, admin_port: u16) -> String {
    let format =
        r#"{"path":"$context.path","ua":"$context.identity.userAgent","status":"$context.status"}"#;
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  access_log: {{ path: "{}", format: '{format}' }}
admin: {{ listen: "127.0.0.1:{admin_port}", token: t }}
state_dir: "{}"
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "$default":
        integration: {{ type: mock, status: 200, body: "ok" }}
"#,
        log.display(),
        state.display()
    )
}

fn wait_for_reload(p: &Portico, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.log_text().matches("config reloaded").count() < count {
        assert!(Instant::now() < deadline, "no reload: {}", p.log_text());
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn json_lines_stay_valid_json_with_bytes_that_are_not_utf8() {
    for driver in DRIVERS {
        let dir = temp_dir("log-utf8");
        let log = dir.join("access.log");
        let p = Portico::start(&config(&log, &dir.join("state"), free_port()), driver);
        let r = p.raw(
            b"GET /a HTTP/1.1\r\nHost: h.example\r\nUser-Agent: ev\xff\"il\xc3\r\nX-Other: \xe9\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{driver}");
        let lines = lines_eventually(&log, 1);
        assert_eq!(lines.len(), 1, "{driver}");
        let v: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap_or_else(|e| {
            panic!(
                "{driver}: not JSON ({e}): {}",
                String::from_utf8_lossy(&lines[0])
            )
        });
        assert_eq!(v["ua"], "ev\u{fffd}\"il\u{fffd}", "{driver}");
        assert_eq!(v["path"], "/a", "{driver}");
        drop(p);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_reload_reopens_the_access_log_after_rotation() {
    for driver in DRIVERS {
        let dir = temp_dir("log-reload");
        let log = dir.join("access.log");
        let admin_port = free_port();
        let p = Portico::start(&config(&log, &dir.join("state"), admin_port), driver);
        assert_eq!(p.get("/before").status, 200);
        assert_eq!(lines_eventually(&log, 1).len(), 1, "{driver}");

        // logrotate moves the file away and runs `systemctl reload` (SIGHUP).
        std::fs::rename(&log, dir.join("access.log.1")).unwrap();
        p.signal(1);
        wait_for_reload(&p, 1);
        assert_eq!(p.get("/after-hup").status, 200);
        let lines = lines_eventually(&log, 1);
        assert_eq!(lines.len(), 1, "{driver}: a new file after SIGHUP");
        assert!(
            String::from_utf8_lossy(&lines[0]).contains("/after-hup"),
            "{driver}"
        );

        // The file deleted, then POST /reload.
        std::fs::remove_file(&log).unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
        assert_eq!(admin(addr, "POST", "/reload", Some("t"), None).status, 200);
        assert_eq!(p.get("/after-admin").status, 200);
        let lines = lines_eventually(&log, 1);
        assert_eq!(lines.len(), 1, "{driver}: a new file after POST /reload");
        assert!(
            String::from_utf8_lossy(&lines[0]).contains("/after-admin"),
            "{driver}"
        );
        let old = std::fs::read_to_string(dir.join("access.log.1")).unwrap();
        assert_eq!(old.lines().count(), 1, "{driver}: {old}");
        drop(p);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_log_directory_made_after_the_start_is_written_to_and_lost_lines_are_counted() {
    for driver in DRIVERS {
        let dir = temp_dir("log-later");
        let logs = dir.join("logs");
        let log = logs.join("access.log");
        let admin_port = free_port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
        let p = Portico::start(&config(&log, &dir.join("state"), admin_port), driver);
        assert_eq!(p.get("/lost").status, 200);
        let text = metrics_when(addr, |t| t.contains("portico_access_log_dropped_total 1\n"));
        assert!(
            text.contains("portico_access_log_dropped_total 1\n"),
            "{driver}: the line that could not be written is counted: {text}"
        );

        std::fs::create_dir_all(&logs).unwrap();
        // The writer tries the file again once a second while lines come.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        while !log.exists() {
            assert!(
                Instant::now() < deadline,
                "{driver}: never opened: {}",
                p.log_text()
            );
            assert_eq!(p.get(&format!("/later{n}")).status, 200);
            n += 1;
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(p.get("/written").status, 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("\"/written\"") {
                break;
            }
            assert!(Instant::now() < deadline, "{driver}: {text}");
            thread::sleep(Duration::from_millis(20));
        }
        drop(p);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A request to an API stage (by base path) that none of its routes matches is logged
/// with that API and stage, as API Gateway's per-stage access logs have it; a request
/// addressed to no API has neither.
#[test]
fn an_unmatched_request_is_logged_with_the_stage_it_was_addressed_to() {
    let dir = temp_dir("access-unmatched");
    let log = dir.join("access.log");
    let format = r#"{"path":"$context.path","api":"$context.apiId","stage":"$context.stage","status":"$context.status"}"#;
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  access_log: {{ path: "{}", format: '{format}' }}
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes:
      "GET /items": {{ integration: {{ type: mock, status: 200, body: "ok" }} }}
"#,
        log.display()
    );
    for driver in DRIVERS {
        let _ = std::fs::remove_file(&log);
        let p = Portico::start(&yaml, driver);
        assert_eq!(p.get("/prod/nope").status, 404, "{driver}");
        assert_eq!(p.get("/elsewhere").status, 404, "{driver}");
        let lines = lines_eventually(&log, 2);
        let lines: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let line = |path: &str| lines.iter().find(|l| l["path"] == path).unwrap().clone();
        let nope = line("/prod/nope");
        assert_eq!(
            (&nope["api"], &nope["stage"]),
            (&"shop".into(), &"prod".into()),
            "{driver}"
        );
        let elsewhere = line("/elsewhere");
        assert_eq!(
            (&elsewhere["api"], &elsewhere["stage"]),
            (&"-".into(), &"-".into()),
            "{driver}"
        );
    }
}
