//! What `check` (and a reload, which loads the same way) says about the TLS files a
//! config names: certificates made here with rcgen, written to a directory of their own.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A fresh directory for one test's files.
fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portico-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A certificate with its key.
struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Issued {
    /// Subject `CN=<cn>`, for these DNS names, signed by `issuer` (self-signed without).
    fn new(
        cn: &str,
        names: &[&str],
        is_ca: IsCa,
        key_usages: Vec<KeyUsagePurpose>,
        issuer: Option<&Issued>,
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = is_ca;
        params.key_usages = key_usages;
        let key = KeyPair::generate().unwrap();
        let cert = match issuer {
            Some(i) => params.signed_by(&key, &i.cert, &i.key).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        Issued { cert, key }
    }

    fn ca(cn: &str) -> Issued {
        let ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Issued::new(cn, &[], ca, usages, None)
    }
}

/// `check`'s errors and warnings for `yaml`, with relative paths under `base`.
fn check(yaml: &str, base: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let report = super::check_text_in(yaml, base);
    let text = |v: &[super::ConfigError]| v.iter().map(ToString::to_string).collect();
    (text(&report.errors), text(&report.warnings))
}

const API: &str = "apis:\n  shop:\n    stages: { prod: {} }\n    routes: { \"GET /\": { integration: { type: mock } } }\n";

/// A partner's own certificate "pinned" as the client CA let whoever holds its key sign
/// client certificates with any subject; an upstream's CA file alike for servers.
#[test]
fn a_certificate_that_is_no_ca_is_refused_as_a_trust_anchor() {
    let dir = dir("tls-not-ca");
    let ca = Issued::ca("Partner CA");
    let server = Issued::new(
        "n.test",
        &["n.test", "m.test"],
        IsCa::ExplicitNoCa,
        vec![KeyUsagePurpose::DigitalSignature],
        Some(&ca),
    );
    // CA:FALSE and keyUsage without keyCertSign, as a client certificate has.
    let partner = Issued::new(
        "partner",
        &[],
        IsCa::ExplicitNoCa,
        vec![KeyUsagePurpose::DigitalSignature],
        Some(&ca),
    );
    // No basicConstraints at all: self-signed, as a pinned self-made certificate is.
    let bare = Issued::new("bare", &["peer.test"], IsCa::NoCa, vec![], None);
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    write("ca.pem", ca.cert.pem());
    write("server.pem", server.cert.pem());
    write("server.key", server.key.serialize_pem());
    write("partner.pem", partner.cert.pem());
    write("bundle.pem", ca.cert.pem() + &bare.cert.pem());
    let yaml = |client_ca: &str, upstream_ca: &str| {
        format!(
            r#"server: {{ listen: ["127.0.0.1:18081"], tls_listen: ["127.0.0.1:18443"] }}
upstreams:
  secure: {{ targets: ["https://127.0.0.1:9443"], tls: {{ ca: {upstream_ca} }} }}
{API}domains:
  n.test: {{ cert: server.pem, key: server.key, client_ca: {client_ca}, mappings: {{ "": shop/prod }} }}
  m.test: {{ cert: server.pem, key: server.key, client_ca: ca.pem, mappings: {{ "": shop/prod }} }}
"#
        )
    };
    let (errors, _) = check(&yaml("ca.pem", "ca.pem"), &dir);
    assert_eq!(errors, Vec::<String>::new(), "real CAs");

    let (errors, _) = check(&yaml("partner.pem", "bundle.pem"), &dir);
    let why = "; trusted here, whoever holds its key could issue certificates with any name (OpenSSL and nginx refuse it as a CA too): ";
    let want = [
        (
            r#"domains."n.test".client_ca: "#,
            "partner.pem: certificate 1 (CN=partner) is not a CA certificate: its basicConstraints say CA:FALSE, and its keyUsage does not include keyCertSign",
            "give the certificate of the CA that issued it",
        ),
        // The file's real CA does not make the other one right: it is still an error.
        (
            "upstreams.secure.tls.ca: ",
            "bundle.pem: certificate 2 (CN=bare) is not a CA certificate: it has no basicConstraints extension saying CA:TRUE",
            "it signed itself: issue the peer's certificate from a CA and give that CA",
        ),
    ];
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (at, says, instead) in want {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(at) && e.ends_with(&format!("{says}{why}{instead}"))),
            "{at}{says}: {errors:#?}"
        );
    }
}
