//! The access-log file as an operator meets it: lines that stay valid JSON whatever bytes
//! a client sends.

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
