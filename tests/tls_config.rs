//! TLS configuration: `portico check` errors at their key paths, and SEC1 and PKCS#1
//! keys made by openssl.

mod common;
mod tls_support;

use std::path::Path;

use common::tls::*;
use common::*;
use tls_support::*;

fn has_line_starting(out: &str, prefix: &str) -> bool {
    out.lines().any(|l| l.trim_start().starts_with(prefix))
}

#[test]
fn check_reports_tls_mistakes_at_their_key_path() {
    let dir = temp_dir("tls-check");
    let ca = Ca::new("Test CA");
    let clients = Ca::new("Client CA");
    let (a_crt, a_key) = ca.server_cert(&["a.example"]).write(&dir, "a");
    let (_, b_key) = ca.server_cert(&["b.example"]).write(&dir, "b");
    let clients_pem = clients.write(&dir, "clients");
    let yaml = |server_extra: &str, a: &str| {
        format!(
            r#"server:
  listen: ["127.0.0.1:18081"]
{server_extra}apis:
  shop:
    stages: {{ prod: {{}} }}
    routes: {{ "GET /": {{ integration: {{ type: mock }} }} }}
domains:
  a.example:
{a}    mappings: {{ "": shop/prod }}
"#
        )
    };
    let tls = "  tls_listen: [\"127.0.0.1:18443\"]\n";
    let files = |crt: &Path, key: &Path| {
        format!(
            "    cert: \"{}\"\n    key: \"{}\"\n",
            crt.display(),
            key.display()
        )
    };
    let good = files(&a_crt, &a_key);

    // Controls: valid configs pass.
    let (code, out) = check(&yaml(tls, &good));
    assert_eq!(code, 0, "a valid TLS config: {out}");
    let (code, out) = check(&yaml(
        &format!("{tls}  default_domain: a.example\n  redirect_https: true\n"),
        &format!("{good}    client_ca: \"{}\"\n", clients_pem.display()),
    ));
    assert_eq!(code, 0, "default_domain, redirect_https, client_ca: {out}");

    for (what, server_extra, a, prefix) in [
        (
            "missing cert file",
            tls.to_string(),
            files(&dir.join("missing.crt"), &a_key),
            r#"domains."a.example".cert:"#,
        ),
        (
            "cert file that is not a certificate",
            tls.to_string(),
            files(&a_key, &a_key),
            r#"domains."a.example".cert:"#,
        ),
        (
            "key of another certificate",
            tls.to_string(),
            files(&a_crt, &b_key),
            r#"domains."a.example".key:"#,
        ),
        (
            "unknown default_domain",
            format!("{tls}  default_domain: nope.example\n"),
            good.clone(),
            "server.default_domain:",
        ),
        (
            "tls_listen with no certificate",
            tls.to_string(),
            String::new(),
            "server.tls_listen:",
        ),
        (
            "redirect_https without tls_listen",
            "  redirect_https: true\n".to_string(),
            good.clone(),
            "server.redirect_https:",
        ),
        (
            "missing client_ca file",
            tls.to_string(),
            format!(
                "{good}    client_ca: \"{}\"\n",
                dir.join("nope.pem").display()
            ),
            r#"domains."a.example".client_ca:"#,
        ),
    ] {
        let (code, out) = check(&yaml(&server_extra, &a));
        assert_eq!(code, 1, "{what}: {out}");
        assert!(
            has_line_starting(&out, prefix),
            "{what}: no line starting with {prefix:?} in:\n{out}"
        );
    }

    // An upstream's CA file is checked too.
    let upstream = |ca: &Path| {
        yaml(tls, &good).replace(
            "apis:\n",
            &format!(
                "upstreams:\n  secure: {{ targets: [\"https://127.0.0.1:9443\"], tls: {{ ca: \"{}\" }} }}\napis:\n",
                ca.display()
            ),
        )
    };
    let (code, out) = check(&upstream(&clients_pem));
    assert_eq!(code, 0, "an https upstream with its CA: {out}");
    let (code, out) = check(&upstream(&dir.join("nope.pem")));
    assert_eq!(code, 1, "{out}");
    assert!(has_line_starting(&out, "upstreams.secure.tls.ca:"), "{out}");
}

