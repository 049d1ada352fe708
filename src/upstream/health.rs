//! Active health checks (`upstreams.NAME.health`): a background thread sends
//! `GET {path}` to every target each `interval`; `unhealthy_after` failures in a row take a
//! target out of balancing, `healthy_after` successes bring it back. A 2xx or 3xx answer
//! within the interval (at most 5 s) is a success; anything else is a failure.
//!
//! Workers read a target's state with one relaxed atomic load when they pick it, and pass
//! over a target that is down. When every target of an upstream is down they use them
//! anyway (as nginx does): a check can be wrong, and a request tried can still succeed.
//!
//! A target's state is kept per (upstream, target, check settings) across reloads, so a
//! reload neither revives a dead target nor forgets a live one. Targets start up.

// Cold path: the registry is locked when a config is compiled and by the checker thread,
// never per request.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::config::compile::Snapshot;
use crate::config::model::Health;
use crate::tls::ClientTls;

/// One target's state, shared by the checker (writer) and every worker (readers).
#[derive(Debug)]
pub struct TargetHealth {
    up: AtomicBool,
}

impl TargetHealth {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// A handle compared by identity, so `UpstreamRt` stays comparable across reloads.
#[derive(Debug, Clone)]
pub struct HealthRef(pub Arc<TargetHealth>);

impl PartialEq for HealthRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

type Key = (String, SocketAddr, String, Duration, u32, u32);

fn registry() -> &'static Mutex<HashMap<Key, Arc<TargetHealth>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Arc<TargetHealth>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The state of `target` of `upstream` under `check`, the same one as long as they stay.
pub fn state_for(upstream: &str, target: SocketAddr, check: &Health) -> HealthRef {
    let key = (
        upstream.to_string(),
        target,
        check.path.clone(),
        check.interval,
        check.unhealthy_after,
        check.healthy_after,
    );
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    let state = map.entry(key).or_insert_with(|| {
        Arc::new(TargetHealth {
            up: AtomicBool::new(true),
        })
    });
    HealthRef(state.clone())
}

/// What the checker remembers about one target between rounds.
struct Probe {
    state: Arc<TargetHealth>,
    /// `portico_upstream_target_up`.
    gauge: Arc<std::sync::atomic::AtomicU64>,
    successes: u32,
    failures: u32,
    next: Instant,
    running: bool,
}

impl Probe {
    fn new(state: Arc<TargetHealth>, upstream: &str, target: SocketAddr, now: Instant) -> Self {
        let gauge = crate::metrics::registry().target_up(upstream, &target.to_string());
        gauge.store(u64::from(state.is_up()), Ordering::Relaxed);
        Probe {
            state,
            gauge,
            successes: 0,
            failures: 0,
            next: now,
            running: false,
        }
    }
}

/// The checker thread's state; `tick` runs every 100 ms with the running config.
pub struct Checker {
    probes: HashMap<(String, SocketAddr), Probe>,
    /// Probe threads report here.
    tx: crossbeam::channel::Sender<ProbeResult>,
    rx: crossbeam::channel::Receiver<ProbeResult>,
}

impl Default for Checker {
    fn default() -> Self {
        let (tx, rx) = crossbeam::channel::unbounded();
        Checker {
            probes: HashMap::new(),
            tx,
            rx,
        }
    }
}

struct ProbeResult {
    key: (String, SocketAddr),
    outcome: Result<u16, String>,
}

impl Checker {
    pub fn tick(&mut self, snap: &Snapshot) {
        while let Ok(r) = self.rx.try_recv() {
            self.record(snap, r);
        }
        let now = Instant::now();
        let mut wanted = Vec::new();
        for up in &snap.upstreams {
            let Some(check) = &up.health_check else {
                continue;
            };
            // Every address of every target, as the resolver last published them.
            let endpoints = up.addrs.load();
            for (e, state) in endpoints.list.iter().zip(&endpoints.health) {
                let (i, addr) = (e.target, &e.addr);
                let key = (up.name.clone(), *addr);
                wanted.push(key.clone());
                let state = &state.0;
                let known = self.probes.get(&key);
                if known.is_none_or(|p| !Arc::ptr_eq(&p.state, state)) {
                    // A new target, or new settings for it: start counting again.
                    let probe = Probe::new(state.clone(), &up.name, *addr, now);
                    self.probes.insert(key.clone(), probe);
                }
                let probe = self.probes.get_mut(&key).expect("inserted above");
                if probe.running || now < probe.next {
                    continue;
                }
                probe.running = true;
                probe.next = now + check.interval;
                let job = Job {
                    addr: *addr,
                    path: check.path.clone(),
                    host: up.host_header(i),
                    connect_timeout: up.connect_timeout.min(check.interval),
                    timeout: check.interval.min(Duration::from_secs(5)),
                    tls: up.tls.clone().map(|t| (t, i)),
                };
                let tx = self.tx.clone();
                let spawned = std::thread::Builder::new()
                    .name("portico-health".into())
                    .spawn(move || {
                        let outcome = job.run();
                        let _ = tx.send(ProbeResult { key, outcome });
                    });
                if spawned.is_err() {
                    probe.running = false;
                }
            }
        }
        // Targets no longer configured are forgotten.
        self.probes.retain(|k, _| wanted.contains(k));
    }

