//! Whether a certificate in a CA file (a domain's `client_ca`, an upstream's `tls.ca`)
//! may be a trust anchor. webpki trusts every certificate in its root store whatever the
//! certificate says about itself, so a partner's own certificate "pinned" there let
//! whoever holds its key sign certificates with any subject, which Portico then took.
//! RFC 5280 §4.2.1.9 and §4.2.1.3 say such a key must not verify certificate signatures,
//! and OpenSSL (nginx) refuses it as a CA.
//!
//! Also what else certificates and certificate files say that clients or OpenSSL act on
//! and rustls does not check at load: a server certificate's extendedKeyUsage, and PEM
//! blocks of kinds the PEM reader skips.

use super::dn::{element, expect, SEQUENCE};

const BOOLEAN: u8 = 0x01;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
/// tbsCertificate's `[3] EXPLICIT Extensions`.
const EXTENSIONS: u8 = 0xa3;
/// id-ce-basicConstraints, 2.5.29.19.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// id-ce-keyUsage, 2.5.29.15.
const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// id-ce-extKeyUsage, 2.5.29.37.
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1, and the other purposes by their OpenSSL names.
const PURPOSES: &[(&[u8], &str)] = &[
    (&[0x2b, 6, 1, 5, 5, 7, 3, 1], "serverAuth"),
    (&[0x2b, 6, 1, 5, 5, 7, 3, 2], "clientAuth"),
    (&[0x2b, 6, 1, 5, 5, 7, 3, 3], "codeSigning"),
    (&[0x2b, 6, 1, 5, 5, 7, 3, 4], "emailProtection"),
    (&[0x2b, 6, 1, 5, 5, 7, 3, 8], "timeStamping"),
    (&[0x2b, 6, 1, 5, 5, 7, 3, 9], "OCSPSigning"),
    (&[0x55, 0x1d, 0x25, 0x00], "anyExtendedKeyUsage"),
    // Server Gated Crypto, 2.16.840.1.113730.4.1 and 1.3.6.1.4.1.311.10.3.3: OpenSSL's
    // TLS server purpose takes either in place of serverAuth (`SGC` below).
    (
        &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x04, 0x01],
        "nsSGC",
    ),
    (&[0x2b, 6, 1, 4, 1, 0x82, 0x37, 0x0a, 0x03, 0x03], "msSGC"),
];
/// The old Server Gated Crypto purposes, which OpenSSL (curl, nginx as a client) accepts
/// for a server certificate as it does serverAuth; webpki and browsers do not.
pub(super) const SGC: [&str; 2] = ["nsSGC", "msSGC"];
/// OpenSSL's `x509 -trustout` PEM label: the certificate followed by trust settings
/// (trusted and rejected purposes). The PEM reader skips such a block, so a CA written so
/// was "no PEM certificate". Not read as the certificate it holds: its rejected purposes
/// would be dropped, trusting a CA for what the file says it must not be.
const TRUSTED: &str = "TRUSTED CERTIFICATE";

/// Why the DER certificate `cert` may not be a trust anchor of a CA file, if it may not.
/// A self-signed version-1 certificate (it has no extensions to say anything) is a root,
/// as OpenSSL takes it. With `pins` (an upstream's `tls.ca`), a self-signed certificate
/// that is no CA is the backend's own, pinned (the usual way to trust a backend with a
/// self-signed certificate): whoever holds its key is that backend. In a `client_ca` it
/// is refused: its key could sign client certificates with any subject.
pub(super) fn anchor_problem(cert: &[u8], self_signed: bool, pins: bool) -> Option<String> {
    if self_signed && (pins || extensions(cert).is_some_and(|e| e.v1)) {
        return None;
    }
    not_a_ca(cert)
}

