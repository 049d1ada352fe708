//! The load generator: keep-alive connections spread over pinned threads, each running a
//! closed loop (next request as soon as the response is in) or an open loop (requests on a
//! fixed schedule, latency counted from when each was due, as wrk2 does).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::http::{self, Framing, BUF_CAP};
use crate::rt;
use crate::stats::{ErrorKind, Summary, ThreadStats};
use crate::stream::{Connector, Plain, Stream};
use crate::tls::TlsClient;

/// Everything the threads share, fixed before they start.
pub struct LoadConfig {
    pub addr: SocketAddr,
    /// The whole request, head and body, sent as is on every turn.
    pub request: &'static [u8],
    /// HEAD responses have no body whatever their headers say.
    pub head_method: bool,
    pub connections: usize,
    pub duration: Duration,
    /// Total requests per second for the open loop; `None` for the closed loop.
    pub rate: Option<f64>,
    pub threads: usize,
    pub cpus: Vec<usize>,
    pub timeout: Duration,
    /// TLS to the target; `None` for plain HTTP.
    pub tls: Option<TlsClient>,
    /// A new connection (and TLS handshake) for every request, none opened up front.
    pub new_connection: bool,
    /// `--websocket`: the handshake each connection sends once; `request` is then the
    /// message frame of every turn (`ws`).
    pub websocket: Option<&'static [u8]>,
}

/// Builds the request bytes once; they are reused for every request.
pub fn build_request(
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let body_size = body.len();
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        req.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let wants_length = body_size > 0 || matches!(method, "POST" | "PUT" | "PATCH");
    if wants_length && !has("content-length") && !has("transfer-encoding") {
        req.push_str(&format!("Content-Length: {body_size}\r\n"));
    }
    if close {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Runs the load and returns the merged figures and the driver the threads used.
pub fn run(cfg: &'static LoadConfig) -> Result<(Summary, &'static str), String> {
    let threads = cfg.threads.clamp(1, cfg.connections.max(1));
    let barrier = Arc::new(Barrier::new(threads));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut handles = Vec::with_capacity(threads);
    let mut first = 0;
    for t in 0..threads {
        let n = cfg.connections / threads + usize::from(t < cfg.connections % threads);
        let cpu = cfg.cpus[t % cfg.cpus.len()];
        let (barrier, tx) = (barrier.clone(), tx.clone());
        let h = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                rt::pin(cpu);
                let (mut runtime, driver) = match rt::runtime() {
                    Ok(r) => r,
                    Err(e) => {
                        barrier.wait();
                        return Err(format!("cannot start a monoio runtime: {e}"));
                    }
                };
                let _ = tx.send(driver);
                Ok(match &cfg.tls {
                    Some(tls) => runtime.block_on(thread_main(cfg, tls, first, n, barrier)),
                    None => runtime.block_on(thread_main(cfg, &Plain, first, n, barrier)),
                })
            })
            .map_err(|e| format!("cannot spawn a thread: {e}"))?;
        handles.push(h);
        first += n;
    }
    drop(tx);
    let mut total = Summary::default();
    for h in handles {
        let summary = h
            .join()
            .map_err(|_| "a load thread panicked".to_string())??;
        total.merge(&summary);
    }
    let driver = rx.try_iter().next().unwrap_or("none");
    Ok((total, driver))
}

async fn thread_main<C: Connector>(
    cfg: &'static LoadConfig,
    connector: &'static C,
    first: usize,
    n: usize,
    barrier: Arc<Barrier>,
) -> Summary {
    let stats = Rc::new(ThreadStats::new());
    // Connect (and run TLS handshakes) before the clock starts so that they do not count
    // as load; a connection that fails here is retried (and counted) inside the run.
    // With a new connection per request nothing is opened up front: each turn connects.
    let mut streams = Vec::with_capacity(n);
    let mut warned = false;
    if cfg.new_connection {
        streams.resize_with(n, || None);
    }
    for _ in streams.len()..n {
        match connect(cfg, connector, &stats).await {
            Ok(s) => streams.push(Some(s)),
            Err(e) => {
                if !std::mem::replace(&mut warned, true) {
                    eprintln!("portico-load: cannot connect to {}: {e}", cfg.addr);
                }
                streams.push(None);
            }
        }
    }
    // Blocking is fine: nothing else runs on this thread yet.
    barrier.wait();
    let start = Instant::now();
    let end = start + cfg.duration;
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let conn = Conn {
                cfg,
                connector,
                stats: stats.clone(),
                stream,
                index: first + i,
                start,
                end,
            };
            monoio::spawn(conn.run())
        })
        .collect();
    for t in tasks {
        t.await;
    }
    Rc::try_unwrap(stats)
        .ok()
        .expect("all connection tasks finished")
        .into_summary()
}

