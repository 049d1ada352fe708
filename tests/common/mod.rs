//! Shared harness for end-to-end tests: the real `portico` binary on a port the test
//! picks, real origin servers on loopback sockets, and a raw HTTP/1.1 client that shows
//! exactly what came back on the wire.
#![allow(dead_code)]
// Test harness threads share counters; no request path here.
#![allow(clippy::disallowed_types)]

pub mod codings;
pub mod py;
pub mod redis;
pub mod tls;
pub mod ws;

mod backends;
#[allow(unused_imports)] // not every test binary uses a backend
pub use backends::*;
mod connect_loop;
#[allow(unused_imports)] // only the stop and reload tests use it
pub use connect_loop::ConnectLoop;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Every IO test runs under both monoio drivers.
pub const DRIVERS: [&str; 2] = ["io_uring", "epoll"];

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The socket's `TCP_INFO`.
pub fn tcp_info(s: &TcpStream) -> libc::tcp_info {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain integers, for which zero is a value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of their sizes for the call.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt(TCP_INFO)");
    info
}

/// A loopback port nothing listens on, for a server a test starts. Taken outside the
/// kernel's ephemeral range (`ip_local_port_range`, 32768–60999 by default), so no
/// client or upstream connection of another test can be given it as its source port
/// before the server binds it, and from a per-process counter, so two tests of one
/// binary never get the same port (with `bind(0)` the kernel may hand a just-closed port
/// out again). Test binaries run one after another; the process id spreads their
/// starting points.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let (first, span) = ports_outside_the_ephemeral_range();
    let start = std::process::id() as usize * 211;
    for _ in 0..span {
        let port = (first + (start + NEXT.fetch_add(1, Ordering::SeqCst)) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {first}..{}", first + span);
}

/// (first port, how many): 20000 up to the ephemeral range's start, or above its end
/// when a host's range starts lower; 20000–31999 when it leaves no room either side.
fn ports_outside_the_ephemeral_range() -> (usize, usize) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let mut bounds = range.iter().flat_map(|r| r.split_whitespace());
    let lo = bounds.next().and_then(|b| b.parse().ok()).unwrap_or(32_768);
    let hi = bounds.next().and_then(|b| b.parse().ok()).unwrap_or(60_999);
    const ENOUGH: usize = 4_000;
    if lo >= 20_000 + ENOUGH {
        (20_000, (lo - 20_000).min(12_000))
    } else if hi + ENOUGH < 65_535 {
        (hi + 1, 65_535 - hi)
    } else {
        (20_000, 12_000)
    }
}

/// A listener on a [`free_port`], for a server the test process runs itself: bound at
/// once, and on another port should the chosen one be taken between the check and the
/// bind (seen once in CI: AddrInUse on a port `free_port` had just found free).
pub fn listen_on_free_port() -> TcpListener {
    for _ in 0..64 {
        match TcpListener::bind(("127.0.0.1", free_port())) {
            Ok(l) => return l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("cannot listen on a loopback port: {e}"),
        }
    }
    panic!("64 free ports in a row were taken before they could be bound");
}

fn temp_path(ext: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("portico-test-{}-{n}.{ext}", std::process::id()))
}

pub struct Portico {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Portico {
    /// Starts `portico run` on `yaml`, where `{PORT}` is replaced by a free port.
    pub fn start(yaml: &str, driver: &str) -> Portico {
        Self::try_start(yaml, driver).expect("portico did not start")
    }

    pub fn try_start(yaml: &str, driver: &str) -> Result<Portico, String> {
        // A port `free_port` found free can be taken by another test's listener before
        // Portico binds it; Portico then refuses to start, and is started on another.
        let mut tries = 0;
        loop {
            let port = free_port();
            let started =
                Self::try_start_at(&yaml.replace("{PORT}", &port.to_string()), driver, port);
            match started {
                Err(e) if e.contains(" is in use (") && tries < 4 => tries += 1,
                other => return other,
            }
        }
    }

    /// Starts on a config that names its own listen port (`port`, waited for).
    pub fn start_at(yaml: &str, driver: &str, port: u16) -> Portico {
        Self::try_start_at(yaml, driver, port).expect("portico did not start")
    }

    /// [`Portico::start_at`] with these variables in its environment (`${env:NAME}`).
    pub fn start_at_with_env(yaml: &str, driver: &str, port: u16, env: &[(&str, &str)]) -> Portico {
        Self::try_start_at_with_env(yaml, driver, port, env).expect("portico did not start")
    }

    fn try_start_at(yaml: &str, driver: &str, port: u16) -> Result<Portico, String> {
        Self::try_start_at_with_env(yaml, driver, port, &[])
    }

