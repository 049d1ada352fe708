//! Mutual TLS end to end: a client certificate from the domain's CA is required, its
//! subject reaches `$context.identity.clientCert`, access logs and Lambda events; 421
//! for misdirected requests.

mod common;
mod tls_support;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::tls::*;
use common::*;
use rcgen::DnType;
use rustls::pki_types::pem::PemObject;
use tls_support::*;

// ---------------------------------------------------------------- 4

/// The access log's JSON lines, once `enough` says they are all there (or after 10 s).
fn read_json_lines(
    path: &Path,
    enough: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    within(10, || {
        lines = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        enough(&lines)
    });
    lines
}

#[test]
fn mutual_tls_requires_a_client_certificate_from_the_domains_ca() {
    let origin = proto_origin();
    let dir = temp_dir("tls-mtls");
    let ca = Ca::new("Test CA");
    let clients = Ca::new("Client CA");
    let other = Ca::new("Other CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let fb = ca.server_cert(&["b.example"]).write(&dir, "b");
    let clients_pem = clients.write(&dir, "clients");
    let one = clients.client_cert(&[
        (DnType::OrganizationName, "Example Org"),
        (DnType::CommonName, "client one"),
    ]);
    let two = clients.client_cert(&[(DnType::CommonName, "client two")]);
    // Characters RFC 4514 escapes: , + " (and four attributes, in DER order C, O, OU, CN).
    let three = clients.client_cert(&[
        (DnType::CountryName, "DE"),
        (DnType::OrganizationName, "Example, Inc."),
        (DnType::OrganizationalUnitName, "R+D"),
        (DnType::CommonName, "client \"three\""),
    ]);
    const THREE: &str = r#"CN=client \"three\",OU=R\+D,O=Example\, Inc.,C=DE"#;
    let subjects = ["CN=client one,O=Example Org", "CN=client two", THREE];
    let rogue = other.client_cert(&[
        (DnType::OrganizationName, "Example Org"),
        (DnType::CommonName, "client one"),
    ]);
    let access_log = dir.join("access.log");
    let format = r#"{"path":"$context.path","status":"$context.status","dn":"$context.identity.clientCert.subjectDN","issuer":"$context.identity.clientCert.issuerDN","serial":"$context.identity.clientCert.serialNumber","pem":"$context.identity.clientCert.clientCertPem"}"#;
    let server_extra = format!(
        "  access_log: {{ path: \"{}\", format: '{format}' }}\n",
        access_log.display()
    );
    let routes_extra = r#"      "GET /dn":
        integration: { type: http, upstream: origin }
        parameters:
          "overwrite:header.x-client-dn": "$context.identity.clientCert.subjectDN"
          "overwrite:header.x-client-issuer": "$context.identity.clientCert.issuerDN"
          "overwrite:header.x-client-serial": "$context.identity.clientCert.serialNumber"
          "overwrite:header.x-client-validity": "${context.identity.clientCert.validity.notBefore}/${context.identity.clientCert.validity.notAfter}"
"#;
    for driver in DRIVERS {
        let _ = std::fs::remove_file(&access_log);
        let tls_port = free_port();
        let p = start(
            &config(
                tls_port,
                &origin,
                &server_extra,
                routes_extra,
                &[
                    domain("a.example", Some(&fa), Some(&clients_pem), "shop/prod"),
                    domain("b.example", Some(&fb), None, "shop/beta"),
                ],
            ),
            driver,
            tls_port,
        );
        for versions in [Versions::Tls12, Versions::Tls13] {
            let what = format!("{driver} {versions:?}");
            // A good certificate: served, and the subject reaches the mapping.
            for (leaf, dn) in [
                (&one, "CN=client one,O=Example Org"),
                (&two, "CN=client two"),
                (&three, THREE),
            ] {
                let client = TlsClient::trusting(&ca)
                    .versions(versions)
                    .client_cert(leaf)
                    .build();
                let mut c = client
                    .connect(tls_port, "a.example")
                    .unwrap_or_else(|e| panic!("{what} {dn}: {e}"));
                assert_eq!(
                    ok_text(c.get("/ping", "a.example"), &what),
                    "shop prod",
                    "{what}"
                );
                assert_eq!(
                    ok_text(c.get("/dn", "a.example"), &what),
                    "origin /dn proto=https"
                );
                let seen = origin.last();
                assert_eq!(seen.header("x-client-dn"), Some(dn), "{what}: {seen:?}");
                assert_eq!(
                    seen.header("x-client-issuer"),
                    Some("CN=Client CA"),
                    "{what}: {seen:?}"
                );
                // The rest of what API Gateway names under $context.identity.clientCert.
                let info = portico::tls::dn::describe(&leaf.der()).unwrap();
                assert_eq!(seen.header("x-client-serial"), Some(&*info.serial_number));
                let validity = format!("{}/{}", info.not_before, info.not_after);
                assert_eq!(seen.header("x-client-validity"), Some(&*validity));
                // A resumed session still knows who the client is.
                drop(c);
                let mut again = client.connect(tls_port, "a.example").unwrap();
                assert!(again.resumed(), "{what} {dn}: the session resumes");
                assert_eq!(
                    ok_text(again.get("/dn", "a.example"), &what),
                    "origin /dn proto=https"
                );
                let seen = origin.last();
                assert_eq!(
                    seen.header("x-client-dn"),
                    Some(dn),
                    "{what}: resumed: {seen:?}"
                );
                // A request on it for b.example (no mutual TLS) is b.example's: its API
                // gets no client certificate, as API Gateway gives none there.
                assert_eq!(
                    ok_text(again.get("/dn", "b.example"), &what),
                    "origin /dn proto=https"
                );
                let seen = origin.last();
                let dn_there = seen.header("x-client-dn").unwrap_or_default();
                assert_eq!(dn_there, "", "{what}: b.example: {seen:?}");
            }
            // No certificate, or one from another CA: no HTTP answer at all.
            let requests = origin.requests.load(Ordering::SeqCst);
            let none = TlsClient::trusting(&ca).versions(versions).build();
            let r = none.try_get(tls_port, "a.example", "a.example", "/dn");
            assert!(r.is_err(), "{what}: no client certificate must fail: {r:?}");
            let wrong = TlsClient::trusting(&ca)
                .versions(versions)
                .client_cert(&rogue)
                .build();
            let r = wrong.try_get(tls_port, "a.example", "a.example", "/dn");
            assert!(
                r.is_err(),
                "{what}: another CA's certificate must fail: {r:?}"
            );
            assert_eq!(origin.requests.load(Ordering::SeqCst), requests, "{what}");

            // b.example asks for no certificate.
            let r = none
                .try_get(tls_port, "b.example", "b.example", "/ping")
                .unwrap_or_else(|e| panic!("{what}: b.example: {e}"));
            assert_eq!((r.status, r.text().as_str()), (200, "shop beta"), "{what}");
            // ...but its connections cannot carry requests for a.example.
            let mut c = none.connect(tls_port, "b.example").unwrap();
            let r = c.get("/ping", "a.example").unwrap();
            assert_eq!(r.status, 421, "{what}: {}", r.text());
            assert_eq!(r.json_message(), "Misdirected Request");
            let r = c.get("/dn", &format!("A.EXAMPLE:{tls_port}")).unwrap();
            assert_eq!(r.status, 421, "{what}: {}", r.text());
            // The name's absolute form (a trailing dot) routes to a.example, so it is
            // misdirected too.
            let r = c.get("/dn", "a.example.").unwrap();
            assert_eq!(r.status, 421, "{what}: {}", r.text());
            // An absolute-form target names the host as much as the Host header does.
            let r = c
                .send(b"GET https://a.example/ping HTTP/1.1\r\nHost: b.example\r\n\r\n")
                .unwrap();
            assert_eq!(r.status, 421, "{what}: absolute form: {}", r.text());
        }
        // Nor can a plain listener.
        let r = plain_get(&p, "a.example", "/ping");
        assert_eq!(r.status, 421, "{driver}: {}", r.text());
        assert_eq!(r.json_message(), "Misdirected Request");
        assert_eq!(
            plain_get(&p, "b.example", "/ping").text(),
            "shop beta",
            "{driver}"
        );

        // The access log has the subject too.
        // (b.example's requests on a.example's connections have no subject: "-".)
        let dn_200 =
            |l: &&serde_json::Value| l["path"] == "/dn" && l["status"] == "200" && l["dn"] != "-";
        let lines = read_json_lines(&access_log, |ls| ls.iter().filter(dn_200).count() >= 12);
        // Two workers write their own lines: the order across connections is not fixed.
        let mut dns: Vec<&str> = lines
            .iter()
            .filter(dn_200)
            .filter_map(|l| l["dn"].as_str())
            .collect();
        dns.sort_unstable();
        // Each subject: two requests per TLS version.
        let mut want: Vec<&str> = subjects.iter().flat_map(|d| [*d; 4]).collect();
        want.sort_unstable();
        assert_eq!(dns, want, "{driver}: {lines:?}");
        for l in lines.iter().filter(dn_200) {
            let pem = l["pem"].as_str().unwrap_or_default();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{l}");
            assert!(l["serial"].as_str().is_some_and(|s| s.contains(':')), "{l}");
        }
        assert!(
            lines
                .iter()
                .filter(dn_200)
                .all(|l| l["issuer"] == "CN=Client CA"),
            "{driver}: {lines:?}"
        );
        drop(p);
    }
}

#[test]
fn lambda_events_carry_the_client_certificate() {
    let origin = proto_origin();
    let function = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"fn"}"#.into()));
    let dir = temp_dir("tls-mtls-lambda");
    let ca = Ca::new("Test CA");
    let clients = Ca::new("Client CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let clients_pem = clients.write(&dir, "clients");
    let one = clients.client_cert(&[
        (DnType::OrganizationName, "Example Org"),
        (DnType::CommonName, "client one"),
    ]);
    let routes = format!(
        "      \"GET /v2\": {{ integration: {{ type: lambda, url: \"{0}\" }} }}\n      \"GET /v1\": {{ integration: {{ type: lambda, url: \"{0}\", payload_format: \"1.0\" }} }}\n",
        function.url()
    );
    for driver in DRIVERS {
        let tls_port = free_port();
        let p = start(
            &config(
                tls_port,
                &origin,
                "",
                &routes,
                &[domain(
                    "a.example",
                    Some(&fa),
                    Some(&clients_pem),
                    "shop/prod",
                )],
            ),
            driver,
            tls_port,
        );
        let mut conn = TlsClient::trusting(&ca)
            .client_cert(&one)
            .build()
            .connect(tls_port, "a.example")
            .unwrap_or_else(|e| panic!("{driver}: {e}"));
        for (path, pointer) in [
            ("/v2", "/requestContext/authentication/clientCert"),
            ("/v1", "/requestContext/identity/clientCert"),
        ] {
            assert_eq!(ok_text(conn.get(path, "a.example"), path), "fn");
            let event = function.last_event();
            let cert = event
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{driver} {path}: no {pointer} in {event}"));
            assert_eq!(
                cert["subjectDN"], "CN=client one,O=Example Org",
                "{driver} {path}"
            );
            assert_eq!(cert["issuerDN"], "CN=Client CA", "{driver} {path}");
            let pem = cert["clientCertPem"].as_str().unwrap();
            let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
                .unwrap_or_else(|e| panic!("{driver} {path}: clientCertPem: {e}"));
            assert_eq!(der.as_ref(), one.der().as_ref(), "{driver} {path}");
            let serial = cert["serialNumber"].as_str().unwrap();
            assert!(
                !serial.is_empty()
                    && serial.split(':').all(|b| b.len() == 2
                        && b.bytes()
                            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())),
                "{driver} {path}: serialNumber {serial}"
            );
            for field in ["notBefore", "notAfter"] {
                let t = cert["validity"][field].as_str().unwrap_or_default();
                assert!(
                    t.ends_with(" GMT") && t.len() == 24,
                    "{driver} {path}: {field} {t:?}"
                );
            }
        }
        // Without mutual TLS there is no certificate to describe.
        let plain = std::fs::read_to_string(&p.config).unwrap().replace(
            &format!("    client_ca: \"{}\"\n", clients_pem.display()),
            "",
        );
        std::fs::write(&p.config, plain).unwrap();
        p.signal(1);
        assert!(
            within(10, || p.log_text().contains("config reloaded")),
            "{driver}: reload"
        );
        let mut conn = TlsClient::trusting(&ca)
            .build()
            .connect(tls_port, "a.example")
            .unwrap_or_else(|e| panic!("{driver}: {e}"));
        assert_eq!(ok_text(conn.get("/v2", "a.example"), "/v2"), "fn");
        let event = function.last_event();
        assert!(
            event.pointer("/requestContext/authentication").is_none(),
            "{driver}: {event}"
        );
    }
}

