//! TLS pieces for end-to-end tests: certificates made with rcgen (CAs, server leaves,
//! client certificates) written as PEM files, a blocking rustls client that shows what
//! the handshake settled (version, ALPN, served leaf, resumption), and a TLS origin for
//! upstream-TLS tests.
#![allow(dead_code)]
// Test helper threads record what they saw in shared vectors; no request path here.
#![allow(clippy::disallowed_types)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portico::tls::AcceptAnyCertificate;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion, RootCertStore, ServerConfig,
    ServerConnection, StreamOwned,
};

use super::{read_response, Response};

mod origin;
#[allow(unused_imports)] // not every test binary starts a TLS origin
pub use origin::*;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------- certificates

/// A certificate authority: self-signed, its subject is `CN=<name>`.
pub struct Ca {
    pub name: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            name: name.to_string(),
            cert,
            key,
        }
    }

    /// A certificate that is no CA, signing as if it were one (what a trust store that
    /// holds it would accept).
    pub fn signing_as(leaf: Leaf, name: &str) -> Ca {
        Ca {
            name: name.to_string(),
            cert: leaf.cert,
            key: leaf.key,
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate as `<dir>/<stem>.pem`.
    pub fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A server certificate for these DNS names (or IP addresses), subject `CN=<first>`.
    pub fn server_cert(&self, names: &[&str]) -> Leaf {
        self.server_cert_with_key(names, KeyPair::generate().unwrap())
    }

    /// The same with a key made elsewhere (e.g. an RSA key, which rcgen can't generate).
    pub fn server_cert_with_key(&self, names: &[&str], key: KeyPair) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_with(params, key)
    }

    /// A client certificate with this subject, in this (DER) order: e.g.
    /// `[(OrganizationName, "Example Org"), (CommonName, "client one")]`.
    pub fn client_cert(&self, subject: &[(DnType, &str)]) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        for (ty, value) in subject {
            params.distinguished_name.push(ty.clone(), *value);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        self.sign_with(params, KeyPair::generate().unwrap())
    }

    fn sign_with(&self, params: CertificateParams, key: KeyPair) -> Leaf {
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert,
            key,
            ca_der: self.der(),
            ca_pem: self.pem(),
        }
    }
}

/// A certificate signed by a `Ca`, with its private key.
pub struct Leaf {
    cert: rcgen::Certificate,
    key: KeyPair,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
}

impl Leaf {
    /// The leaf certificate alone, as a server would send it first.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Leaf first, then the issuing CA.
    pub fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        vec![self.der(), self.ca_der.clone()]
    }

    /// The leaf certificate alone, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert.pem(), self.ca_pem)
    }

    /// PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }

    /// Writes `<dir>/<stem>.crt` (chain) and `<dir>/<stem>.key`; returns (chain, key).
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let (chain, key) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        self.write_to(&chain, &key);
        (chain, key)
    }

    /// Writes (or overwrites) the chain and key at these paths; each file is written
    /// whole under a temporary name and renamed, so a reader never sees half a file.
    pub fn write_to(&self, chain: &Path, key: &Path) {
        for (path, text) in [(chain, self.chain_pem()), (key, self.key_pem())] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
    }
}

// ---------------------------------------------------------------- client

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Versions {
    Both,
    Tls12,
    Tls13,
}

/// Builds a `TlsClient`: what to trust, which versions, client certificate, SNI.
pub struct TlsClientBuilder {
    trust: Option<CertificateDer<'static>>,
    versions: Versions,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    sni: bool,
    alpn: Vec<Vec<u8>>,
}

impl TlsClientBuilder {
    pub fn tls12(mut self) -> Self {
        self.versions = Versions::Tls12;
        self
    }

    pub fn tls13(mut self) -> Self {
        self.versions = Versions::Tls13;
        self
    }

    pub fn versions(mut self, v: Versions) -> Self {
        self.versions = v;
        self
    }

    /// Presents this certificate (leaf then CA) when the server asks for one.
    pub fn client_cert(mut self, leaf: &Leaf) -> Self {
        self.client_cert = Some((leaf.chain_der(), leaf.private_key()));
        self
    }

    /// The ALPN protocols offered (default: http/1.1 alone).
    pub fn alpn(mut self, protocols: &[&str]) -> Self {
        self.alpn = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }

    /// Sends no server_name extension whatever name `connect` is given.
    pub fn no_sni(mut self) -> Self {
        self.sni = false;
        self
    }