/// Why the DER certificate `cert` can't vouch for other certificates, if it can't.
pub(super) fn not_a_ca(cert: &[u8]) -> Option<String> {
    let Some(ext) = extensions(cert) else {
        // Unreadable is refused rather than trusted: this decides who gets in.
        return Some("its extensions can't be read".to_string());
    };
    let mut why = Vec::new();
    match ext.ca {
        Some(true) => {}
        Some(false) => why.push("its basicConstraints say CA:FALSE"),
        None => why.push("it has no basicConstraints extension saying CA:TRUE"),
    }
    if ext.cert_sign == Some(false) {
        why.push("its keyUsage does not include keyCertSign");
    }
    (!why.is_empty()).then(|| why.join(", and "))
}

/// Whether the DER certificate `cert` says it is a CA (basicConstraints CA:TRUE), as a
/// served certificate must not (`refused::refused_by_clients`).
pub(super) fn says_ca(cert: &[u8]) -> bool {
    extensions(cert).is_some_and(|e| e.ca == Some(true))
}

/// Whether the DER certificate `cert` has a keyUsage that leaves out keyCertSign (one
/// without keyUsage may sign, as RFC 5280 allows; unreadable extensions are refused).
pub(super) fn refuses_cert_sign(cert: &[u8]) -> bool {
    extensions(cert).is_none_or(|e| e.cert_sign == Some(false))
}

/// Whether the DER end-entity certificate `cert` has a keyUsage with none of the bits in
/// `allowed` (the first byte of the BIT STRING: digitalSignature 0x80, keyEncipherment
/// 0x20, keyAgreement 0x08), as OpenSSL's TLS client and server purposes refuse it (no
/// keyUsage: any use; unreadable extensions are refused).
pub(super) fn usage_refuses(cert: &[u8], allowed: u8) -> bool {
    extensions(cert).is_none_or(|e| e.usage.is_some_and(|bits| bits & allowed == 0))
}

/// The purposes the extendedKeyUsage of the DER certificate `cert` lists, by name, when
/// it leaves out serverAuth: webpki (rustls) clients and browsers refuse it as a server's
/// (RFC 5280 §4.2.1.12; anyExtendedKeyUsage does not do for them either), and so does
/// OpenSSL (curl) unless it lists one of the `SGC` purposes.
/// None without extendedKeyUsage (any use), with serverAuth, or when unreadable (left to
/// the handshake).
pub(super) fn server_auth_refused(cert: &[u8]) -> Option<Vec<String>> {
    let mut list = extensions(cert)?.eku?;
    let mut names = Vec::new();
    while !list.is_empty() {
        let (oid, after) = expect(list, OID)?;
        list = after;
        match PURPOSES.iter().find(|(o, _)| *o == oid) {
            Some((_, "serverAuth")) => return None,
            Some((_, name)) => names.push(name.to_string()),
            None => names.push(super::dn::dotted(oid)),
        }
    }
    Some(names)
}

/// The PEM labels of a file's text, in order (`CERTIFICATE`, `PRIVATE KEY`, …).
fn labels(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| {
        l.trim_end()
            .strip_prefix("-----BEGIN ")?
            .strip_suffix("-----")
    })
}

/// What to do with the file at `path`, which holds TRUSTED CERTIFICATE blocks. Not
/// `openssl x509 -in F -out NEW.pem`: it reads the first block only, so with an
/// ordinary certificate in front it wrote that one and left the trusted one out. The
/// PKCS#7 round trip reads every block, either label (checked in `check_tls_tests`).
fn convert_trusted(path: &std::path::Path) -> String {
    format!(
        "convert the file with `openssl crl2pkcs7 -nocrl -certfile {} | openssl pkcs7 -print_certs -out NEW.pem`, which writes each of its certificates alone, without the trust settings Portico does not read (`openssl x509` reads the first block only)",
        path.display()
    )
}

/// The TRUSTED CERTIFICATE blocks of a file's text.
fn trusted_blocks(text: &str) -> usize {
    labels(text).filter(|l| *l == TRUSTED).count()
}

