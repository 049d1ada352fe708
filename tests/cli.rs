//! The command line (docs/ARCHITECTURE.md, Command line): `portico run` refusing a bad
//! file (with `check`'s report) or a taken port, the default config with no `-c`, signals,
//! and the driver choice (PORTICO_DRIVER, server.driver) in the log. `portico check` itself:
//! tests/cli_check.rs.

mod cli_support;
mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cli_support::{assert_lines, has_line, FOUR_ERRORS, FOUR_MISTAKES};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn temp_file(ext: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("portico-cli-test-{}-{n}.{ext}", std::process::id()))
}

/// A `portico` process this test started, its stderr in a file.
struct Proc {
    child: Option<Child>,
    log: PathBuf,
    config: Option<PathBuf>,
}

impl Proc {
    /// `portico <args…>`; `config` (if any) is written to a file passed as `-c FILE`.
    fn spawn(
        args: &[&str],
        config: Option<&str>,
        env: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> Proc {
        let log = temp_file("log");
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("PORTICO_DRIVER")
            .env("RUST_LOG", "info");
        let config = config.map(|text| {
            let path = temp_file("yaml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("-c").arg(&path);
            path
        });
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc {
            child: Some(child),
            log,
            config,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, or None if still running after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn exits_with(&mut self, code: i32, limit: Duration, what: &str) {
        match self.wait_exit(limit) {
            Some(status) => assert_eq!(
                status.code(),
                Some(code),
                "{what}: {status}; stderr:\n{}",
                self.stderr()
            ),
            None => panic!(
                "{what}: still running after {limit:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Waits until `addr` accepts connections (and the process still runs).
    fn wait_listening(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(addr).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "exited with {status} before listening on {addr}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not listening on {addr} after 10s:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} {pid}");
    }

    /// Polls stderr until it contains `needle`.
    fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the log never said {needle:?}:\n{text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.log);
        if let Some(c) = &self.config {
            let _ = std::fs::remove_file(c);
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    read_response(&mut BufReader::new(s), false).unwrap()
}

/// Waits (up to 2 s) until nothing listens on `addr`.
fn wait_port_free(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpListener::bind(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} still taken");
        thread::sleep(Duration::from_millis(10));
    }
}

fn mock_config(port: u16, extra_server: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{port}"]
  workers: 1
  limits: {{ drain_timeout: 2s }}{extra_server}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /ping":
        integration: {{ type: mock, status: 200, headers: {{ content-type: application/json }}, body: '{{"pong":true}}' }}
"#
    )
}

#[test]
fn run_refuses_a_bad_config_with_the_same_report_and_does_not_listen() {
    let port = free_port();
    let yaml = r#"server:
  listen: ["127.0.0.1:{PORT}"]
upstreams:
  real: { targets: ["127.0.0.1:9"] }
apis:
  shop:
    stages:
      $default: {}
    routes:
      "GET /x":
        integration: { type: http, upstream: nope }
  other:
    stages:
      $default: {}
    routes:
      "GET /y":
        integration: { type: mock, status: 200, body: "y" }
"#
    .replace("{PORT}", &port.to_string());
    let (code, report) = check(&yaml);
    assert_eq!(code, 1);
    let mut p = Proc::spawn(&["run"], Some(&yaml), &[], None);
    p.exits_with(1, Duration::from_secs(5), "run on a bad config");
    let text = p.stderr();
    assert_lines(&text, &[FOUR_ERRORS[2], FOUR_ERRORS[3]], "run");
    // The same errors as check, line for line.
    for line in report.lines().filter(|l| l.starts_with("apis.")) {
        assert!(
            has_line(&text, line),
            "run did not report {line:?}:\n{text}"
        );
    }
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on {port}"
    );

    // A decode error is refused the same way.
    let mut p = Proc::spawn(
        &["run"],
        Some(&FOUR_MISTAKES.replace("{PORT}", &port.to_string())),
        &[],
        None,
    );
    p.exits_with(
        1,
        Duration::from_secs(5),
        "run on a file with an unknown key",
    );
    assert_lines(&p.stderr(), &[FOUR_ERRORS[0], FOUR_ERRORS[1]], "run");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on {port}"
    );
}

#[test]
fn run_fails_quickly_when_the_port_is_taken() {
    for driver in DRIVERS {
        // Another program's listener.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let t = Instant::now();
        let mut p = Proc::spawn(
            &["run"],
            Some(&mock_config(port, "")),
            &[("PORTICO_DRIVER", driver)],
            None,
        );
        p.exits_with(1, Duration::from_secs(5), &format!("{driver}: port taken"));
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{driver}: took {:?}",
            t.elapsed()
        );
        let text = p.stderr();
        assert!(
            text.contains(&format!(
                "server.listen[0]: 127.0.0.1:{port} is in use (another process listens on it"
            )),
            "{driver}: the error does not name the address and its key:\n{text}"
        );
        drop(taken);

        // A second Portico on the same address (its listeners use SO_REUSEPORT, which
        // must not let a second process silently share the port).
        let first = Portico::start(
            &mock_config(0, "").replace("127.0.0.1:0", "127.0.0.1:{PORT}"),
            driver,
        );
        let port = first.addr.port();
        let mut second = Proc::spawn(
            &["run"],
            Some(&mock_config(port, "")),
            &[("PORTICO_DRIVER", driver)],
            None,
        );
        second.exits_with(
            1,
            Duration::from_secs(5),
            &format!("{driver}: a second portico on the port"),
        );
        assert!(
            second.stderr().contains(&format!("127.0.0.1:{port}")),
            "{driver}:\n{}",
            second.stderr()
        );
        // The first keeps serving, alone.
        for _ in 0..10 {
            assert_eq!(get(first.addr, "/ping").status, 200, "{driver}");
        }
        assert!(first.stop().success());
    }
}

#[test]
fn default_config_serves_ping_on_8080() {
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    match TcpListener::bind(addr) {
        Ok(l) => drop(l),
        Err(e) => {
            println!(
                "note: skipping default_config_serves_ping_on_8080: 127.0.0.1:8080 is taken ({e})"
            );
            return;
        }
    }
    let dir = Path::new(MANIFEST_DIR);
    // `portico run` with no -c, as `cargo run` does from the repository root.
    let mut p = Proc::spawn(&["run"], None, &[], Some(dir));
    p.wait_listening(addr);
    let r = get(addr, "/ping");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"ok":true}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = get(addr, "/prod/ping");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"ok":true,"stage":"prod"}"#)
    );
    p.wait_log("config/portico.yaml");
    p.signal("TERM");
    p.exits_with(0, Duration::from_secs(10), "SIGTERM on the default config");

    // No subcommand at all means run; SIGINT stops it the same way. (Waits for the port
    // to be free first, as above: restarting at once is `restart_right_after_sigterm`.)
    wait_port_free(addr);
    let mut p = Proc::spawn(&[], None, &[], Some(dir));
    p.wait_listening(addr);
    assert_eq!(get(addr, "/ping").status, 200);
    p.signal("INT");
    p.exits_with(0, Duration::from_secs(10), "SIGINT on the default config");
}