/// Key and certificate files that can't serve: the error says what is wrong with them
/// (it said "no items found" for an encrypted key or a certificate in the key file, and
/// "KeyMismatch" for a chain written CA first). Certificates that load but that clients
/// refuse (another name, expired) are warnings: check said ok.
#[test]
fn check_says_why_a_certificate_or_key_will_not_do() {
    let dir = temp_dir("tls-check-files");
    let ca = Ca::new("Test CA");
    let (a_crt, a_key) = ca.server_cert(&["a.example"]).write(&dir, "a");
    let (b_crt, b_key) = ca.server_cert(&["b.example"]).write(&dir, "b");
    let encrypted = dir.join("encrypted.key");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        &a_key.display().to_string(),
        "-passout",
        "pass:secret",
        "-out",
        &encrypted.display().to_string(),
    ]);
    // The CA first, then the leaf.
    let ca_first = dir.join("ca-first.crt");
    let leaf_pem = std::fs::read_to_string(&a_crt).unwrap();
    let leaf_only = &leaf_pem[..leaf_pem.find("-----END CERTIFICATE-----").unwrap() + 26];
    std::fs::write(&ca_first, format!("{}{leaf_only}", ca.pem())).unwrap();
    // Expired on 2020-01-01.
    let mut params = rcgen::CertificateParams::new(vec!["a.example".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let old_key = rcgen::KeyPair::generate().unwrap();
    let old = params.self_signed(&old_key).unwrap();
    let (old_crt, old_key_file) = (dir.join("old.crt"), dir.join("old.key"));
    std::fs::write(&old_crt, old.pem()).unwrap();
    std::fs::write(&old_key_file, old_key.serialize_pem()).unwrap();

    let yaml = |crt: &Path, key: &Path| {
        format!(
            r#"server:
  listen: ["127.0.0.1:18081"]
  tls_listen: ["127.0.0.1:18443"]
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes: {{ "GET /": {{ integration: {{ type: mock }} }} }}
domains:
  a.example:
    cert: "{}"
    key: "{}"
    mappings: {{ "": shop/prod }}
"#,
            crt.display(),
            key.display()
        )
    };
    // A PEM block that holds no certificate, after the leaf or as the leaf.
    let broken_chain = dir.join("broken-chain.crt");
    std::fs::write(
        &broken_chain,
        format!("{leaf_only}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    )
    .unwrap();
    let broken_leaf = dir.join("broken-leaf.crt");
    std::fs::write(
        &broken_leaf,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cert_error_at = r#"domains."a.example".cert: "#;
    for (what, crt, n) in [("chain", &broken_chain, 2), ("leaf", &broken_leaf, 1)] {
        let (code, out) = check(&yaml(crt, &a_key));
        assert_eq!(code, 1, "{what}: {out}");
        let line = out.lines().find(|l| l.starts_with(cert_error_at));
        let says = format!("certificate {n} is not a valid X.509 certificate");
        assert!(line.is_some_and(|l| l.contains(&says)), "{what}: {out}");
        assert!(
            !out.contains(key_at_line()),
            "{what}: blamed on the key: {out}"
        );
    }
    let key_at = key_at_line();
    for (what, crt, key, says) in [
        (
            "encrypted key",
            &a_crt,
            &encrypted,
            "holds an encrypted private key",
        ),
        (
            "certificate as key",
            &a_crt,
            &a_crt,
            "holds a certificate, not a private key",
        ),
        (
            "chain CA first",
            &ca_first,
            &a_key,
            "is the key of certificate 2 in",
        ),
        (
            "another certificate's key",
            &a_crt,
            &b_key,
            "does not match the certificate",
        ),
    ] {
        let (code, out) = check(&yaml(crt, key));
        assert_eq!(code, 1, "{what}: {out}");
        let line = out.lines().find(|l| l.starts_with(key_at));
        assert!(line.is_some_and(|l| l.contains(says)), "{what}: {out}");
    }
    let cert_at = r#"warning: domains."a.example".cert: "#;
    for (what, crt, key, says) in [
        ("another name", &b_crt, &b_key, "does not name a.example"),
        (
            "expired",
            &old_crt,
            &old_key_file,
            "expired on Jan  1 00:00:00 2020 GMT",
        ),
    ] {
        let (code, out) = check(&yaml(crt, key));
        assert_eq!(code, 0, "{what}: {out}");
        let line = out.lines().find(|l| l.starts_with(cert_at));
        assert!(line.is_some_and(|l| l.contains(says)), "{what}: {out}");
    }
    let (code, out) = check(&yaml(&a_crt, &a_key));
    assert_eq!((code, out.contains("warning")), (0, false), "{out}");
    // An endless file and a FIFO: read until memory ran out, and waited on for ever.
    let fifo = dir.join("fifo.pem");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let zero = Path::new("/dev/zero");
    for (what, crt, key, at) in [
        ("endless cert", zero, a_key.as_path(), cert_error_at),
        ("endless key", a_crt.as_path(), zero, key_at),
        ("fifo cert", fifo.as_path(), a_key.as_path(), cert_error_at),
    ] {
        let (code, out) = check(&yaml(crt, key));
        assert_eq!(code, 1, "{what}: {out}");
        let line = out.lines().find(|l| l.starts_with(at));
        assert!(
            line.is_some_and(|l| l.contains("not a regular file")),
            "{what}: {out}"
        );
    }
    // An error on another domain hides no warning about this one.
    let both = format!(
        "{}  b.example:\n    cert: \"{}\"\n    key: \"{}\"\n    mappings: {{ \"\": shop/prod }}\n",
        yaml(&old_crt, &old_key_file),
        b_crt.display(),
        a_key.display()
    );
    let (code, out) = check(&both);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(r#"domains."b.example".key: "#), "{out}");
    let line = out.lines().find(|l| l.starts_with(cert_at));
    assert!(line.is_some_and(|l| l.contains("expired on")), "{out}");
}

fn key_at_line() -> &'static str {
    r#"domains."a.example".key: "#
}

/// webpki does not look at a trust anchor's validity: an expired CA went on vouching
/// for client certificates (nginx, through OpenSSL, refuses them). It is left out of the
/// trust, with a warning; one expired CA alone is an error.
#[test]
fn an_expired_client_ca_is_not_trusted() {
    let dir = temp_dir("tls-expired-ca");
    let server = Ca::new("Server CA");
    let (a_crt, a_key) = server.server_cert(&["a.example"]).write(&dir, "a");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2015, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let old_key = rcgen::KeyPair::generate().unwrap();
    let old = params.self_signed(&old_key).unwrap();
    let old_ca = dir.join("old-ca.crt");
    std::fs::write(&old_ca, old.pem()).unwrap();
    // Not valid for ten years yet: not trusted either (openssl and nginx refuse it).
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2036, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let early_key = rcgen::KeyPair::generate().unwrap();
    let early = params.self_signed(&early_key).unwrap();
    let both = dir.join("both.crt");
    let bundle = format!("{}{}{}", old.pem(), server.pem(), early.pem());
    std::fs::write(&both, bundle).unwrap();
    let yaml = |ca: &Path| {
        format!(
            r#"server:
  listen: ["127.0.0.1:18081"]
  tls_listen: ["127.0.0.1:18443"]
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes: {{ "GET /": {{ integration: {{ type: mock }} }} }}
domains:
  a.example:
    cert: "{}"
    key: "{}"
    client_ca: "{}"
    mappings: {{ "": shop/prod }}
"#,
            a_crt.display(),
            a_key.display(),
            ca.display()
        )
    };
    let at = r#"domains."a.example".client_ca: "#;
    let (code, out) = check(&yaml(&old_ca));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(at)
            && l.contains("no usable CA certificate")
            && l.contains("expired on Jan  1 00:00:00 2020 GMT: it is not trusted")),
        "{out}"
    );
    let (code, out) = check(&yaml(&both));
    assert_eq!(code, 0, "{out}");
    let warning = format!("warning: {at}");
    assert!(
        out.lines().any(|l| l.starts_with(&warning)
            && l.contains("CA certificate 1")
            && l.contains("not trusted")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with(&warning)
            && l.contains("CA certificate 3")
            && l.contains("is not valid before Jan  1 00:00:00 2036 GMT")),
        "{out}"
    );
    // A CA's key pasted after its certificate is named, not skipped unsaid.
    let with_key = dir.join("with-key.crt");
    std::fs::write(
        &with_key,
        format!("{}{}", server.pem(), old_key.serialize_pem()),
    )
    .unwrap();
    let (code, out) = check(&yaml(&with_key));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(at) && l.contains("PEM block 2 (PRIVATE KEY) is no certificate")),
        "{out}"
    );
    // So is a block the PEM reader skips (OpenSSL's `-trustout` form), counted among all.
    let trusted = server
        .pem()
        .replace("CERTIFICATE-----", "TRUSTED CERTIFICATE-----");
    let skipped = dir.join("skipped.crt");
    std::fs::write(&skipped, format!("{}{trusted}", old.pem())).unwrap();
    let (code, out) = check(&yaml(&skipped));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(at)
            && l.contains("PEM block 2 (TRUSTED CERTIFICATE) is no certificate")),
        "{out}"
    );
}

