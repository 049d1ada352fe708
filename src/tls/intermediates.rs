//! Intermediate certificates must be allowed to sign certificates. webpki checks an
//! intermediate's basicConstraints but not its keyUsage: a certificate with CA:TRUE and a
//! keyUsage without keyCertSign, sent by a client as its chain's intermediate, let the
//! holder of its key present any subject it liked (or a backend, any name). RFC 5280
//! §6.1.4(n) refuses such a path, and OpenSSL (nginx) does; the same certificate is
//! already refused as a `client_ca` or `tls.ca` anchor (`ca.rs`). These verifiers run
//! webpki's checks, then refuse a chain with such an intermediate.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Refuses a chain whose intermediates include one whose keyUsage leaves out
/// keyCertSign.
fn intermediates_may_sign(intermediates: &[CertificateDer<'_>]) -> Result<(), rustls::Error> {
    if intermediates
        .iter()
        .any(|c| super::ca::refuses_cert_sign(c))
    {
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
        intermediates_may_sign(intermediates)?;
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
        intermediates_may_sign(intermediates)?;
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

    fn ca(usages: Vec<KeyUsagePurpose>) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = usages;
        p
    }

    /// A root, an intermediate with `usages` signed by it, and a client leaf signed by
    /// the intermediate: (root, intermediate, leaf).
    fn chain(usages: Vec<KeyUsagePurpose>) -> (Certificate, Certificate, Certificate) {
        let root_key = KeyPair::generate().unwrap();
        let root = ca(vec![KeyUsagePurpose::KeyCertSign])
            .self_signed(&root_key)
            .unwrap();
        let int_key = KeyPair::generate().unwrap();
        let int = ca(usages).signed_by(&int_key, &root, &root_key).unwrap();
        let mut leaf = CertificateParams::new(vec!["client.test".to_string()]).unwrap();
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = leaf
            .signed_by(&KeyPair::generate().unwrap(), &int, &int_key)
            .unwrap();
        (root, int, leaf)
    }

    fn verify(usages: Vec<KeyUsagePurpose>) -> Result<(), rustls::Error> {
        let (root, int, leaf) = chain(usages);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let v = ClientChains(inner);
        v.verify_client_cert(leaf.der(), &[int.der().clone()], UnixTime::now())
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
    }
}
