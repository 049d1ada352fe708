//! TLS termination: the ClientHello's SNI picks a domain, the domain's own rustls config
//! (its certificate, and its client CA when it asks for mutual TLS) runs the handshake.
//!
//! One `ServerConfig` per domain rather than one with an SNI resolver, because the client
//! certificate verifier is per config and mutual TLS is per domain. rustls's `Acceptor`
//! reads the ClientHello before a config is chosen.

use std::io;
use std::sync::Arc;

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::server::Acceptor;
use rustls::{ServerConfig, ServerConnection};

use super::stream::TlsStream;

/// The TLS side of one config generation: one site per domain with a certificate.
pub struct ServerTls {
    /// Shared with the connections made for them: a connection outlives its generation
    /// (keep-alive across reloads) and keeps the site it was made for, not an index.
    pub(super) sites: Vec<Arc<Site>>,
    /// The site for clients without SNI or with a name no site has.
    pub(super) default: usize,
    /// Some site asks for client certificates: requests must then be checked against the
    /// domain their connection was made for (see `misdirected`).
    pub any_mutual: bool,
    /// Domains served without a certificate of their own (lower case): a request for one
    /// is routed to it, not to a wildcard domain around it, so it is that domain's
    /// (never mutual) request, not the wildcard's (see `misdirected`).
    pub(super) certless: Vec<String>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sites.iter().map(|s| s.name.as_str()).collect();
        f.debug_struct("ServerTls")
            .field("sites", &names)
            .field("default", &self.default)
            .finish()
    }
}

/// One domain with a certificate, as a generation loaded it.
pub struct Site {
    /// Lowercase; `*.example.com` matches one label in front of `example.com`.
    pub name: String,
    pub config: Arc<ServerConfig>,
    pub mutual: bool,
    /// The client CAs of a mutual site (`load::fingerprint`); 0 otherwise.
    pub trust: u64,
}

/// The client certificate a mutual-TLS handshake verified, read once per connection.
#[derive(Debug, Clone, Default)]
pub struct PeerCert {
    pub subject_dn: String,
    pub issuer_dn: String,
    pub serial_number: String,
    pub not_before: String,
    pub not_after: String,
    /// The leaf certificate as PEM (Lambda events' `clientCertPem`).
    pub pem: String,
}

impl PeerCert {
    fn from_der(der: &[u8]) -> Option<PeerCert> {
        use base64::Engine;
        let info = super::dn::describe(der)?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 64);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        Some(PeerCert {
            subject_dn: info.subject_dn,
            issuer_dn: info.issuer_dn,
            serial_number: info.serial_number,
            not_before: info.not_before,
            not_after: info.not_after,
            pem,
        })
    }
}

/// A finished handshake.
pub struct Accepted {
    pub stream: TlsStream<ServerConnection>,
    /// The site (domain) whose config served the handshake.
    pub site: Arc<Site>,
    pub peer_cert: Option<Box<PeerCert>>,
}

pub enum AcceptError {
    /// The client spoke plain HTTP to a TLS port; the socket is handed back so the
    /// caller can say so in plain HTTP.
    PlainHttp(TcpStream),
    /// Closed before sending a byte (a TCP health check, a port scan): not a failure.
    Closed,
    Failed(io::Error),
}

impl From<io::Error> for AcceptError {
    fn from(e: io::Error) -> Self {
        AcceptError::Failed(e)
    }
}

