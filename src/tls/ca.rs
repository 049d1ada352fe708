//! Whether a certificate in a CA file (a domain's `client_ca`, an upstream's `tls.ca`)
//! may be a trust anchor. webpki trusts every certificate in its root store whatever the
//! certificate says about itself, so a partner's own certificate "pinned" there let
//! whoever holds its key sign certificates with any subject, which Portico then took.
//! RFC 5280 §4.2.1.9 and §4.2.1.3 say such a key must not verify certificate signatures,
//! and OpenSSL (nginx) refuses it as a CA.

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

/// What a certificate's extensions say about signing others; None each when absent.
struct CaExtensions {
    ca: Option<bool>,
    cert_sign: Option<bool>,
    /// keyUsage's first byte of bits.
    usage: Option<u8>,
    /// No version field: a version-1 certificate, which has no extensions.
    v1: bool,
}

/// None when the DER does not read as a certificate or an extension is written twice.
fn extensions(cert: &[u8]) -> Option<CaExtensions> {
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
    };
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
            }
        }
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