    fn record(&mut self, snap: &Snapshot, r: ProbeResult) {
        let Some(probe) = self.probes.get_mut(&r.key) else {
            return;
        };
        probe.running = false;
        let Some(check) = snap
            .upstreams
            .iter()
            .find(|u| u.name == r.key.0)
            .and_then(|u| u.health_check.as_ref())
        else {
            return;
        };
        let (upstream, target) = (&r.key.0, r.key.1);
        match r.outcome {
            Ok(status) if (200..400).contains(&status) => {
                probe.failures = 0;
                probe.successes = probe.successes.saturating_add(1);
                if !probe.state.is_up() && probe.successes >= check.healthy_after {
                    probe.state.up.store(true, Ordering::Relaxed);
                    info!(%upstream, %target, "health check: target is healthy again");
                }
            }
            outcome => {
                probe.successes = 0;
                probe.failures = probe.failures.saturating_add(1);
                if probe.state.is_up() && probe.failures >= check.unhealthy_after {
                    probe.state.up.store(false, Ordering::Relaxed);
                    let why = match outcome {
                        Ok(status) => format!("answered {status}"),
                        Err(e) => e,
                    };
                    warn!(%upstream, %target, %why, "health check: target taken out of balancing");
                }
            }
        }
        probe
            .gauge
            .store(u64::from(probe.state.is_up()), Ordering::Relaxed);
    }
}

/// One check of one target, run on its own short-lived thread.
struct Job {
    addr: SocketAddr,
    path: String,
    host: String,
    connect_timeout: Duration,
    timeout: Duration,
    tls: Option<(Arc<ClientTls>, usize)>,
}

impl Job {
    fn run(&self) -> Result<u16, String> {
        let tcp = TcpStream::connect_timeout(&self.addr, self.connect_timeout)
            .map_err(|e| format!("connect: {e}"))?;
        let tcp = Due {
            tcp,
            due: Instant::now() + self.timeout,
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: portico-health-check\r\nConnection: close\r\n\r\n",
            self.path, self.host
        );
        match &self.tls {
            None => exchange(tcp, request.as_bytes()),
            Some((tls, target)) => {
                let conn = tls.session(*target).map_err(|e| e.to_string())?;
                exchange(rustls::StreamOwned::new(conn, tcp), request.as_bytes())
            }
        }
    }
}

/// A socket whose reads and writes share one deadline, the check's: each sets the
/// socket's timeout to what is left. The whole answer is due within the timeout, TLS
/// handshake included, not each read: an answer trickled a byte at a time passed, and a
/// handshake trickled so held its check (and, after reloads, its thread) for good.
struct Due {
    tcp: TcpStream,
    due: Instant,
}

impl Due {
    fn left(&self) -> std::io::Result<Duration> {
        match self.due.saturating_duration_since(Instant::now()) {
            left if left.is_zero() => Err(ErrorKind::TimedOut.into()),
            left => Ok(left),
        }
    }
}

impl Read for Due {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Due {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// Sends the request and reads the status code of the answer, within `s`'s deadline.
fn exchange(mut s: impl Read + Write, request: &[u8]) -> Result<u16, String> {
    // A socket timeout ends as EAGAIN (EWOULDBLOCK), said as "Resource temporarily
    // unavailable", or as `Due`'s TimedOut: it is the check's time running out.
    let late = |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    // Over TLS the handshake runs in this write.
    s.write_all(request).map_err(|e| match e {
        e if late(&e) => "no answer in time".to_string(),
        e => format!("send: {e}"),
    })?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut head[got..]) {
            Ok(0) => return Err("closed before answering".to_string()),
            Ok(n) => got += n,
            Err(e) if late(&e) => return Err("no answer in time".to_string()),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = &head[..got];
    if !line.starts_with(b"HTTP/1.") || line[8] != b' ' {
        return Err("not an HTTP/1.x answer".to_string());
    }
    std::str::from_utf8(&line[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "bad status line".to_string())
}

/// The thread that runs active health checks on the running config, until stop.
pub fn spawn_checker() {
    let spawned = std::thread::Builder::new()
        .name("portico-health".into())
        .spawn(|| {
            let mut checker = Checker::default();
            while !crate::runtime::shutdown::stop_requested() {
                if let Some((_, snap)) = crate::runtime::reload::current() {
                    checker.tick(&snap);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the health-check thread; upstream health checks are off");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let io = |answer: &'static [u8]| {
            struct Fake(&'static [u8], Vec<u8>);
            impl Read for Fake {
                fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                    self.0.read(buf)
                }
            }
            impl Write for Fake {
                fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                    self.1.extend_from_slice(b);
                    Ok(b.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            exchange(Fake(answer, Vec::new()), b"GET / HTTP/1.1\r\n\r\n")
        };
        assert_eq!(io(b"HTTP/1.1 204 No Content\r\n\r\n"), Ok(204));
        assert_eq!(io(b"HTTP/1.0 503 Busy\r\n\r\n"), Ok(503));
        assert!(io(b"SSH-2.0-OpenSSH_9.2\r\n").is_err());
        assert!(io(b"HTTP/1").is_err());
        // Out of time between two reads: however quick each read, the check fails (a
        // TLS handshake reads through the same socket).
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            for b in b"HTTP/1.1 200 OK\r\n\r\n".iter().cycle().take(200) {
                std::thread::sleep(Duration::from_millis(40));
                if s.write_all(&[*b]).is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let due = Due {
            tcp: TcpStream::connect(addr).unwrap(),
            due: started + Duration::from_millis(300),
        };
        struct OneByte(Due);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(&mut buf[..1])
            }
        }
        impl Write for OneByte {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.0.flush()
            }
        }
        let mut slow = OneByte(due);
        let mut got = Vec::new();
        let end = loop {
            let mut b = [0u8; 1];
            match slow.read(&mut b) {
                Ok(0) => break None,
                Ok(_) => got.push(b[0]),
                Err(e) => break Some(e.kind()),
            }
        };
        assert!(
            matches!(end, Some(ErrorKind::TimedOut | ErrorKind::WouldBlock)),
            "{end:?} after {} bytes",
            got.len()
        );
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
        // A read that ran out of its socket timeout.
        struct Silent;
        impl Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(libc::EAGAIN))
            }
        }
        impl Write for Silent {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                match buf.is_empty() {
                    true => Ok(0),
                    // A TLS handshake that never gets its answer, inside the write.
                    false => Err(std::io::Error::from_raw_os_error(libc::EAGAIN)),
                }
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        for request in [&b""[..], b"GET / HTTP/1.1\r\n\r\n"] {
            assert_eq!(
                exchange(Silent, request),
                Err("no answer in time".to_string())
            );
        }
    }
}
