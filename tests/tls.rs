//! TLS end to end: termination on `server.tls_listen` (TLS 1.2 and 1.3, ALPN, session
//! resumption), certificate selection by SNI with a default domain, routing by Host and
//! X-Forwarded-Proto on TLS connections, mutual TLS with the client's subject in
//! `$context.identity.clientCert`, 421 for misdirected requests, TLS to upstreams (verified,
//! pooled, stale connections), certificate reloads on SIGHUP, the HTTPS redirect, what the
//! TLS port does with plain HTTP, garbage and stalled handshakes, large bodies both ways,
//! SEC1 and PKCS#1 keys, and `portico check` errors.
//!
//! Certificates are made per test with rcgen; the client and the TLS backend are rustls in
//! this process (tests/common/tls.rs).

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::tls::*;
use common::*;
use rcgen::DnType;
use rustls::pki_types::pem::PemObject;
use rustls::ProtocolVersion;

// ---------------------------------------------------------------- config helpers

/// One entry under `domains:`: optional cert/key files and client CA, the root mapping.
fn domain(
    name: &str,
    files: Option<&(PathBuf, PathBuf)>,
    client_ca: Option<&Path>,
    stage: &str,
) -> String {
    let mut y = format!("  {name}:\n");
    if let Some((cert, key)) = files {
        y.push_str(&format!(
            "    cert: \"{}\"\n    key: \"{}\"\n",
            cert.display(),
            key.display()
        ));
    }
    if let Some(ca) = client_ca {
        y.push_str(&format!("    client_ca: \"{}\"\n", ca.display()));
    }
    y.push_str(&format!("    mappings: {{ \"\": {stage} }}\n"));
    y
}

/// A plain listener on `{PORT}`, a TLS listener on `tls_port`, `server_extra` lines under
/// `server:` (indented by two), `routes_extra` lines under the routes (indented by six),
/// and the given domains. API `shop`: stage prod answers `GET /ping` with "shop prod",
/// beta with "shop beta"; anything else goes to `origin`.
fn config(
    tls_port: u16,
    origin: &Origin,
    server_extra: &str,
    routes_extra: &str,
    domains: &[String],
) -> String {
    let origin = origin.addr;
    let domains = domains.concat();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 2
  limits: {{ idle_timeout: 20s, drain_timeout: 2s }}
{server_extra}upstreams:
  origin: {{ targets: ["{origin}"] }}
apis:
  shop:
    stages:
      prod: {{ variables: {{ who: prod }} }}
      beta: {{ variables: {{ who: beta }} }}
    routes:
      "GET /ping": {{ integration: {{ type: mock, body: "shop ${{stageVariables.who}}" }} }}
{routes_extra}      "ANY /{{proxy+}}": {{ integration: {{ type: http, upstream: origin }} }}
domains:
{domains}"#
    )
}

/// An origin that answers `origin <target> proto=<every X-Forwarded-Proto, joined by |>`.
fn proto_origin() -> Origin {
    Origin::start(|req, s| {
        let protos: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-proto"))
            .map(|(_, v)| v.as_str())
            .collect();
        let body = format!("origin {} proto={}", req.target, protos.join("|"));
        respond(s, 200, &[], body.as_bytes());
        true
    })
}

/// Starts Portico and waits until the TLS port accepts connections too.
fn start(yaml: &str, driver: &str, tls_port: u16) -> Portico {
    let p = Portico::start(yaml, driver);
    wait_port(tls_port);
    p
}

/// Polls `cond` for up to `secs` seconds.
fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The leaf certificate a fresh client (no session to resume) is shown for `sni`.
fn served_leaf(tls_port: u16, sni: &str) -> Result<Vec<u8>, String> {
    let c = TlsClient::accept_any().build().connect(tls_port, sni)?;
    Ok(c.leaf().to_vec())
}

