//! TLS to upstreams: verified and pooled connections, stale pooled connections closed
//! by a TLS backend, and large bodies crossing TLS both ways.

mod common;
mod tls_support;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use common::tls::*;
use common::*;
use tls_support::*;

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
