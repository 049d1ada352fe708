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
/// client certificates with any subject; an upstream's CA file alike for servers, but for
/// the backend's own self-signed certificate, pinned.
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

    // An upstream may pin its own self-signed certificate: its key holder is the backend.
    write("bare.pem", bare.cert.pem());
    let (errors, _) = check(&yaml("ca.pem", "bare.pem"), &dir);
    assert_eq!(
        errors,
        Vec::<String>::new(),
        "a backend's own certificate pinned"
    );

    let (errors, _) = check(&yaml("bundle.pem", "partner.pem"), &dir);
    let why = "; trusted here, whoever holds its key could issue certificates with any name (OpenSSL and nginx refuse it as a CA too): ";
    let want = [
        (
            "upstreams.secure.tls.ca: ",
            "partner.pem: certificate 1 (CN=partner) is not a CA certificate: its basicConstraints say CA:FALSE, and its keyUsage does not include keyCertSign",
            "give the certificate of the CA that issued it",
        ),
        // The file's real CA does not make the other one right: it is still an error. A
        // self-signed one in a client_ca would sign client certificates of any subject.
        (
            r#"domains."n.test".client_ca: "#,
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

/// Runs openssl with these arguments in `dir`; panics with its output when it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl {args:?}: {err}");
}

/// A key rustls's provider can't sign with was "unexpected error: failed to parse
/// private key as RSA, ECDSA, or EdDSA": the error names the key and what would do.
#[test]
fn a_key_of_a_kind_tls_can_not_use_is_named_with_the_kinds_it_can() {
    let dir = dir("tls-key-kinds");
    // (name, openssl genpkey options); the certificate is the key's own, self-signed.
    let kinds: [(&str, &[&str]); 7] = [
        (
            "p521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        ),
        (
            "pss",
            &["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            "rsa1024",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        ),
        ("ed448", &["-algorithm", "ED448"]),
        (
            "e3",
            &[
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-pkeyopt",
                "rsa_keygen_pubexp:3",
            ],
        ),
        (
            "p384",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        ("ed25519", &["-algorithm", "ED25519"]),
    ];
    let mut domains = String::new();
    for (name, options) in kinds {
        let key = format!("{name}.key");
        openssl(&dir, &[&["genpkey", "-out", &key], options].concat());
        let subject = format!("/CN={name}.test");
        let san = format!("subjectAltName=DNS:{name}.test");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-key",
                &key,
                "-subj",
                &subject,
                "-addext",
                &san,
                "-days",
                "2",
                "-out",
                &format!("{name}.pem"),
            ],
        );
        domains.push_str(&format!(
            "  {name}.test: {{ cert: {name}.pem, key: {name}.key, mappings: {{ \"\": shop/prod }} }}\n"
        ));
    }
    // The same P-521 key as SEC1 ("EC PRIVATE KEY"), the RSA one as PKCS#1.
    openssl(&dir, &["ec", "-in", "p521.key", "-out", "p521-sec1.key"]);
    openssl(
        &dir,
        &[
            "rsa",
            "-in",
            "rsa1024.key",
            "-traditional",
            "-out",
            "rsa1024-pkcs1.key",
        ],
    );
    for (name, key) in [("p521", "p521-sec1"), ("rsa1024", "rsa1024-pkcs1")] {
        domains.push_str(&format!(
            "  {key}.test: {{ cert: {name}.pem, key: {key}.key, mappings: {{ \"\": shop/prod }} }}\n"
        ));
    }
    let yaml = format!(
        "server: {{ listen: [\"127.0.0.1:18081\"], tls_listen: [\"127.0.0.1:18443\"] }}\n{API}domains:\n{domains}"
    );
    let (errors, _) = check(&yaml, &dir);
    let takes = "Portico's TLS takes ECDSA keys on P-256 or P-384, RSA keys of 2048 to 4096 bits, and Ed25519 keys";
    let want: Vec<String> = [
        ("p521", "p521", "an ECDSA key on curve P-521"),
        ("pss", "pss", "an RSA-PSS key of 2048 bits (a plain RSA key, openssl genpkey -algorithm RSA, signs with PSS too)"),
        ("rsa1024", "rsa1024", "an RSA key of 1024 bits"),
        ("ed448", "ed448", "an Ed448 key"),
        ("e3", "e3", "an RSA key of 2048 bits with public exponent 3 (65537 or more is needed)"),
        ("p521-sec1", "p521-sec1", "an ECDSA key on curve P-521"),
        ("rsa1024-pkcs1", "rsa1024-pkcs1", "an RSA key of 1024 bits"),
    ]
    .iter()
    .map(|(domain, key, what)| {
        let file = dir.join(format!("{key}.key"));
        format!(
            "domains.\"{domain}.test\".key: {}: {what} is not supported: {takes}",
            file.display()
        )
    })
    .collect();
    // P-384 and Ed25519 load.
    assert_eq!(errors, want);
}

/// Certificates are served on `server.tls_listen` only: without one, check was silent and
/// a mutual-TLS domain could never be reached (421 on plain HTTP).
#[test]
fn a_certificate_without_a_tls_listener_is_a_warning() {
    let dir = dir("tls-no-listener");
    let ca = Issued::ca("Test CA");
    let server = Issued::new(
        "a.test",
        &["a.test", "m.test"],
        IsCa::ExplicitNoCa,
        vec![KeyUsagePurpose::DigitalSignature],
        Some(&ca),
    );
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server.key.serialize_pem()).unwrap();
    let yaml = |server: &str| {
        format!(
            r#"server: {{ {server} }}
{API}domains:
  a.test: {{ cert: server.pem, key: server.key, mappings: {{ "": shop/prod }} }}
  m.test: {{ cert: server.pem, key: server.key, client_ca: ca.pem, mappings: {{ "": shop/prod }} }}
  p.test: {{ mappings: {{ "": shop/prod }} }}
"#
        )
    };
    let about_listener = |warnings: Vec<String>| -> Vec<String> {
        warnings
            .into_iter()
            .filter(|w| w.contains("tls_listen"))
            .collect()
    };
    let (errors, warnings) = check(&yaml(r#"listen: ["127.0.0.1:18081"]"#), &dir);
    assert_eq!(errors, Vec::<String>::new());
    let never = "no server.tls_listen, so this certificate is never served: ";
    let add = "; add an address to server.tls_listen";
    assert_eq!(
        about_listener(warnings),
        [
            format!(r#"domains."a.test".cert: {never}the domain answers on plain HTTP only{add}"#),
            format!(
                r#"domains."m.test".cert: {never}with client_ca, the domain is never reached: a plain HTTP request for it gets 421 Misdirected Request{add}"#
            ),
        ]
    );
    let both = r#"listen: ["127.0.0.1:18081"], tls_listen: ["127.0.0.1:18443"]"#;
    let (errors, warnings) = check(&yaml(both), &dir);
    assert_eq!(errors, Vec::<String>::new());
    assert_eq!(about_listener(warnings), Vec::<String>::new());
}

/// A version-1 root (no extensions, as old roots and `openssl x509 -req -signkey` make)
/// is a CA to OpenSSL and nginx, and to Portico, in either kind of CA file.
#[test]
fn a_self_signed_version_1_root_is_a_ca() {
    let dir = dir("tls-v1-root");
    openssl(
        &dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "v1.key",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-key",
            "v1.key",
            "-subj",
            "/CN=Old Root",
            "-out",
            "v1.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509", "-req", "-in", "v1.csr", "-signkey", "v1.key", "-days", "30", "-out", "v1.pem",
        ],
    );
    let text = std::fs::read_to_string(dir.join("v1.pem")).unwrap();
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
    let server = Issued::new(
        "n.test",
        &["n.test"],
        IsCa::ExplicitNoCa,
        vec![KeyUsagePurpose::DigitalSignature],
        None,
    );
    std::fs::write(dir.join("server.pem"), server.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server.key.serialize_pem()).unwrap();
    let yaml = format!(
        r#"server: {{ listen: ["127.0.0.1:18081"], tls_listen: ["127.0.0.1:18443"] }}
upstreams:
  secure: {{ targets: ["https://127.0.0.1:9443"], tls: {{ ca: v1.pem }} }}
{API}domains:
  n.test: {{ cert: server.pem, key: server.key, client_ca: v1.pem, mappings: {{ "": shop/prod }} }}
"#
    );
    let (errors, _) = check(&yaml, &dir);
    assert_eq!(errors, Vec::<String>::new());
}

/// A PEM file cut short (copied while being written) is said to be, in words: the error
/// showed the missing END line's label as bytes, `missing section end marker: [67, 69, …]`.
#[test]
fn a_pem_file_cut_short_says_so() {
    let dir = dir("tls-cut-pem");
    let server = Issued::new(
        "a.test",
        &["a.test"],
        IsCa::ExplicitNoCa,
        vec![KeyUsagePurpose::DigitalSignature],
        None,
    );
    let (cert, key) = (server.cert.pem(), server.key.serialize_pem());
    std::fs::write(dir.join("cut.pem"), &cert[..300]).unwrap();
    std::fs::write(dir.join("cut.key"), &key[..100]).unwrap();
    std::fs::write(dir.join("cut-begin.pem"), "-----BEGIN CERTIF").unwrap();
    let body = cert.find('\n').unwrap() + 5;
    std::fs::write(
        dir.join("bad-char.pem"),
        format!("{}!{}", &cert[..body], &cert[body + 1..]),
    )
    .unwrap();
    std::fs::write(dir.join("server.pem"), &cert).unwrap();
    std::fs::write(dir.join("server.key"), &key).unwrap();
    let yaml = |cert: &str, key: &str| {
        format!(
            "server: {{ tls_listen: [\"127.0.0.1:18443\"] }}\n{API}domains:\n  a.test: {{ cert: {cert}, key: {key}, mappings: {{ \"\": shop/prod }} }}\n"
        )
    };
    let at = |file: &str| dir.join(file).display().to_string();
    let (errors, _) = check(&yaml("cut.pem", "cut.key"), &dir);
    assert_eq!(
        errors,
        [
            format!(
                r#"domains."a.test".cert: {}: bad PEM: the file ends before the -----END CERTIFICATE----- line of its -----BEGIN CERTIFICATE----- block: is it cut short?"#,
                at("cut.pem")
            ),
            format!(
                r#"domains."a.test".key: {}: no usable private key: the file ends before the -----END PRIVATE KEY----- line of its -----BEGIN PRIVATE KEY----- block: is it cut short?"#,
                at("cut.key")
            ),
        ]
    );
    let (errors, _) = check(&yaml("cut-begin.pem", "server.key"), &dir);
    assert_eq!(
        errors,
        [format!(
            r#"domains."a.test".cert: {}: bad PEM: "-----BEGIN CERTIF" is not a whole BEGIN line (it ends in five dashes, as -----BEGIN CERTIFICATE-----): is the file cut short?"#,
            at("cut-begin.pem")
        )]
    );
    let (errors, _) = check(&yaml("bad-char.pem", "server.key"), &dir);
    assert_eq!(
        errors,
        [format!(
            r#"domains."a.test".cert: {}: bad PEM: the base64 text between a BEGIN and an END line is damaged: '!', which is not base64"#,
            at("bad-char.pem")
        )]
    );
}

/// A leaf for these names signed by `ca`, with these extendedKeyUsage purposes.
fn leaf(ca: &Issued, names: &[&str], eku: Vec<rcgen::ExtendedKeyUsagePurpose>) -> Issued {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = eku;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    Issued { cert, key }
}

/// Clients send no SNI for an IP address (rustls drops one), so an IP domain's
/// certificate is never chosen, and with client_ca every request to it is a 421, unless it
/// is the default domain. A domain without a cert under a mutual-TLS wildcard gets the
/// wildcard's handshake, which requires a client certificate.
#[test]
fn domains_the_handshake_never_picks_are_warnings() {
    let dir = dir("tls-never-picked");
    let ca = Issued::ca("Test CA");
    let names = ["a.test", "*.w.test", "127.0.0.1"];
    let server = leaf(&ca, &names, vec![]);
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server.key.serialize_pem()).unwrap();
    let yaml = |default: &str, ip_ca: &str, wildcard_ca: &str| {
        format!(
            r#"server: {{ listen: ["127.0.0.1:18081"], tls_listen: ["127.0.0.1:18443"]{default} }}
{API}domains:
  a.test: {{ cert: server.pem, key: server.key, mappings: {{ "": shop/prod }} }}
  127.0.0.1: {{ cert: server.pem, key: server.key{ip_ca}, mappings: {{ "": shop/prod }} }}
  "*.w.test": {{ cert: server.pem, key: server.key{wildcard_ca}, mappings: {{ "": shop/prod }} }}
  open.w.test: {{ mappings: {{ "": shop/prod }} }}
"#
        )
    };
    let mutual = ", client_ca: ca.pem";
    let never = r#"domains."127.0.0.1".cert: "127.0.0.1" is an IP address, which clients do not send in SNI, so this certificate is never chosen: a connection to the address gets the certificate of "a.test" (the first domain with a cert; no server.default_domain)"#;
    let make = "; make this domain server.default_domain to serve its certificate there";
    let wildcard = r#"domains."open.w.test": has no cert, so a TLS client asking for it (SNI) gets the handshake of "*.w.test", which requires a client certificate (its client_ca): clients without one never reach this domain over TLS; give it a cert and key of its own"#;
    let about = |warnings: Vec<String>| -> Vec<String> {
        (warnings.into_iter())
            .filter(|w| w.contains("SNI"))
            .collect()
    };
    let (errors, warnings) = check(&yaml("", mutual, mutual), &dir);
    assert_eq!(errors, Vec::<String>::new());
    assert_eq!(
        about(warnings),
        [
            format!("{never}, and with client_ca the domain is never reached: its requests come on connections made for that domain and get 421 Misdirected Request{make}"),
            wildcard.to_string(),
        ]
    );
    // Without client_ca the address is served, with the default domain's certificate.
    let (_, warnings) = check(&yaml("", "", ""), &dir);
    assert_eq!(about(warnings), [format!("{never}{make}")]);
    // The default domain's certificate is the one clients without SNI get.
    let default = r#", default_domain: "127.0.0.1""#;
    let (errors, warnings) = check(&yaml(default, mutual, ""), &dir);
    assert_eq!(errors, Vec::<String>::new());
    assert_eq!(about(warnings), Vec::<String>::new());
}

/// A server certificate whose extendedKeyUsage leaves out serverAuth (a client
/// certificate's) loads, and rustls and browsers refuse it; OpenSSL (curl) too, unless it
/// lists an old Server Gated Crypto purpose, which OpenSSL takes instead.
#[test]
fn a_certificate_not_for_servers_is_a_warning() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, EmailProtection, Other, ServerAuth};
    let dir = dir("tls-eku");
    let ca = Issued::ca("Test CA");
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    let ns_sgc = Other(vec![2, 16, 840, 1, 113730, 4, 1]);
    let mut domains = String::new();
    for (name, eku) in [
        ("client", vec![ClientAuth, EmailProtection]),
        ("both", vec![ClientAuth, ServerAuth]),
        ("any", vec![]),
        ("sgc", vec![ClientAuth, ns_sgc]),
    ] {
        let host = format!("{name}.test");
        let issued = leaf(&ca, &[&host], eku);
        std::fs::write(dir.join(format!("{name}.pem")), issued.cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), issued.key.serialize_pem()).unwrap();
        domains.push_str(&format!(
            "  {host}: {{ cert: {name}.pem, key: {name}.key, mappings: {{ \"\": shop/prod }} }}\n"
        ));
    }
    // What the warning says of OpenSSL: its TLS server purpose refuses the one, takes the
    // other.
    let verify = |file: &str| {
        let args = ["verify", "-CAfile", "ca.pem", "-purpose", "sslserver", file];
        let mut openssl = std::process::Command::new("openssl");
        openssl
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!verify("client.pem") && verify("sgc.pem"));
    let yaml = format!("server: {{ tls_listen: [\"127.0.0.1:18443\"] }}\n{API}domains:\n{domains}");
    let (errors, warnings) = check(&yaml, &dir);
    assert_eq!(errors, Vec::<String>::new());
    let refused = "rustls-based clients and browsers refuse it as a server's certificate";
    let at = |name: &str| {
        format!(
            r#"domains."{name}.test".cert: {}: the certificate's extendedKeyUsage does not include serverAuth"#,
            dir.join(format!("{name}.pem")).display()
        )
    };
    assert_eq!(
        warnings,
        [
            format!("{} (it allows clientAuth, emailProtection): {refused}, as OpenSSL (curl) does", at("client")),
            format!("{} (it allows clientAuth, nsSGC): {refused} (OpenSSL, and so curl, accepts the old SGC purpose in its place)", at("sgc")),
        ]
    );
}

