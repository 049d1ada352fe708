//! `check` tells everything `run` would: every warning `run` logs (printed as
//! `warning: PATH: MESSAGE`, exit 0), errors from decoding, cross-references and
//! certificate files at once, and `portico -c FILE` with no subcommand serves.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("portico.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `portico check -c FILE`: (exit code, stdout, stderr).
fn check_file(file: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `warning: ` lines of check's stderr, without the prefix.
fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .collect()
}

/// `portico -c FILE` (no subcommand) until it listens on `addr`; stderr goes to `log`.
fn serve(file: &Path, driver: &str, addr: SocketAddr, log: &Path) -> Child {
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(file)
        .env("PORTICO_DRIVER", driver)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "not listening on {addr}");
        thread::sleep(Duration::from_millis(20));
    }
    child
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A `run` log line says warning `w` ("PATH: MESSAGE"): a WARN line with `key=PATH` and
/// the message.
fn logged(log: &str, w: &str) -> bool {
    let (path, message) = w.split_once(": ").unwrap();
    log.lines()
        .any(|l| l.contains(" WARN ") && l.contains(message) && l.contains(&format!("key={path}")))
}

#[test]
fn check_prints_every_warning_run_logs() {
    let dir = temp_dir("check-warn");
    let port = free_port();
    let admin_port = free_port();
    let yaml = format!(
        r#"state_dir: "{state}"
server:
  listen: ["127.0.0.1:{port}"]
  workers: 1
  access_log: {{ path: "{dir}/missing/access.log", format: '$context.requestId $context.nosuchThing $context.status $context.authorizer.claims.cognito:username' }}
admin: {{ listen: "127.0.0.1:{admin_port}" }}
apis:
  app:
    stages: {{ $default: {{}} }}
    gateway_responses: {{ REQUEST_TOO_LARGE: {{ status: 413, body: big }} }}
    routes:
      "GET /ping": {{ integration: {{ type: mock, status: 200, body: pong }} }}
  chat:
    protocol: websocket
    stages: {{ prod: {{}} }}
    routes:
      $default: {{ integration: {{ type: mock }} }}
  hidden:
    disable_default_endpoint: true
    stages: {{ $default: {{}} }}
    routes:
      "GET /x": {{ integration: {{ type: mock }} }}
"#,
        state = dir.join("state").display(),
        dir = dir.display()
    );
    let file = write(&dir, &yaml);
    let (code, out, err) = check_file(&file);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim_end(),
        format!("{}: ok, 7 warning(s)", file.display()),
        "{err}"
    );
    let missing = format!("{}/missing", dir.display());
    let want = [
        format!("server.access_log.path: directory {missing} does not exist: access-log lines are dropped until it does"),
        r#"server.access_log.format: unknown variable $context.nosuchThing: it is logged as "-""#.into(),
        r#"server.access_log.format: $context.authorizer.claims.cognito:username is read as $context.authorizer.claims.cognito followed by the text ":username" (a name ends at ':'); write ${context.authorizer.claims.cognito:username} for a claim whose name holds ':'"#.into(),
        "admin.token: not set: only /health and /metrics answer on the admin listener".into(),
        "apis.app.gateway_responses.REQUEST_TOO_LARGE: is not applied: the 413 is the gateway's own, as in API Gateway, which does not let it be customised".into(),
        "apis.chat.protocol: websocket without `iam` principals: @connections on the stage endpoint answers callers on this host only (add a principal to sign calls from elsewhere)".into(),
        "apis.hidden.disable_default_endpoint: true and no domain maps this API: nothing reaches it".into(),
    ];
    assert_eq!(warnings(&err), want, "{err}");

    // `run` (here as `portico -c FILE`, no subcommand) says the same, and serves.
    for driver in DRIVERS {
        let log = dir.join(format!("run-{driver}.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = serve(&file, driver, addr, &log);
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let r = read_response(&mut BufReader::new(s), false).unwrap();
        stop(child);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "pong"),
            "{driver}: {text}"
        );
        for w in &want {
            assert!(logged(&text, w), "{driver}: run did not log {w:?}:\n{text}");
        }
        // Nothing else, but the access-log writer failing to open the file check warned
        // about.
        let warn_lines = text
            .lines()
            .filter(|l| l.contains(" WARN ") && !l.contains("cannot open the access log"))
            .count();
        assert_eq!(warn_lines, want.len(), "{driver}: {text}");
    }
}