#[test]
fn sigterm_and_sigint_exit_0_and_stop_listening() {
    for driver in DRIVERS {
        for sig in ["TERM", "INT"] {
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut p = Proc::spawn(
                &["run"],
                Some(&mock_config(port, "")),
                &[("PORTICO_DRIVER", driver)],
                None,
            );
            p.wait_listening(addr);
            // A keep-alive connection, idle after its request, does not hold the exit up.
            let mut idle = TcpStream::connect(addr).unwrap();
            idle.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let r = read_response(&mut BufReader::new(idle.try_clone().unwrap()), false).unwrap();
            assert_eq!(r.text(), r#"{"pong":true}"#, "{driver}");
            let t = Instant::now();
            p.signal(sig);
            p.exits_with(0, Duration::from_secs(5), &format!("{driver}: SIG{sig}"));
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{driver}: SIG{sig} took {:?}",
                t.elapsed()
            );
            // The idle connection was closed without a word.
            idle.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut idle, &mut rest);
            assert!(
                rest.is_empty(),
                "{driver}: the idle connection got {:?}",
                String::from_utf8_lossy(&rest)
            );
        }
    }
}

#[test]
fn sigterm_does_not_wait_for_connections_that_sent_nothing() {
    for driver in DRIVERS {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // drain_timeout 2s, header_timeout 10s (the default).
        let mut p = Proc::spawn(
            &["run"],
            Some(&mock_config(port, "")),
            &[("PORTICO_DRIVER", driver)],
            None,
        );
        p.wait_listening(addr);
        // Like a browser's preconnect: open, then nothing.
        let silent = TcpStream::connect(addr).unwrap();
        thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        p.signal("TERM");
        p.exits_with(0, Duration::from_secs(5), &format!("{driver}: SIGTERM"));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{driver}: SIGTERM took {:?} with a silent connection open",
            t.elapsed()
        );
        drop(silent);
    }
}

