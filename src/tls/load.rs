//! Reading certificates, keys and CA bundles named by the config, and building the rustls
//! configs from them. Runs as the last step of loading a config file, so every unreadable
//! or mismatched file is a config error with its key path, and a reload that meets one
//! keeps the running config.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::client::{AcceptAnyCertificate, ClientTls};
use super::server::{ServerTls, Site};
use crate::config::model::{Config, Domain, Upstream};
use crate::config::{ConfigError, KeyPath};
use crate::router::bare_host;

/// What the TLS parts of one config file loaded into.
#[derive(Clone, Default)]
pub struct Loaded {
    /// None when no domain has a certificate.
    pub server: Option<Arc<ServerTls>>,
    /// Indexed like `Config::upstreams`; None for plain upstreams.
    pub upstreams: Vec<Option<Arc<ClientTls>>>,
    /// Certificates that load but clients will refuse (another name, expired): `check`
    /// prints these and `run` logs them, with the other warnings.
    pub warnings: Vec<ConfigError>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("server_sites", &self.server.as_ref().map(|s| s.sites.len()))
            .field("upstreams", &self.upstreams)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads every certificate the config names; all problems are returned at once: the
/// errors, and with them the warnings about certificates that did load (an expired one
/// beside a domain whose key does not match is worth knowing before the next run).
pub fn load(cfg: &Config) -> Result<Loaded, (Vec<ConfigError>, Vec<ConfigError>)> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let server = server(cfg, &mut errors, &mut warnings);
    let upstreams = cfg
        .upstreams
        .iter()
        .map(|(name, u)| {
            let p = KeyPath::root().key("upstreams").key(name);
            upstream(name, u, &p, &mut errors, &mut warnings)
        })
        .collect();
    if errors.is_empty() {
        Ok(Loaded {
            server,
            upstreams,
            warnings,
        })
    } else {
        Err((errors, warnings))
    }
}

fn err(errors: &mut Vec<ConfigError>, p: &KeyPath, msg: impl Into<String>) {
    errors.push(ConfigError::new(p.to_string(), msg));
}