/// A reload that moves domains around (here: only their order) changes nothing for
/// connections already open: a connection made for b.example without a certificate still
/// can't reach the mutual-TLS a.example, and one verified for a.example still can (until
/// a reload changes a.example's client CAs). The
/// connection used to remember its domain by its place in the old config's list.
#[test]
fn a_reload_that_reorders_domains_keeps_each_connection_to_its_own() {
    let origin = proto_origin();
    let dir = temp_dir("tls-mtls-reorder");
    let ca = Ca::new("Test CA");
    let clients = Ca::new("Client CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let fb = ca.server_cert(&["b.example"]).write(&dir, "b");
    let clients_pem = clients.write(&dir, "clients");
    let one = clients.client_cert(&[(DnType::CommonName, "client one")]);
    let a = domain("a.example", Some(&fa), Some(&clients_pem), "shop/prod");
    let b = domain("b.example", Some(&fb), None, "shop/beta");
    for driver in DRIVERS {
        let tls_port = free_port();
        let p = start(
            &config(tls_port, &origin, "", "", &[b.clone(), a.clone()]),
            driver,
            tls_port,
        );
        let mut anonymous = TlsClient::trusting(&ca)
            .build()
            .connect(tls_port, "b.example")
            .unwrap_or_else(|e| panic!("{driver}: {e}"));
        let mut verified = TlsClient::trusting(&ca)
            .client_cert(&one)
            .build()
            .connect(tls_port, "a.example")
            .unwrap_or_else(|e| panic!("{driver}: {e}"));
        let status = |c: &mut TlsConn, host: &str| c.get("/ping", host).unwrap().status;
        assert_eq!(status(&mut anonymous, "a.example"), 421, "{driver}");
        assert_eq!(status(&mut verified, "a.example"), 200, "{driver}");

        let reordered = std::fs::read_to_string(&p.config)
            .unwrap()
            .replace(&format!("{b}{a}"), &format!("{a}{b}"));
        std::fs::write(&p.config, reordered).unwrap();
        p.signal(1);
        assert!(
            within(10, || p.log_text().contains("config reloaded")),
            "{driver}: reload: {}",
            p.log_text()
        );
        // A request on a new connection sees the new generation, so the kept ones do too.
        let fresh = TlsClient::trusting(&ca).build();
        assert!(within(10, || fresh
            .try_get(tls_port, "b.example", "b.example", "/ping")
            .is_ok_and(|r| r.status == 200)));
        assert_eq!(
            status(&mut anonymous, "a.example"),
            421,
            "{driver}: a connection without a certificate reached the mutual-TLS domain"
        );
        assert_eq!(status(&mut anonymous, "b.example"), 200, "{driver}");
        assert_eq!(
            status(&mut verified, "a.example"),
            200,
            "{driver}: a verified connection was refused after the reload"
        );

        // b.example turns mutual: the connection made for it without a certificate
        // proved nothing, so it can't go on as if it had.
        let b_mutual = domain("b.example", Some(&fb), Some(&clients_pem), "shop/beta");
        let text = std::fs::read_to_string(&p.config).unwrap();
        std::fs::write(&p.config, text.replace(&b, &b_mutual)).unwrap();
        p.signal(1);
        assert!(
            within(10, || p.log_text().matches("config reloaded").count() == 2),
            "{driver}: second reload: {}",
            p.log_text()
        );
        assert!(within(10, || fresh
            .try_get(tls_port, "b.example", "b.example", "/ping")
            .is_err()));
        assert_eq!(status(&mut anonymous, "b.example"), 421, "{driver}");

        // a.example trusts another client CA now: the connection verified under the
        // old one proves nothing any more (a CA dropped because it leaked must stop
        // working at the reload, as nginx's reload ends kept-alive connections).
        let others = Ca::new("Other client CA").write(&dir, "others");
        let a_other = domain("a.example", Some(&fa), Some(&others), "shop/prod");
        let text = std::fs::read_to_string(&p.config).unwrap();
        std::fs::write(&p.config, text.replace(&a, &a_other)).unwrap();
        p.signal(1);
        assert!(
            within(10, || p.log_text().matches("config reloaded").count() == 3),
            "{driver}: third reload: {}",
            p.log_text()
        );
        let again = TlsClient::trusting(&ca).client_cert(&one).build();
        assert!(within(10, || again
            .try_get(tls_port, "a.example", "a.example", "/ping")
            .is_err()));
        assert_eq!(
            status(&mut verified, "a.example"),
            421,
            "{driver}: a client of a CA no longer trusted was served"
        );
    }
}

/// A client certificate pinned as `client_ca` vouched, as a trust anchor, for any
/// certificate its key signed: its holder could mint one with any subject. A reload to
/// such a file is refused (check says why) and the running CA stays.
#[test]
fn a_reload_to_a_client_ca_that_is_no_ca_keeps_the_running_one() {
    let origin = proto_origin();
    let dir = temp_dir("tls-mtls-not-ca");
    let ca = Ca::new("Test CA");
    let clients = Ca::new("Client CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let clients_pem = clients.write(&dir, "clients");
    let one = clients.client_cert(&[(DnType::CommonName, "client one")]);
    let partner = clients.client_cert(&[(DnType::CommonName, "partner")]);
    let partner_pem = dir.join("partner.pem");
    std::fs::write(&partner_pem, partner.cert_pem()).unwrap();
    let minted = Ca::signing_as(partner, "partner").client_cert(&[(DnType::CommonName, "admin")]);
    let good = domain("a.example", Some(&fa), Some(&clients_pem), "shop/prod");
    let pinned = domain("a.example", Some(&fa), Some(&partner_pem), "shop/prod");
    // Loading the config is the same for every driver: one is enough.
    let driver = DRIVERS[0];
    let tls_port = free_port();
    let p = start(
        &config(tls_port, &origin, "", "", std::slice::from_ref(&good)),
        driver,
        tls_port,
    );
    let get = |leaf: &Leaf| {
        TlsClient::trusting(&ca)
            .client_cert(leaf)
            .build()
            .try_get(tls_port, "a.example", "a.example", "/ping")
            .map(|r| r.status)
    };
    assert_eq!(get(&one), Ok(200));
    assert!(
        get(&minted).is_err(),
        "a certificate the client CA never signed"
    );

    let text = std::fs::read_to_string(&p.config).unwrap();
    let (code, out) = check(&text.replace(&good, &pinned));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(r#"domains."a.example".client_ca: "#)
            && out.contains("certificate 1 (CN=partner) is not a CA certificate"),
        "{out}"
    );
    std::fs::write(&p.config, text.replace(&good, &pinned)).unwrap();
    p.signal(1);
    assert!(
        within(10, || p.log_text().contains("reload refused")),
        "{}",
        p.log_text()
    );
    assert!(
        !p.log_text().contains("config reloaded"),
        "{}",
        p.log_text()
    );
    assert!(
        get(&minted).is_err(),
        "a certificate the partner minted was taken"
    );
    assert_eq!(get(&one), Ok(200), "the running client CA stays");
}
