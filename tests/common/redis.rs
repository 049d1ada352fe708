//! A private `redis-server` for cluster tests: on a free loopback port, in its own
//! directory, no persistence unless asked; killed when dropped. And what stands between
//! a node and its Redis when things go wrong: an impostor on the Redis port, a proxy
//! that holds Redis's answers back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    appendonly: bool,
    password: Option<String>,
}

impl Redis {
    /// No persistence: `--save '' --appendonly no`.
    pub fn start() -> Redis {
        Self::start_at(super::free_port(), super::temp_dir("redis"), false, None)
    }

    /// Every write fsynced to an append-only file before Redis answers it.
    pub fn start_persistent() -> Redis {
        Self::start_at(super::free_port(), super::temp_dir("redis"), true, None)
    }

    /// Clients must `AUTH` with `password` (`--requirepass`).
    pub fn start_with_password(password: &str) -> Redis {
        let (port, dir) = (super::free_port(), super::temp_dir("redis"));
        Self::start_at(port, dir, false, Some(password.to_string()))
    }

    fn start_at(port: u16, dir: PathBuf, appendonly: bool, password: Option<String>) -> Redis {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if appendonly {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(p) = &password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let r = Redis {
            child: Some(child),
            port,
            dir,
            appendonly,
            password,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(r.addr()).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            thread::sleep(Duration::from_millis(20));
        }
        r
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs one command (`["CONFIG", "SET", "maxmemory", "1"]`) that answers OK.
    pub fn cmd(&self, args: &[&str]) {
        let client = ::redis::Client::open(self.url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let mut cmd = ::redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let () = cmd.query(&mut con).unwrap();
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` (SIGSTOP 19 stalls it, SIGCONT 18 resumes it).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            super::unsafe_free_kill(c.id() as i32, sig);
        }
    }

    /// Starts it again on the same port and directory (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        let (dir, password) = (self.dir.clone(), self.password.clone());
        let again = Self::start_at(self.port, dir, self.appendonly, password);
        *self = again;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server on a Redis port that is not Redis (the tester's HTTP server briefly on the
/// port): it answers every read with garbage; or first like Redis (so a client gets
/// past its connection setup) and garbage after; or announces a 10 GB answer and
/// streams bytes at it. Dropping it closes the port and every connection.
pub struct Impostor {
    pub port: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<thread::JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Act {
    Garbage,
    GarbageAfterSetup,
    /// As `GarbageAfterSetup`, then silent: a Redis that stalls.
    HangAfterSetup,
    Flood,
}

impl Impostor {
    pub fn garbage(port: u16) -> Impostor {
        Self::start(port, Act::Garbage)
    }

    /// The first read on each connection is answered `+PONG` (a probe) or one `+OK` per
    /// command (a client's setup), every later one with garbage.
    pub fn garbage_after_setup(port: u16) -> Impostor {
        Self::start(port, Act::GarbageAfterSetup)
    }

    /// On a port of its own, bound before it is named (a port found free and bound
    /// later was taken in between once in CI).
    pub fn hang_after_setup() -> Impostor {
        Self::serve(super::listen_on_free_port(), Act::HangAfterSetup)
    }

    pub fn flood(port: u16) -> Impostor {
        Self::start(port, Act::Flood)
    }

    /// On the port a Redis the test just killed held: the kernel may take a moment to
    /// let it go, so a refused bind is tried again for up to 5 s.
    fn start(port: u16, act: Act) -> Impostor {
        let t0 = Instant::now();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e) if t0.elapsed() < Duration::from_secs(5) => {
                    eprintln!("the impostor's port {port}: {e}; trying again");
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("the impostor's port {port}: {e}"),
            }
        };
        Self::serve(listener, act)
    }

    fn serve(listener: TcpListener, act: Act) -> Impostor {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (s, cs) = (stop.clone(), conns.clone());
        let accept = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((c, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                cs.lock().unwrap().push(c.try_clone().unwrap());
                let s = s.clone();
                thread::spawn(move || answer(c, act, &s));
            }
        });
        Impostor {
            port,
            stop,
            conns,
            accept: Some(accept),
        }
    }
}

fn answer(mut c: TcpStream, act: Act, stop: &AtomicBool) {
    let mut buf = [0u8; 65536];
    let mut first = true;
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 || stop.load(Ordering::SeqCst) {
            return;
        }
        let reply = match act {
            Act::GarbageAfterSetup | Act::HangAfterSetup if first => {
                match buf[..n].iter().filter(|b| **b == b'*').count() {
                    0 => b"+PONG\r\n".to_vec(),
                    commands => b"+OK\r\n".repeat(commands),
                }
            }
            Act::HangAfterSetup => continue,
            Act::Garbage | Act::GarbageAfterSetup => {
                b"HTTP/1.1 400 Bad\r\n\r\n\x00\xff garbage\r\n".to_vec()
            }
            Act::Flood => {
                let chunk = [b'A'; 65536];
                if c.write_all(b"$9999999999\r\n").is_err() {
                    return;
                }
                while !stop.load(Ordering::SeqCst) && c.write_all(&chunk).is_ok() {}
                return;
            }
        };
        first = false;
        if c.write_all(&reply).is_err() {
            return;
        }
    }
}

impl Impostor {
    /// How many connections it took.
    pub fn taken(&self) -> usize {
        self.conns.lock().unwrap().len()
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A TCP proxy in front of a real Redis that can hold back Redis's answers: after a
/// command holding `marker` goes through, the next answer on that connection is
/// forwarded [`DelayProxy::DELAY`] late (Redis did the work; the client's wait ran out);
/// or hold back commands (`hold`): Redis gets them late.
pub struct DelayProxy {
    pub port: u16,
    rule: Arc<Mutex<(Vec<u8>, i64)>>,
    held: Arc<Mutex<(Vec<u8>, i64)>>,
    held_for: Arc<Mutex<Duration>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl DelayProxy {
    pub const DELAY: Duration = Duration::from_millis(600);

    pub fn start(upstream: SocketAddr) -> DelayProxy {
        let listener = super::listen_on_free_port();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let rule = Arc::new(Mutex::new((Vec::new(), 0)));
        let held = Arc::new(Mutex::new((Vec::new(), 0)));
        let held_for = Arc::new(Mutex::new(Self::DELAY));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (r, h, s, cs) = (rule.clone(), held.clone(), stop.clone(), conns.clone());
        let hf = held_for.clone();
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((c, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let Ok(u) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut all = cs.lock().unwrap();
                all.push(c.try_clone().unwrap());
                all.push(u.try_clone().unwrap());
                let late = Arc::new(AtomicBool::new(false));
                let (c2, u2, late2, r, h, hf) = (
                    c.try_clone().unwrap(),
                    u.try_clone().unwrap(),
                    late.clone(),
                    r.clone(),
                    h.clone(),
                    hf.clone(),
                );
                thread::spawn(move || {
                    pipe(c2, u2, |chunk| {
                        if matches(&r, chunk) {
                            late2.store(true, Ordering::SeqCst);
                        }
                        if matches(&h, chunk) {
                            thread::sleep(*hf.lock().unwrap());
                        }
                    })
                });
                thread::spawn(move || {
                    pipe(u, c, |_| {
                        if late.swap(false, Ordering::SeqCst) {
                            thread::sleep(Self::DELAY);
                        }
                    })
                });
            }
        });
        DelayProxy {
            port,
            rule,
            held,
            held_for,
            stop,
            conns,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The answers to the next `times` commands holding `marker` come late (a negative
    /// `times`: every such command until told otherwise; 0: none).
    pub fn delay(&self, marker: &str, times: i64) {
        *self.rule.lock().unwrap() = (marker.as_bytes().to_vec(), times);
    }

    /// The next `times` commands holding `marker` reach Redis `late` (negative `times`:
    /// every one).
    pub fn hold(&self, marker: &str, times: i64, late: Duration) {
        *self.held_for.lock().unwrap() = late;
        *self.held.lock().unwrap() = (marker.as_bytes().to_vec(), times);
    }
}

/// Whether `chunk` holds the rule's marker while the rule has uses left (taking one).
fn matches(rule: &Mutex<(Vec<u8>, i64)>, chunk: &[u8]) -> bool {
    let mut rule = rule.lock().unwrap();
    let (marker, times) = &mut *rule;
    let hit =
        *times != 0 && !marker.is_empty() && chunk.windows(marker.len()).any(|w| w == &marker[..]);
    if hit {
        *times -= 1;
    }
    hit
}

/// Copies `from` to `to`, calling `each` on every chunk before it is sent on.
fn pipe(mut from: TcpStream, mut to: TcpStream, mut each: impl FnMut(&[u8])) {
    let mut buf = [0u8; 65536];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        each(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Whether `GET /k` with `key` answers `status` on every node at `addrs`, 300 ms after it
/// first did on all of them (within 3 s): a key created or revoked on one node of a
/// cluster, seen alike by all.
pub fn key_settles(addrs: &[std::net::SocketAddr], key: &str, status: u16) -> bool {
    let on_all = || {
        addrs
            .iter()
            .all(|a| super::get_with_key(*a, "/k", Some(key)).status == status)
    };
    let t0 = std::time::Instant::now();
    while !on_all() {
        if t0.elapsed() > std::time::Duration::from_secs(3) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    on_all()
}

/// The head of a one-worker cluster node's config, up to its `apis`: a listener on
/// `{PORT}`, a store of its own, the admin listener on `admin_port` (with `token`, if
/// any) and `cluster` on `redis_url` with `options` (e.g. `on_failure: deny, timeout:
/// 200ms, node: a`).
pub fn node_head(redis_url: &str, admin_port: u16, token: Option<&str>, options: &str) -> String {
    let token = token.map_or(String::new(), |t| format!(", token: \"{t}\""));
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ drain_timeout: 1s }}
state_dir: "{state}"
admin: {{ listen: "127.0.0.1:{admin_port}"{token} }}
cluster: {{ redis: "{redis_url}", {options} }}
"#,
        state = super::temp_dir("state").display(),
    )
}
