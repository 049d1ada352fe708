//! An API that a mutual-TLS domain maps is still served on the default endpoint
//! (`/STAGE/…` on any other host, plain HTTP too) without a client certificate unless
//! `disable_default_endpoint: true`, and through any domain without mutual TLS that maps
//! it too; `check` and `run` now say so at that key and at that mapping. They said
//! nothing, and mutual TLS looked like the only way in.

mod common;
mod tls_support;

use common::tls::*;
use common::*;
use tls_support::*;

#[test]
fn an_api_behind_mutual_tls_that_the_default_endpoint_serves_is_warned_about() {
    let dir = temp_dir("mtls-default-endpoint");
    let ca = Ca::new("partner ca");
    let ca_file = ca.write(&dir, "ca");
    let files = ca.server_cert(&["a.example"]).write(&dir, "a");
    let origin = Origin::fixed(b"backend");
    let tls_port = free_port();
    let yaml = config(
        tls_port,
        &origin,
        "",
        "",
        &[domain(
            "a.example",
            Some(&files),
            Some(&ca_file),
            "shop/prod",
        )],
    );
    let warning = "warning: apis.shop.disable_default_endpoint: false, and a.example maps this API with mutual TLS: the default endpoint";
    let (code, text) = check(&yaml.replace("{PORT}", &free_port().to_string()));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(warning), "{text}");
    for driver in DRIVERS {
        let p = start(&yaml, driver, tls_port);
        // What the warning is about: no certificate, no TLS, and the API answers.
        let r = plain_get(&p, "127.0.0.1", "/prod/ping");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "shop prod"),
            "{driver}"
        );
        assert!(
            p.log_text().contains("apis.shop.disable_default_endpoint"),
            "{driver}"
        );
    }

    // Switched off: no warning (and no way in but the domain).
    let off = yaml.replace("  shop:\n", "  shop:\n    disable_default_endpoint: true\n");
    let (code, text) = check(&off.replace("{PORT}", &free_port().to_string()));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning"), "{text}");
    // A domain without client_ca: nothing to say.
    let plain = config(
        tls_port,
        &origin,
        "",
        "",
        &[domain("a.example", Some(&files), None, "shop/prod")],
    );
    let (code, text) = check(&plain.replace("{PORT}", &free_port().to_string()));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning"), "{text}");
}

/// A domain without mutual TLS that maps the same API is another way in without a
/// certificate: warned at its mapping.
#[test]
fn another_domain_mapping_an_api_behind_mutual_tls_is_warned_about() {
    let dir = temp_dir("mtls-other-domain");
    let ca = Ca::new("partner ca");
    let ca_file = ca.write(&dir, "ca");
    let files = ca.server_cert(&["a.example", "b.example"]).write(&dir, "a");
    let origin = Origin::fixed(b"backend");
    let tls_port = free_port();
    let yaml = config(
        tls_port,
        &origin,
        "",
        "",
        &[
            domain("a.example", Some(&files), Some(&ca_file), "shop/prod"),
            domain("b.example", Some(&files), None, "shop/beta"),
        ],
    )
    .replace("  shop:\n", "  shop:\n    disable_default_endpoint: true\n");
    let (code, text) = check(&yaml.replace("{PORT}", &free_port().to_string()));
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("warning"))
            .collect::<Vec<_>>(),
        [
            r#"warning: domains."b.example".mappings."": maps shop/beta, an API that a.example serves with mutual TLS: clients reach it here without a client certificate"#
        ],
        "{text}"
    );
    for driver in DRIVERS {
        let p = start(&yaml, driver, tls_port);
        let r = plain_get(&p, "b.example", "/ping");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "shop beta"),
            "{driver}"
        );
    }
}

/// A domain without a certificate of its own under a mutual-TLS wildcard is its own
/// domain: its requests are routed to it (an exact name wins) and are not the
/// wildcard's, so they are served without a client certificate. They were all 421, as
/// if they were the wildcard's. A name with an empty first label is not under the
/// wildcard at all.
#[test]
fn a_domain_without_a_certificate_under_a_mutual_wildcard_is_served() {
    let dir = temp_dir("mtls-certless-under-wildcard");
    let ca = Ca::new("partner ca");
    let ca_file = ca.write(&dir, "ca");
    let files = ca.server_cert(&["*.mw.example"]).write(&dir, "w");
    let origin = Origin::fixed(b"backend");
    let tls_port = free_port();
    let yaml = config(
        tls_port,
        &origin,
        "",
        "",
        &[
            domain(
                "\"*.mw.example\"",
                Some(&files),
                Some(&ca_file),
                "shop/prod",
            ),
            domain("e.mw.example", None, None, "shop/prod"),
        ],
    );
    for driver in DRIVERS {
        let p = start(&yaml, driver, tls_port);
        let r = plain_get(&p, "e.mw.example", "/ping");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "shop prod"),
            "{driver}"
        );
        // Another name under the wildcard is the wildcard's: mutual TLS only.
        assert_eq!(
            plain_get(&p, "f.mw.example", "/ping").status,
            421,
            "{driver}"
        );
        // An empty label is no name under it: the default endpoint.
        let r = plain_get(&p, ".mw.example", "/prod/ping");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "shop prod"),
            "{driver}"
        );
    }
}
