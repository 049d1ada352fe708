//! Upstream targets by host name, end to end. Portico runs in its own mount namespace
//! (`unshare --mount`) with a hosts file of the test's bind-mounted on /etc/hosts, so the
//! system resolver answers what the test writes there; the machine's /etc/hosts is never
//! touched. Origins listen on 127.0.0.1 and 127.0.0.2 at one port.

// Test origins share what they saw; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Two listeners at one port, on 127.0.0.1 and 127.0.0.2. The port is tried on both
/// addresses and another one taken if either is busy (a free port on 127.0.0.1 says
/// nothing of 127.0.0.2).
fn listeners_at_one_port() -> (u16, TcpListener, TcpListener) {
    for _ in 0..50 {
        let port = free_port();
        if let (Ok(a), Ok(b)) = (
            TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))),
            TcpListener::bind(SocketAddr::from(([127, 0, 0, 2], port))),
        ) {
            return (port, a, b);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// An origin on `listener` answering its name, recording the Host headers it saw.
fn origin(listener: TcpListener, name: &'static str) -> Arc<Mutex<Vec<String>>> {
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let seen = hosts.clone();
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let seen = seen.clone();
            thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut host = String::new();
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("host:") {
                            host = v.trim().to_string();
                        }
                    }
                    seen.lock().unwrap().push(host);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                        name.len()
                    );
                    if w.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    hosts
}

/// `portico run` in a private mount namespace whose /etc/hosts is `hosts`.
struct Namespaced {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Namespaced {
    fn start(yaml: &str, hosts: &Path, driver: &str, tag: &str) -> Namespaced {
        let dir = temp_dir(tag);
        let port = free_port();
        let config = dir.join("portico.yaml");
        std::fs::write(&config, yaml.replace("{PORT}", &port.to_string())).unwrap();
        let log = dir.join("portico.log");
        let script = r#"mount --bind "$1" /etc/hosts && exec "$2" run -c "$3""#;
        let child = Command::new("unshare")
            .args(["--mount", "sh", "-c", script, "sh"])
            .arg(hosts)
            .arg(env!("CARGO_BIN_EXE_portico"))
            .arg(&config)
            .env("PORTICO_DRIVER", driver)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("unshare (util-linux) runs these tests");
        let mut p = Namespaced {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(p.addr).is_err() {
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!(
                    "portico in a mount namespace exited with {status} (needs root or user namespaces): {}",
                    p.log_text()
                );
            }
            assert!(Instant::now() < deadline, "no listen: {}", p.log_text());
            thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Response {
        send_to(
            self.addr,
            format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
upstreams:
  users:
    targets: ["http://users.internal:{port}"]
    resolve_every: 1s
  ghost:
    targets: ["nowhere.invalid:{port}"]
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /who": {{ integration: {{ type: http, upstream: users }} }}
      "GET /ghost": {{ integration: {{ type: http, upstream: ghost }} }}
"#
    )
}

/// Which origins answered `n` requests.
fn answers(p: &Namespaced, n: usize) -> Vec<String> {
    let mut seen: Vec<String> = (0..n)
        .map(|_| {
            let r = p.get("/who");
            assert_eq!(r.status, 200, "{}\n{}", r.text(), p.log_text());
            r.text()
        })
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn host_names_resolve_balance_over_every_address_and_follow_changes() {
    for driver in DRIVERS {
        let (port, a, b) = listeners_at_one_port();
        let hosts_a = origin(a, "A");
        let _hosts_b = origin(b, "B");
        let dir = temp_dir("names");
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 users.internal\n").unwrap();
        let p = Namespaced::start(&config(port), &hosts, driver, "names-run");

        // Resolved at load; the Host header is the name as written.
        assert_eq!(answers(&p, 4), ["A"], "{driver}");
        assert_eq!(
            hosts_a.lock().unwrap().last().unwrap(),
            &format!("users.internal:{port}")
        );
        // A name that does not resolve: 502 for it, the rest is served.
        assert_eq!(p.get("/ghost").status, 502, "{driver}");

        // The name gains an address: re-resolved within resolve_every, both get requests.
        std::fs::write(
            &hosts,
            "127.0.0.1 localhost\n127.0.0.1 users.internal\n127.0.0.2 users.internal\n",
        )
        .unwrap();
        assert!(
            eventually(|| answers(&p, 6) == ["A", "B"]),
            "{driver}: both addresses used\n{}",
            p.log_text()
        );
        // It moves to the other address only.
        std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.2 users.internal\n").unwrap();
        assert!(
            eventually(|| answers(&p, 4) == ["B"]),
            "{driver}: follows the move\n{}",
            p.log_text()
        );
        // It stops resolving: the last good address stays, and the log says so once.
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        assert!(
            eventually(|| p.log_text().contains("no longer resolves")),
            "{driver}: {}",
            p.log_text()
        );
        thread::sleep(Duration::from_millis(2500));
        assert_eq!(answers(&p, 4), ["B"], "{driver}");
        let log = p.log_text();
        let warned = log
            .lines()
            .filter(|l| l.contains("no longer resolves"))
            .count();
        assert_eq!(warned, 1, "{driver}: warned once per change\n{log}");
        let never = log
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains("nowhere.invalid"))
            .count();
        assert_eq!(
            never, 1,
            "{driver}: the unresolvable name is warned once\n{log}"
        );
    }
}

#[test]
fn check_warns_about_names_that_do_not_resolve() {
    let (code, out) = check(&config(8080).replace("{PORT}", "8080"));
    assert_eq!(code, 0, "{out}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{out}");
    assert!(
        warnings[0].starts_with(
            "warning: upstreams.ghost.targets[0]: \"nowhere.invalid\" does not resolve"
        ),
        "{out}"
    );
    assert!(
        warnings[1].starts_with(
            "warning: upstreams.users.targets[0]: \"users.internal\" does not resolve"
        ),
        "{out}"
    );
    // Addresses and localhost are not looked up.
    let (code, out) =
        check("upstreams: { u: { targets: [\"localhost:80\", \"127.0.0.1:81\"] } }\n");
    assert_eq!(
        (code, out.contains("does not resolve")),
        (0, false),
        "{out}"
    );
}
