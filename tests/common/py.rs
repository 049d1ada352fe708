//! Python helpers for the authorizer tests: the interpreter (`PORTICO_PYTHON`, set by
//! .ci/run to its venv; else `python3`) and the test identity provider (tests/py/idp.py).
//! Missing modules fail the test loudly with the one command that installs them.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::send_to;

/// The interpreter the tests run: `$PORTICO_PYTHON`, else the repository's `.ci/venv`,
/// which is created on first use (`python3 -m venv`, then pip installs the pinned
/// `tests/requirements.txt`) so that `cargo test --workspace` needs nothing set up by
/// hand beyond python3 with its venv module. If that fails, `python3`, and the tests
/// that need a package say which one is missing.
pub fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("PORTICO_PYTHON") {
                return p;
            }
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let venv = root.join(".ci/venv");
            let py = venv.join("bin/python");
            if !py.exists() {
                let made = Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .status()
                    .is_ok_and(|s| s.success());
                let installed = made
                    && Command::new(&py)
                        .args(["-m", "pip", "install", "-q", "-r"])
                        .arg(root.join("tests/requirements.txt"))
                        .status()
                        .is_ok_and(|s| s.success());
                if !installed {
                    return "python3".into();
                }
            }
            py.to_string_lossy().into_owned()
        })
        .clone()
}

/// Panics (never skips) when `modules` can't be imported.
pub fn require(modules: &[&str]) {
    let py = python();
    let out = Command::new(&py)
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {py}: {e}"));
    assert!(
        out.status.success(),
        "{py} lacks {modules:?}: {}\nInstall them once: python3 -m venv .ci/venv && .ci/venv/bin/pip install -r tests/requirements.txt && export PORTICO_PYTHON=$PWD/.ci/venv/bin/python",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a Python script; returns its stdout (panics with stderr on failure).
pub fn run(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The test identity provider: discovery, JWKS, minting (tests/py/idp.py).
pub struct Idp {
    child: Child,
    pub addr: SocketAddr,
    /// With `start_tls`: the HTTPS port serving discovery and the key set.
    pub tls: Option<SocketAddr>,
}

impl Idp {
    pub fn start() -> Idp {
        Self::spawn(&[])
    }

    /// Also serves discovery and keys over HTTPS with this certificate chain and key.
    pub fn start_tls(chain: &std::path::Path, key: &std::path::Path) -> Idp {
        Self::spawn(&["--tls".as_ref(), chain.as_os_str(), key.as_os_str()])
    }

    fn spawn(args: &[&std::ffi::OsStr]) -> Idp {
        require(&["jwt", "cryptography"]);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/idp.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut ports = line
            .split_whitespace()
            .map(|p| p.parse::<u16>().expect("idp.py prints its ports"));
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Idp {
            addr: addr(ports.next().expect("a port")),
            tls: ports.next().map(addr),
            child,
        }
    }

    /// The issuer URL: https when serving TLS.
    pub fn issuer(&self) -> String {
        match self.tls {
            Some(t) => format!("https://{t}"),
            None => format!("http://{}", self.addr),
        }
    }

    fn post(&self, path: &str, body: &serde_json::Value) -> String {
        let body = body.to_string();
        let r = send_to(
            self.addr,
            format!(
                "POST {path} HTTP/1.1\r\nHost: idp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }

    /// A token: `{"key": "k1"|"k2"|"ec"|"hs-public"|"none", "kid"?, "alg"?, "claims": {...}}`.
    pub fn mint(&self, spec: serde_json::Value) -> String {
        self.post("/mint", &spec)
    }

    /// `{"publish": [...], "delay_ms": n, "oversize": bool, "status": n}`
    pub fn control(&self, state: serde_json::Value) {
        self.post("/control", &state);
    }

    /// How many times discovery and the JWKS were fetched.
    pub fn jwks_fetches(&self) -> u64 {
        let r = send_to(
            self.addr,
            b"GET /stats HTTP/1.1\r\nHost: idp\r\nConnection: close\r\n\r\n",
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["jwks"].as_u64().unwrap()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
