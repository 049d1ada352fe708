//! Intermediate certificates must be allowed to sign certificates. webpki checks an
//! intermediate's basicConstraints but not its keyUsage: a certificate with CA:TRUE and a
//! keyUsage without keyCertSign, sent by a client as its chain's intermediate, let the
//! holder of its key present any subject it liked (or a backend, any name). RFC 5280
//! §6.1.4(n) refuses such a path, and OpenSSL (nginx) does; the same certificate is
//! already refused as a `client_ca` or `tls.ca` anchor (`ca.rs`). These verifiers run
//! webpki's checks, then refuse a chain with such an intermediate.
//!
//! webpki does not read the end entity's keyUsage either: a client certificate whose
//! keyUsage allows neither digitalSignature nor keyAgreement (keyEncipherment only) passed
//! mutual TLS, where nginx (OpenSSL's TLS client purpose) answers 400. Refused here as
//! OpenSSL refuses it, and a backend's leaf as its TLS server purpose does.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// keyUsage bits a client's leaf needs one of: digitalSignature, keyAgreement.
const CLIENT_LEAF: u8 = 0x80 | 0x08;
/// For a server's leaf: digitalSignature, keyEncipherment, keyAgreement.
const SERVER_LEAF: u8 = 0x80 | 0x20 | 0x08;

fn leaf_may(end_entity: &CertificateDer<'_>, allowed: u8) -> Result<(), rustls::Error> {
    if super::ca::usage_refuses(end_entity, allowed) {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::InvalidPurpose,
        ));
    }
    Ok(())
}

/// Refuses a chain whose intermediates include one that issued a certificate of the chain
/// (so may be on the verified path: webpki chains by issuer and subject name) and whose
/// keyUsage leaves out keyCertSign. Certificates that issued none of them (a leaf sent
/// twice, a spare certificate) are no part of any path, and are left alone as OpenSSL
/// and webpki leave them.
fn intermediates_may_sign(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<(), rustls::Error> {
    let issuers: Vec<&[u8]> = std::iter::once(end_entity)
        .chain(intermediates)
        .filter_map(|c| super::dn::issuer_and_subject(c).map(|(issuer, _)| issuer))
        .collect();
    let on_a_path = |c: &CertificateDer<'_>| match super::dn::issuer_and_subject(c) {
        Some((_, subject)) => issuers.contains(&subject),
        // Unreadable: judged as if it were (refused when it may not sign).
        None => true,
    };
    let refused = intermediates
        .iter()
        .any(|c| on_a_path(c) && super::ca::refuses_cert_sign(c));
    if refused {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::InvalidPurpose,
        ));
    }
    Ok(())
}

