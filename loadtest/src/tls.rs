//! TLS 1.3 client connections: rustls (ring provider) driven over monoio's owned-buffer
//! IO. Ciphertext is read into a buffer the stream owns and handed to rustls
//! (`read_tls`, `process_new_packets`); plaintext is copied out of rustls into the
//! connection's one HTTP buffer. Writes encrypt into an owned `Vec` (`write_tls`) that
//! goes to the socket in one `write_all`. Works with io_uring and epoll alike.
//!
//! Every connection does a full handshake (no resumption), before the clock starts for
//! the connections opened up front; handshake times are counted apart from requests.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};

use crate::stats::{ThreadStats, TlsInfo};
use crate::stream::{self, Connector, Stream};

/// Ciphertext read size: two full TLS records.
const CIPHER_BUF: usize = 2 * (16 * 1024 + 256);

/// How the server's certificate is checked.
pub enum Verify<'a> {
    /// Against the CA certificates in this PEM file (and the server name).
    Ca(&'a Path),
    /// Not at all; the handshake signature is still checked against the certificate's key.
    Insecure,
}

/// The client side: one rustls config shared by every connection of every thread.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// TLS 1.3 only, ALPN `http/1.1`, SNI `server_name` (not sent for an IP address).
    pub fn new(server_name: &str, verify: Verify<'_>) -> Result<Self, String> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| format!("invalid TLS server name `{server_name}`"))?;
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("TLS setup: {e}"))?;
        let mut config = match verify {
            Verify::Ca(path) => {
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!("no certificate in {}", path.display()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Verify::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = Resumption::disabled();
        Ok(Self {
            config: Arc::new(config),
            server_name: name,
        })
    }

    /// Runs the handshake over a connected socket.
    async fn handshake(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        let tls = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(io::Error::other)?;
        let mut s = TlsStream {
            tcp,
            tls,
            rbuf: Vec::with_capacity(CIPHER_BUF),
            rpos: 0,
            wbuf: Vec::with_capacity(4096),
        };
        while s.tls.is_handshaking() {
            let step = if s.tls.wants_write() {
                s.flush_tls().await
            } else {
                match s.feed().await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the TLS handshake",
                    )),
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = step {
                // Best effort: let the server know why (an alert may be queued).
                let _ = s.flush_tls().await;
                return Err(e);
            }
        }
        // The client's Finished.
        s.flush_tls().await?;
        Ok(s)
    }
}

impl Connector for TlsClient {
    type Stream = TlsStream;

    async fn connect(&self, addr: SocketAddr, stats: &ThreadStats) -> io::Result<TlsStream> {
        let tcp = stream::tcp(addr).await?;
        let t0 = Instant::now();
        let s = self.handshake(tcp).await?;
        stats.handshake(t0.elapsed(), || s.info());
        Ok(s)
    }
}

/// A client connection after its handshake.
pub struct TlsStream {
    tcp: TcpStream,
    tls: ClientConnection,
    /// Ciphertext read from the socket; `rbuf[rpos..]` is not yet handed to rustls.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Ciphertext on its way out; empty between writes.
    wbuf: Vec<u8>,
}

