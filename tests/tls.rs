//! TLS end to end, the listener itself: TLS 1.2 and 1.3, ALPN, session resumption,
//! certificate selection by SNI with a default domain, routing by Host and
//! X-Forwarded-Proto on TLS connections. Other TLS tests: tls_mutual.rs, tls_upstream.rs,
//! tls_listener.rs (reloads, redirect, plain HTTP and stalled handshakes), tls_config.rs.
//!
//! Certificates are made per test with rcgen; the client and the TLS backend are rustls in
//! this process (tests/common/tls.rs).

mod common;
mod tls_support;

use std::sync::atomic::Ordering;

use common::tls::*;
use common::*;
use rcgen::DnType;
use rustls::ProtocolVersion;
use tls_support::*;

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
    // An IP address as the name, or SNI turned off: no SNI reaches the server. (Judged
    // by the request's own connection: `last_sni` may still take the late record of the
    // handshake-only connection above, on the origin's thread for it.)
    TlsClient::trusting(&ca)
        .build()
        .try_get(origin.port(), "127.0.0.1", "h", "/")
        .unwrap();
    assert_eq!(origin.last().sni, None);
    TlsClient::trusting(&ca)
        .no_sni()
        .build()
        .try_get(origin.port(), "backend.internal", "h", "/")
        .unwrap();
    assert_eq!(origin.last().sni, None);

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
        // curl --http1.0 offers http/1.0 alone: served, as by nginx (it was refused with
        // no_application_protocol). A client offering only h2 is refused (RFC 7301).
        let mut c = TlsClient::trusting(&ca)
            .alpn(&["http/1.0"])
            .build()
            .connect(tls_port, "a.example")
            .unwrap_or_else(|e| panic!("{driver}: ALPN http/1.0: {e}"));
        assert_eq!(c.alpn().as_deref(), Some(&b"http/1.0"[..]), "{driver}");
        let r = c
            .send(b"GET /ping HTTP/1.0\r\nHost: a.example\r\n\r\n")
            .unwrap();
        assert_eq!(r.text(), "shop prod", "{driver}");
        let h2_only = TlsClient::trusting(&ca).alpn(&["h2"]).build().try_get(
            tls_port,
            "a.example",
            "a.example",
            "/ping",
        );
        assert!(h2_only.is_err(), "{driver}: h2 alone: {h2_only:?}");
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
            &a_example_config(tls_port, &origin, "", &fa),
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