#[test]
fn restart_right_after_sigterm() {
    for driver in DRIVERS {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let config = mock_config(port, "");
        let mut p = Proc::spawn(&["run"], Some(&config), &[("PORTICO_DRIVER", driver)], None);
        p.wait_listening(addr);
        assert_eq!(get(addr, "/ping").status, 200, "{driver}");
        p.signal("TERM");
        let child = p.child.as_mut().unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            thread::sleep(Duration::from_millis(1));
        };
        assert!(status.success(), "{driver}: {status}");
        // Once the process is gone, nothing may accept on its port.
        let accepted = TcpStream::connect(addr).is_ok();
        assert!(
            !accepted,
            "{driver}: a connection was accepted on {addr} after the process exited"
        );
        // And a new gateway can take the port at once (a supervisor's restart).
        let mut next = Proc::spawn(&["run"], Some(&config), &[("PORTICO_DRIVER", driver)], None);
        next.wait_listening(addr);
        assert_eq!(
            get(addr, "/ping").status,
            200,
            "{driver}: the restarted gateway"
        );
        next.signal("TERM");
        next.exits_with(0, Duration::from_secs(5), driver);
    }
}

#[test]
fn bogus_portico_driver_exits_1() {
    let port = free_port();
    let mut p = Proc::spawn(
        &["run"],
        Some(&mock_config(port, "")),
        &[("PORTICO_DRIVER", "bogus")],
        None,
    );
    p.exits_with(1, Duration::from_secs(5), "PORTICO_DRIVER=bogus");
    let text = p.stderr();
    assert!(
        text.contains("PORTICO_DRIVER") && text.contains("bogus"),
        "unclear message:\n{text}"
    );
    assert!(
        text.contains("io_uring") && text.contains("epoll"),
        "the message should list the choices:\n{text}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listening despite the error"
    );
}

#[test]
fn the_log_names_the_driver() {
    for driver in DRIVERS {
        // Forced by the environment.
        let port = free_port();
        let mut p = Proc::spawn(
            &["run"],
            Some(&mock_config(port, "")),
            &[("PORTICO_DRIVER", driver)],
            None,
        );
        p.wait_listening(([127, 0, 0, 1], port).into());
        let text = p.wait_log("serving");
        let line = text.lines().find(|l| l.contains("serving")).unwrap();
        assert!(
            line.contains(&format!("driver=\"{driver}\"")),
            "{driver}: {line}"
        );
        p.signal("TERM");
        p.exits_with(0, Duration::from_secs(5), driver);

        // Chosen by server.driver in the file.
        let port = free_port();
        let mut p = Proc::spawn(
            &["run"],
            Some(&mock_config(port, &format!("\n  driver: {driver}"))),
            &[],
            None,
        );
        p.wait_listening(([127, 0, 0, 1], port).into());
        let text = p.wait_log("serving");
        let line = text.lines().find(|l| l.contains("serving")).unwrap();
        assert!(
            line.contains(&format!("driver=\"{driver}\"")),
            "server.driver: {driver}: {line}"
        );
        p.signal("TERM");
        p.exits_with(0, Duration::from_secs(5), driver);
    }
    // PORTICO_DRIVER wins over the file.
    let port = free_port();
    let mut p = Proc::spawn(
        &["run"],
        Some(&mock_config(port, "\n  driver: io_uring")),
        &[("PORTICO_DRIVER", "epoll")],
        None,
    );
    p.wait_listening(([127, 0, 0, 1], port).into());
    let text = p.wait_log("serving");
    assert!(
        text.lines()
            .any(|l| l.contains("serving") && l.contains("driver=\"epoll\"")),
        "{text}"
    );
}

/// `--help` names what each signal does and that check reports warnings too: an operator
/// reading it learnt only that SIGTERM/SIGINT stop.
#[test]
fn help_names_the_signals_and_checks_warnings() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for says in [
        "SIGHUP reloads the config",
        "SIGUSR1 reopens the access log",
        "every warning too",
    ] {
        assert!(text.contains(says), "{says}: {text}");
    }
}