fn certs(
    path: &Path,
    p: &KeyPath,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<CertificateDer<'static>>> {
    let bytes = match crate::config::read_file(path) {
        Ok(b) => b,
        Err(e) => {
            err(errors, p, format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    match certs {
        Ok(c) if !c.is_empty() => {
            // Each block must be a certificate, not only PEM: a chain with a broken one
            // after the leaf loaded, and every handshake then failed; a broken leaf was
            // reported at `key` as "does not match".
            if let Some(i) = c.iter().position(|c| super::dn::describe(c).is_none()) {
                err(
                    errors,
                    p,
                    format!(
                        "{}: certificate {} is not a valid X.509 certificate",
                        path.display(),
                        i + 1
                    ),
                );
                return None;
            }
            Some(c)
        }
        Ok(_) => {
            err(errors, p, super::ca::no_certificate(path, &bytes));
            None
        }
        Err(e) => {
            err(
                errors,
                p,
                format!("{}: bad PEM: {}", path.display(), pem_problem(&e)),
            );
            None
        }
    }
}

/// What is wrong with a PEM file, in words: rustls shows a label as its bytes
/// (`missing section end marker: [67, 69, 82, …]`) and a base64 error as its Rust name.
/// The usual cause, a file cut short (copied while being written, a paste that lost its
/// end), is named.
fn pem_problem(e: &pem::Error) -> String {
    let text = |bytes: &[u8]| {
        let t = String::from_utf8_lossy(bytes);
        let t = t.trim_end();
        match t.char_indices().nth(80) {
            Some((at, _)) => format!("{}…", &t[..at]),
            None => t.to_string(),
        }
    };
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            let label = text(end_marker);
            format!("the file ends before the -----END {label}----- line of its -----BEGIN {label}----- block: is it cut short?")
        }
        pem::Error::IllegalSectionStart { line } => format!(
            "{:?} is not a whole BEGIN line (it ends in five dashes, as -----BEGIN CERTIFICATE-----): is the file cut short?",
            text(line)
        ),
        pem::Error::Base64Decode(why) => {
            let why = match why.as_str() {
                "PrematurePadding" => "'=' before the end of the block".to_string(),
                "InvalidTrailingPadding" => "wrong '=' padding at the end of the block".into(),
                other => match other
                    .strip_prefix("InvalidCharacter(")
                    .and_then(|b| b.strip_suffix(')')?.parse::<u8>().ok())
                {
                    Some(b) => format!("{:?}, which is not base64", char::from(b)),
                    None => other.to_string(),
                },
            };
            format!("the base64 text between a BEGIN and an END line is damaged: {why}")
        }
        pem::Error::NoItemsFound => "no PEM block of the kind needed".into(),
        other => other.to_string(),
    }
}

fn server(
    cfg: &Config,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<Arc<ServerTls>> {
    let provider = provider();
    let sites: Vec<Arc<Site>> = cfg
        .domains
        .iter()
        .filter_map(|(name, domain)| site(name, domain, &provider, errors, warnings).map(Arc::new))
        .collect();
    if sites.is_empty() {
        return None;
    }
    let default = cfg
        .server
        .default_domain
        .as_deref()
        .and_then(|d| sites.iter().position(|s| s.name == bare_host(d)))
        .unwrap_or(0);
    let any_mutual = sites.iter().any(|s| s.mutual);
    let certless = cfg
        .domains
        .iter()
        .map(|(name, _)| name)
        .map(|name| bare_host(name))
        .filter(|name| !sites.iter().any(|s| s.name == *name))
        .collect();
    Some(Arc::new(ServerTls {
        sites,
        default,
        any_mutual,
        certless,
    }))
}

/// One domain's rustls config; None when it has no certificate or something is wrong
/// (said in `errors`, which fails the whole load).
fn site(
    name: &str,
    domain: &Domain,
    provider: &Arc<CryptoProvider>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<Site> {
    let (Some(cert), Some(key)) = (&domain.cert, &domain.key) else {
        return None;
    };
    let p = KeyPath::root().key("domains").key(name);
    // Every check below runs on what loaded, whatever else of the domain failed: a bad
    // client_ca hid that the key did not match the certificate, and the certificate's
    // warnings, until it was fixed.
    let chain = certs(cert, &p.key("cert"), errors);
    // A block the PEM reader skips (a TRUSTED CERTIFICATE intermediate) was left out of
    // the chain unsaid: clients then could not build a path to their roots. An error; the
    // certificates that were read are still checked against the key.
    let stray = chain.is_some()
        && super::ca::not_a_certificate(cert, true)
            .map(|why| err(errors, &p.key("cert"), format!("{}: {why}", cert.display())))
            .is_some();
    let key_der = match crate::config::read_file(key) {
        Ok(bytes) => {
            PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| unusable_key(key, &bytes, &e))
        }
        Err(e) => Err(format!("cannot read {}: {e}", key.display())),
    };
    let key_der = key_der.map_err(|e| err(errors, &p.key("key"), e)).ok();
    // What the client CAs are, so a connection verified under others is told apart.
    let mut trust = 0;
    let verifier = match &domain.client_ca {
        None => Some(Arc::new(NoClientAuth) as Arc<dyn rustls::server::danger::ClientCertVerifier>),
        Some(ca) => roots(ca, &p.key("client_ca"), false, errors, warnings).and_then(|roots| {
            trust = fingerprint(&roots);
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map(|v| {
                    Arc::new(super::intermediates::ClientChains(v))
                        as Arc<dyn rustls::server::danger::ClientCertVerifier>
                })
                .map_err(|e| {
                    err(
                        errors,
                        &p.key("client_ca"),
                        format!("{}: {e}", ca.display()),
                    )
                })
                .ok()
        }),
    };
    let signing_key = key_der.and_then(|der| {
        let loaded = provider.key_provider.load_private_key(der.clone_key());
        let why = |e| super::keys::refused(&der, e);
        let loaded = loaded.map_err(|e| format!("{}: {}", key.display(), why(e)));
        loaded.map_err(|e| err(errors, &p.key("key"), e)).ok()
    });
    if let Some(chain) = &chain {
        for w in super::refused::refused_by_clients(name, &chain[0]) {
            let w = format!("{}: {w}", cert.display());
            warnings.push(ConfigError::new(p.key("cert").to_string(), w));
        }
    }
    let certified = match (chain, signing_key) {
        (Some(chain), Some(signing_key)) => certified(chain, signing_key, cert, key, &p, errors),
        _ => None,
    };
    let (certified, verifier) = (certified?, verifier?);
    if stray {
        return None;
    }
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err(errors, &p, e.to_string()))
        .ok()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    // Our preference first: a client offering h2 and http/1.1 gets http/1.1. http/1.0 is
    // what curl --http1.0 offers alone (nginx takes it too); a client offering neither
    // (h2 alone) is refused with no_application_protocol, as RFC 7301 and nginx do.
    config.alpn_protocols = vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()];
    // TLS 1.3 resumption by stateless tickets (TLS 1.2 by the default session cache).
    match rustls::crypto::ring::Ticketer::new() {
        Ok(t) => config.ticketer = t,
        Err(e) => err(errors, &p, format!("cannot make a session ticket key: {e}")),
    }
    Some(Site {
        name: bare_host(name),
        config: Arc::new(config),
        mutual: domain.client_ca.is_some(),
        trust,
    })
}

