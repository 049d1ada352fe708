//! `portico check` on domains whose TLS handshake is another domain's: a domain without a
//! cert gets the handshake of the site its SNI leads to (an exact name, a wildcard one
//! label up, else the default site), and with `client_ca` there, clients without a
//! certificate never reach it.

mod common;

use common::tls::Ca;
use common::*;

/// A domain without a cert whose SNI no site has (no exact name, no wildcard one label
/// up), or an address (no SNI), gets the default site's handshake, as
/// `tls::server::site_for` picks it: `server.default_domain`, else the first domain with
/// a cert. It was said only of a mutual `*.` wildcard one label up.
#[test]
fn a_certless_domain_falling_to_a_mutual_default_is_a_warning() {
    let dir = temp_dir("check-certless-default");
    let ca = Ca::new("Test CA");
    let ca_pem = ca.write(&dir, "ca");
    let leaf = ca.server_cert(&["m.test", "a.test", "*.w.test"]);
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert, leaf.cert_pem()).unwrap();
    std::fs::write(&key, leaf.key_pem()).unwrap();
    let files = format!("cert: {}, key: {}", cert.display(), key.display());
    let mutual = format!("{files}, client_ca: {}", ca_pem.display());
    let yaml = |default: &str| {
        format!(
            r#"server: {{ listen: ["127.0.0.1:{}"], tls_listen: ["127.0.0.1:{}"]{default} }}
apis:
  shop:
    stages: {{ prod: {{}} }}
    routes: {{ "GET /": {{ integration: {{ type: mock }} }} }}
domains:
  m.test: {{ {mutual}, mappings: {{ "": shop/prod }} }}
  a.test: {{ {files}, mappings: {{ "": shop/prod }} }}
  "*.w.test": {{ {mutual}, mappings: {{ "": shop/prod }} }}
  plain.test: {{ mappings: {{ "": shop/prod }} }}
  y.z.w.test: {{ mappings: {{ "": shop/prod }} }}
  "*.open.test": {{ mappings: {{ "": shop/prod }} }}
  127.0.0.2: {{ mappings: {{ "": shop/prod }} }}
"#,
            free_port(),
            free_port()
        )
    };
    let about = |text: String| -> Vec<String> {
        (text.lines())
            .filter(|l| l.contains("has no cert"))
            .map(str::to_owned)
            .collect()
    };
    let tail = "which requires a client certificate (its client_ca): clients without one never reach this domain over TLS; give it a cert and key of its own";
    let first = r#""m.test" (the first domain with a cert; no server.default_domain)"#;
    let sni = "has no cert, so a TLS client asking for it (SNI) gets the handshake of";
    let (code, text) = check(&yaml(""));
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        about(text),
        [
            format!(r#"warning: domains."plain.test": {sni} {first}, {tail}"#),
            format!(r#"warning: domains."y.z.w.test": {sni} {first}, {tail}"#),
            format!(r#"warning: domains."*.open.test": {sni} {first}, {tail}"#),
            format!(
                r#"warning: domains."127.0.0.2": has no cert, and clients send no SNI for an address, so a TLS client gets the handshake of {first}, {tail}"#
            ),
        ]
    );
    let (_, text) = check(&yaml(r#", default_domain: "*.w.test""#));
    let wildcard = r#""*.w.test" (server.default_domain)"#;
    assert_eq!(
        about(text)[0],
        format!(r#"warning: domains."plain.test": {sni} {wildcard}, {tail}"#),
    );
    // A default site without client_ca serves them all.
    let (_, text) = check(&yaml(", default_domain: a.test"));
    assert_eq!(about(text), Vec::<String>::new());
}