impl ServerTls {
    /// The site named `name` exactly, or by a wildcard one label up.
    fn named_site(&self, name: &str) -> Option<usize> {
        // `example.com.` is the same name (absolute form); the router strips the dot too,
        // so the mutual-TLS check below sees the domain the request is routed to.
        let name = name.strip_suffix('.').unwrap_or(name);
        let exact = self
            .sites
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name));
        exact.or_else(|| {
            // One label, as a wildcard certificate takes: never an empty one.
            let (label, parent) = name.split_once('.')?;
            if label.is_empty() {
                return None;
            }
            self.sites.iter().position(|s| {
                s.name
                    .strip_prefix("*.")
                    .is_some_and(|p| p.eq_ignore_ascii_case(parent))
            })
        })
    }

    fn site_for(&self, sni: Option<&str>) -> usize {
        sni.and_then(|n| self.named_site(n)).unwrap_or(self.default)
    }

    /// The name of the site clients without SNI get (`server.default_domain`, else the
    /// first domain with a certificate); None for a wildcard one, which names no host.
    pub fn default_name(&self) -> Option<&str> {
        let name = self.sites.get(self.default)?.name.as_str();
        (!name.starts_with("*.")).then_some(name)
    }

    /// Whether a request for `host` (its Host header, port stripped) must not be served on
    /// a connection whose handshake was for `site` (None: a plain connection): the host
    /// belongs to a mutual-TLS domain other than the one the client proved itself to.
    /// `site` may come from an older generation (a keep-alive connection across a reload):
    /// it is compared by name, and counts only if its handshake verified a certificate
    /// under the client CAs the domain has now (a reload that drops a CA ends what it let
    /// in: the client must handshake again).
    pub fn misdirected(&self, host: &[u8], site: Option<&Site>) -> bool {
        self.mutual_site_of(host)
            .is_some_and(|wanted| !site.is_some_and(|s| same_verified(s, wanted)))
    }

    /// Whether the client certificate `site`'s handshake verified is this request's: the
    /// host is that mutual-TLS domain. A connection made for one domain may carry a
    /// request for another without mutual TLS (its Host), and that domain's API gets no
    /// certificate, as API Gateway gives one only on a mutual-TLS domain.
    pub fn certificate_applies(&self, host: &[u8], site: &Site) -> bool {
        self.mutual_site_of(host)
            .is_some_and(|wanted| same_verified(site, wanted))
    }

    /// The mutual-TLS domain a request for `host` is routed to, if any.
    fn mutual_site_of(&self, host: &[u8]) -> Option<&Site> {
        let host = std::str::from_utf8(host).ok()?;
        let name = host.strip_suffix('.').unwrap_or(host);
        if self.certless.iter().any(|c| c.eq_ignore_ascii_case(name)) {
            return None;
        }
        let wanted = &*self.sites[self.named_site(host)?];
        wanted.mutual.then_some(wanted)
    }
}

/// `site` (a connection's, maybe of an older generation) is `wanted` as the handshake
/// verified it: same name, under the client CAs `wanted` has now.
fn same_verified(site: &Site, wanted: &Site) -> bool {
    site.mutual && site.name == wanted.name && site.trust == wanted.trust
}

/// Reads the ClientHello, picks the site and runs the handshake. The caller bounds the
/// whole of it with a timeout.
pub async fn accept(tls: &ServerTls, mut tcp: TcpStream) -> Result<Accepted, AcceptError> {
    let mut acceptor = Acceptor::default();
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut first = true;
    let accepted = loop {
        buf.clear();
        let (res, slice) = tcp.read(SliceMut::new(buf, 0, 2048)).await;
        buf = slice.into_inner();
        if res? == 0 {
            if first {
                return Err(AcceptError::Closed);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed in the middle of a ClientHello",
            )
            .into());
        }
        // A TLS record starts with 0x16 (handshake); a letter is an HTTP method (any
        // case: nginx answers `get /` so too), and a blank line may come before one
        // (RFC 9112 §2.2).
        if first && (buf[0].is_ascii_alphabetic() || matches!(buf[0], b'\r' | b'\n')) {
            return Err(AcceptError::PlainHttp(tcp));
        }
        first = false;
        let mut rest = &buf[..];
        while !rest.is_empty() {
            if acceptor.read_tls(&mut rest)? == 0 {
                break;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => continue,
            Err((e, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = tcp.write_all(out).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e).into());
            }
        }
    };
    let site = tls.sites[tls.site_for(accepted.client_hello().server_name())].clone();
    let conn = match accepted.into_connection(site.config.clone()) {
        Ok(conn) => conn,
        Err((e, mut alert)) => {
            let mut out = Vec::new();
            let _ = alert.write_all(&mut out);
            let _ = tcp.write_all(out).await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e).into());
        }
    };
    let mut stream = TlsStream::new(tcp, conn);
    stream.handshake().await?;
    let peer_cert = stream
        .session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| PeerCert::from_der(leaf))
        .map(Box::new);
    Ok(Accepted {
        stream,
        site,
        peer_cert,
    })
}
