//! Why TLS clients would refuse a domain's certificate that loads: `check` warns at
//! `domains.NAME.cert`, and `run` logs it at start and at each reload. rustls serves any
//! certificate whose key matches; clients judge it afterwards, each handshake.

use rustls::pki_types::{CertificateDer, ServerName};

/// Every reason TLS clients would refuse `leaf` for `domain`: it names other hosts, it
/// is outside its validity period now, its extendedKeyUsage leaves out serverAuth, or it
/// is a CA certificate. All of them, so fixing one does not reveal the next.
pub(super) fn refused_by_clients(domain: &str, leaf: &CertificateDer<'_>) -> Vec<String> {
    let mut why = Vec::new();
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(leaf) else {
        return why;
    };
    // A wildcard domain serves any one label in front of its parent: try one.
    let host = match domain.strip_prefix("*.") {
        Some(parent) => format!("any-label.{parent}"),
        None => domain.strip_suffix('.').unwrap_or(domain).to_string(),
    };
    if let Ok(host) = ServerName::try_from(host) {
        if rustls::client::verify_server_name(&parsed, &host).is_err() {
            why.push(format!(
                "the certificate does not name {domain}: clients refuse it"
            ));
        }
    }
    if let Some(info) = super::dn::describe(leaf) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if now > info.valid_until {
            why.push(format!(
                "the certificate expired on {}: clients refuse it",
                info.not_after
            ));
        } else if now < info.valid_from {
            why.push(format!(
                "the certificate is not valid before {}: clients refuse it until then",
                info.not_before
            ));
        }
    }
    if let Some(allows) = super::ca::server_auth_refused(leaf) {
        // OpenSSL's server purpose takes an SGC one instead; rustls and browsers do not.
        let openssl = match allows.iter().any(|a| super::ca::SGC.contains(&a.as_str())) {
            true => " (OpenSSL, and so curl, accepts the old SGC purpose in its place)",
            false => ", as OpenSSL (curl) does",
        };
        let allows = match allows.is_empty() {
            true => "none".to_string(),
            false => allows.join(", "),
        };
        why.push(format!(
            "the certificate's extendedKeyUsage does not include serverAuth (it allows {allows}): rustls-based clients and browsers refuse it as a server's certificate{openssl}"
        ));
    }
    if super::ca::says_ca(leaf) {
        // webpki checks the served certificate's basicConstraints before any path to a
        // root (CaUsedAsEndEntity), even when the client trusts that very certificate;
        // mozilla::pkix does the same. `openssl req -x509` writes CA:TRUE by default.
        why.push(
            "the certificate is a CA certificate (its basicConstraints say CA:TRUE): rustls-based clients (Portico's own https upstreams among them) and Firefox refuse it as a server's certificate, even when they trust it (OpenSSL, and so curl, accepts it); issue the server a certificate with CA:FALSE (openssl req -x509 writes CA:TRUE unless given -addext basicConstraints=critical,CA:FALSE)".to_string(),
        );
    }
    why
}
