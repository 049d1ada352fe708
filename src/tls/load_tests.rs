//! `roots` reports every problem of a CA file at once: a block that is no certificate
//! did hide the certificates that are no CA, and the expired CAs' warnings.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use super::roots;
use crate::config::KeyPath;

fn cert(cn: &str, is_ca: bool, expired: bool) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    if is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
    }
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn a_ca_file_gets_every_error_and_warning_at_once() {
    let dir = std::env::temp_dir().join(format!("portico-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, _) = cert("Old CA", true, false);
    let (expired, _) = cert("Expired CA", true, true);
    let (partner, partner_key) = cert("Partner", false, false);
    let path = dir.join("ca.pem");
    std::fs::write(&path, format!("{old}{expired}{partner}{partner_key}")).unwrap();
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let at = KeyPath::root().key("client_ca");
    let store = roots(&path, &at, false, &mut errors, &mut warnings);
    assert!(store.is_none());
    let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let warnings: Vec<String> = warnings.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("PEM block 4 (PRIVATE KEY) is no certificate"));
    assert!(errors[1].contains("certificate 3 (CN=Partner) is not a CA certificate"));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("CA certificate 2 (CN=Expired CA) expired on"));
    let _ = std::fs::remove_dir_all(&dir);
}