/// The certificate and key as one, or None when the key is not the certificate's (said
/// at `key`).
fn certified(
    chain: Vec<CertificateDer<'static>>,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    cert: &Path,
    key: &Path,
    p: &KeyPath,
    errors: &mut Vec<ConfigError>,
) -> Option<rustls::sign::CertifiedKey> {
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing_key.clone());
    let Err(e) = certified.keys_match() else {
        return Some(certified);
    };
    // A chain written CA first is a common slip: say so rather than "mismatch".
    let later = (1..chain.len()).find(|&i| {
        let one = rustls::sign::CertifiedKey::new(vec![chain[i].clone()], signing_key.clone());
        one.keys_match().is_ok()
    });
    let msg = match later {
        Some(i) => format!(
            "{} is the key of certificate {} in {}, not of the first: the file must start with this domain's certificate, then its chain",
            key.display(),
            i + 1,
            cert.display()
        ),
        None => format!(
            "{} does not match the certificate in {}: {e}",
            key.display(),
            cert.display()
        ),
    };
    err(errors, &p.key("key"), msg);
    None
}

/// Why a key file gave no key, in the words a user can act on.
fn unusable_key(path: &Path, bytes: &[u8], e: &pem::Error) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return format!(
            "{} holds an encrypted private key; the key must be unencrypted (openssl pkey -in {} -out NEW.key asks for the passphrase and writes one)",
            path.display(),
            path.display()
        );
    }
    if text.contains("-----BEGIN CERTIFICATE-----") && !text.contains("PRIVATE KEY-----") {
        return format!(
            "{} holds a certificate, not a private key (are cert and key swapped?)",
            path.display()
        );
    }
    let why = match e {
        pem::Error::NoItemsFound => "no PEM block holds a private key".into(),
        e => pem_problem(e),
    };
    format!("{}: no usable private key: {why}", path.display())
}

/// The trust anchors of a store, as one number (0 for none).
fn fingerprint(store: &RootCertStore) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for anchor in &store.roots {
        anchor.subject.as_ref().hash(&mut h);
        anchor.subject_public_key_info.as_ref().hash(&mut h);
    }
    h.finish() | 1
}