/// A CA written with `openssl x509 -trustout` (PEM label TRUSTED CERTIFICATE) was "no
/// PEM certificate in it": the error says what it is and how to convert it.
#[test]
fn a_trusted_certificate_block_says_how_to_convert_it() {
    let dir = dir("tls-trustout");
    let ca = Issued::ca("Test CA");
    let server = leaf(&ca, &["a.test"], vec![]);
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server.key.serialize_pem()).unwrap();
    let trustout = [
        "x509",
        "-in",
        "ca.pem",
        "-trustout",
        "-addtrust",
        "clientAuth",
    ];
    openssl(&dir, &[&trustout[..], &["-out", "trusted.pem"]].concat());
    let trusted = std::fs::read_to_string(dir.join("trusted.pem")).unwrap();
    assert!(trusted.contains("BEGIN TRUSTED CERTIFICATE"), "{trusted}");
    std::fs::write(dir.join("both.pem"), ca.cert.pem() + &trusted).unwrap();
    let yaml = |client_ca: &str| {
        format!(
            "server: {{ tls_listen: [\"127.0.0.1:18443\"] }}\n{API}domains:\n  a.test: {{ cert: server.pem, key: server.key, client_ca: {client_ca}, mappings: {{ \"\": shop/prod }} }}\n"
        )
    };
    let convert = |file: &str| {
        let path = dir.join(file).display().to_string();
        format!("(openssl x509 -trustout): convert the file with `openssl crl2pkcs7 -nocrl -certfile {path} | openssl pkcs7 -print_certs -out NEW.pem`, which writes each of its certificates alone, without the trust settings Portico does not read (`openssl x509` reads the first block only)")
    };
    let at = r#"domains."a.test".client_ca: "#;
    let (errors, _) = check(&yaml("trusted.pem"), &dir);
    let file = dir.join("trusted.pem").display().to_string();
    let only = format!(
        "{at}{file}: no PEM certificate in it, but a TRUSTED CERTIFICATE block {}",
        convert("trusted.pem")
    );
    assert_eq!(errors, [only]);
    let (errors, _) = check(&yaml("both.pem"), &dir);
    let file = dir.join("both.pem").display().to_string();
    let second = format!(
        "{at}{file}: PEM block 2 (TRUSTED CERTIFICATE) is no certificate Portico reads {}",
        convert("both.pem")
    );
    assert_eq!(errors, [second]);
    // The command given works where `openssl x509` kept only the first block: the file
    // it writes holds both certificates, and loads.
    let cmd =
        "openssl crl2pkcs7 -nocrl -certfile both.pem | openssl pkcs7 -print_certs -out new.pem";
    let mut sh = std::process::Command::new("sh");
    assert!(sh
        .args(["-c", cmd])
        .current_dir(&dir)
        .status()
        .unwrap()
        .success());
    let converted = std::fs::read_to_string(dir.join("new.pem")).unwrap();
    assert_eq!(
        converted.matches("BEGIN CERTIFICATE-----").count(),
        2,
        "{converted}"
    );
    let (errors, _) = check(&yaml("new.pem"), &dir);
    assert_eq!(errors, Vec::<String>::new());
}
