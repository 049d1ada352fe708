//! TLS to `https://` upstream targets: SNI and certificate checks against the upstream's
//! CA (or the system roots), ALPN http/1.1, session resumption through rustls's client
//! cache. Connections are pooled like plain ones, so a handshake is paid once per pooled
//! connection, not per request.
//!
//! A certificate the upstream presents and we refuse (unknown issuer, wrong name, a CA
//! certificate used as a server's, expired) is logged at warn with the target and
//! rustls's reason, at most once per `WARN_EVERY` per upstream: without it every request
//! would answer 502 and the log would say nothing at the default level.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use monoio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use super::stream::TlsStream;

/// How often a refused certificate is logged, per upstream.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One upstream's TLS settings, built when the config is loaded.
pub struct ClientTls {
    /// The upstream's name, for logs.
    pub(super) upstream: String,
    /// When a refused certificate was last logged (ms since the epoch; 0: never).
    pub(super) last_warned: AtomicU64,
    pub(super) config: Arc<ClientConfig>,
    /// The name sent and checked for each target, indexed like the upstream's targets.
    pub(super) names: Vec<ServerName<'static>>,
    /// What the settings were built from, so a reload can tell whether they changed.
    pub(super) fingerprint: Vec<u8>,
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint && self.names == other.names
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// The name sent (SNI) and checked for target `target`.
    fn name(&self, target: usize) -> ServerName<'static> {
        self.names[target.min(self.names.len() - 1)].clone()
    }

    /// The Host header for a target whose TLS name is a DNS name (the backend's virtual
    /// host is likely named after it); None for IP addresses, which keep `ip:port`.
    pub fn host_header(&self, target: usize, port: u16) -> Option<String> {
        match self.names.get(target)? {
            ServerName::DnsName(name) if port == 443 => Some(name.as_ref().to_string()),
            ServerName::DnsName(name) => Some(format!("{}:{port}", name.as_ref())),
            _ => None,
        }
    }

    /// A new client session for target `target` (connections, health checks).
    pub fn session(&self, target: usize) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(self.config.clone(), self.name(target))
    }
}

/// Runs the client handshake to `target` over a connected socket.
pub async fn connect(
    tls: &ClientTls,
    target: usize,
    tcp: TcpStream,
) -> io::Result<TlsStream<ClientConnection>> {
    let conn = tls
        .session(target)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let peer = tcp.peer_addr().ok();
    let mut stream = TlsStream::new(tcp, conn);
    if let Err(e) = stream.handshake().await {
        tls.warn_if_refused(target, peer, &e);
        return Err(e);
    }
    Ok(stream)
}

impl ClientTls {
    /// Logs a handshake that failed because we refused the upstream's certificate.
    fn warn_if_refused(&self, target: usize, peer: Option<std::net::SocketAddr>, e: &io::Error) {
        let Some(reason) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .filter(|r| is_certificate_refusal(r))
        else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let last = self.last_warned.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < WARN_EVERY.as_millis() as u64 {
            return;
        }
        if self
            .last_warned
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another worker is logging this one
        }
        let name = self.name(target);
        let server_name = name.to_str();
        let target = peer.map_or_else(String::new, |p| p.to_string());
        tracing::warn!(
            upstream = %self.upstream,
            %target,
            %server_name,
            %reason,
            "upstream TLS: certificate verification failed; connections to this target fail (a request moves on to another target, else is answered 502)"
        );
    }
}

fn is_certificate_refusal(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::InvalidCertRevocationList(_)
            | rustls::Error::NoCertificatesPresented
    )
}

/// `tls.verify: false`: any certificate is accepted, signatures are still checked so the
/// handshake itself stays sound.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