/// The CA certificates of `path` as trust anchors, less those outside their validity
/// period, expired or not yet valid (with a warning): webpki does not look at an
/// anchor's validity, so an expired CA went on
/// vouching for certificates, where OpenSSL (nginx) refuses them. One that expires while
/// Portico runs is dropped at the next reload or start. A certificate that is no CA is
/// an error (see `ca`): dropping it would leave the operator's intent (trust this peer)
/// silently unmet, and trusting it trusts whatever its key signs; but with `pins` (an
/// upstream's `tls.ca`) a self-signed one is the backend's own certificate, pinned.
fn roots(
    path: &Path,
    p: &KeyPath,
    pins: bool,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<RootCertStore> {
    let certs = certs(path, p, errors)?;
    // A key pasted into a trust store (the CA's own, say) trusts nothing and sits in a
    // file read as public: said, not skipped. The certificates are still judged below.
    let stray = super::ca::not_a_certificate(path, false)
        .map(|why| err(errors, p, format!("{}: {why}", path.display())))
        .is_some();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut live = Vec::with_capacity(certs.len());
    let mut expired = Vec::new();
    let mut not_ca = false;
    for (i, c) in certs.into_iter().enumerate() {
        let described = super::dn::describe(&c);
        let self_signed = (described.as_ref()).is_some_and(|i| i.issuer_dn == i.subject_dn);
        let info = described.unwrap_or_default();
        if let Some(why) = super::ca::anchor_problem(&c, self_signed, pins) {
            // A self-signed one has no other CA to name: a peer is trusted through one.
            let instead = match self_signed {
                true => "it signed itself: issue the peer's certificate from a CA and give that CA",
                false => "give the certificate of the CA that issued it",
            };
            err(
                errors,
                p,
                format!(
                    "{}: certificate {} ({}) is not a CA certificate: {why}; trusted here, whoever holds its key could issue certificates with any name (OpenSSL and nginx refuse it as a CA too): {instead}",
                    path.display(),
                    i + 1,
                    info.subject_dn,
                ),
            );
            not_ca = true;
            continue;
        }
        match super::dn::describe(&c) {
            Some(info) if info.valid_until < now => expired.push(format!(
                "{}: CA certificate {} ({}) expired on {}: it is not trusted",
                path.display(),
                i + 1,
                info.subject_dn,
                info.not_after
            )),
            Some(info) if info.valid_from > now => expired.push(format!(
                "{}: CA certificate {} ({}) is not valid before {}: it is not trusted (until a reload after that)",
                path.display(),
                i + 1,
                info.subject_dn,
                info.not_before
            )),
            _ => live.push(c),
        }
    }
    if not_ca || stray {
        // Errors already; the expired ones are worth knowing with them.
        warnings.extend(
            expired
                .into_iter()
                .map(|e| ConfigError::new(p.to_string(), e)),
        );
        return None;
    }
    let mut store = RootCertStore::empty();
    let (_, ignored) = store.add_parsable_certificates(live);
    if store.is_empty() {
        let why = match expired.first() {
            Some(e) => e.clone(),
            None => format!("{}: {ignored} unparsable", path.display()),
        };
        err(errors, p, format!("no usable CA certificate: {why}"));
        return None;
    }
    warnings.extend(
        expired
            .into_iter()
            .map(|e| ConfigError::new(p.to_string(), e)),
    );
    Some(store)
}

fn upstream(
    upstream: &str,
    u: &Upstream,
    p: &KeyPath,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<Arc<ClientTls>> {
    if !u.https {
        return None;
    }
    let provider = provider();
    let tp = p.key("tls");
    let mut fingerprint = Vec::new();
    let builder = match ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    {
        Ok(b) => b,
        Err(e) => {
            err(errors, &tp, e.to_string());
            return None;
        }
    };
    let config = if !u.tls.verify {
        fingerprint.extend_from_slice(b"verify:false");
        let any = Arc::new(AcceptAnyCertificate(provider.clone()));
        Some(
            (builder.dangerous())
                .with_custom_certificate_verifier(any)
                .with_no_client_auth(),
        )
    } else if let Some(ca) = &u.tls.ca {
        // A bad CA file hides nothing below (the server name is checked all the same).
        let store = roots(ca, &tp.key("ca"), true, errors, warnings);
        // A CA file rewritten on disk is a change a reload must pick up.
        fingerprint.extend_from_slice(&crate::config::read_file(ca).unwrap_or_default());
        store.and_then(|store| with_roots(builder, store, &provider, &tp, errors))
    } else {
        let native = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(native.certs);
        if store.is_empty() {
            err(
                errors,
                &tp.key("ca"),
                "no system CA certificates found; give tls.ca for this upstream",
            );
            None
        } else {
            fingerprint.extend_from_slice(b"system roots");
            with_roots(builder, store, &provider, &tp, errors)
        }
    };
    let mut names = Vec::new();
    for (i, target) in u.targets.iter().enumerate() {
        let name = u.tls.server_name.as_deref().unwrap_or(&target.host);
        match ServerName::try_from(name.to_string()) {
            Ok(n) => names.push(n),
            // One error for a server_name, one per target named by its host.
            Err(_) if u.tls.server_name.is_some() => {
                let at = tp.key("server_name");
                err(
                    errors,
                    &at,
                    format!("{name:?} is not a valid TLS server name"),
                );
                return None;
            }
            Err(_) => err(
                errors,
                &p.key("targets").index(i),
                format!("{name:?} is not a valid TLS server name"),
            ),
        }
    }
    let mut config = config?;
    if names.is_empty() || names.len() < u.targets.len() {
        return None;
    }
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(Arc::new(ClientTls {
        upstream: upstream.to_string(),
        last_warned: AtomicU64::new(0),
        config: Arc::new(config),
        names,
        fingerprint,
    }))
}

/// A client config that verifies upstreams against `store`, intermediates' keyUsage too.
fn with_roots(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
    store: RootCertStore,
    provider: &Arc<rustls::crypto::CryptoProvider>,
    at: &KeyPath,
    errors: &mut Vec<ConfigError>,
) -> Option<ClientConfig> {
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(store),
        provider.clone(),
    )
    .build()
    .map_err(|e| err(errors, at, e.to_string()))
    .ok()?;
    let verifier = super::intermediates::ServerChains(verifier);
    Some(
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    )
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
