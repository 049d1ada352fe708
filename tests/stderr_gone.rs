//! Portico keeps running, reloading and stopping cleanly after its stderr has become a
//! pipe with no reader (a log shipper that died). A log line then could not be written,
//! and tracing reported that with `eprintln!` on the same stderr, which panics: the
//! thread that logged died (the signal thread: SIGTERM did nothing after a SIGHUP; a
//! worker: its listener took connections no one served).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_broken_stderr_pipe_loses_log_lines_only() {
    for driver in DRIVERS {
        let port = free_port();
        // A route to a port nothing listens on: each request logs a warning.
        let dead = free_port();
        let yaml = format!(
            r#"server: {{ listen: ["127.0.0.1:{port}"], workers: 2 }}
upstreams: {{ dead: {{ targets: ["127.0.0.1:{dead}"] }} }}
apis:
  a:
    stages: {{ $default: {{}} }}
    routes:
      "GET /dead": {{ integration: {{ type: http, upstream: dead }} }}
      "GET /ping": {{ integration: {{ type: mock, body: pong }} }}
"#
        );
        let config = std::env::temp_dir().join(format!("stderr-gone-{port}.yaml"));
        std::fs::write(&config, &yaml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["run", "-c"])
            .arg(&config)
            .env("PORTICO_DRIVER", driver)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            eventually(|| std::net::TcpStream::connect(addr).is_ok()),
            "{driver}: not listening"
        );
        // The reader goes away: every later write to stderr fails with EPIPE.
        drop(child.stderr.take());
        let pid = child.id() as i32;
        for _ in 0..6 {
            assert_eq!(
                send_to(
                    addr,
                    b"GET /dead HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                )
                .status,
                502,
                "{driver}"
            );
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..6 {
            let r = send_to(
                addr,
                b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            );
            assert_eq!((r.status, r.text().as_str()), (200, "pong"), "{driver}");
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("{driver}: no exit 10 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{driver}: {status}");
        let _ = std::fs::remove_file(&config);
    }
}