    fn try_start_at_with_env(
        yaml: &str,
        driver: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Result<Portico, String> {
        let config = temp_path("yaml");
        std::fs::write(&config, yaml).unwrap();
        let log = temp_path("log");
        let child = Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["run", "-c"])
            .arg(&config)
            .env("PORTICO_DRIVER", driver)
            .env("RUST_LOG", "debug")
            // A config without state_dir gets a store of its own, not the temp dir's ./state.
            .env("STATE_DIRECTORY", temp_dir("state"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut p = Portico {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            config,
            log,
        };
        // Generous: a start that fails ends the process (seen below at once); only a
        // start that hangs waits this long, and a loaded CI host took over 10 s to start.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Serving only once it says so: a connect alone may reach another test's
            // listener that took the port while this Portico fails to bind it.
            if TcpStream::connect(p.addr).is_ok() && p.log_text().contains("portico is serving") {
                return Ok(p);
            }
            if let Some(status) = p.child.as_mut().unwrap().try_wait().unwrap() {
                p.child = None;
                return Err(format!("portico exited with {status}: {}", p.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "portico did not listen within 30s: {}",
                    p.log_text()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: i32) {
        unsafe_free_kill(self.pid(), sig);
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(15);
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "portico did not exit after SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit on its own (after a signal the test sent).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("portico is running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "portico did not exit within {limit:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s
    }

    /// One request on a new connection; the raw request is sent as given.
    pub fn raw(&self, request: &[u8]) -> Response {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        read_response(&mut BufReader::new(s), false).expect("a response")
    }

    pub fn get(&self, path: &str) -> Response {
        self.raw(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }
}

impl Drop for Portico {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn unsafe_free_kill(pid: i32, sig: i32) {
    // `kill` from the shell keeps the test crate free of unsafe and libc.
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Runs `portico check -c` on `yaml`; returns (exit code, stdout + stderr).
pub fn check(yaml: &str) -> (i32, String) {
    let config = temp_path("yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json_message(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("a JSON body");
        v["message"].as_str().expect("a message").to_string()
    }
}

/// The answer on `s` to a request whose body `push` writes on a clone of `s` from another
/// thread while this one reads, and how long it took to come: an answer that waited for
/// the whole body, or never came, shows here.
pub fn answer_while_pushing(
    s: TcpStream,
    push: impl FnOnce(TcpStream) + Send + 'static,
) -> (Response, Duration) {
    let writer = s.try_clone().unwrap();
    let pushing = thread::spawn(move || push(writer));
    let started = Instant::now();
    let mut reader = BufReader::new(s);
    let r = read_response(&mut reader, false).expect("an answer, not a hang");
    let took = started.elapsed();
    drop(reader);
    let _ = pushing.join();
    (r, took)
}

/// Reads one response (content-length, chunked or close-delimited body).
pub fn read_response(r: &mut impl BufRead, head_request: bool) -> std::io::Result<Response> {
    let (status, headers) = loop {
        let (status, headers) = read_head(r)?;
        if !(100..200).contains(&status) {
            break (status, headers);
        }
    };
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if head_request || status == 204 || status == 304 {
    } else if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap(), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t)?;
                    if t == "\r\n" || t.is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = get("content-length") {
        body.resize(n.trim().parse().unwrap(), 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed before a response",
        ));
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').unwrap();
        headers.push((n.to_string(), v.trim().to_string()));
    }
    Ok((status, headers))
}

/// A minimal config proxying everything to `origin`, with `extra` YAML appended to the
/// route list of the `$default` stage API.
pub fn proxy_config(origin: SocketAddr, workers: usize) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: {workers}
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 5s, max_body_bytes: 12MiB }}
upstreams:
  origin:
    targets: ["{origin}"]
    connect_timeout: 1s
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "$default":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
"#
    )
}

/// The `server:` and `upstreams:` part of a one-worker config whose upstream `origin` is
/// `origin`, with short timeouts; a test appends its `apis:`.
pub fn one_origin_head(origin: SocketAddr) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
upstreams:
  origin: {{ targets: ["{origin}"], connect_timeout: 1s }}
"#
    )
}

/// One keep-alive client connection: requests go out as given, one response read each.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn new(p: &Portico) -> Client {
        let s = p.connect();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    pub fn send(&mut self, request: &[u8]) -> Response {
        self.writer.write_all(request).unwrap();
        read_response(&mut self.reader, request.starts_with(b"HEAD ")).expect("a response")
    }

    pub fn get(&mut self, path: &str, host: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
    }
}

/// Polls `cond` for up to 5 s (log lines are written asynchronously).
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

// ---------------------------------------------------------------- traffic and admin

/// A fresh, empty directory for a test's `state_dir` (left behind on purpose: a
/// failing test's state can be inspected; it lives under the system temp dir).
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = temp_path(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One request on a new connection to any address.
pub fn send_to(addr: SocketAddr, request: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request).unwrap();
    read_response(&mut BufReader::new(s), false).expect("a response")
}

/// `GET path` with an `x-api-key` header (none when `key` is None), on a new connection.
pub fn get_with_key(addr: SocketAddr, path: &str, key: Option<&str>) -> Response {
    let key = key.map_or(String::new(), |k| format!("x-api-key: {k}\r\n"));
    send_to(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{key}Connection: close\r\n\r\n").as_bytes(),
    )
}

/// A request to the admin listener; `token` goes in `Authorization: Bearer`.
pub fn admin(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Response {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    let len = if body.is_empty() && method != "POST" {
        String::new()
    } else {
        format!(
            "Content-Length: {}\r\nContent-Type: application/json\r\n",
            body.len()
        )
    };
    send_to(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}{len}Connection: close\r\n\r\n{body}"
        )
        .as_bytes(),
    )
}

/// The admin listener's `/metrics` text once `ready` holds for it, or after 5 s (the caller
/// then asserts on it and fails with the text). A worker counts a request once its answer
/// is written, so a client can read the answer a moment before the count moves.
pub fn metrics_when(addr: SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = admin(addr, "GET", "/metrics", None, None);
        assert_eq!(r.status, 200, "GET /metrics");
        let text = r.text();
        if ready(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Client {
    /// A keep-alive connection to any address, e.g. from a thread that has no `Portico`.
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }
}

impl Portico {
    /// SIGKILL: no drain, no final flush; waits for the process to be gone.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// Everything the server sends on `s` until it closes the connection (EOF, or a reset
/// after the answer). Panics if the connection is still open after `limit`.
pub fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match std::io::Read::read(s, &mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !got.is_empty() => {
                return got
            }
            Err(e) => panic!(
                "connection not closed ({e}); got so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}