#[test]
fn no_apis_is_a_warning_and_an_empty_file_an_error() {
    let dir = temp_dir("check-empty");
    // An empty file is refused: a reload that caught it half-written must not apply it.
    let file = write(&dir, "# nothing yet\n");
    let (code, out, err) = check_file(&file);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("the config is empty"),
        "{out}{err}"
    );
    let file = write(&dir, "server: { workers: 1 }\n");
    let (code, out, err) = check_file(&file);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim_end(),
        format!("{}: ok, 1 warning(s)", file.display())
    );
    assert_eq!(
        warnings(&err),
        ["apis: no APIs are configured: every request answers 404"]
    );
    // `run` says it too.
    let port = free_port();
    let file = write(
        &dir,
        &format!("server: {{ listen: [\"127.0.0.1:{port}\"], workers: 1 }}\n"),
    );
    let log = dir.join("run.log");
    let child = serve(
        &file,
        DRIVERS[0],
        SocketAddr::from(([127, 0, 0, 1], port)),
        &log,
    );
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged(
            &text,
            "apis: no APIs are configured: every request answers 404"
        ),
        "{text}"
    );
}

#[test]
fn check_reports_errors_from_every_stage_at_once() {
    let dir = temp_dir("check-stages");
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:18080"]
  colour: blue
upstreams:
  secure: {{ targets: ["https://127.0.0.1:9443"], tls: {{ ca: "{dir}/no-ca.pem" }} }}
apis:
  shop:
    protocol: websocket
    stages: {{ $default: {{}} }}
    routes:
      $default: {{ integration: {{ type: http, upstream: nope }} }}
  hidden:
    disable_default_endpoint: true
    stages: {{ $default: {{}} }}
    routes:
      "GET /x": {{ integration: {{ type: mock }} }}
domains:
  api.example.com:
    cert: "{dir}/no-cert.pem"
    key: "{dir}/no-key.pem"
    mappings: {{ "": shop/$default }}
"#,
        dir = dir.display()
    );
    let file = write(&dir, &yaml);
    let (code, out, err) = check_file(&file);
    assert_eq!(code, 1, "{out}{err}");
    let d = dir.display();
    for line in [
        // decoding
        r#"server: unknown key "colour" (expected one of: listen, tls_listen, default_domain, redirect_https, workers, driver, limits, access_log, throttle, compression)"#.to_string(),
        // cross-references
        r#"apis.shop.routes.$default.integration.upstream: no upstream named "nope""#.into(),
        // certificate files
        format!("domains.\"api.example.com\".cert: cannot read {d}/no-cert.pem: No such file or directory (os error 2)"),
        format!("domains.\"api.example.com\".key: cannot read {d}/no-key.pem: No such file or directory (os error 2)"),
        format!("upstreams.secure.tls.ca: cannot read {d}/no-ca.pem: No such file or directory (os error 2)"),
        // and the warnings
        "warning: apis.hidden.disable_default_endpoint: true and no domain maps this API: nothing reaches it".into(),
    ] {
        assert!(
            err.lines().any(|l| l == line),
            "missing the line\n  {line}\nin:\n{err}"
        );
    }
    assert!(
        err.starts_with(&format!("{}: 5 error(s), 2 warning(s)\n", file.display())),
        "{err}"
    );
}

