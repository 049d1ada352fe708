//! Real WebSocket peers for end-to-end tests: the Python `websockets` library as client
//! (`tests/python/ws_client.py`, driven line by line) and as echo server
//! (`tests/python/ws_echo.py`). Python is `common::py::python()` (`$PORTICO_PYTHON`, else
//! the repository's `.ci/venv`, made on first use from tests/requirements.txt).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

pub fn python() -> String {
    super::py::python()
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Fails the test loudly when the Python side is missing (never skips).
pub fn require_websockets() {
    static OK: OnceLock<()> = OnceLock::new();
    OK.get_or_init(|| {
        let out = Command::new(python())
            .args(["-c", "import websockets"])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "these tests need Python's `websockets` package: run .ci/run, or \
                 python3 -m venv .ci/venv && .ci/venv/bin/pip install websockets, then \
                 PORTICO_PYTHON=.ci/venv/bin/python cargo test"
            ),
        }
    });
}

/// Lines a child prints, read on a thread so that waits can time out.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// `ws_echo.py`: a WebSocket echo server on a port it picks.
pub struct EchoServer {
    child: Child,
    pub port: u16,
}

impl EchoServer {
    /// `tls`: certificate chain and key files for wss.
    pub fn start(tls: Option<(&std::path::Path, &std::path::Path)>) -> EchoServer {
        require_websockets();
        let mut cmd = Command::new(python());
        cmd.arg(script("ws_echo.py"));
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        // Owned before waiting, so a failed start still kills the process.
        let mut server = EchoServer { child, port: 0 };
        let rx = lines_of(&mut server.child);
        // Generous: a loaded CI machine can take seconds to start Python.
        server.port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("ws_echo.py printed its port")
            .trim()
            .parse()
            .unwrap();
        server
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ws_client.py`: one WebSocket client connection.
pub struct WsClient {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<String>,
    /// The first line: {"event": "open" | "rejected" | "error", ...}.
    pub opened: serde_json::Value,
}

impl WsClient {
    pub fn connect(url: &str, opts: serde_json::Value) -> WsClient {
        require_websockets();
        let mut child = Command::new(python())
            .arg(script("ws_client.py"))
            .arg(url)
            .arg(opts.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take().unwrap();
        let rx = lines_of(&mut child);
        let mut c = WsClient {
            child,
            stdin,
            rx,
            opened: serde_json::Value::Null,
        };
        c.opened = c.next();
        c
    }

    pub fn is_open(&self) -> bool {
        self.opened["event"] == "open"
    }

    /// The next line the client printed (60 s at most: Python may start slowly).
    pub fn next(&mut self) -> serde_json::Value {
        let line = self
            .rx
            .recv_timeout(Duration::from_secs(60))
            .expect("ws_client.py answered");
        serde_json::from_str(&line).unwrap()
    }

    pub fn cmd(&mut self, line: &str) -> serde_json::Value {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        self.next()
    }

    pub fn send(&mut self, text: &str) {
        assert_eq!(self.cmd(&format!("send {text}"))["event"], "sent");
    }

    /// The next message as text (panics on anything else).
    pub fn recv_text(&mut self) -> String {
        let m = self.cmd("recv");
        m["text"]
            .as_str()
            .unwrap_or_else(|| panic!("expected a text message, got {m}"))
            .to_string()
    }

    /// Sends `text` and returns the answer.
    pub fn ask(&mut self, text: &str) -> String {
        self.send(text);
        self.recv_text()
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `connections.py` (boto3's apigatewaymanagementapi) once and returns its JSON.
pub fn boto3_connections(
    endpoint: &str,
    op: &str,
    id: &str,
    data: Option<&str>,
) -> serde_json::Value {
    boto3_connections_as(endpoint, op, id, data, None)
}

/// The same, signed with `creds` (access key, secret), or unsigned with `Some(("", ""))`.
pub fn boto3_connections_as(
    endpoint: &str,
    op: &str,
    id: &str,
    data: Option<&str>,
    creds: Option<(&str, &str)>,
) -> serde_json::Value {
    let mut cmd = Command::new(python());
    match creds {
        Some(("", "")) => {
            cmd.env("CONN_UNSIGNED", "1");
        }
        Some((key, secret)) => {
            cmd.env("CONN_ACCESS_KEY", key).env("CONN_SECRET", secret);
        }
        None => {}
    }
    cmd.arg(script("connections.py")).args([endpoint, op, id]);
    if let Some(d) = data {
        cmd.arg(d);
    }
    let out = cmd.output().expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "connections.py printed {text:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// API `chat` (stage `prod`, two workers) with `routes` (YAML lines under `routes:`,
/// indented by six) and `api_extra` lines under the API (indented by four).
pub fn ws_api_config(admin: u16, state: &std::path::Path, api_extra: &str, routes: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 2s }}
admin: {{ listen: "127.0.0.1:{admin}", token: secret }}
state_dir: "{state}"
apis:
  chat:
    protocol: websocket
    route_selection_expression: $request.body.action
{api_extra}    stages:
      prod: {{}}
    routes:
{routes}"#,
        state = state.display()
    )
}

pub const ECHO_ROUTES: &str = r#"      echo: { integration: { type: mock, body: "$request.body" }, route_response: true }
      quiet: { integration: { type: mock, body: "not sent" } }
"#;

/// Sends a WebSocket handshake for `target` on `s` (`extra`: more header lines, each
/// ending in CRLF) and reads the answer's head, byte by byte so nothing after it is taken.
pub fn raw_handshake(s: &mut std::net::TcpStream, target: &str, extra: &str) -> String {
    use std::io::Read;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "closed in the head: {head:?}");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A masked text frame of at most 125 bytes, as a client sends one.
pub fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&u16::try_from(n).expect("at most 64 KiB").to_be_bytes());
        }
    }
    let key = [7, 1, 2, 9];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// One unmasked server frame of at most 125 bytes: (opcode, payload).
pub fn read_small_frame(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let mut payload = vec![0u8; usize::from(h[1] & 0x7F)];
    s.read_exact(&mut payload).unwrap();
    (h[0] & 0x0F, payload)
}

/// Opens a WebSocket connection to `p`'s `/prod` stage and learns its id from the
/// Forbidden notice an unrouted message gets (an API without `$default`).
pub fn open_learning_id(p: &super::Portico) -> (std::net::TcpStream, String) {
    let mut s = p.connect();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = raw_handshake(&mut s, "/prod", "");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(&masked_text(b"who am i")).unwrap();
    let notice: serde_json::Value = serde_json::from_slice(&read_small_frame(&mut s).1).unwrap();
    (s, notice["connectionId"].as_str().unwrap().to_string())
}

/// A node of a WebSocket API cluster on `redis` (the echo routes of [`ws_api_config`],
/// node name `name`, 200 ms Redis timeout), once its /health says Redis is up; its admin
/// listener's address with it.
pub fn cluster_node(
    redis: &super::redis::Redis,
    name: &str,
    driver: &str,
) -> (super::Portico, std::net::SocketAddr) {
    cluster_node_on(&redis.url(), "200ms", name, driver)
}

/// [`cluster_node`] on the Redis at `url`, with its `timeout`.
pub fn cluster_node_on(
    url: &str,
    timeout: &str,
    name: &str,
    driver: &str,
) -> (super::Portico, std::net::SocketAddr) {
    let admin_port = super::free_port();
    let dir = super::temp_dir("ws-cluster");
    let yaml = ws_api_config(admin_port, &dir, "", ECHO_ROUTES)
        + &format!("cluster: {{ redis: {url}, node: {name}, timeout: {timeout} }}\n");
    let p = super::Portico::start(&yaml, driver);
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
    // Generous: the machine may be loaded.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !super::admin(admin, "GET", "/health", None, None)
        .text()
        .contains(r#""redis":"up""#)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never reached Redis: {}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (p, admin)
}
