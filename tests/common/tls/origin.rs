//! The TLS origin for upstream-TLS tests: an HTTPS server on loopback that records what
//! it saw in each request.

// Test helper threads record what they saw in shared vectors; no request path here.
#![allow(clippy::disallowed_types)]

use super::*;

/// What a `TlsOrigin` saw in one request.
#[derive(Debug, Clone)]
pub struct TlsSeen {
    pub sni: Option<String>,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl TlsSeen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTPS origin on loopback: a thread per connection, keep-alive, TLS 1.2 and 1.3.
/// Every request is answered 200 with the body `tls-origin <target> host=<Host>`, except
/// `GET /big/<n>`, answered with `n` bytes of `big_body(n)`.
/// `connections` counts completed handshakes, `requests` the requests read, `failed`
/// the handshakes that failed (e.g. the client refused the certificate).
pub struct TlsOrigin {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub failed: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<TlsSeen>>>,
    /// The SNI of every handshake attempt, completed or not, in order (None: no SNI).
    pub snis: Arc<Mutex<Vec<Option<String>>>>,
    /// The leaf certificate of clients that sent one (mutual TLS origins only).
    pub client_certs: Arc<Mutex<Vec<CertificateDer<'static>>>>,
}

impl TlsOrigin {
    pub fn start(leaf: &Leaf) -> TlsOrigin {
        Self::start_with(leaf, None)
    }

    /// With `client_ca`, clients must present a certificate signed by it.
    pub fn start_with(leaf: &Leaf, client_ca: Option<&Ca>) -> TlsOrigin {
        Self::start_full(leaf, client_ca, AfterAnswer::KeepAlive)
    }

    /// Answers one request per connection, then ends it without saying so in HTTP (no
    /// `connection: close`), like a backend whose keep-alive timeout just expired.
    pub fn start_closing(leaf: &Leaf, how: AfterAnswer) -> TlsOrigin {
        Self::start_full(leaf, None, how)
    }

    fn start_full(leaf: &Leaf, client_ca: Option<&Ca>, after: AfterAnswer) -> TlsOrigin {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.der()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(leaf.chain_der(), leaf.private_key())
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = TlsOrigin {
            addr: listener.local_addr().unwrap(),
            connections: Arc::new(AtomicUsize::new(0)),
            requests: Arc::new(AtomicUsize::new(0)),
            failed: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(Mutex::new(Vec::new())),
            snis: Arc::new(Mutex::new(Vec::new())),
            client_certs: Arc::new(Mutex::new(Vec::new())),
        };
        let shared = origin.shared();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (config, shared) = (config.clone(), shared.clone());
                thread::spawn(move || serve_tls(stream, config, &shared, after));
            }
        });
        origin
    }

    fn shared(&self) -> Shared {
        Shared {
            connections: self.connections.clone(),
            requests: self.requests.clone(),
            failed: self.failed.clone(),
            seen: self.seen.clone(),
            snis: self.snis.clone(),
            client_certs: self.client_certs.clone(),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn last(&self) -> TlsSeen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the TLS origin saw a request")
    }

    /// How many handshakes were attempted so far (a mark for `snis_since`).
    pub fn sni_count(&self) -> usize {
        self.snis.lock().unwrap().len()
    }

    /// The SNIs of the handshakes attempted after `mark` (in the order their threads
    /// recorded them, which need not be the order they started in).
    pub fn snis_since(&self, mark: usize) -> Vec<Option<String>> {
        self.snis.lock().unwrap()[mark..].to_vec()
    }

    pub fn last_sni(&self) -> Option<String> {
        self.snis
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the TLS origin saw a handshake")
    }
}

#[derive(Clone)]
struct Shared {
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<TlsSeen>>>,
    snis: Arc<Mutex<Vec<Option<String>>>>,
    client_certs: Arc<Mutex<Vec<CertificateDer<'static>>>>,
}

/// What a `TlsOrigin` does with a connection after each answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AfterAnswer {
    KeepAlive,
    /// Sends close_notify, then closes the socket.
    CloseNotify,
    /// Closes the socket, no close_notify.
    BareClose,
}

fn serve_tls(sock: TcpStream, config: Arc<ServerConfig>, shared: &Shared, after: AfterAnswer) {
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let conn = ServerConnection::new(config).unwrap();
    let mut stream = StreamOwned::new(conn, sock);
    let mut done = true;
    while stream.conn.is_handshaking() {
        if stream.conn.complete_io(&mut stream.sock).is_err() {
            done = false;
            break;
        }
    }
    // Known once the ClientHello was read, whether or not the handshake completed.
    let sni = stream.conn.server_name().map(String::from);
    shared.snis.lock().unwrap().push(sni.clone());
    if !done {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if let Some(c) = stream.conn.peer_certificates().and_then(|c| c.first()) {
        shared.client_certs.lock().unwrap().push(c.clone());
    }
    shared.connections.fetch_add(1, Ordering::SeqCst);
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
            let Some((n, v)) = h.split_once(':') else {
                return;
            };
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut seen = TlsSeen {
            sni: sni.clone(),
            method,
            target,
            headers,
            body_len: 0,
        };
        if let Some(n) = seen.header("content-length") {
            let mut body = vec![0; n.parse().unwrap_or(0)];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            seen.body_len = body.len();
        }
        let body = match seen.target.strip_prefix("/big/") {
            Some(n) => big_body(n.parse().unwrap_or(0)),
            None => format!(
                "tls-origin {} host={}",
                seen.target,
                seen.header("host").unwrap_or("-")
            )
            .into_bytes(),
        };
        shared.requests.fetch_add(1, Ordering::SeqCst);
        shared.seen.lock().unwrap().push(seen);
        let mut out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        let s = r.get_mut();
        if s.write_all(&out).is_err() || s.flush().is_err() {
            return;
        }
        match after {
            AfterAnswer::KeepAlive => {}
            AfterAnswer::CloseNotify => {
                s.conn.send_close_notify();
                let _ = s.flush();
                return;
            }
            AfterAnswer::BareClose => return,
        }
    }
}

/// `n` bytes of a pattern that shows where a piece went missing or was repeated.
pub fn big_body(n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}
