//! The TLS listener over time and under abuse: certificate reloads on SIGHUP (a bad
//! certificate keeps the old one), the HTTPS redirect, plain HTTP and garbage on the TLS
//! port, and stalled handshakes.

mod common;
mod tls_support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::tls::*;
use common::*;
use tls_support::*;

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
            &a_example_config(tls_port, &origin, "  redirect_https: true\n", &fa),
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
        // A body declared past max_body_bytes too, routed or not (as nginx's `return`
        // comes before its body limit): it was a 413 where no route matched.
        for target in ["/form", "/nowhere"] {
            let r = p.raw(
                format!("POST {target} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 99999999999\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 308, "{driver} {target}: {}", r.text());
        }
        // No Host (HTTP/1.0): the domain clients without SNI get; `OPTIONS *`: the root.
        let r = p.raw(b"GET /old HTTP/1.0\r\n\r\n");
        let want = format!("https://a.example:{tls_port}/old");
        assert_eq!(r.header("location"), Some(want.as_str()), "{driver}");
        let r = p.raw(b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n");
        let want = format!("https://a.example:{tls_port}/");
        assert_eq!(r.header("location"), Some(want.as_str()), "{driver}");

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
        let yaml = a_example_config(tls_port, &origin, "  redirect_https: true\n", &fa).replace(
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
            &a_example_config(tls_port, &origin, "", &fa),
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
        let yaml = a_example_config(tls_port, &origin, "", &fa)
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

/// A reload that turns TLS off (no `tls_listen`, no certificates) while clients keep
/// opening TLS connections: each connection the TLS listener took before it closed gets
/// its handshake and its answer (`/prod/ping` is 200 under either config: proxied under
/// the domain's mapping, the stage's mock without it; with the certificates it was
/// opened under), the rest
/// are refused at connect. Accepted and then closed without a word, a client can't tell
/// its request from a lost one; before, the handshakes in the listener's last 100 ms
/// found the new config's no-TLS and were dropped.
#[test]
fn a_reload_that_turns_tls_off_serves_the_connections_its_listener_took() {
    let origin = proto_origin();
    let dir = temp_dir("tls-off");
    let ca = Ca::new("Test CA");
    for driver in DRIVERS {
        let files = ca
            .server_cert(&["a.example"])
            .write(&dir, &format!("a-{driver}"));
        let tls_port = free_port();
        let with_tls = config(
            tls_port,
            &origin,
            "",
            "",
            &[domain("a.example", Some(&files), None, "shop/prod")],
        );
        let plain = with_tls
            .replace(&format!("  tls_listen: [\"127.0.0.1:{tls_port}\"]\n"), "")
            .split("domains:")
            .next()
            .unwrap()
            .to_string();
        assert!(
            !plain.contains("tls_listen") && !plain.contains("cert:"),
            "{plain}"
        );
        let p = start(&with_tls, driver, tls_port);
        let plain = plain.replace("{PORT}", &p.addr.port().to_string());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let (stop, client) = (stop.clone(), TlsClient::trusting(&ca).build());
                thread::spawn(move || {
                    let (mut served, mut dropped) = (0, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        // Refused at connect: the listener is gone, which is fine.
                        let Ok(sock) = TcpStream::connect(("127.0.0.1", tls_port)) else {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        };
                        let answer = client.handshake(sock, "a.example").and_then(|mut c| {
                            c.get("/prod/ping", "a.example").map_err(|e| e.to_string())
                        });
                        match answer {
                            Ok(r) if r.status == 200 => served += 1,
                            other => dropped.push(format!("{:?}", other.map(|r| r.status))),
                        }
                    }
                    (served, dropped)
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        std::fs::write(&p.config, &plain).unwrap();
        p.signal(1);
        assert!(
            within(15, || p.log_text().contains("config reloaded")),
            "{driver}: {}",
            p.log_text()
        );
        thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            let (served, dropped) = c.join().unwrap();
            assert!(
                served > 0,
                "{driver}: no connection served before the reload"
            );
            assert!(
                dropped.is_empty(),
                "{driver}: accepted, then dropped: {dropped:?}"
            );
        }
        // And the plain listener serves on.
        assert_eq!(plain_get(&p, "t", "/prod/ping").status, 200, "{driver}");
    }
}
