//! When no tunnel opens: a backend's answer other than 101, an upgrade the route does
//! not allow, and a backend's 101 that the client did not ask for.

use super::*;

#[test]
fn answers_other_than_101_are_relayed_and_the_connection_goes_on() {
    let origin = Origin::start(|req, s| {
        if req.header("upgrade").is_some() {
            respond(s, 426, &[("x-why", "no")], b"no upgrade here");
        } else {
            respond(s, 200, &[], b"plain");
        }
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-426");
        let p = Portico::start(
            &config(
                &origin.addr.to_string(),
                free_port(),
                &dir.join("a.log"),
                None,
                "",
            ),
            driver,
        );
        let mut c = Client::new(&p);
        let r = c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        assert_eq!(r.status, 426, "{driver}");
        assert_eq!(r.text(), "no upgrade here");
        assert_eq!(r.header("x-why"), Some("no"));
        let r = c.get("/next", "x");
        assert_eq!((r.status, r.text().as_str()), (200, "plain"), "{driver}");
        p.stop();
    }
}

#[test]
fn an_upgrade_the_route_does_not_allow_is_a_plain_request() {
    let origin = Origin::start(|req, s| {
        let said = format!(
            "upgrade={:?} connection={:?}",
            req.header("upgrade"),
            req.header("connection")
        );
        respond(s, 200, &[], said.as_bytes());
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-off");
        for upgrade in ["{ protocols: [] }", "{ protocols: [h2c] }"] {
            let p = Portico::start(
                &config(
                    &origin.addr.to_string(),
                    free_port(),
                    &dir.join("a.log"),
                    Some(upgrade),
                    "",
                ),
                driver,
            );
            let r = p.raw(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            );
            assert_eq!(r.status, 200, "{driver} {upgrade}");
            assert_eq!(
                r.text(),
                "upgrade=None connection=None",
                "{driver} {upgrade}"
            );
            p.stop();
        }
    }
}

#[test]
fn a_101_to_a_request_that_offered_no_upgrade_is_a_bad_gateway() {
    let backend = raw_backend(|mut s| {
        let _ = read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
        thread::sleep(Duration::from_millis(500));
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-502");
        let p = Portico::start(
            &config(
                &backend.to_string(),
                free_port(),
                &dir.join("a.log"),
                None,
                "",
            ),
            driver,
        );
        assert_eq!(p.get("/plain").status, 502, "{driver}");
        p.stop();
    }
}

/// A 101 must name, in `Upgrade`, the protocol switched to, one the client offered: a
/// backend that lets a caller pick its status code must not open a raw tunnel past
/// routing and authorizers. Such a 101 is a 502, the upstream connection is dropped (its
/// bytes never reach the client) and the client connection goes on.
#[test]
fn a_101_that_does_not_name_an_offered_protocol_is_a_bad_gateway() {
    let backend = raw_backend(|mut s| loop {
        let (head, _) = read_head(&mut s);
        let lower = head.to_ascii_lowercase();
        if !lower.contains("\r\nupgrade:") {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain");
            continue;
        }
        let upgrade = match head.split(' ').nth(1).unwrap() {
            "/none" => "",
            "/empty" => "Upgrade: \r\n",
            "/other" => "Upgrade: bar\r\n",
            "/allowed-not-offered" => "Upgrade: websocket\r\n",
            "/one-not-offered" => "Upgrade: foo, bar\r\n",
            _ => "Upgrade: FOO/2\r\n",
        };
        let _ = s.write_all(
            format!("HTTP/1.1 101 Switching Protocols\r\n{upgrade}Connection: upgrade\r\n\r\nRAW")
                .as_bytes(),
        );
        // Tunnel bytes: echo whatever comes, as a raw protocol would.
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            let _ = s.write_all(&buf[..n]);
        }
        return;
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-101");
        let cfg = config(
            &backend.to_string(),
            free_port(),
            &dir.join("a.log"),
            Some("{ protocols: [websocket, foo] }"),
            "",
        );
        let p = Portico::start(&cfg, driver);
        let mut c = Client::new(&p);
        for path in [
            "/none",
            "/empty",
            "/other",
            "/allowed-not-offered",
            "/one-not-offered",
        ] {
            let r = c.send(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo, bar\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 502, "{driver} {path}: {}", r.text());
            assert!(!r.text().contains("RAW"), "{driver} {path}");
            let r = c.get("/next", "x");
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "plain"),
                "{driver} {path}: the client connection goes on"
            );
        }
        // A 101 naming the offered protocol (another version of it) still opens the tunnel.
        let mut s = p.connect();
        s.write_all(
            b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo/1\r\n\r\n",
        )
        .unwrap();
        let (head, mut rest) = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101"), "{driver}: {head}");
        assert_eq!(read_exactly(&mut s, &mut rest, 3), b"RAW", "{driver}");
        s.write_all(b"ping").unwrap();
        assert_eq!(read_exactly(&mut s, &mut rest, 4), b"ping", "{driver}");
        p.stop();
    }
}

/// An allowed h2c upgrade reaches the backend with its `HTTP2-Settings`, named in
/// `Connection` (RFC 7540 §3.2.1: a server must not switch without it); it was dropped as
/// hop-by-hop, so no compliant HTTP/2 server would switch. Other upgrades don't carry it.
#[test]
fn an_h2c_upgrade_carries_its_http2_settings() {
    let origin = Origin::start(|req, s| {
        let said = format!(
            "upgrade={:?} connection={:?} settings={:?}",
            req.header("upgrade"),
            req.header("connection"),
            req.header("http2-settings")
        );
        respond(s, 200, &[], said.as_bytes());
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("h2c");
        let p = Portico::start(
            &config(
                &origin.addr.to_string(),
                free_port(),
                &dir.join("a.log"),
                Some("{ protocols: [h2c, websocket] }"),
                "",
            ),
            driver,
        );
        let offer = |upgrade: &str, settings: &str| {
            p.raw(
                format!("GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: {upgrade}\r\n{settings}\r\n")
                    .as_bytes(),
            )
            .text()
        };
        assert_eq!(
            offer("h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
            r#"upgrade=Some("h2c") connection=Some("upgrade, http2-settings") settings=Some("AAMAAABkAARAAAAAAAIAAAAA")"#,
            "{driver}"
        );
        assert_eq!(
            offer("h2c", ""),
            r#"upgrade=Some("h2c") connection=Some("upgrade") settings=None"#,
            "{driver}"
        );
        assert_eq!(
            offer("websocket", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
            r#"upgrade=Some("websocket") connection=Some("upgrade") settings=None"#,
            "{driver}"
        );
        p.stop();
    }
}
