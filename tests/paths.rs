//! Relative paths in the config are relative to the config file's directory, not to the
//! working directory: `portico run` and `portico check` started somewhere else read the
//! certificate, keep `state_dir` and write the access log next to the config file; a
//! reload resolves them the same way; an unset `state_dir` follows systemd's
//! `$STATE_DIRECTORY`.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::tls::{Ca, TlsClient};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");

/// A `portico run` started in `cwd`, its stderr in a file.
struct Run {
    child: Option<Child>,
    log: PathBuf,
}

impl Run {
    fn start(cwd: &Path, config: &str, driver: &str, env: &[(&str, &Path)], port: u16) -> Run {
        let log = cwd.join(format!("portico-{driver}.log"));
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c", config])
            .current_dir(cwd)
            .env("PORTICO_DRIVER", driver)
            .env("RUST_LOG", "info")
            .env_remove("STATE_DIRECTORY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut run = Run {
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = run.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("portico exited with {status}:\n{}", run.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "not listening:\n{}",
                run.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
        run
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap();
    }

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

    /// SIGTERM, and the exit (0) after the drain: the access log and store are flushed.
    fn stop(mut self) {
        self.signal("TERM");
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(status.success(), "exit {status}:\n{}", self.stderr());
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn get(port: u16, path: &str) -> Response {
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    read_response(&mut BufReader::new(s), false).unwrap()
}

/// `portico check -c config` started in `cwd`: (exit code, stdout + stderr).
fn check_in(cwd: &Path, config: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["check", "-c", config])
        .current_dir(cwd)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A config in `dir` whose certificate, state and access log are all relative paths.
fn site_config(http: u16, https: u16, admin: u16, state_dir: Option<&str>) -> String {
    let state = state_dir.map_or(String::new(), |s| format!("state_dir: {s}\n"));
    format!(
        r#"server:
  listen: ["127.0.0.1:{http}"]
  tls_listen: ["127.0.0.1:{https}"]
  workers: 1
  access_log: {{ path: logs/access.log, format: "$context.httpMethod $context.path $context.status" }}
admin: {{ listen: "127.0.0.1:{admin}" }}
{state}apis:
  demo:
    stages:
      $default: {{}}
    routes:
      "GET /ping":
        integration: {{ type: mock, status: 200, body: pong }}
domains:
  localhost:
    cert: certs/site.pem
    key: certs/site.key
    mappings: {{ "": demo/$default }}
"#
    )
}

/// `root/site/` holds the config, its certificate and its logs directory; `root/elsewhere/`
/// is where portico is started. Returns (site, elsewhere, the CA that signed the cert).
fn layout(tag: &str) -> (PathBuf, PathBuf, Ca) {
    let root = temp_dir(tag);
    let (site, elsewhere) = (root.join("site"), root.join("elsewhere"));
    for d in [site.join("certs"), site.join("logs"), elsewhere.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    let ca = Ca::new("paths test CA");
    ca.server_cert(&["localhost"])
        .write_to(&site.join("certs/site.pem"), &site.join("certs/site.key"));
    (site, elsewhere, ca)
}

#[test]
fn run_and_check_resolve_relative_paths_against_the_config_file() {
    for driver in DRIVERS {
        let (site, elsewhere, ca) = layout(&format!("paths-{driver}"));
        let (http, https, admin) = (free_port(), free_port(), free_port());
        std::fs::write(
            site.join("portico.yaml"),
            site_config(http, https, admin, Some("state")),
        )
        .unwrap();

        // `check` from elsewhere, with a relative and with an absolute -c.
        let (code, text) = check_in(&elsewhere, "../site/portico.yaml");
        assert_eq!(code, 0, "{driver}: check with a relative -c: {text}");
        let abs = site.join("portico.yaml");
        let (code, text) = check_in(&elsewhere, abs.to_str().unwrap());
        assert_eq!(code, 0, "{driver}: check with an absolute -c: {text}");

        let run = Run::start(&elsewhere, "../site/portico.yaml", driver, &[], http);
        // The TLS listener may be bound a moment after the plain one (seen on a loaded
        // machine: refused).
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", https)).is_err() {
            assert!(Instant::now() < deadline, "{driver}: no TLS listener");
            thread::sleep(Duration::from_millis(20));
        }
        // The certificate in site/certs/ is served.
        let client = TlsClient::trusting(&ca).build();
        let r = client
            .try_get(https, "localhost", "localhost", "/ping")
            .unwrap_or_else(|e| panic!("{driver}: TLS: {e}\n{}", run.stderr()));
        assert_eq!((r.status, r.text().as_str()), (200, "pong"), "{driver}");
        assert_eq!(get(http, "/ping").status, 200, "{driver}");

        // A reload reads the same relative paths the same way.
        run.signal("HUP");
        let log = run.wait_log("config reloaded");
        assert!(!log.contains("reload refused"), "{driver}: {log}");
        assert_eq!(get(http, "/ping").status, 200, "{driver}");
        // Lines reach the file from the writer thread within about 250 ms.
        let access_log = site.join("logs/access.log");
        let served = || {
            std::fs::read_to_string(&access_log)
                .unwrap_or_default()
                .lines()
                .filter(|l| *l == "GET /ping 200")
                .count()
        };
        assert!(
            eventually(|| served() == 3),
            "{driver}: {} of 3 lines in the access log beside the config",
            served()
        );
        run.stop();
        assert!(
            site.join("state/portico.redb").is_file(),
            "{driver}: the store is not in site/state"
        );
        for stray in ["state", "logs", "certs"] {
            assert!(
                !elsewhere.join(stray).exists(),
                "{driver}: {stray} was created in the working directory"
            );
        }
    }
}

#[test]
fn check_names_the_resolved_path_of_a_missing_file() {
    let (site, elsewhere, _) = layout("paths-missing");
    let yaml = site_config(free_port(), free_port(), free_port(), Some("state"))
        .replace("certs/site.pem", "certs/gone.pem");
    std::fs::write(site.join("portico.yaml"), yaml).unwrap();
    let (code, text) = check_in(&elsewhere, "../site/portico.yaml");
    assert_eq!(code, 1, "{text}");
    let wanted = std::fs::canonicalize(&site).unwrap().join("certs/gone.pem");
    assert!(
        text.contains(r#"domains.localhost.cert"#) && text.contains(wanted.to_str().unwrap()),
        "the error should name {}:\n{text}",
        wanted.display()
    );
    // The same file checked from its own directory is just as wrong, at the same path.
    let (code, same) = check_in(&site, "portico.yaml");
    assert_eq!(code, 1, "{same}");
    assert!(same.contains(wanted.to_str().unwrap()), "{same}");
}

#[test]
fn unset_state_dir_is_beside_the_config_or_systemds_state_directory() {
    for driver in DRIVERS {
        let (site, elsewhere, _) = layout(&format!("paths-state-{driver}"));
        let (http, https, admin) = (free_port(), free_port(), free_port());
        std::fs::write(
            site.join("portico.yaml"),
            site_config(http, https, admin, None),
        )
        .unwrap();
        Run::start(&elsewhere, "../site/portico.yaml", driver, &[], http).stop();
        assert!(
            site.join("state/portico.redb").is_file(),
            "{driver}: the default state_dir is not site/state"
        );

        // Under systemd, StateDirectory=portico sets $STATE_DIRECTORY.
        let var = elsewhere.join("var-lib-portico");
        std::fs::create_dir_all(&var).unwrap();
        let env = [("STATE_DIRECTORY", var.as_path())];
        Run::start(&elsewhere, "../site/portico.yaml", driver, &env, http).stop();
        assert!(
            var.join("portico.redb").is_file(),
            "{driver}: $STATE_DIRECTORY was not used"
        );
    }
}