impl TlsStream {
    fn info(&self) -> TlsInfo {
        TlsInfo {
            version: self
                .tls
                .protocol_version()
                .map_or_else(|| "?".into(), |v| format!("{v:?}")),
            cipher_suite: self
                .tls
                .negotiated_cipher_suite()
                .map_or_else(|| "?".into(), |c| format!("{:?}", c.suite())),
            alpn: self
                .tls
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    /// Sends whatever rustls has queued.
    async fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.wbuf)?;
        }
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.wbuf);
        let (res, mut buf) = self.tcp.write_all(buf).await;
        buf.clear();
        self.wbuf = buf;
        res.map(|_| ())
    }

    /// Hands rustls more ciphertext (left over from the last socket read, else read anew)
    /// and processes it. False when the socket reached its end (rustls is told).
    async fn feed(&mut self) -> io::Result<bool> {
        if self.rpos == self.rbuf.len() {
            let mut buf = std::mem::take(&mut self.rbuf);
            buf.clear();
            let (res, buf) = self.tcp.read(buf).await;
            self.rbuf = buf;
            self.rpos = 0;
            if res? == 0 {
                self.tls.read_tls(&mut io::empty())?;
                self.process()?;
                return Ok(false);
            }
        }
        let n = self.tls.read_tls(&mut &self.rbuf[self.rpos..])?;
        if n == 0 {
            // Only after the peer's close_notify: what follows it is ignored.
            self.rpos = self.rbuf.len();
        } else {
            self.rpos += n;
        }
        self.process()?;
        Ok(true)
    }

    fn process(&mut self) -> io::Result<()> {
        self.tls.process_new_packets().map(|_| ()).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("CaUsedAsEndEntity") {
                // webpki refuses a CA certificate as the server's own; `openssl req -x509`
                // marks its self-signed certificates CA:TRUE unless told otherwise.
                let hint = "the server's certificate is marked CA:TRUE; make a self-signed \
                            one with `-addext basicConstraints=critical,CA:FALSE`, or use --insecure";
                return io::Error::new(io::ErrorKind::InvalidData, format!("{msg} ({hint})"));
            }
            io::Error::new(io::ErrorKind::InvalidData, e)
        })
    }
}

impl Stream for TlsStream {
    async fn read_append(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let room = buf.capacity() - buf.len();
        debug_assert!(room > 0, "read_append into a full buffer");
        loop {
            match self.tls.reader().into_first_chunk() {
                // The peer's close_notify: a clean end.
                Ok([]) => return (Ok(0), buf),
                Ok(chunk) => {
                    let n = chunk.len().min(room);
                    buf.extend_from_slice(&chunk[..n]);
                    self.tls.reader().consume(n);
                    return (Ok(n), buf);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return (Err(e), buf),
            }
            // Nothing decrypted yet. Answer anything rustls owes the peer (a key update),
            // then read on; after the socket's end the reader above says how it ended.
            if let Err(e) = self.flush_tls().await {
                return (Err(e), buf);
            }
            if let Err(e) = self.feed().await {
                return (Err(e), buf);
            }
        }
    }

    async fn write_all_static(&mut self, mut data: &'static [u8]) -> io::Result<()> {
        // rustls takes up to its send buffer limit at a time: loop for large bodies.
        while !data.is_empty() {
            let n = self.tls.writer().write(data)?;
            data = &data[n..];
            self.flush_tls().await?;
        }
        Ok(())
    }
}

impl AsRawFd for TlsStream {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }
}

/// `--insecure`: any certificate for any name, but the handshake must still be signed by
/// the certificate's key.
struct NoVerify(WebPkiSupportedAlgorithms);

