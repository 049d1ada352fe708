//! The benchmark origin: every request gets the same 200 with an N-byte body, written from
//! one static buffer in one write, on keep-alive connections. Request bodies are read and
//! dropped. One listener per pinned thread (SO_REUSEPORT) so it scales with `--threads`.
//! With `websocket` on, a WebSocket handshake is answered with a 101 and the connection
//! becomes an echo (`origin_ws`).

use std::net::SocketAddr;
use std::sync::mpsc;

use monoio::io::AsyncWriteRentExt;
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

use crate::http::{self, Framing, BUF_CAP};
use crate::{origin_ws, rt};

pub struct OriginConfig {
    pub port: u16,
    pub body_size: usize,
    /// Serve a compressible JSON body (`application/json`) instead of filler bytes.
    pub json: bool,
    /// Answer WebSocket handshakes with a 101 and echo frames (other requests: the 200).
    pub websocket: bool,
    pub cpus: Vec<usize>,
    pub threads: usize,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

fn response(body_size: usize, json: bool) -> Vec<u8> {
    let content_type = if json {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: portico-load\r\nContent-Type: {content_type}\r\nContent-Length: {body_size}\r\n\r\n"
    )
    .into_bytes();
    if json {
        r.extend_from_slice(&json_body(body_size));
    } else {
        r.resize(r.len() + body_size, b'o');
    }
    r
}

/// Exactly `n` bytes of a JSON list of user records, as an API's list answer compresses
/// (about 5x with gzip -1); padded with spaces to the size.
fn json_body(n: usize) -> Vec<u8> {
    let mut s = String::from("[");
    let mut i = 0u64;
    while s.len() + 90 < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user {}\",\"email\":\"u{}@example.com\",\"active\":{}}},",
            i * 7919 % 1000,
            i * 31 % 977,
            i.is_multiple_of(3)
        ));
        i += 1;
    }
    s.push_str("{}]");
    let mut b = s.into_bytes();
    b.resize(n.max(b.len()), b' ');
    b.truncate(n);
    b
}

/// Serves until the process is killed. Returns only on a startup error.
pub fn serve(cfg: OriginConfig) -> Result<(), String> {
    let addr: SocketAddr = ([127, 0, 0, 1], cfg.port).into();
    // SO_REUSEPORT would let us silently share the port with a stale origin: a plain bind
    // first fails if anyone listens there.
    std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let resp: &'static [u8] = response(cfg.body_size, cfg.json).leak();
    let websocket = cfg.websocket;
    let (tx, rx) = mpsc::channel::<Result<&'static str, String>>();
    let mut handles = Vec::new();
    for t in 0..cfg.threads.max(1) {
        let cpu = cfg.cpus[t % cfg.cpus.len()];
        let tx = tx.clone();
        let h = std::thread::Builder::new()
            .name(format!("origin-{t}"))
            .spawn(move || {
                rt::pin(cpu);
                let (mut runtime, driver) = match rt::runtime() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot start a monoio runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
                    let listener = match TcpListener::bind_with_config(addr, &opts) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = tx.send(Err(format!("cannot listen on {addr}: {e}")));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(driver));
                    drop(tx);
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => {
                                monoio::spawn(serve_conn(stream, resp, websocket));
                            }
                            Err(e) => {
                                // Out of fds or similar: say so and keep serving.
                                eprintln!("portico-load origin: accept: {e}");
                                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
                            }
                        }
                    }
                });
            })
            .map_err(|e| format!("cannot spawn a thread: {e}"))?;
        handles.push(h);
    }
    drop(tx);
    let mut driver = "none";
    for _ in 0..handles.len() {
        match rx.recv() {
            Ok(Ok(d)) => driver = d,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("an origin thread exited".into()),
        }
    }
    eprintln!(
        "portico-load origin: listening on {addr}, {} thread(s) on cpus {:?}, {driver}, {}-byte responses{}",
        handles.len(),
        cfg.cpus,
        cfg.body_size,
        if cfg.websocket { ", WebSocket echo" } else { "" }
    );
    for h in handles {
        let _ = h.join();
    }
    Err("origin threads exited".into())
}

async fn serve_conn(mut s: TcpStream, resp: &'static [u8], websocket: bool) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::with_capacity(BUF_CAP);
    loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let http10 = req.version == Some(0);
                    let key = websocket
                        .then(|| origin_ws::handshake_key(req.headers))
                        .flatten();
                    http::head_info(req.headers, http10, Framing::Length(0))
                        .map(|info| Some((len, info, key)))
                        .map_err(|_| ())
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(()),
            }
        };
        match parsed {
            Err(()) => {
                let _ = s.write_all(BAD_REQUEST).await;
                return;
            }
            Ok(None) => {
                if buf.len() == buf.capacity() {
                    let _ = s.write_all(TOO_LARGE).await;
                    return;
                }
                let (res, b) = http::read_more(&mut s, buf).await;
                buf = b;
                match res {
                    Ok(n) if n > 0 => {}
                    _ => return,
                }
            }
            Ok(Some((len, _, Some(key)))) => {
                let (res, _) = s.write_all(origin_ws::switching_protocols(&key)).await;
                if res.is_ok() {
                    // The 64 KiB head buffer goes; the echo keeps a small one.
                    let rest = buf.split_off(len);
                    drop(buf);
                    origin_ws::echo(s, rest).await;
                }
                return;
            }
            Ok(Some((len, info, None))) => {
                if info.expect_continue {
                    let (res, _) = s.write_all(CONTINUE).await;
                    if res.is_err() {
                        return;
                    }
                }
                let (res, b) = http::skip_body(&mut s, buf, len, info.framing).await;
                buf = b;
                if res.is_err() {
                    return;
                }
                let (res, _) = s.write_all(resp).await;
                if res.is_err() || info.close {
                    return;
                }
            }
        }
    }
}