fn plain_get(p: &Portico, host: &str, path: &str) -> Response {
    p.raw(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
}

fn ok_text(r: std::io::Result<Response>, what: &str) -> String {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    r.text()
}

// ---------------------------------------------------------------- the helpers themselves

#[test]
fn helpers_tls_client_and_tls_origin_agree() {
    let dir = temp_dir("tls-helpers");
    let ca = Ca::new("Test CA");
    let other = Ca::new("Other CA");
    let leaf = ca.server_cert(&["backend.internal", "127.0.0.1"]);
    let (chain, key) = leaf.write(&dir, "backend");
    let chain_text = std::fs::read_to_string(&chain).unwrap();
    assert_eq!(chain_text.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("BEGIN PRIVATE KEY"));
    assert!(ca.write(&dir, "ca").exists());

    let origin = TlsOrigin::start(&leaf);
    for (versions, want) in [
        (Versions::Tls12, ProtocolVersion::TLSv1_2),
        (Versions::Tls13, ProtocolVersion::TLSv1_3),
    ] {
        let client = TlsClient::trusting(&ca).versions(versions).build();
        let mut c = client.connect(origin.port(), "backend.internal").unwrap();
        assert_eq!(c.version(), Some(want));
        assert_eq!(c.alpn().as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(c.leaf(), leaf.der());
        assert!(!c.resumed());
        assert_eq!(
            ok_text(c.get("/a?b=1", "h.example"), "first"),
            "tls-origin /a?b=1 host=h.example"
        );
        assert_eq!(
            ok_text(c.get("/second", "h.example"), "second"),
            "tls-origin /second host=h.example"
        );
        assert_eq!(origin.last_sni().as_deref(), Some("backend.internal"));
        assert_eq!(origin.last().sni.as_deref(), Some("backend.internal"));
        drop(c);
        let mut again = client.connect(origin.port(), "backend.internal").unwrap();
        assert!(
            again.resumed(),
            "{versions:?}: the second connection resumes"
        );
        ok_text(again.get("/", "h"), "resumed");
        // A fresh client has nothing to resume.
        let fresh = TlsClient::trusting(&ca).versions(versions).build();
        assert!(!fresh
            .connect(origin.port(), "backend.internal")
            .unwrap()
            .resumed());
    }
    // An IP address as the name, or SNI turned off: no SNI reaches the server.
    TlsClient::trusting(&ca)
        .build()
        .try_get(origin.port(), "127.0.0.1", "h", "/")
        .unwrap();
    assert_eq!(origin.last_sni(), None);
    TlsClient::trusting(&ca)
        .no_sni()
        .build()
        .try_get(origin.port(), "backend.internal", "h", "/")
        .unwrap();
    assert_eq!(origin.last_sni(), None);

    // Verification works: another CA, or another name, fails the handshake.
    let failed = origin.failed.load(Ordering::SeqCst);
    let err = TlsClient::trusting(&other)
        .build()
        .connect(origin.port(), "backend.internal")
        .err()
        .expect("a certificate from another CA is refused");
    assert!(err.contains("handshake"), "{err}");
    assert!(TlsClient::trusting(&ca)
        .build()
        .connect(origin.port(), "other.internal")
        .is_err());
    assert!(within(10, || origin.failed.load(Ordering::SeqCst) >= failed + 2));
    // Accept-any shows whatever is served.
    let c = TlsClient::accept_any()
        .build()
        .connect(origin.port(), "whatever.example")
        .unwrap();
    assert_eq!(c.leaf(), leaf.der());

    // Client certificates: a mutual-TLS origin sees the one the client sent.
    let clients = Ca::new("Client CA");
    let one = clients.client_cert(&[
        (DnType::OrganizationName, "Example Org"),
        (DnType::CommonName, "client one"),
    ]);
    let rogue = other.client_cert(&[(DnType::CommonName, "rogue")]);
    let mtls = TlsOrigin::start_with(&leaf, Some(&clients));
    for versions in [Versions::Tls12, Versions::Tls13] {
        let with = TlsClient::trusting(&ca)
            .versions(versions)
            .client_cert(&one)
            .build();
        let r = with
            .try_get(mtls.port(), "backend.internal", "h", "/m")
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(mtls.client_certs.lock().unwrap().last(), Some(&one.der()));
        let without = TlsClient::trusting(&ca).versions(versions).build();
        let err = without
            .try_get(mtls.port(), "backend.internal", "h", "/m")
            .expect_err("no client certificate");
        assert!(!err.is_empty());
        let wrong = TlsClient::trusting(&ca)
            .versions(versions)
            .client_cert(&rogue)
            .build();
        wrong
            .try_get(mtls.port(), "backend.internal", "h", "/m")
            .expect_err("a client certificate from another CA");
    }

    let hello = client_hello("a.example");
    assert_eq!(&hello[..2], &[0x16, 0x03], "a handshake record");
    assert!(hello.len() > 100);
}

// ---------------------------------------------------------------- 1, 2, 3

#[test]
fn sni_selects_the_certificate_and_the_default_domain_takes_the_rest() {
    let origin = proto_origin();
    let dir = temp_dir("tls-sni");
    let ca = Ca::new("Test CA");
    let a = ca.server_cert(&["a.example"]);
    let b = ca.server_cert(&["b.example"]);
    let (fa, fb) = (a.write(&dir, "a"), b.write(&dir, "b"));
    let (a_der, b_der) = (a.der().to_vec(), b.der().to_vec());
    for driver in DRIVERS {
        let tls_port = free_port();
        // c.example has no certificate; b.example is the default.
        let domains = [
            domain("c.example", None, None, "shop/beta"),
            domain("a.example", Some(&fa), None, "shop/prod"),
            domain("b.example", Some(&fb), None, "shop/beta"),
        ];
        let p = start(
            &config(
                tls_port,
                &origin,
                "  default_domain: b.example\n",
                "",
                &domains,
            ),
            driver,
            tls_port,
        );
        for (sni, want, which) in [
            ("a.example", &a_der, "a"),
            ("A.EXAMPLE", &a_der, "a"),
            ("b.example", &b_der, "b"),
            ("B.Example", &b_der, "b"),
            ("unknown.example", &b_der, "b (default)"),
            ("c.example", &b_der, "b (default: c has no cert)"),
            ("127.0.0.1", &b_der, "b (default: no SNI)"),
        ] {
            let got = served_leaf(tls_port, sni).unwrap_or_else(|e| panic!("{driver} {sni}: {e}"));
            assert!(
                &got == want,
                "{driver}: SNI {sni} must get {which}'s certificate"
            );
        }
        let no_sni = TlsClient::accept_any().no_sni().build();
        let c = no_sni.connect(tls_port, "a.example").unwrap();
        assert_eq!(
            c.leaf().to_vec(),
            b_der,
            "{driver}: no SNI → default domain"
        );
        // A verifying client accepts what is served for each name.
        for (sni, want) in [("a.example", "shop prod"), ("b.example", "shop beta")] {
            let r = TlsClient::trusting(&ca)
                .build()
                .try_get(tls_port, sni, sni, "/ping")
                .unwrap_or_else(|e| panic!("{driver} {sni}: {e}"));
            assert_eq!((r.status, r.text().as_str()), (200, want), "{driver} {sni}");
        }
        drop(p);

        // Without default_domain: the first domain with a certificate (a.example; c.example
        // comes first but has none). Its key in the config is in capitals this time.
        let tls_port = free_port();
        let domains = [
            domain("c.example", None, None, "shop/beta"),
            domain("A.EXAMPLE", Some(&fa), None, "shop/prod"),
            domain("b.example", Some(&fb), None, "shop/beta"),
        ];
        let p = start(
            &config(tls_port, &origin, "", "", &domains),
            driver,
            tls_port,
        );
        assert!(
            served_leaf(tls_port, "a.example").unwrap() == a_der,
            "{driver}: SNI a.example, domain A.EXAMPLE"
        );
        for sni in ["unknown.example", "127.0.0.1", "c.example"] {
            let got = served_leaf(tls_port, sni).unwrap_or_else(|e| panic!("{driver} {sni}: {e}"));
            assert!(
                got == a_der,
                "{driver}: SNI {sni} must get a.example's certificate"
            );
        }
        assert!(
            served_leaf(tls_port, "b.example").unwrap() == b_der,
            "{driver}"
        );
        drop(p);
    }
}

#[test]
fn tls12_and_tls13_with_alpn_keep_alive_routing_by_host_and_forwarded_proto() {
    let origin = proto_origin();
    let function = Function::start(|_| FnReply::Json(r#"{"statusCode":200,"body":"fn"}"#.into()));
    let routes_extra = format!(
        "      \"GET /fn\": {{ integration: {{ type: lambda, url: \"{}\" }} }}\n",
        function.url()
    );
    let dir = temp_dir("tls-route");
    let ca = Ca::new("Test CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let fb = ca.server_cert(&["b.example"]).write(&dir, "b");
    for driver in DRIVERS {
        let tls_port = free_port();
        let p = start(
            &config(
                tls_port,
                &origin,
                "",
                &routes_extra,
                &[
                    domain("a.example", Some(&fa), None, "shop/prod"),
                    domain("b.example", Some(&fb), None, "shop/beta"),
                ],
            ),
            driver,
            tls_port,
        );
        // A client offering h2 first still gets http/1.1.
        let h2 = TlsClient::trusting(&ca)
            .alpn(&["h2", "http/1.1"])
            .build()
            .connect(tls_port, "a.example")
            .unwrap();
        assert_eq!(h2.alpn().as_deref(), Some(&b"http/1.1"[..]), "{driver}");
        // A client offering no ALPN is served too.
        let r = TlsClient::trusting(&ca)
            .alpn(&[])
            .build()
            .try_get(tls_port, "a.example", "a.example", "/ping")
            .unwrap_or_else(|e| panic!("{driver}: no ALPN: {e}"));
        assert_eq!(r.text(), "shop prod", "{driver}");
        for (versions, want) in [
            (Versions::Tls12, ProtocolVersion::TLSv1_2),
            (Versions::Tls13, ProtocolVersion::TLSv1_3),
            (Versions::Both, ProtocolVersion::TLSv1_3),
        ] {
            let what = format!("{driver} {versions:?}");
            let client = TlsClient::trusting(&ca).versions(versions).build();
            let mut c = client
                .connect(tls_port, "a.example")
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(c.version(), Some(want), "{what}");
            assert_eq!(c.alpn().as_deref(), Some(&b"http/1.1"[..]), "{what}");
            // Several requests on one connection; the Host header routes.
            let host_port = format!("a.example:{tls_port}");
            for (host, path, want) in [
                ("a.example", "/ping", "shop prod"),
                (host_port.as_str(), "/ping", "shop prod"),
                ("A.Example", "/ping", "shop prod"),
                ("b.example", "/ping", "shop beta"),
                ("a.example", "/x?q=1", "origin /x?q=1 proto=https"),
                ("127.0.0.1", "/beta/ping", "shop beta"),
                ("localhost", "/prod/y", "origin /y proto=https"),
            ] {
                assert_eq!(
                    ok_text(c.get(path, host), &format!("{what} {host}{path}")),
                    want,
                    "{what} {host}{path}"
                );
            }
            // A client's own X-Forwarded-Proto does not reach the origin.
            let r = c
                .send(b"GET /spoof HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Proto: http\r\n\r\n")
                .unwrap();
            assert_eq!(r.text(), "origin /spoof proto=https", "{what}");
            // A POST with a body on the same connection.
            let r = c
                .send(b"POST /post HTTP/1.1\r\nHost: b.example\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            assert_eq!(r.text(), "origin /post proto=https", "{what}");
            assert_eq!(origin.last().body, b"hello", "{what}");
            // Pipelined: two requests in one write, two answers in order.
            c.write(b"GET /ping HTTP/1.1\r\nHost: b.example\r\n\r\nGET /pipe HTTP/1.1\r\nHost: a.example\r\n\r\n")
                .unwrap();
            assert_eq!(ok_text(c.read(), &what), "shop beta");
            assert_eq!(ok_text(c.read(), &what), "origin /pipe proto=https");
            // Connection: close ends with close_notify (README), not a bare TCP close.
            let mut last = client.connect(tls_port, "a.example").unwrap();
            let r = last
                .send(b"GET /ping HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
                .unwrap();
            assert_eq!(r.text(), "shop prod", "{what}");
            let end = last.read_to_end();
            assert!(
                matches!(&end, Ok(rest) if rest.is_empty()),
                "{what}: the server ends with close_notify: {end:?}"
            );
            // A Lambda function's event says https too.
            assert_eq!(ok_text(c.get("/fn", "a.example"), &what), "fn");
            assert_eq!(
                function.last_event()["headers"]["x-forwarded-proto"],
                "https",
                "{what}"
            );
        }
        assert_eq!(plain_get(&p, "a.example", "/fn").text(), "fn", "{driver}");
        assert_eq!(
            function.last_event()["headers"]["x-forwarded-proto"],
            "http",
            "{driver}"
        );
        // The plain listener, same routing, proto http.
        assert_eq!(
            plain_get(&p, "a.example", "/x").text(),
            "origin /x proto=http",
            "{driver}"
        );
        assert_eq!(
            plain_get(&p, "b.example", "/ping").text(),
            "shop beta",
            "{driver}"
        );
        // SIGTERM with an idle TLS keep-alive connection open: a clean, prompt exit.
        let mut idle = TlsClient::trusting(&ca)
            .build()
            .connect(tls_port, "a.example")
            .unwrap();
        ok_text(idle.get("/ping", "a.example"), driver);
        assert!(p.stop().success(), "{driver}");
        assert!(
            idle.closed(),
            "{driver}: the idle TLS connection was closed"
        );
    }
}

#[test]
fn a_second_connection_resumes_the_session() {
    let dir = temp_dir("tls-resume");
    let ca = Ca::new("Test CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let origin = proto_origin();
    for driver in DRIVERS {
        let tls_port = free_port();
        let p = start(
            &config(
                tls_port,
                &origin,
                "",
                "",
                &[domain("a.example", Some(&fa), None, "shop/prod")],
            ),
            driver,
            tls_port,
        );
        for versions in [Versions::Tls12, Versions::Tls13] {
            let what = format!("{driver} {versions:?}");
            let client = TlsClient::trusting(&ca).versions(versions).build();
            let mut first = client.connect(tls_port, "a.example").unwrap();
            assert!(!first.resumed(), "{what}: nothing to resume yet");
            // Reading a response also takes in the TLS 1.3 tickets sent after the handshake.
            ok_text(first.get("/ping", "a.example"), &what);
            drop(first);
            // Later connections (two workers: they may land on either) resume.
            for i in 0..4 {
                let mut c = client
                    .connect(tls_port, "a.example")
                    .unwrap_or_else(|e| panic!("{what} #{i}: {e}"));
                assert!(
                    c.resumed(),
                    "{what}: connection #{i} after the first resumes"
                );
                assert_eq!(ok_text(c.get("/ping", "a.example"), &what), "shop prod");
            }
            // Another client has no session: a full handshake.
            let other = TlsClient::trusting(&ca).versions(versions).build();
            assert!(!other.connect(tls_port, "a.example").unwrap().resumed());
        }
        drop(p);
    }
}

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
    let format = r#"{"path":"$context.path","status":"$context.status","dn":"$context.identity.clientCert.subjectDN","issuer":"$context.identity.clientCert.issuerDN"}"#;
    let server_extra = format!(
        "  access_log: {{ path: \"{}\", format: '{format}' }}\n",
        access_log.display()
    );
    let routes_extra = r#"      "GET /dn":
        integration: { type: http, upstream: origin }
        parameters:
          "overwrite:header.x-client-dn": "$context.identity.clientCert.subjectDN"
          "overwrite:header.x-client-issuer": "$context.identity.clientCert.issuerDN"
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
        let dn_200 = |l: &&serde_json::Value| l["path"] == "/dn" && l["status"] == "200";
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

// ---------------------------------------------------------------- 5

#[test]
fn upstream_tls_is_verified_and_pooled() {
    let dir = temp_dir("tls-upstream");
    let backend_ca = Ca::new("Backend CA");
    let other = Ca::new("Other CA");
    let backend = TlsOrigin::start(&backend_ca.server_cert(&["backend.internal", "127.0.0.1"]));
    let plain = proto_origin();
    let (bca, oca) = (
        backend_ca.write(&dir, "backend-ca"),
        other.write(&dir, "other-ca"),
    );
    let (bca, oca) = (bca.display(), oca.display());
    let target = format!("https://127.0.0.1:{}", backend.port());
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
upstreams:
  secure:
    targets: ["{target}"]
    tls: {{ ca: "{bca}", server_name: backend.internal, verify: true }}
  byip:
    targets: ["{target}"]
    tls: {{ ca: "{bca}" }}
  wrongca:
    targets: ["{target}"]
    tls: {{ ca: "{oca}", server_name: backend.internal }}
  wrongname:
    targets: ["{target}"]
    tls: {{ ca: "{bca}", server_name: other.internal }}
  noverify:
    targets: ["{target}"]
    tls: {{ ca: "{oca}", server_name: other.internal, verify: false }}
  sysroots:
    targets: ["{target}"]
    tls: {{ server_name: backend.internal }}
  bare:
    targets: ["{target}"]
  plain:
    targets: ["http://{plain}"]
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "ANY /secure/{{proxy+}}": {{ integration: {{ type: http, upstream: secure }} }}
      "ANY /byip/{{proxy+}}": {{ integration: {{ type: http, upstream: byip }} }}
      "ANY /wrongca/{{proxy+}}": {{ integration: {{ type: http, upstream: wrongca }} }}
      "ANY /wrongname/{{proxy+}}": {{ integration: {{ type: http, upstream: wrongname }} }}
      "ANY /noverify/{{proxy+}}": {{ integration: {{ type: http, upstream: noverify }} }}
      "ANY /sysroots/{{proxy+}}": {{ integration: {{ type: http, upstream: sysroots }} }}
      "ANY /bare/{{proxy+}}": {{ integration: {{ type: http, upstream: bare }} }}
      "ANY /plain/{{proxy+}}": {{ integration: {{ type: http, upstream: plain }} }}
"#,
        plain = plain.addr
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        // Eleven requests on one client connection (one worker): one backend connection.
        let connections = backend.connections.load(Ordering::SeqCst);
        let requests = backend.requests.load(Ordering::SeqCst);
        let mut c = Client::new(&p);
        for i in 0..11 {
            let r = c.get(&format!("/secure/n{i}?q={i}"), "gw.example");
            assert_eq!(r.status, 200, "{driver} #{i}: {}", r.text());
            assert!(
                r.text()
                    .starts_with(&format!("tls-origin /secure/n{i}?q={i} host=")),
                "{driver}: {}",
                r.text()
            );
        }
        assert_eq!(
            backend.requests.load(Ordering::SeqCst) - requests,
            11,
            "{driver}"
        );
        assert_eq!(
            backend.connections.load(Ordering::SeqCst) - connections,
            1,
            "{driver}: sequential requests reuse one pooled backend connection"
        );
        assert_eq!(
            backend.last_sni().as_deref(),
            Some("backend.internal"),
            "{driver}: SNI is tls.server_name"
        );
        assert_eq!(
            backend.last().sni.as_deref(),
            Some("backend.internal"),
            "{driver}"
        );

        // The target's host (an IP here) is the name verified when server_name is not set.
        let r = p.get("/byip/a");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert!(r.text().starts_with("tls-origin /byip/a "), "{}", r.text());

        // A certificate from another CA, or for another name, or (no tls.ca) not from
        // the system roots: 502, nothing reaches it.
        let requests = backend.requests.load(Ordering::SeqCst);
        for (path, sni) in [
            ("/wrongca/a", "backend.internal"),
            ("/wrongname/a", "other.internal"),
            ("/sysroots/a", "backend.internal"),
        ] {
            let mark = backend.sni_count();
            let r = p.get(path);
            assert_eq!(r.status, 502, "{driver} {path}: {}", r.text());
            assert_eq!(r.json_message(), "Bad Gateway", "{driver} {path}");
            let want = Some(sni.to_string());
            assert!(
                within(10, || backend.snis_since(mark).contains(&want)),
                "{driver} {path}: a handshake with SNI {sni} was attempted; seen {:?}",
                backend.snis_since(mark)
            );
        }
        let r = p.get("/bare/a");
        assert_eq!(r.status, 502, "{driver} /bare/a: {}", r.text());
        assert_eq!(
            backend.requests.load(Ordering::SeqCst),
            requests,
            "{driver}"
        );

        // verify: false accepts it anyway.
        let mark = backend.sni_count();
        let r = p.get("/noverify/z");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert!(
            r.text().starts_with("tls-origin /noverify/z "),
            "{}",
            r.text()
        );
        assert!(
            backend
                .snis_since(mark)
                .contains(&Some("other.internal".to_string())),
            "{driver}: {:?}",
            backend.snis_since(mark)
        );

        // http:// is plaintext.
        let r = p.get("/plain/p");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "origin /plain/p proto=http"),
            "{driver}"
        );
        drop(p);
    }
}

#[test]
fn a_tls_backend_closing_pooled_connections_costs_no_request() {
    let dir = temp_dir("tls-stale");
    let backend_ca = Ca::new("Backend CA");
    let leaf = backend_ca.server_cert(&["backend.internal"]);
    let bca = backend_ca.write(&dir, "backend-ca");
    for how in [AfterAnswer::CloseNotify, AfterAnswer::BareClose] {
        let backend = TlsOrigin::start_closing(&leaf, how);
        let yaml = proxy_config(backend.addr, 1)
            .replace(
                &format!("targets: [\"{}\"]", backend.addr),
                &format!(
                    "targets: [\"https://{}\"]\n    tls: {{ ca: \"{}\", server_name: backend.internal }}",
                    backend.addr,
                    bca.display()
                ),
            );
        assert!(yaml.contains("https://"), "{yaml}");
        for driver in DRIVERS {
            let p = Portico::start(&yaml, driver);
            let before = backend.requests.load(Ordering::SeqCst);
            for i in 0..5 {
                let r = p.get(&format!("/r{i}"));
                assert_eq!(r.status, 200, "{driver} {how:?}: request {i}: {}", r.text());
                assert!(
                    r.text().starts_with(&format!("tls-origin /r{i} ")),
                    "{}",
                    r.text()
                );
                thread::sleep(Duration::from_millis(50));
            }
            // Each request reached the backend once: no request was sent twice.
            assert_eq!(
                backend.requests.load(Ordering::SeqCst) - before,
                5,
                "{driver} {how:?}"
            );
            drop(p);
        }
    }
}

// ---------------------------------------------------------------- 6

#[test]
fn sighup_reloads_certificates_and_keeps_open_connections() {
    let origin = proto_origin();
    let dir = temp_dir("tls-reload");
    let ca = Ca::new("Test CA");
    for driver in DRIVERS {
        let v1 = ca.server_cert(&["a.example"]);
        let files = v1.write(&dir, &format!("a-{driver}"));
        let tls_port = free_port();
        let yaml = |files: &(PathBuf, PathBuf), more: &[String]| {
            let mut domains = vec![domain("a.example", Some(files), None, "shop/prod")];
            domains.extend_from_slice(more);
            config(tls_port, &origin, "", "", &domains)
        };
        let p = start(&yaml(&files, &[]), driver, tls_port);
        let client = TlsClient::trusting(&ca).tls13().build();
        let mut kept = client.connect(tls_port, "a.example").unwrap();
        assert_eq!(kept.leaf(), v1.der());
        assert_eq!(ok_text(kept.get("/ping", "a.example"), driver), "shop prod");

        // New files in place, the config untouched.
        let v2 = ca.server_cert(&["a.example"]);
        v2.write_to(&files.0, &files.1);
        p.signal(1);
        assert!(
            within(15, || served_leaf(tls_port, "a.example").ok()
                == Some(v2.der().to_vec())),
            "{driver}: new connections never got the new certificate: {}",
            p.log_text()
        );
        // The connection opened before the reload keeps working.
        assert_eq!(
            ok_text(kept.get("/ping", "a.example"), "kept after reload"),
            "shop prod"
        );
        let r = TlsClient::trusting(&ca)
            .build()
            .try_get(tls_port, "a.example", "a.example", "/x")
            .unwrap();
        assert_eq!(r.text(), "origin /x proto=https", "{driver}");

        // The config pointed at other files, and a domain added.
        let v3 = ca.server_cert(&["a.example"]);
        let files3 = v3.write(&dir, &format!("a3-{driver}"));
        let b = ca.server_cert(&["b.example"]);
        let fb = b.write(&dir, &format!("b-{driver}"));
        assert_eq!(
            served_leaf(tls_port, "b.example").unwrap(),
            v2.der().to_vec()
        );
        let more = [domain("b.example", Some(&fb), None, "shop/beta")];
        std::fs::write(
            &p.config,
            yaml(&files3, &more).replace("{PORT}", &p.addr.port().to_string()),
        )
        .unwrap();
        p.signal(1);
        assert!(
            within(15, || served_leaf(tls_port, "a.example").ok()
                == Some(v3.der().to_vec())),
            "{driver}: new connections never got the third certificate: {}",
            p.log_text()
        );
        assert_eq!(
            served_leaf(tls_port, "b.example").unwrap(),
            b.der().to_vec(),
            "{driver}: the added domain's certificate"
        );
        let r = TlsClient::trusting(&ca)
            .build()
            .try_get(tls_port, "b.example", "b.example", "/ping")
            .unwrap();
        assert_eq!(r.text(), "shop beta", "{driver}");
        assert_eq!(
            ok_text(kept.get("/ping", "a.example"), "kept after 2nd reload"),
            "shop prod"
        );
        drop(p);
    }
}

/// How often the log names `domains."a.example".<field>` (quotes escaped or not).
fn errors_logged(p: &Portico, field: &str) -> usize {
    let log = p.log_text();
    log.matches(&format!(r#"domains."a.example".{field}"#))
        .count()
        + log
            .matches(&format!(r#"domains.\"a.example\".{field}"#))
            .count()
}

#[test]
fn a_reload_with_a_bad_certificate_keeps_the_old_one() {
    let origin = proto_origin();
    let dir = temp_dir("tls-badreload");
    let ca = Ca::new("Test CA");
    for driver in DRIVERS {
        let v1 = ca.server_cert(&["a.example"]);
        let files = v1.write(&dir, &format!("a-{driver}"));
        let tls_port = free_port();
        let yaml = config(
            tls_port,
            &origin,
            "",
            "",
            &[domain("a.example", Some(&files), None, "shop/prod")],
        );
        let p = start(&yaml, driver, tls_port);
        let mut kept = TlsClient::trusting(&ca)
            .build()
            .connect(tls_port, "a.example")
            .unwrap();
        assert_eq!(ok_text(kept.get("/ping", "a.example"), driver), "shop prod");
        assert_eq!(errors_logged(&p, "cert"), 0, "{}", p.log_text());
        let stranger = ca.server_cert(&["a.example"]);
        // The reloads below also change a route: refused, they must not apply that either.
        let changed = yaml
            .replace("{PORT}", &p.addr.port().to_string())
            .replace("body: \"shop ", "body: \"changed ");
        assert!(
            changed.contains("changed ${stageVariables.who}"),
            "{changed}"
        );
        std::fs::write(&p.config, changed).unwrap();

        for (what, field) in [
            ("missing file", "cert"),
            ("not a certificate", "cert"),
            ("a key where the certificate should be", "cert"),
            ("the right certificate, a key that does not match it", "key"),
            ("the right certificate, no key file", "key"),
        ] {
            let before = errors_logged(&p, field);
            match what {
                "missing file" => std::fs::remove_file(&files.0).unwrap(),
                "not a certificate" => std::fs::write(&files.0, "not a certificate\n").unwrap(),
                "a key where the certificate should be" => {
                    std::fs::write(&files.0, v1.key_pem()).unwrap()
                }
                "the right certificate, a key that does not match it" => {
                    std::fs::write(&files.0, v1.chain_pem()).unwrap();
                    std::fs::write(&files.1, stranger.key_pem()).unwrap();
                }
                _ => std::fs::remove_file(&files.1).unwrap(),
            }
            p.signal(1);
            assert!(
                within(15, || errors_logged(&p, field) > before),
                "{driver} {what}: the log never named domains.\"a.example\".{field}: {}",
                p.log_text()
            );
            // Give a (wrongly) applied reload time to show before checking it did not.
            thread::sleep(Duration::from_millis(500));
            let got = served_leaf(tls_port, "a.example")
                .unwrap_or_else(|e| panic!("{driver} {what}: {e}"));
            assert!(
                got == v1.der().to_vec(),
                "{driver} {what}: the old certificate must stay"
            );
            let r = TlsClient::trusting(&ca)
                .build()
                .try_get(tls_port, "a.example", "a.example", "/ping")
                .unwrap_or_else(|e| panic!("{driver} {what}: {e}"));
            assert_eq!(r.text(), "shop prod", "{driver} {what}");
            assert_eq!(
                ok_text(kept.get("/ping", "a.example"), what),
                "shop prod",
                "{driver} {what}"
            );
        }
        drop(p);
    }
}

// ---------------------------------------------------------------- 7

#[test]
fn redirect_https_sends_plain_requests_to_the_tls_port() {
    let origin = proto_origin();
    let dir = temp_dir("tls-redirect");
    let ca = Ca::new("Test CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    for driver in DRIVERS {
        let tls_port = free_port();
        let p = start(
            &config(
                tls_port,
                &origin,
                "  redirect_https: true\n",
                "",
                &[domain("a.example", Some(&fa), None, "shop/prod")],
            ),
            driver,
            tls_port,
        );
        let plain_port = p.addr.port();
        let requests = origin.requests.load(Ordering::SeqCst);
        for (host, target, want) in [
            (
                format!("a.example:{plain_port}"),
                "/x?y=1",
                format!("https://a.example:{tls_port}/x?y=1"),
            ),
            (
                "a.example".to_string(),
                "/x?y=1",
                format!("https://a.example:{tls_port}/x?y=1"),
            ),
            (
                "other.example".to_string(),
                "/ping",
                format!("https://other.example:{tls_port}/ping"),
            ),
        ] {
            let r = plain_get(&p, &host, target);
            assert_eq!(r.status, 308, "{driver} {host}{target}: {}", r.text());
            assert_eq!(r.header("location"), Some(want.as_str()), "{driver} {host}");
        }
        // Any method: 308 keeps it, and the body is not forwarded anywhere.
        let r = p.raw(
            format!("POST /form HTTP/1.1\r\nHost: a.example:{plain_port}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
                .as_bytes(),
        );
        assert_eq!(r.status, 308, "{driver}");
        assert_eq!(
            r.header("location"),
            Some(format!("https://a.example:{tls_port}/form").as_str())
        );
        assert_eq!(origin.requests.load(Ordering::SeqCst), requests, "{driver}");

        // The TLS listener serves as usual.
        let r = TlsClient::trusting(&ca)
            .build()
            .try_get(tls_port, "a.example", "a.example", "/x?y=1")
            .unwrap();
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "origin /x?y=1 proto=https"),
            "{driver}"
        );
        drop(p);

        // With the TLS listener on port 443 the location names no port. Port 443 on
        // another loopback address (one per test process), when this test may bind it.
        let https = format!("127.0.0.{}:443", 2 + std::process::id() % 250);
        if std::net::TcpListener::bind(&https).is_err() {
            eprintln!("{driver}: {https} can't be bound here; the port-443 case is skipped");
            continue;
        }
        let yaml = config(
            tls_port,
            &origin,
            "  redirect_https: true\n",
            "",
            &[domain("a.example", Some(&fa), None, "shop/prod")],
        )
        .replace(
            &format!("tls_listen: [\"127.0.0.1:{tls_port}\"]"),
            &format!("tls_listen: [\"{https}\"]"),
        );
        assert!(yaml.contains(&https));
        let p = match Portico::try_start(&yaml, driver) {
            Ok(p) => p,
            // Taken between the probe and the start, by something else.
            Err(e) if e.contains(&https) => {
                eprintln!("{driver}: {https} is taken; the port-443 case is skipped: {e}");
                continue;
            }
            Err(e) => panic!("{driver}: {e}"),
        };
        let r = plain_get(&p, &format!("a.example:{}", p.addr.port()), "/x?y=1");
        assert_eq!(r.status, 308, "{driver}: {}", r.text());
        assert_eq!(
            r.header("location"),
            Some("https://a.example/x?y=1"),
            "{driver}"
        );
        drop(p);
    }
}

// ---------------------------------------------------------------- 8

#[test]
fn plain_http_and_garbage_on_the_tls_port() {
    let origin = proto_origin();
    let dir = temp_dir("tls-garbage");
    let ca = Ca::new("Test CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    for driver in DRIVERS {
        let tls_port = free_port();
        let p = start(
            &config(
                tls_port,
                &origin,
                "",
                "",
                &[domain("a.example", Some(&fa), None, "shop/prod")],
            ),
            driver,
            tls_port,
        );
        // Plain HTTP: a plaintext 400, then the connection closes.
        let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: a.example\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(s);
        let r = read_response(&mut reader, false)
            .unwrap_or_else(|e| panic!("{driver}: no plaintext answer: {e}"));
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        assert_eq!(
            r.json_message(),
            "The plain HTTP request was sent to HTTPS port"
        );
        let mut rest = Vec::new();
        let end = reader.read_to_end(&mut rest);
        assert!(
            end.is_ok() || end.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
            "{driver}: the connection must close after the 400: {end:?}"
        );
        assert!(
            rest.is_empty(),
            "{driver}: {:?}",
            String::from_utf8_lossy(&rest)
        );

        // Garbage, and a broken handshake record: closed, no HTTP answer.
        for garbage in [
            &b"\x00\x01\x02\x03\xff\xfe\xfd garbage \r\n\r\n"[..],
            &b"\x16\x03\x01\x00\x08\x01\x00\x00\x04zzzz"[..],
        ] {
            let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            s.write_all(garbage).unwrap();
            let mut got = Vec::new();
            let end = s.read_to_end(&mut got);
            assert!(
                end.is_ok()
                    || end.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
                "{driver}: garbage {garbage:?} must be closed: {end:?}"
            );
            assert!(
                !got.starts_with(b"HTTP/"),
                "{driver}: no HTTP answer to garbage: {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        // The port still serves TLS.
        let r = TlsClient::trusting(&ca)
            .build()
            .try_get(tls_port, "a.example", "a.example", "/ping")
            .unwrap();
        assert_eq!(r.text(), "shop prod", "{driver}");
        drop(p);
    }
}

#[test]
fn a_stalled_handshake_is_closed_after_header_timeout_and_blocks_no_one() {
    let origin = proto_origin();
    let dir = temp_dir("tls-stall");
    let ca = Ca::new("Test CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let hello = client_hello("a.example");
    let half = &hello[..hello.len() / 2];
    for driver in DRIVERS {
        let tls_port = free_port();
        // One worker: if a stalled handshake held it, nobody else would be served.
        let yaml = config(
            tls_port,
            &origin,
            "",
            "",
            &[domain("a.example", Some(&fa), None, "shop/prod")],
        )
        .replace("  workers: 2\n", "  workers: 1\n")
        .replace(
            "limits: { idle_timeout: 20s,",
            "limits: { header_timeout: 1s, idle_timeout: 20s,",
        );
        assert!(yaml.contains("header_timeout: 1s") && yaml.contains("workers: 1"));
        let admin_port = free_port();
        let yaml = yaml.replace(
            "upstreams:\n",
            &format!(
                "admin: {{ listen: \"127.0.0.1:{admin_port}\" }}\nstate_dir: \"{}\"\nupstreams:\n",
                temp_dir("tls-stall-state").display()
            ),
        );
        let p = start(&yaml, driver, tls_port);
        let admin_addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
        wait_port_at(admin_addr);
        let failures = handshake_failures(admin_addr);
        // A connection closed before sending a byte (a TCP health check) is no failure.
        for _ in 0..3 {
            drop(TcpStream::connect(("127.0.0.1", tls_port)).unwrap());
        }
        thread::sleep(Duration::from_millis(300));
        assert_eq!(
            handshake_failures(admin_addr),
            failures,
            "{driver}: bare connects counted as failed handshakes"
        );

        let t0 = Instant::now();
        let stalled: Vec<TcpStream> = (0..10)
            .map(|_| {
                let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
                s.write_all(half).unwrap();
                s
            })
            .collect();
        // Others are served meanwhile, each on a new connection. Were each stalled
        // handshake to hold the worker until its timeout, this would take 10 s or more.
        for i in 0..5 {
            let r = TlsClient::trusting(&ca)
                .build()
                .try_get(tls_port, "a.example", "a.example", "/ping")
                .unwrap_or_else(|e| panic!("{driver} #{i}: {e}"));
            assert_eq!(r.text(), "shop prod", "{driver}");
        }
        let served = t0.elapsed();
        assert!(
            served < Duration::from_secs(6),
            "{driver}: other clients waited {served:?} behind stalled handshakes"
        );
        for (i, mut s) in stalled.into_iter().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let mut got = Vec::new();
            let end = s.read_to_end(&mut got);
            assert!(
                end.is_ok()
                    || end.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
                "{driver}: stalled #{i} was not closed: {end:?} after {:?}",
                t0.elapsed()
            );
        }
        let closed = t0.elapsed();
        assert!(
            closed >= Duration::from_millis(500) && closed < Duration::from_secs(12),
            "{driver}: stalled handshakes closed after {closed:?} (header_timeout 1s)"
        );
        // README: timed-out handshakes are counted.
        assert!(
            within(10, || handshake_failures(admin_addr) >= failures + 10.0),
            "{driver}: portico_tls_handshake_failures_total is {}",
            handshake_failures(admin_addr)
        );
        drop(p);
    }
}

/// `portico_tls_handshake_failures_total` from the admin listener's /metrics.
fn handshake_failures(admin_addr: std::net::SocketAddr) -> f64 {
    let m = admin(admin_addr, "GET", "/metrics", None, None);
    assert_eq!(m.status, 200);
    m.text()
        .lines()
        .find(|l| l.starts_with("portico_tls_handshake_failures_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no portico_tls_handshake_failures_total in:\n{}", m.text()))
}

fn wait_port_at(addr: std::net::SocketAddr) {
    assert!(
        within(10, || TcpStream::connect(addr).is_ok()),
        "nothing listens on {addr}"
    );
}

// ---------------------------------------------------------------- 9

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

// ---------------------------------------------------------------- bodies and key formats

#[test]
fn large_bodies_cross_tls_both_ways() {
    let dir = temp_dir("tls-large");
    let ca = Ca::new("Test CA");
    let backend_ca = Ca::new("Backend CA");
    let fa = ca.server_cert(&["a.example"]).write(&dir, "a");
    let bca = backend_ca.write(&dir, "backend-ca");
    let backend = TlsOrigin::start(&backend_ca.server_cert(&["backend.internal"]));
    let origin = Origin::start(|req, s| {
        match req.target.strip_prefix("/big/") {
            Some(n) => respond(s, 200, &[], &big_body(n.parse().unwrap())),
            None => respond(s, 200, &[], &req.body),
        }
        true
    });
    const DOWN: usize = 3_000_000;
    const UP: usize = 2_000_000;
    for driver in DRIVERS {
        let tls_port = free_port();
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 2
  limits: {{ max_body_bytes: 8MiB }}
upstreams:
  plain: {{ targets: ["{plain}"] }}
  secure:
    targets: ["https://127.0.0.1:{backend}"]
    tls: {{ ca: "{bca}", server_name: backend.internal }}
apis:
  plain:
    stages: {{ prod: {{}} }}
    routes: {{ "ANY /{{proxy+}}": {{ integration: {{ type: http, upstream: plain, timeout: 20s }} }} }}
  secure:
    stages: {{ sprod: {{}} }}
    routes: {{ "ANY /{{proxy+}}": {{ integration: {{ type: http, upstream: secure, timeout: 20s }} }} }}
domains:
  a.example:
    cert: "{cert}"
    key: "{key}"
    mappings: {{ "": plain/prod, s: secure/sprod }}
"#,
            plain = origin.addr,
            backend = backend.port(),
            bca = bca.display(),
            cert = fa.0.display(),
            key = fa.1.display(),
        );
        let p = start(&yaml, driver, tls_port);
        let down = big_body(DOWN);
        let up: Vec<u8> = big_body(UP + 7)[7..].to_vec();
        for versions in [Versions::Tls12, Versions::Tls13] {
            let what = format!("{driver} {versions:?}");
            let mut c = TlsClient::trusting(&ca)
                .versions(versions)
                .build()
                .connect(tls_port, "a.example")
                .unwrap();
            let mut post =
                format!("POST /echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: {UP}\r\n\r\n")
                    .into_bytes();
            post.extend_from_slice(&up);
            let mut up_secure = post.clone();
            up_secure.splice(5..5, b"/s".iter().copied());
            // Client TLS → plain origin, both ways, on one connection.
            let r = c.get(&format!("/big/{DOWN}"), "a.example").unwrap();
            assert_eq!(r.status, 200, "{what}");
            assert!(
                r.body == down,
                "{what}: a {DOWN}-byte answer arrives intact ({} bytes)",
                r.body.len()
            );
            let r = c.send(&post).unwrap();
            assert_eq!(r.status, 200, "{what}");
            assert!(
                r.body == up,
                "{what}: the {UP}-byte upload comes back intact ({} bytes)",
                r.body.len()
            );
            // Client TLS → TLS backend.
            let r = c.get(&format!("/s/big/{DOWN}"), "a.example").unwrap();
            assert_eq!(r.status, 200, "{what}");
            assert!(
                r.body == down,
                "{what}: through the TLS upstream ({} bytes)",
                r.body.len()
            );
            let r = c.send(&up_secure).unwrap();
            assert_eq!(r.status, 200, "{what}: {}", r.text());
            assert_eq!(backend.last().target, "/echo", "{what}");
            assert_eq!(backend.last().body_len, UP, "{what}");
            // The connection is still good.
            let text = ok_text(c.get("/s/after", "a.example"), &what);
            assert!(text.starts_with("tls-origin /after "), "{what}: {text}");
        }
        drop(p);
    }
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