impl fmt::Debug for NoVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoVerify")
    }
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ServerConfig, ServerConnection, StreamOwned};

    use super::*;
    use crate::http::BUF_CAP;

    const BODY: usize = 40_000; // several TLS records
    static UPLOAD: [u8; 100_000] = [b'u'; 100_000]; // more than rustls buffers at once

    struct Fixture {
        server: Arc<ServerConfig>,
        ca: std::path::PathBuf,
    }

    fn fixture(tag: &str) -> Fixture {
        let ck = rcgen::generate_simple_self_signed(vec!["bench.local".to_string()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
        let mut server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let ca = std::env::temp_dir().join(format!(
            "portico-load-test-{}-{tag}.pem",
            std::process::id()
        ));
        std::fs::write(&ca, ck.cert.pem()).unwrap();
        Fixture {
            server: Arc::new(server),
            ca,
        }
    }

    /// One connection: reads a request head, answers with a BODY-byte response, reads the
    /// upload, then closes with close_notify. Returns the upload's size.
    fn serve_one(
        listener: TcpListener,
        config: Arc<ServerConfig>,
    ) -> std::thread::JoinHandle<usize> {
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut s = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"GET / HTTP/1.1\r\n"));
            let mut resp =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY}\r\n\r\n").into_bytes();
            resp.resize(resp.len() + BODY, b'b');
            s.write_all(&resp).unwrap();
            s.flush().unwrap();
            let mut upload = vec![0u8; UPLOAD.len()];
            s.read_exact(&mut upload).unwrap();
            assert!(upload.iter().all(|&b| b == b'u'));
            s.conn.send_close_notify();
            s.flush().unwrap();
            upload.len()
        })
    }

    async fn client(addr: SocketAddr, tls: TlsClient) -> (TlsInfo, usize) {
        let stats = ThreadStats::new();
        let mut s = tls.connect(addr, &stats).await.unwrap();
        let info = s.info();
        s.write_all_static(b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::with_capacity(BUF_CAP);
        let mut total = 0;
        let head_len = format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY}\r\n\r\n").len();
        while total < head_len + BODY {
            let (res, b) = s.read_append(buf).await;
            buf = b;
            let n = res.unwrap();
            assert!(n > 0, "early end after {total} bytes");
            total += n;
        }
        assert_eq!(total, head_len + BODY);
        assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
        s.write_all_static(&UPLOAD).await.unwrap();
        buf.clear();
        let (res, _) = s.read_append(buf).await;
        assert_eq!(res.unwrap(), 0, "a clean close_notify end");
        (info, total)
    }

    fn run_on<F: std::future::Future>(driver: &str, f: F) -> Option<F::Output> {
        match driver {
            "epoll" => Some(
                RuntimeBuilder::<LegacyDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap()
                    .block_on(f),
            ),
            _ => match RuntimeBuilder::<IoUringDriver>::new()
                .enable_timer()
                .build()
            {
                Ok(mut rt) => Some(rt.block_on(f)),
                Err(e) => {
                    eprintln!("io_uring unavailable here ({e}); only epoll tested");
                    None
                }
            },
        }
    }

    #[test]
    fn exchange_over_tls_on_both_drivers() {
        for driver in ["epoll", "io_uring"] {
            let fx = fixture(driver);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = serve_one(listener, fx.server.clone());
            let tls = TlsClient::new("bench.local", Verify::Ca(&fx.ca)).unwrap();
            let Some((info, _)) = run_on(driver, client(addr, tls)) else {
                // Unblock the server thread's accept.
                drop(std::net::TcpStream::connect(addr));
                let _ = server.join();
                continue;
            };
            assert_eq!(server.join().unwrap(), UPLOAD.len());
            assert_eq!(info.version, "TLSv1_3");
            assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
            let _ = std::fs::remove_file(&fx.ca);
        }
    }

    #[test]
    fn verification() {
        let fx = fixture("verify");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The wrong name is refused with --ca...
        let config = fx.server.clone();
        let refused = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut s = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
            let _ = s.read(&mut [0u8; 16]);
            listener
        });
        let tls = TlsClient::new("other.local", Verify::Ca(&fx.ca)).unwrap();
        let stats = ThreadStats::new();
        let err = run_on("epoll", async {
            tls.connect(addr, &stats).await.map(|_| ())
        })
        .unwrap()
        .unwrap_err();
        assert!(err.to_string().contains("not valid for name"), "{err}");
        // ...and taken with --insecure.
        let listener = refused.join().unwrap();
        let server = serve_one(listener, fx.server.clone());
        let tls = TlsClient::new("other.local", Verify::Insecure).unwrap();
        run_on("epoll", client(addr, tls)).unwrap();
        assert_eq!(server.join().unwrap(), UPLOAD.len());
        let _ = std::fs::remove_file(&fx.ca);
    }
}