/// Runs openssl with these arguments; panics with its output when it fails.
fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sec1_and_pkcs1_keys_are_accepted() {
    let dir = temp_dir("tls-keys");
    let ca = Ca::new("Test CA");
    // SEC1 ("EC PRIVATE KEY") from rcgen's PKCS#8 EC key.
    let ec = ca.server_cert(&["ec.example"]);
    let (ec_crt, ec_p8) = ec.write(&dir, "ec");
    let ec_sec1 = dir.join("ec-sec1.key");
    openssl(&[
        "ec",
        "-in",
        &ec_p8.display().to_string(),
        "-out",
        &ec_sec1.display().to_string(),
    ]);
    assert!(std::fs::read_to_string(&ec_sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    // PKCS#1 ("RSA PRIVATE KEY"): an RSA key from openssl, the certificate from rcgen.
    let rsa_p8 = dir.join("rsa-p8.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &rsa_p8.display().to_string(),
    ]);
    let rsa_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&rsa_p8).unwrap()).unwrap();
    let rsa = ca.server_cert_with_key(&["rsa.example"], rsa_key);
    let (rsa_crt, _) = rsa.write(&dir, "rsa");
    let rsa_pkcs1 = dir.join("rsa-pkcs1.key");
    openssl(&[
        "rsa",
        "-in",
        &rsa_p8.display().to_string(),
        "-traditional",
        "-out",
        &rsa_pkcs1.display().to_string(),
    ]);
    assert!(std::fs::read_to_string(&rsa_pkcs1)
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));

    let origin = proto_origin();
    for driver in DRIVERS {
        let tls_port = free_port();
        let yaml = config(
            tls_port,
            &origin,
            "",
            "",
            &[
                domain(
                    "ec.example",
                    Some(&(ec_crt.clone(), ec_sec1.clone())),
                    None,
                    "shop/prod",
                ),
                domain(
                    "rsa.example",
                    Some(&(rsa_crt.clone(), rsa_pkcs1.clone())),
                    None,
                    "shop/beta",
                ),
            ],
        );
        let (code, out) = check(&yaml.replace("{PORT}", "18082"));
        assert_eq!(code, 0, "{out}");
        let p = start(&yaml, driver, tls_port);
        for versions in [Versions::Tls12, Versions::Tls13] {
            for (name, leaf, want) in [
                ("ec.example", &ec, "shop prod"),
                ("rsa.example", &rsa, "shop beta"),
            ] {
                let what = format!("{driver} {versions:?} {name}");
                let mut c = TlsClient::trusting(&ca)
                    .versions(versions)
                    .build()
                    .connect(tls_port, name)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(c.leaf(), leaf.der(), "{what}");
                assert_eq!(ok_text(c.get("/ping", name), &what), want, "{what}");
            }
        }
        drop(p);
    }
}
