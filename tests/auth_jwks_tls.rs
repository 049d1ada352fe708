//! JWT key sets over HTTPS: discovery and JWKS fetched from an issuer whose certificate
//! chains to a trusted root, and refused (fail closed, 401) when it does not. The test
//! CA is the only root Portico trusts here: rustls-native-certs reads SSL_CERT_FILE.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::py::Idp;
use common::tls::Ca;
use common::*;
use serde_json::json;

fn config(idp: &Idp) -> String {
    let iss = idp.issuer();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      users: {{ type: jwt, issuer: "{iss}", audience: [shop-api] }}
    routes:
      "GET /me": {{ authorizer: users, integration: {{ type: mock, status: 200, body: me }} }}
"#
    )
}

fn token(idp: &Idp) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    idp.mint(json!({ "claims": { "iss": idp.issuer(), "aud": "shop-api", "exp": now + 600 } }))
}

fn get(p: &Portico, token: &str) -> Response {
    p.raw(
        format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn https_key_sets_need_a_trusted_certificate() {
    let dir = temp_dir("auth-jwks-tls");
    let ca = Ca::new("Test IdP CA");
    let ca_file = ca.write(&dir, "ca");
    let (chain, key) = ca.server_cert(&["127.0.0.1"]).write(&dir, "idp");
    let rogue = Ca::new("Unknown CA");
    let (rchain, rkey) = rogue.server_cert(&["127.0.0.1"]).write(&dir, "rogue");
    // Inherited by the portico processes this test starts (and no other test here).
    std::env::set_var("SSL_CERT_FILE", &ca_file);
    for driver in DRIVERS {
        let idp = Idp::start_tls(&chain, &key);
        assert!(idp.issuer().starts_with("https://"));
        let p = Portico::start(&config(&idp), driver);
        let r = get(&p, &token(&idp));
        assert_eq!(r.status, 200, "{}\n{}", r.text(), p.log_text());
        assert_eq!(r.text(), "me");

        let idp = Idp::start_tls(&rchain, &rkey);
        let p = Portico::start(&config(&idp), driver);
        let r = get(&p, &token(&idp));
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("the issuer's signing keys could not be fetched"),
            "{:?}",
            r.headers
        );
        assert!(
            eventually(|| {
                let log = p.log_text();
                log.contains("JWKS fetch failed") && log.contains("certificate")
            }),
            "{}",
            p.log_text()
        );
    }
}