struct Conn<C: Connector> {
    cfg: &'static LoadConfig,
    connector: &'static C,
    stats: Rc<ThreadStats>,
    stream: Option<C::Stream>,
    /// Global index over all threads, to spread open-loop send times evenly.
    index: usize,
    start: Instant,
    end: Instant,
}

/// A complete response.
struct Response {
    status: u16,
    close: bool,
}

impl<C: Connector> Conn<C> {
    async fn run(mut self) {
        let cfg = self.cfg;
        let mut buf = Vec::with_capacity(BUF_CAP);
        // Open loop: this connection sends every `interval`, offset so that all
        // connections together send evenly spaced requests at the total rate.
        let schedule = cfg.rate.map(|rate| {
            let interval_ns = cfg.connections as f64 * 1e9 / rate;
            let offset_ns = self.index as f64 * 1e9 / rate;
            (interval_ns, offset_ns)
        });
        let pacer = match schedule.map(|_| rt::Pacer::new()).transpose() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("portico-load: cannot create a timer: {e}");
                return;
            }
        };
        let mut turn: u64 = 0;
        loop {
            let due = match (schedule, &pacer) {
                (Some((interval_ns, offset_ns)), Some(pacer)) => {
                    let at = offset_ns + turn as f64 * interval_ns;
                    turn += 1;
                    let due = self.start + Duration::from_nanos(at as u64);
                    if due >= self.end {
                        break;
                    }
                    if pacer.sleep_until(due).await.is_err() {
                        monoio::time::sleep(due.saturating_duration_since(Instant::now())).await;
                    }
                    due
                }
                _ => Instant::now(),
            };
            if Instant::now() >= self.end {
                break;
            }
            if !self.ensure_connected().await {
                continue;
            }
            let deadline = (Instant::now() + cfg.timeout).min(self.end);
            let stream = self.stream.as_mut().expect("connected above");
            let exchange = exchange(stream, buf, cfg);
            match monoio::time::timeout_at(monoio::time::Instant::from_std(deadline), exchange)
                .await
            {
                Ok((res, b)) => {
                    buf = b;
                    match res {
                        Ok(r) => {
                            self.stats.response(due.elapsed());
                            match r.status {
                                400..=499 => self.stats.error(ErrorKind::Status4xx),
                                500..=599 => self.stats.error(ErrorKind::Status5xx),
                                _ => {}
                            }
                            if cfg.new_connection {
                                buf = self.await_close(buf).await;
                                self.disconnect();
                            } else if r.close {
                                self.disconnect();
                            }
                        }
                        Err(_) => {
                            self.stats.error(ErrorKind::Read);
                            self.disconnect();
                        }
                    }
                }
                Err(_) => {
                    // The buffer went with the abandoned exchange.
                    buf = Vec::with_capacity(BUF_CAP);
                    self.disconnect();
                    if Instant::now() < self.end {
                        self.stats.error(ErrorKind::Timeout);
                    }
                }
            }
            if self.stream.is_none() {
                buf.clear();
            }
        }
        self.disconnect();
    }

    /// Connects if needed; false (after counting the error and backing off) when it fails.
    async fn ensure_connected(&mut self) -> bool {
        if self.stream.is_some() {
            return true;
        }
        let deadline = (Instant::now() + self.cfg.timeout).min(self.end);
        match monoio::time::timeout_at(
            monoio::time::Instant::from_std(deadline),
            connect(self.cfg, self.connector, &self.stats),
        )
        .await
        {
            Ok(Ok(s)) => {
                self.stream = Some(s);
                true
            }
            Ok(Err(_)) => {
                self.stats.error(ErrorKind::Connect);
                // Do not spin on a refused port; the open loop catches up afterwards.
                let pause = Duration::from_millis(10)
                    .min(self.end.saturating_duration_since(Instant::now()));
                monoio::time::sleep(pause).await;
                false
            }
            Err(_) => {
                if Instant::now() < self.end {
                    self.stats.error(ErrorKind::Timeout);
                }
                false
            }
        }
    }

    /// `--new-connection-per-request`: after the response, waits for the server's close,
    /// so that the server holds the TIME_WAIT (as after any `Connection: close`), not the
    /// load generator's ports. Bytes instead of the end count as a read error.
    async fn await_close(&mut self, buf: Vec<u8>) -> Vec<u8> {
        let deadline = (Instant::now() + self.cfg.timeout).min(self.end);
        let stream = self.stream.as_mut().expect("connected");
        match monoio::time::timeout_at(
            monoio::time::Instant::from_std(deadline),
            read_end(stream, buf),
        )
        .await
        {
            Ok((res, buf)) => {
                if res.is_err() {
                    self.stats.error(ErrorKind::Read);
                }
                buf
            }
            Err(_) => {
                if Instant::now() < self.end {
                    self.stats.error(ErrorKind::Timeout);
                }
                Vec::with_capacity(BUF_CAP)
            }
        }
    }

    fn disconnect(&mut self) {
        if let Some(s) = self.stream.take() {
            // A read may still be in flight in io_uring, keeping the socket open until it
            // completes; shutting down makes it complete now.
            // SAFETY: the fd is owned by `s`, which is alive for this call.
            unsafe {
                libc::shutdown(s.as_raw_fd(), libc::SHUT_RDWR);
            }
        }
    }
}