#[test]
fn check_says_a_host_name_does_not_resolve_whatever_else_is_wrong() {
    // It was said only of a file with no error.
    let dir = temp_dir("check-resolve");
    let yaml = r#"server: { listen: [bad] }
upstreams:
  u: { targets: [12, "nowhere.invalid:80"] }
apis:
  a:
    stages: { prod: {} }
    routes:
      "GET /x": { integration: { type: http, upstream: u } }
"#;
    let (code, out, err) = check_file(&write(&dir, yaml));
    assert_eq!(code, 1, "{out}{err}");
    let w = warnings(&err);
    // Numbered as in the file: the target that did not decode is `[0]`.
    assert!(
        w.iter().any(|l| l
            .starts_with(r#"upstreams.u.targets[1]: "nowhere.invalid" does not resolve"#)),
        "{err}"
    );
}

#[test]
fn a_sighup_while_the_config_loads_is_a_reload_not_a_kill() {
    // The config's OpenAPI file has 3,000 operations, so loading takes a while (a FIFO
    // held it before; files the config names must be regular files now): a SIGHUP in
    // that time (a `systemctl reload` right after `start`) must be queued, not take the
    // default action and kill the process.
    let dir = temp_dir("early-hup");
    let mut spec = String::from("openapi: 3.0.1\ninfo: { title: t, version: '1' }\npaths:\n");
    let op = "    get:\n      x-amazon-apigateway-integration: { type: mock, responses: { default: { statusCode: '200' } } }\n";
    for path in std::iter::once("/ping".to_string()).chain((0..3000).map(|i| format!("/p{i}"))) {
        spec.push_str(&format!("  {path}:\n{op}"));
    }
    std::fs::write(dir.join("api.yaml"), spec).unwrap();
    let port = free_port();
    let file = write(
        &dir,
        &format!(
            "server: {{ listen: [\"127.0.0.1:{port}\"], workers: 1 }}\napis:\n  app:\n    openapi: api.yaml\n    stages: {{ $default: {{}} }}\n"
        ),
    );
    let log = dir.join("run.log");
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // SigCgt (the signals with a handler) holds SIGHUP (bit 0) once it is handled.
    let status = format!("/proc/{}/status", child.id());
    let handles_hup = || {
        std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| {
                let mask = s
                    .lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))?
                    .trim()
                    .to_string();
                u64::from_str_radix(&mask, 16).ok()
            })
            .is_some_and(|m| m & 1 == 1)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handles_hup() {
        assert!(
            Instant::now() < deadline,
            "SIGHUP is not handled while the config loads"
        );
        thread::sleep(Duration::from_millis(2));
    }
    // Still loading: not listening yet (else this test would prove nothing).
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the config loaded before the SIGHUP could be sent"
    );
    let _ = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    thread::sleep(Duration::from_millis(100));
    assert!(child.try_wait().unwrap().is_none(), "killed by the SIGHUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "not listening");
        thread::sleep(Duration::from_millis(20));
    }
    // The reload the queued SIGHUP asked for.
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log_text().contains("config reloaded") {
        assert!(
            Instant::now() < deadline,
            "the SIGHUP was lost: {}",
            log_text()
        );
        thread::sleep(Duration::from_millis(20));
    }
    stop(child);
}

/// A SIGHUP as soon as `main` runs (systemd's `Type=exec` counts the service started at
/// exec, so `systemctl reload` may come at once) is a reload, not a kill. The handlers
/// were installed only after logging and the arguments were set up, and a SIGHUP then
/// took its default action (exit 129). `main` starts by blocking the signals, then turns
/// transparent huge pages off: that (`THP_enabled: 0`) is the earliest moment a test can
/// see, and it was already in `main` before. What comes before `main` (the dynamic
/// loader, a few ms for a debug build) no process can guard.
#[test]
fn a_sighup_as_soon_as_main_runs_is_a_reload_not_a_kill() {
    let dir = temp_dir("hup-at-main");
    for round in 0..5 {
        let port = free_port();
        let file = write(
            &dir,
            &format!(
                "server: {{ listen: [\"127.0.0.1:{port}\"], workers: 1 }}\napis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: mock }} }}\n"
            ),
        );
        let log = dir.join(format!("run{round}.log"));
        let mut child = Command::new(BIN)
            .args(["run", "-c"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let status = format!("/proc/{}/status", child.id());
        let in_main = || {
            std::fs::read_to_string(&status)
                .is_ok_and(|s| s.lines().any(|l| l == "THP_enabled:\t0"))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !in_main() {
            assert!(Instant::now() < deadline, "main never ran");
            thread::yield_now();
        }
        // SAFETY: kill(2) on the child's pid, which it keeps until waited for.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !log_text().contains("config reloaded") {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("round {round}: {status}: {}", log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the SIGHUP was lost: {}",
                log_text()
            );
            thread::sleep(Duration::from_millis(10));
        }
        stop(child);
    }
}

#[test]
fn quota_periods_take_aws_upper_case_spellings() {
    // AWS writes DAY, WEEK and MONTH (boto3, CloudFormation); a pasted plan loads.
    let dir = temp_dir("check-period");
    for period in ["day", "WEEK", "MONTH", "DAY"] {
        let file = write(
            &dir,
            &format!(
                "apis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /\": {{ integration: {{ type: mock, status: 200 }} }}\nusage_plans:\n  p: {{ quota: {{ limit: 10, period: {period} }} }}\n"
            ),
        );
        let (code, out, err) = check_file(&file);
        assert_eq!(code, 0, "{period}: {out}{err}");
    }
    let file = write(
        &dir,
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n      \"GET /\": { integration: { type: mock, status: 200 } }\nusage_plans:\n  p: { quota: { limit: 10, period: Month } }\n",
    );
    let (code, out, err) = check_file(&file);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("usage_plans.p.quota.period: expected one of day, week, month"),
        "{err}"
    );
}