/// Why the file at `path`, read as `bytes`, gave no certificate: said with what to do
/// when it holds TRUSTED CERTIFICATE blocks, which the PEM reader skips.
pub(super) fn no_certificate(path: &std::path::Path, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let what = match trusted_blocks(&text) {
        0 => return format!("{}: no PEM certificate in it", path.display()),
        1 => "a TRUSTED CERTIFICATE block".to_string(),
        n => format!("{n} TRUSTED CERTIFICATE blocks"),
    };
    format!(
        "{}: no PEM certificate in it, but {what} (openssl x509 -trustout): {}",
        path.display(),
        convert_trusted(path)
    )
}

/// Labels a domain's cert file may hold besides certificates: its key, as nginx reads
/// one from the same file, and the EC PARAMETERS `openssl ecparam -genkey` writes in
/// front of it. An encrypted one is the `key` read's to refuse, when it is the key.
const KEY_LABELS: [&str; 5] = [
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "EC PARAMETERS",
    "ENCRYPTED PRIVATE KEY",
];

/// The first PEM block of the CA file (or with `cert_file`, a domain's cert file) at
/// `path` that is not a certificate, as the error's words ("PEM block N …", N counting
/// every block of the file). Labels the PEM reader does not know (`TRUSTED
/// CERTIFICATE`; `EC PARAMETERS`) count too: it skips them, so a CA written that way went
/// untrusted unsaid, and a chain's trusted intermediate was left out of every handshake.
/// A cert file may hold its key too (`KEY_LABELS`); a CA file may not. Nor a revocation
/// list: Portico reads none, so one would look like revocation that is not done.
pub(super) fn not_a_certificate(path: &std::path::Path, cert_file: bool) -> Option<String> {
    let bytes = crate::config::read_file(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let (i, label) = labels(&text)
        .enumerate()
        .find(|(_, l)| *l != "CERTIFICATE" && !(cert_file && KEY_LABELS.contains(l)))?;
    let holds = match cert_file {
        true => "a cert file holds the domain's certificate, its chain, and at most its key",
        false => "a CA file holds CA certificates only",
    };
    Some(match label {
        TRUSTED => format!(
            "PEM block {} ({TRUSTED}) is no certificate Portico reads (openssl x509 -trustout): {}",
            i + 1,
            convert_trusted(path)
        ),
        _ => format!("PEM block {} ({label}) is no certificate: {holds}", i + 1),
    })
}

/// What a certificate's extensions say about signing others; None each when absent.
struct CaExtensions<'a> {
    ca: Option<bool>,
    cert_sign: Option<bool>,
    /// keyUsage's first byte of bits.
    usage: Option<u8>,
    /// No version field: a version-1 certificate, which has no extensions.
    v1: bool,
    /// extendedKeyUsage's list of purposes (the SEQUENCE's contents).
    eku: Option<&'a [u8]>,
}

