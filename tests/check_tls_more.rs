//! `portico check` reports every problem of a domain's (or an upstream's) TLS files in one
//! run: a bad `client_ca` or `tls.ca` hides nothing about the other files. And a CA
//! certificate served as a domain's certificate, which rustls clients refuse, is a
//! warning at its `cert`.

mod common;
mod tls_support;

use std::path::Path;
use std::sync::Arc;

use common::tls::*;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tls_support::*;

fn lines_with<'a>(text: &'a str, what: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(what)).collect()
}

/// A certificate for localhost whose key file is another certificate's, a certificate
/// for localhost under example.com, and with each an empty `client_ca`: the key mismatch
/// and the name warning were reported only once client_ca was fixed (`tls::load::site`
/// returned at the first file that failed).
#[test]
fn a_bad_client_ca_hides_no_other_certificate_problem() {
    let dir = temp_dir("check-tls-all-at-once");
    let ca = Ca::new("Test CA");
    let (cert, key) = ca.server_cert(&["localhost"]).write(&dir, "localhost");
    let (_, other_key) = ca.server_cert(&["localhost"]).write(&dir, "other");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let upstream_ca = dir.join("upstream-ca.pem");
    std::fs::write(&upstream_ca, "not a certificate\n").unwrap();
    let (c, k, e, u) = (
        cert.display(),
        key.display(),
        empty.display(),
        upstream_ca.display(),
    );
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:{}"], tls_listen: ["127.0.0.1:{}"] }}
upstreams:
  secure: {{ targets: ["https://127.0.0.1:9443"], tls: {{ ca: "{u}", server_name: "not a name" }} }}
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes: {{ "GET /": {{ integration: {{ type: http, upstream: secure }} }} }}
domains:
  localhost: {{ cert: "{c}", key: "{}", client_ca: "{e}", mappings: {{ "": shop/prod }} }}
  example.com: {{ cert: "{c}", key: "{k}", client_ca: "{e}", mappings: {{ "": shop/prod }} }}
"#,
        free_port(),
        free_port(),
        other_key.display(),
    );
    let (code, text) = check(&yaml);
    assert_ne!(code, 0, "{text}");
    for (at, what) in [
        ("domains.localhost.client_ca:", "no PEM certificate in it"),
        (
            "domains.localhost.key:",
            "does not match the certificate in",
        ),
        (
            r#"domains."example.com".client_ca:"#,
            "no PEM certificate in it",
        ),
        (
            r#"domains."example.com".cert:"#,
            "the certificate does not name example.com: clients refuse it",
        ),
        ("upstreams.secure.tls.ca:", "no PEM certificate in it"),
        (
            "upstreams.secure.tls.server_name:",
            r#""not a name" is not a valid TLS server name"#,
        ),
    ] {
        let found = lines_with(&text, at);
        assert!(
            found.iter().any(|l| l.contains(what)),
            "{at} {what}, in one run:\n{text}"
        );
    }
}

/// A self-signed certificate that says CA:TRUE, as `openssl req -x509` writes by default,
/// for `name`: its PEM and its key's.
fn ca_true_cert(name: &str) -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

fn write(dir: &Path, file: &str, text: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A CA:TRUE certificate as a domain's `cert` loads (its key matches) but a rustls client
/// refuses it even when it trusts that very certificate (webpki: CaUsedAsEndEntity):
/// `check` warns at `domains.NAME.cert`, beside the domain's other problems. The control,
/// the same client against a CA:FALSE leaf, gets through.
#[test]
fn a_ca_certificate_served_as_a_domains_certificate_is_a_warning() {
    let dir = temp_dir("check-tls-ca-leaf");
    let (pem, key_pem, der) = ca_true_cert("ca-leaf.test");
    let (cert, key) = (write(&dir, "ca.pem", &pem), write(&dir, "ca.key", &key_pem));
    let ca = Ca::new("Test CA");
    let leaf = ca.server_cert(&["leaf.test"]);
    let (leaf_cert, leaf_key) = leaf.write(&dir, "leaf");
    let empty = write(&dir, "empty.pem", "");
    let tls_port = free_port();
    let yaml = |bad_ca: bool| {
        let client_ca = match bad_ca {
            true => format!(", client_ca: \"{empty}\""),
            false => String::new(),
        };
        format!(
            r#"server: {{ listen: ["127.0.0.1:{{PORT}}"], tls_listen: ["127.0.0.1:{tls_port}"] }}
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes: {{ "GET /": {{ integration: {{ type: mock, body: ok }} }} }}
domains:
  ca-leaf.test: {{ cert: "{cert}", key: "{key}"{client_ca}, mappings: {{ "": shop/prod }} }}
  leaf.test: {{ cert: "{}", key: "{}", mappings: {{ "": shop/prod }} }}
"#,
            leaf_cert.display(),
            leaf_key.display()
        )
    };
    let warning = r#"domains."ca-leaf.test".cert: "#;
    let says = "the certificate is a CA certificate (its basicConstraints say CA:TRUE): rustls-based clients";
    let (code, text) = check(&yaml(false).replace("{PORT}", &free_port().to_string()));
    assert_eq!(code, 0, "{text}");
    let found = lines_with(&text, warning);
    assert_eq!(found.len(), 1, "{text}");
    assert!(found[0].contains(says), "{text}");
    // The control: a CA:FALSE leaf has no warning.
    assert_eq!(
        lines_with(&text, r#"domains."leaf.test".cert"#),
        [] as [&str; 0]
    );
    // With a bad client_ca beside it, in the same run.
    let (code, text) = check(&yaml(true).replace("{PORT}", &free_port().to_string()));
    assert_ne!(code, 0, "{text}");
    assert!(lines_with(&text, warning).iter().any(|l| l.contains(says)));
    assert!(lines_with(&text, r#"domains."ca-leaf.test".client_ca: "#)
        .iter()
        .any(|l| l.contains("no PEM certificate in it")));

    // What the warning says, with a rustls client trusting that very certificate.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    roots.add(ca.der()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = TlsClient {
        config: Arc::new(config),
    };
    for driver in DRIVERS {
        let _p = start(&yaml(false), driver, tls_port);
        let refused = client.connect(tls_port, "ca-leaf.test").err();
        let refused = refused.expect("a rustls client refuses a CA certificate as a server's");
        assert!(refused.contains("CaUsedAsEndEntity"), "{driver}: {refused}");
        let ok = client.try_get(tls_port, "leaf.test", "leaf.test", "/");
        let ok = ok.unwrap_or_else(|e| panic!("{driver}: {e}"));
        assert_eq!((ok.status, ok.text()), (200, "ok".to_string()), "{driver}");
    }
}
