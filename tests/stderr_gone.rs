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

/// `check` and a `run` that refuses its config say their verdict by exit code whatever
/// happens to stderr: what they print there went through `eprintln!`, which panicked on a
/// stderr that can't be written, and the exit code was 101 (`check … 2>&1 | head -1` of a
/// valid config with warnings, `2>/dev/full`).
#[test]
fn check_keeps_its_exit_code_when_stderr_cannot_be_written() {
    let dir = std::env::temp_dir().join(format!("stderr-gone-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Valid, with a warning for each of 300 APIs nothing reaches.
    let mut warned = String::from("server: { listen: [\"127.0.0.1:1\"] }\napis:\n");
    for i in 0..300 {
        warned.push_str(&format!(
            "  a{i}: {{ disable_default_endpoint: true, stages: {{ s: {{}} }} }}\n"
        ));
    }
    let warned_file = dir.join("warned.yaml");
    std::fs::write(&warned_file, &warned).unwrap();
    let broken_file = dir.join("broken.yaml");
    std::fs::write(&broken_file, "server: { listen: 7 }\nnonsense: 1\n").unwrap();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let exit = |args: &[&str], file: &std::path::Path, stderr: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(args)
            .arg(file)
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .unwrap()
            .code()
    };
    for (args, file, want) in [
        (&["check", "-c"][..], &warned_file, Some(0)),
        (&["check", "-c"][..], &broken_file, Some(1)),
        (&["run", "-c"][..], &broken_file, Some(1)),
    ] {
        // The warnings are there to be lost: the valid file's check says so.
        let out = Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["check", "-c"])
            .arg(file)
            .output()
            .unwrap();
        assert!(!out.stderr.is_empty(), "{file:?} says nothing on stderr");
        assert_eq!(
            exit(args, file, full().into()),
            want,
            "{args:?} {file:?} 2>/dev/full"
        );
        // A pipe whose reader has gone: its writes fail with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        assert_eq!(
            exit(args, file, writer.into()),
            want,
            "{args:?} {file:?} 2>|closed"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