/// None when the DER does not read as a certificate or an extension is written twice
/// (extendedKeyUsage aside: it is then None alone).
fn extensions(cert: &[u8]) -> Option<CaExtensions<'_>> {
    let (body, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(body, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional (absent: v1, which has no extensions).
    let v1 = rest.first() != Some(&0xa0);
    if !v1 {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo.
    for _ in 0..6 {
        rest = element(rest)?.2;
    }
    let mut out = CaExtensions {
        ca: None,
        cert_sign: None,
        usage: None,
        v1,
        eku: None,
    };
    let mut eku_seen = 0;
    // Then the optional unique identifiers [1] and [2], and the extensions [3].
    while !rest.is_empty() {
        let (tag, contents, after) = element(rest)?;
        rest = after;
        if tag != EXTENSIONS {
            continue;
        }
        let (mut list, _) = expect(contents, SEQUENCE)?;
        while !list.is_empty() {
            let (one, after) = expect(list, SEQUENCE)?;
            list = after;
            let (oid, mut value) = expect(one, OID)?;
            // critical BOOLEAN DEFAULT FALSE
            if value.first() == Some(&BOOLEAN) {
                value = element(value)?.2;
            }
            let (value, _) = expect(value, OCTET_STRING)?;
            if oid == BASIC_CONSTRAINTS {
                out.ca.is_none().then_some(())?;
                out.ca = Some(is_ca(value)?);
            } else if oid == KEY_USAGE {
                out.cert_sign.is_none().then_some(())?;
                let bits = usage_bits(value)?;
                out.cert_sign = Some(bits & 0x04 != 0);
                out.usage = Some(bits);
            } else if oid == EXT_KEY_USAGE {
                // Read for `server_auth_refused` only, so what is wrong with it changes
                // nothing above: unreadable or written twice, it is left to the handshake.
                eku_seen += 1;
                out.eku = expect(value, SEQUENCE).map(|(list, _)| list);
            }
        }
    }
    if eku_seen > 1 {
        out.eku = None;
    }
    Some(out)
}

/// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint … }
fn is_ca(value: &[u8]) -> Option<bool> {
    let (seq, _) = expect(value, SEQUENCE)?;
    match element(seq) {
        None if seq.is_empty() => Some(false),
        Some((BOOLEAN, b, _)) => Some(b.iter().any(|&x| x != 0)),
        // Only pathLenConstraint: cA is its default, FALSE.
        Some(_) => Some(false),
        None => None,
    }
}

/// KeyUsage ::= BIT STRING: its first byte after the count of unused bits
/// (digitalSignature is bit 0, mask 0x80; keyCertSign bit 5, mask 0x04), 0 when empty.
fn usage_bits(value: &[u8]) -> Option<u8> {
    let (bits, _) = expect(value, BIT_STRING)?;
    Some(bits.get(1).copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};

    fn cert(is_ca: IsCa, key_usages: Vec<KeyUsagePurpose>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = is_ca;
        params.key_usages = key_usages;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn what_a_certificate_says_about_signing_others() {
        use KeyUsagePurpose::*;
        let ca = IsCa::Ca(BasicConstraints::Unconstrained);
        assert_eq!(not_a_ca(&cert(ca.clone(), vec![])), None);
        assert_eq!(
            not_a_ca(&cert(ca.clone(), vec![KeyCertSign, CrlSign])),
            None
        );
        let limited = IsCa::Ca(BasicConstraints::Constrained(0));
        assert_eq!(not_a_ca(&cert(limited, vec![KeyCertSign])), None);
        let no_sign = "its keyUsage does not include keyCertSign";
        assert_eq!(
            not_a_ca(&cert(ca, vec![DigitalSignature, CrlSign])).as_deref(),
            Some(no_sign)
        );
        assert_eq!(
            not_a_ca(&cert(IsCa::ExplicitNoCa, vec![DigitalSignature])).as_deref(),
            Some(
                "its basicConstraints say CA:FALSE, and its keyUsage does not include keyCertSign"
            )
        );
        assert_eq!(
            not_a_ca(&cert(IsCa::NoCa, vec![])).as_deref(),
            Some("it has no basicConstraints extension saying CA:TRUE")
        );
        // keyCertSign alone does not make a CA: RFC 5280 §4.2.1.9 wants basicConstraints in
        // every CA certificate.
        assert!(not_a_ca(&cert(IsCa::NoCa, vec![KeyCertSign])).is_some());
        assert!(not_a_ca(b"\x30\x00").is_some());
        // A self-signed certificate that is no CA is an upstream's pinned own, not a
        // client_ca's anchor.
        let own = cert(IsCa::ExplicitNoCa, vec![DigitalSignature]);
        assert_eq!(anchor_problem(&own, true, true), None);
        assert!(anchor_problem(&own, true, false).is_some());
        assert!(anchor_problem(&own, false, true).is_some());
    }
}