    pub fn build(self) -> TlsClient {
        let provider = provider();
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.versions {
            Versions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Versions::Tls12 => &[&rustls::version::TLS12],
            Versions::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap();
        let builder = match self.trust {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca).unwrap();
                builder.with_root_certificates(roots)
            }
            None => builder
                .dangerous()
                // Portico's own `tls.verify: false` verifier: signatures checked, any certificate
                // accepted, so a test can look at which one was served even when it is wrong.
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
        };
        let mut config = match self.client_cert {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        config.enable_sni = self.sni;
        TlsClient {
            config: Arc::new(config),
        }
    }
}

/// A client configuration; connections made from one `TlsClient` share its session
/// cache, so a second connection to the same name can resume.
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
}

impl TlsClient {
    /// Verifies the server's chain against `ca` (and the name given to `connect`).
    pub fn trusting(ca: &Ca) -> TlsClientBuilder {
        TlsClientBuilder {
            trust: Some(ca.der()),
            versions: Versions::Both,
            client_cert: None,
            sni: true,
            alpn: vec![b"http/1.1".to_vec()],
        }
    }

    /// Accepts any server certificate (to look at which one was served).
    pub fn accept_any() -> TlsClientBuilder {
        TlsClientBuilder {
            trust: None,
            versions: Versions::Both,
            client_cert: None,
            sni: true,
            alpn: vec![b"http/1.1".to_vec()],
        }
    }

    /// Connects to 127.0.0.1:`port` and completes the handshake. `name` is the SNI sent
    /// and the name verified; an IP address such as "127.0.0.1" sends no SNI.
    pub fn connect(&self, port: u16, name: &str) -> Result<TlsConn, String> {
        let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        self.handshake(sock, name)
    }

    /// The handshake over a TCP connection the test opened earlier.
    pub fn handshake(&self, sock: TcpStream, name: &str) -> Result<TlsConn, String> {
        sock.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        sock.set_write_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        sock.set_nodelay(true).unwrap();
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let conn = ClientConnection::new(self.config.clone(), server_name).unwrap();
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("handshake: {e}"))?;
        }
        Ok(TlsConn {
            stream: BufReader::new(stream),
        })
    }

    /// One `GET path` with this Host on a new connection: the response, or what failed
    /// (handshake, or no response after it, as when a TLS 1.3 server rejects the
    /// client's certificate after the client finished its side of the handshake).
    pub fn try_get(
        &self,
        port: u16,
        name: &str,
        host: &str,
        path: &str,
    ) -> Result<Response, String> {
        let mut c = self.connect(port, name)?;
        c.get(path, host).map_err(|e| format!("request: {e}"))
    }
}

/// An established client TLS connection.
pub struct TlsConn {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsConn {
    pub fn conn(&self) -> &ClientConnection {
        &self.stream.get_ref().conn
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.conn().protocol_version()
    }

    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.conn().alpn_protocol().map(|a| a.to_vec())
    }

    /// The first certificate the server sent.
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.conn()
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("the server sent a certificate")
            .clone()
    }

    pub fn resumed(&self) -> bool {
        self.conn().handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// Sends `request` as given and reads one response.
    pub fn send(&mut self, request: &[u8]) -> std::io::Result<Response> {
        let s = self.stream.get_mut();
        s.write_all(request)?;
        s.flush()?;
        read_response(&mut self.stream, request.starts_with(b"HEAD "))
    }

    /// Writes bytes without reading anything (e.g. pipelined requests).
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let s = self.stream.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// Reads the next response.
    pub fn read(&mut self) -> std::io::Result<Response> {
        read_response(&mut self.stream, false)
    }

    /// A keep-alive `GET`.
    pub fn get(&mut self, path: &str, host: &str) -> std::io::Result<Response> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
    }

    /// Reads to the end of the stream: Ok only when the server ended it with
    /// close_notify (rustls reports a bare TCP close as an UnexpectedEof error).
    pub fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest)?;
        Ok(rest)
    }

    /// Whether the server closed the connection: reads until end of stream or error
    /// (within the socket's read timeout); true when no more application data came.
    pub fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => {
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    }
}

/// The bytes of a ClientHello for `name` (TLS 1.2 and 1.3 offered), as a client's first
/// flight: for tests that send part of it.
pub fn client_hello(name: &str) -> Vec<u8> {
    let client = TlsClient::accept_any().build();
    let mut conn = ClientConnection::new(
        client.config,
        ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// Waits up to 10 s until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        thread::sleep(Duration::from_millis(20));
    }
}
