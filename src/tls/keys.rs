//! What a private key the TLS provider refused is, so the error names it beside the kinds
//! Portico can serve with: rustls's own "failed to parse private key as RSA, ECDSA, or
//! EdDSA" said neither, for a P-521, RSA-PSS or 1024-bit RSA key that parses fine.

use rustls::pki_types::PrivateKeyDer;

use super::dn::{dotted, element, expect, INTEGER, OID, SEQUENCE};

/// What rustls's ring provider loads: ring signs ECDSA on these two curves only, and
/// takes an RSA modulus of 2048 to 4096 bits; Ed448 is not in it.
pub(super) const SUPPORTED: &str =
    "Portico's TLS takes ECDSA keys on P-256 or P-384, RSA keys of 2048 to 4096 bits, and Ed25519 keys";

/// The message for a key that parsed as PEM but that the provider refused with `e`.
pub(super) fn refused(der: &PrivateKeyDer<'_>, e: impl std::fmt::Display) -> String {
    match kind(der) {
        Some((what, false)) => format!("{what} is not supported: {SUPPORTED}"),
        // A kind that is taken, refused for something else (a public exponent below
        // 65537, a broken encoding): all rustls says is worth passing on.
        Some((what, true)) => format!("{what} that can't be used ({e}); {SUPPORTED}"),
        None => format!("a private key that can't be read ({e}); {SUPPORTED}"),
    }
}

const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const ED448: &[u8] = &[0x2b, 0x65, 0x71];
const X25519: &[u8] = &[0x2b, 0x65, 0x6e];
const X448: &[u8] = &[0x2b, 0x65, 0x6f];
const OCTET_STRING: u8 = 0x04;

/// What the key is, and whether that kind is one the provider takes.
fn kind(der: &PrivateKeyDer<'_>) -> Option<(String, bool)> {
    match der {
        PrivateKeyDer::Pkcs1(k) => rsa("an RSA key", k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => Some(ec(sec1_curve(k.secret_sec1_der()))),
        PrivateKeyDer::Pkcs8(k) => pkcs8(k.secret_pkcs8_der()),
        _ => None,
    }
}

/// PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier { OID, parameters },
/// privateKey OCTET STRING, … }
fn pkcs8(der: &[u8]) -> Option<(String, bool)> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_, rest) = expect(info, INTEGER)?;
    let (algorithm, rest) = expect(rest, SEQUENCE)?;
    let (oid, params) = expect(algorithm, OID)?;
    let (private, _) = expect(rest, OCTET_STRING)?;
    Some(match oid {
        RSA => rsa("an RSA key", private)?,
        RSA_PSS => {
            // ring loads only keys marked rsaEncryption, which TLS 1.3 signs with PSS too.
            let (what, _) = rsa("an RSA-PSS key", private)?;
            let plain = "a plain RSA key, openssl genpkey -algorithm RSA, signs with PSS too";
            (format!("{what} ({plain})"), false)
        }
        EC => ec(expect(params, OID).map(|(curve, _)| curve)),
        ED25519 => ("an Ed25519 key".to_string(), true),
        ED448 => ("an Ed448 key".to_string(), false),
        X25519 | X448 => (
            "a key-agreement key (X25519/X448), which can't sign".into(),
            false,
        ),
        DSA => ("a DSA key".to_string(), false),
        other => (format!("a key of algorithm {}", dotted(other)), false),
    })
}

/// RSAPrivateKey ::= SEQUENCE { version, modulus INTEGER, publicExponent INTEGER, … }:
/// the modulus's size in bits, and an exponent ring refuses (below 65537).
fn rsa(what: &str, der: &[u8]) -> Option<(String, bool)> {
    let (key, _) = expect(der, SEQUENCE)?;
    let (_, rest) = expect(key, INTEGER)?;
    let (n, rest) = expect(rest, INTEGER)?;
    let (e, _) = expect(rest, INTEGER)?;
    let n = &n[n.iter().position(|&b| b != 0)?..];
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    let e = match e {
        e if e.len() > 8 => u64::MAX,
        e => e.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)),
    };
    if e < 65537 {
        let what =
            format!("{what} of {bits} bits with public exponent {e} (65537 or more is needed)");
        return Some((what, false));
    }
    Some((
        format!("{what} of {bits} bits"),
        (2048..=4096).contains(&bits),
    ))
}

/// ECPrivateKey ::= SEQUENCE { version, privateKey, [0] namedCurve OID OPTIONAL, … }
fn sec1_curve(der: &[u8]) -> Option<&[u8]> {
    let (key, _) = expect(der, SEQUENCE)?;
    let (_, mut rest) = expect(key, INTEGER)?;
    rest = expect(rest, OCTET_STRING)?.1;
    while !rest.is_empty() {
        let (tag, contents, after) = element(rest)?;
        if tag == 0xa0 {
            return expect(contents, OID).map(|(curve, _)| curve);
        }
        rest = after;
    }
    None
}

fn ec(curve: Option<&[u8]>) -> (String, bool) {
    const CURVES: &[(&[u8], &str, bool)] = &[
        (
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            "P-256",
            true,
        ),
        (&[0x2b, 0x81, 0x04, 0x00, 0x22], "P-384", true),
        (&[0x2b, 0x81, 0x04, 0x00, 0x23], "P-521", false),
        (&[0x2b, 0x81, 0x04, 0x00, 0x0a], "secp256k1", false),
    ];
    let Some(curve) = curve else {
        return ("an EC key without a named curve".to_string(), false);
    };
    match CURVES.iter().find(|(oid, _, _)| *oid == curve) {
        Some((_, name, ok)) => (format!("an ECDSA key on curve {name}"), *ok),
        None => (format!("an EC key on curve {}", dotted(curve)), false),
    }
}
