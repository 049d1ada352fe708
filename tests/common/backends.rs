//! The backends tests put behind Portico: a real HTTP/1.1 origin whose answers the test
//! writes, a Lambda-style function endpoint, and an origin that accepts and never reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// An origin that accepts connections and never reads from them nor answers.
pub fn silent_origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// An origin that hands each connection it accepts, on a thread of its own, to `serve`:
/// for tests that write an origin's bytes themselves.
pub fn raw_origin<F: Fn(TcpStream) + Clone + Send + 'static>(serve: F) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let serve = serve.clone();
            thread::spawn(move || serve(s));
        }
    });
    addr
}

/// A request as an origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// "HTTP/1.1" as the request line said it.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Seen, &mut TcpStream) -> bool + Send + Sync;

/// A real HTTP/1.1 origin on loopback: a thread per connection, keep-alive, request
/// bodies with content-length or chunked. It counts accepted connections and requests.
pub struct Origin {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Origin {
    /// `handler` writes the response itself and returns whether to keep the connection.
    pub fn start(
        handler: impl Fn(&Seen, &mut TcpStream) -> bool + Send + Sync + 'static,
    ) -> Origin {
        Origin::start_at(0, handler)
    }

    /// As [`Origin::start`], on 127.0.0.1:`port` (0: any free port).
    pub fn start_at(
        port: u16,
        handler: impl Fn(&Seen, &mut TcpStream) -> bool + Send + Sync + 'static,
    ) -> Origin {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (c, r, s) = (connections.clone(), requests.clone(), seen.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (handler, r, s) = (handler.clone(), r.clone(), s.clone());
                thread::spawn(move || serve_origin(stream, &*handler, &r, &s));
            }
        });
        Origin {
            addr,
            connections,
            requests,
            seen,
        }
    }

    /// Answers every request with 200 and `body`.
    pub fn fixed(body: &'static [u8]) -> Origin {
        Origin::start(move |_, s| {
            respond(s, 200, &[("content-type", "text/plain")], body);
            true
        })
    }

    /// Answers with the request body (echo), same content-length.
    pub fn echo() -> Origin {
        Origin::start(|req, s| {
            respond(s, 200, &[], &req.body);
            true
        })
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the origin saw a request")
    }
}

fn serve_origin(
    stream: TcpStream,
    handler: &Handler,
    requests: &AtomicUsize,
    seen: &std::sync::Mutex<Vec<Seen>>,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.trim_end().split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let version = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut req = Seen {
            method,
            target,
            version,
            headers,
            body: Vec::new(),
        };
        if req
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
                if n == 0 {
                    let mut end = String::new();
                    r.read_line(&mut end).unwrap();
                    break;
                }
                let start = req.body.len();
                req.body.resize(start + n, 0);
                r.read_exact(&mut req.body[start..]).unwrap();
                let mut crlf = [0; 2];
                r.read_exact(&mut crlf).unwrap();
            }
        } else if let Some(n) = req.header("content-length") {
            req.body.resize(n.parse().unwrap(), 0);
            if r.read_exact(&mut req.body).is_err() {
                return;
            }
        }
        requests.fetch_add(1, Ordering::SeqCst);
        seen.lock().unwrap().push(req.clone());
        if !handler(&req, &mut writer) {
            return;
        }
    }
}

/// Writes a content-length response.
pub fn respond(s: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    let _ = s.write_all(&bytes);
}

/// What a test function endpoint answers.
pub enum FnReply {
    /// 200 with this JSON text as the body (the handler's result).
    Json(String),
    /// 200, `X-Amz-Function-Error: Unhandled` and this error payload.
    Error(String),
    /// 200 with this text, which need not be JSON.
    Raw(String),
    /// The same as Json, after a pause.
    Slow(Duration, String),
    /// The same as Json, sent chunked.
    Chunked(String),
    /// No answer: the connection is closed once the event has been read (a function
    /// endpoint that died while running).
    Hangup,
}

/// A Lambda-style function endpoint with the Runtime Interface Emulator's contract: the
/// event arrives as the POST body, the handler's result goes back as the response body.
/// It records every event and answers what the test's closure returns for it.
pub struct Function {
    pub origin: Origin,
}

impl Function {
    pub fn start(
        answer: impl Fn(&serde_json::Value) -> FnReply + Send + Sync + 'static,
    ) -> Function {
        let origin = Origin::start(move |req, s| {
            let event: serde_json::Value =
                serde_json::from_slice(&req.body).unwrap_or(serde_json::Value::Null);
            let json = &[("content-type", "application/json")];
            match answer(&event) {
                FnReply::Json(body) => respond(s, 200, json, body.as_bytes()),
                FnReply::Raw(body) => respond(s, 200, &[], body.as_bytes()),
                FnReply::Error(body) => respond(
                    s,
                    200,
                    &[("X-Amz-Function-Error", "Unhandled")],
                    body.as_bytes(),
                ),
                FnReply::Slow(pause, body) => {
                    thread::sleep(pause);
                    respond(s, 200, json, body.as_bytes());
                }
                FnReply::Chunked(body) => {
                    let half = body.len() / 2;
                    let out = format!(
                        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                        half,
                        &body[..half],
                        body.len() - half,
                        &body[half..]
                    );
                    let _ = s.write_all(out.as_bytes());
                }
                FnReply::Hangup => return false,
            }
            true
        });
        Function { origin }
    }

    /// The invocation url, as the Runtime Interface Emulator serves it.
    pub fn url(&self) -> String {
        format!(
            "http://{}/2015-03-31/functions/function/invocations",
            self.origin.addr
        )
    }

    /// The last event received, parsed.
    pub fn last_event(&self) -> serde_json::Value {
        serde_json::from_slice(&self.origin.last().body).expect("the event is JSON")
    }

    pub fn calls(&self) -> usize {
        self.origin.requests.load(Ordering::SeqCst)
    }
}

/// The Lambda tests' API: `/v2/{proxy+}` (payload 2.0) and `/v1/{id}/x` (1.0) on `f`, at
/// the `$default` stage (with stage variables) and `prod` (behind `fn.example.com`), and
/// `extra_routes` (YAML lines at the routes' indentation).
pub fn lambda_config(f: &Function, extra_routes: &str) -> String {
    let url = f.url();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 2s }}
apis:
  fns:
    stages:
      $default: {{ variables: {{ color: blue, size: "9" }} }}
      prod: {{}}
    routes:
      "ANY /v2/{{proxy+}}": {{ integration: {{ type: lambda, url: "{url}", timeout: 2s }} }}
      "ANY /v1/{{id}}/x": {{ integration: {{ type: lambda, url: "{url}", payload_format: "1.0", timeout: 2s }} }}
{extra_routes}
domains:
  fn.example.com: {{ mappings: {{ api: fns/prod }} }}
"#
    )
}