/// A JSON access-log format (it starts with `{`) with a variable outside quotes writes a
/// bare `-` when the value is empty (integrationLatency on a mock), a line no JSON reader
/// takes: check says so at the format, and names the variable. A variable always logged as a
/// number (status) may stand bare.
#[test]
fn check_warns_at_a_json_log_format_whose_lines_are_not_json() {
    let dir = temp_dir("check-json-format");
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{port}"]
  access_log: {{ path: stdout, format: '{{"status":$context.status,"latency":$context.integrationLatency}}' }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /ping": {{ integration: {{ type: mock, status: 200, body: pong }} }}
"#,
        port = free_port()
    );
    let (code, out, err) = check_file(&write(&dir, &yaml));
    assert_eq!(code, 0, "{out}{err}");
    let warned = warnings(&err);
    assert_eq!(warned.len(), 1, "{err}");
    assert!(
        warned[0]
            == "server.access_log.format: it starts with {, so lines are meant to be JSON, but $context.integrationLatency is outside quotes: an empty value is logged as -; put each $context variable in quotes",
        "{err}"
    );
    let quoted = yaml.replace(
        "$context.integrationLatency",
        "\"$context.integrationLatency\"",
    );
    let (code, out, err) = check_file(&write(&dir, &quoted));
    assert_eq!((code, warnings(&err).len()), (0, 0), "{out}{err}");
}

/// `check` run by a user who can't write the access log (here `nobody`, through
/// `setpriv`, when the tests run as root) says so at the key: `run` as that user would
/// drop every line. A path in a directory that exists gave no word.
#[test]
fn an_access_log_this_user_cannot_write_is_a_warning() {
    // SAFETY: getuid(2) cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root to run check as another user");
        return;
    }
    let dir = temp_dir("check-log-perm");
    let logs = dir.join("logs"); // root's, 0755: nobody can't create a file in it
    std::fs::create_dir_all(&logs).unwrap();
    let yaml = format!(
        "server:\n  listen: [\"127.0.0.1:1\"]\n  access_log: {{ path: \"{}/access.log\" }}\napis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: mock }} }}\n",
        logs.display()
    );
    let file = write(&dir, &yaml);
    let as_nobody = |file: &Path| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(["check", "-c"])
            .arg(file)
            .output()
            .expect("setpriv (util-linux)");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = as_nobody(&file);
    let want = format!(
        "server.access_log.path: {} is not writable by this user (uid 65534: Permission denied (os error 13)): `run` as this user would drop every access-log line; fine if the service runs as one that can write it",
        logs.display()
    );
    assert_eq!(warnings(&err), [want.as_str()], "{err}");
    // Root can: no warning.
    let (code, _, err) = check_file(&file);
    assert_eq!((code, warnings(&err)), (0, vec![]), "{err}");
}

/// A store file this user can't write (left by a run as root in a directory it owns)
/// passed `check`, and `run` stopped calling the healthy file corrupt ("move the file
/// away"): `check` warns, and `run` says what is wrong without that advice.
#[test]
fn a_store_file_this_user_cannot_write_is_a_warning_not_corruption() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: getuid(2) cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root to run check as another user");
        return;
    }
    let dir = temp_dir("check-store-perm");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let file = state.join("portico.redb");
    std::fs::write(&file, b"root's").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The directories are nobody's to enter and write; the file stays root's.
    for d in [&dir, &state] {
        std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
    }
    let yaml = format!(
        "server:\n  listen: [\"127.0.0.1:{}\"]\nstate_dir: \"{}\"\napi_keys:\n  - {{ name: k, value: \"key-0123456789abcdefghij\" }}\napis:\n  a:\n    stages: {{ $default: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: mock }} }}\n",
        free_port(),
        state.display()
    );
    let config = write(&dir, &yaml);
    let as_nobody = |command: &str| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args([command, "-c"])
            .arg(&config)
            .output()
            .expect("setpriv (util-linux)");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = as_nobody("check");
    let want = format!(
        "state_dir: {}: {} is not writable by this user (uid 65534: Permission denied (os error 13)): `run` as this user would stop at startup; fine if the service runs as one that can write it",
        state.display(),
        file.display()
    );
    assert_eq!(
        (code, warnings(&err)),
        (Some(0), vec![want.as_str()]),
        "{err}"
    );
    let (code, err) = as_nobody("run");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cannot open the state file") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(!err.contains("corrupt"), "{err}");
}