/// webpki's client verifier, with intermediates' keyUsage checked.
#[derive(Debug)]
pub(super) struct ClientChains(pub(super) Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for ClientChains {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        intermediates_may_sign(end_entity, intermediates)?;
        leaf_may(end_entity, CLIENT_LEAF)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// webpki's server verifier (upstreams), with intermediates' keyUsage checked.
#[derive(Debug)]
pub(super) struct ServerChains(pub(super) Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for ServerChains {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.0.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        intermediates_may_sign(end_entity, intermediates)?;
        leaf_may(end_entity, SERVER_LEAF)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, Certificate, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use rustls::server::WebPkiClientVerifier;

    /// Certificate parameters with a subject of its own (rcgen gives every certificate
    /// the same one, which makes each the issuer of every other).
    fn named(cn: &str, sans: Vec<String>) -> CertificateParams {
        let mut p = CertificateParams::new(sans).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, cn);
        p.distinguished_name = dn;
        p
    }

    fn ca(cn: &str, usages: Vec<KeyUsagePurpose>) -> CertificateParams {
        let mut p = named(cn, Vec::new());
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = usages;
        p
    }

    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    /// A root, an intermediate with `usages` signed by it, and a client leaf signed by
    /// the intermediate: (root, intermediate, leaf), named apart from any other chain's.
    fn chain(usages: Vec<KeyUsagePurpose>) -> (Certificate, Certificate, Certificate) {
        chain_to(usages, vec![KeyUsagePurpose::DigitalSignature])
    }

    /// [`chain`], its leaf's keyUsage `leaf_usages`.
    fn chain_to(
        usages: Vec<KeyUsagePurpose>,
        leaf_usages: Vec<KeyUsagePurpose>,
    ) -> (Certificate, Certificate, Certificate) {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root_key = KeyPair::generate().unwrap();
        let root = ca(&format!("root {n}"), vec![KeyUsagePurpose::KeyCertSign])
            .self_signed(&root_key)
            .unwrap();
        let int_key = KeyPair::generate().unwrap();
        let int = ca(&format!("intermediate {n}"), usages)
            .signed_by(&int_key, &root, &root_key)
            .unwrap();
        let mut leaf = named(&format!("client {n}"), vec!["client.test".to_string()]);
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        leaf.key_usages = leaf_usages;
        let leaf = leaf
            .signed_by(&KeyPair::generate().unwrap(), &int, &int_key)
            .unwrap();
        (root, int, leaf)
    }

    fn verify(usages: Vec<KeyUsagePurpose>) -> Result<(), rustls::Error> {
        verify_with_spares(usages, false)
    }

    /// With `spares`, the chain carries the leaf twice and an unrelated leaf too.
    fn verify_with_spares(usages: Vec<KeyUsagePurpose>, spares: bool) -> Result<(), rustls::Error> {
        verify_leaf(usages, vec![KeyUsagePurpose::DigitalSignature], spares)
    }

    fn verify_leaf(
        usages: Vec<KeyUsagePurpose>,
        leaf_usages: Vec<KeyUsagePurpose>,
        spares: bool,
    ) -> Result<(), rustls::Error> {
        let (root, int, leaf) = chain_to(usages, leaf_usages);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let v = ClientChains(inner);
        let mut sent = vec![int.der().clone()];
        if spares {
            let (_, _, other) = chain(vec![KeyUsagePurpose::KeyCertSign]);
            sent.insert(0, leaf.der().clone());
            sent.push(other.der().clone());
        }
        v.verify_client_cert(leaf.der(), &sent, UnixTime::now())
            .map(drop)
    }

    #[test]
    fn an_intermediate_that_may_not_sign_certificates_is_refused() {
        assert!(verify(vec![KeyUsagePurpose::KeyCertSign]).is_ok());
        // No keyUsage at all: it may sign (RFC 5280), as webpki and OpenSSL take it.
        assert!(verify(vec![]).is_ok());
        assert_eq!(
            verify(vec![KeyUsagePurpose::DigitalSignature]),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose
            ))
        );
        // Spare certificates that issued nothing in the chain (the leaf again, another
        // leaf: digitalSignature only) are no part of its path: accepted, as by OpenSSL.
        assert!(verify_with_spares(vec![KeyUsagePurpose::KeyCertSign], true).is_ok());
        assert!(verify_with_spares(vec![KeyUsagePurpose::DigitalSignature], true).is_err());
    }

    #[test]
    fn a_client_leaf_that_may_not_sign_is_refused() {
        use KeyUsagePurpose::*;
        let refused = Err(rustls::Error::InvalidCertificate(
            CertificateError::InvalidPurpose,
        ));
        assert_eq!(
            verify_leaf(vec![KeyCertSign], vec![KeyEncipherment], false),
            refused
        );
        assert_eq!(
            verify_leaf(vec![KeyCertSign], vec![DataEncipherment], false),
            refused
        );
        for ok in [
            vec![],
            vec![DigitalSignature],
            vec![KeyAgreement],
            vec![KeyEncipherment, DigitalSignature],
        ] {
            assert!(
                verify_leaf(vec![KeyCertSign], ok.clone(), false).is_ok(),
                "{ok:?}"
            );
        }
    }
}