/// Connects, and with `--websocket` does the handshake (a refused one is an error).
async fn connect<C: Connector>(
    cfg: &LoadConfig,
    connector: &C,
    stats: &ThreadStats,
) -> std::io::Result<C::Stream> {
    let mut s = connector.connect(cfg.addr, stats).await?;
    if let Some(handshake) = cfg.websocket {
        crate::ws::handshake(&mut s, Vec::with_capacity(BUF_CAP), handshake)
            .await
            .0?;
    }
    Ok(s)
}

/// Sends the request and reads one complete response (with `--websocket`: one message
/// and its echo).
async fn exchange<S: Stream>(
    s: &mut S,
    buf: Vec<u8>,
    cfg: &LoadConfig,
) -> (std::io::Result<Response>, Vec<u8>) {
    if cfg.websocket.is_some() {
        let (res, buf) = crate::ws::round_trip(s, buf, cfg.request).await;
        let ok = Response {
            status: 200,
            close: false,
        };
        return (res.map(|()| ok), buf);
    }
    if let Err(e) = s.write_all_static(cfg.request).await {
        return (Err(e), buf);
    }
    read_response(s, buf, cfg.head_method).await
}

/// Reads once more, expecting the end of the stream (TCP FIN, TLS close_notify; a reset
/// or a TLS end without close_notify is taken as an end too).
async fn read_end<S: Stream>(s: &mut S, mut buf: Vec<u8>) -> (std::io::Result<()>, Vec<u8>) {
    use std::io::ErrorKind::{ConnectionReset, UnexpectedEof};
    buf.clear();
    let (res, buf) = s.read_append(buf).await;
    let res = match res {
        Ok(0) => Ok(()),
        Ok(_) => Err(http::invalid("data after a Connection: close response")),
        Err(e) if matches!(e.kind(), ConnectionReset | UnexpectedEof) => Ok(()),
        Err(e) => Err(e),
    };
    (res, buf)
}

async fn read_response<S: Stream>(
    s: &mut S,
    mut buf: Vec<u8>,
    head_method: bool,
) -> (std::io::Result<Response>, Vec<u8>) {
    loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = resp.code.unwrap_or(0);
                    let http10 = resp.version == Some(0);
                    http::head_info(resp.headers, http10, Framing::UntilClose)
                        .map(|info| Some((len, status, info)))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(http::invalid("malformed response head")),
            }
        };
        match parsed {
            Err(e) => return (Err(e), buf),
            Ok(None) => {
                let (res, b) = http::read_more(s, buf).await;
                buf = b;
                match res {
                    Ok(0) => {
                        let e = std::io::ErrorKind::UnexpectedEof;
                        return (Err(e.into()), buf);
                    }
                    Ok(_) => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            Ok(Some((len, status, info))) => {
                if (100..200).contains(&status) && status != 101 {
                    // An interim response (100 Continue): the real one follows.
                    let (res, b) = http::skip_body(s, buf, len, Framing::Length(0)).await;
                    buf = b;
                    if let Err(e) = res {
                        return (Err(e), buf);
                    }
                    continue;
                }
                let framing = if head_method || status == 204 || status == 304 {
                    Framing::Length(0)
                } else {
                    info.framing
                };
                let (res, b) = http::skip_body(s, buf, len, framing).await;
                let close = info.close;
                return (res.map(|()| Response { status, close }), b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        let headers = vec![("X-Api-Key".to_string(), "k".to_string())];
        let r = build_request("POST", "127.0.0.1:8080", "/p?q", &headers, b"xxx", false);
        assert_eq!(
            r,
            b"POST /p?q HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Api-Key: k\r\nContent-Length: 3\r\n\r\nxxx"
        );
        let headers = vec![("host".to_string(), "example.com".to_string())];
        let r = build_request("GET", "127.0.0.1", "/", &headers, b"", false);
        assert_eq!(r, b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n");
        // A new connection per request asks the server to close after its response.
        let r = build_request("GET", "127.0.0.1", "/", &[], b"", true);
        assert_eq!(
            r,
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
    }
}
