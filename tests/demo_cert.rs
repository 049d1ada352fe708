//! The demo certificate shipped in `config/examples/certs/` works as a server certificate:
//! a Portico serving it behind another Portico whose upstream trusts the demo CA answers
//! 200; a certificate the front refuses is logged at warn with the target and the reason.

mod common;

use std::path::PathBuf;

use common::*;

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/examples/certs")
}

/// The back Portico: TLS on `tls_port` with the demo certificate, as in tls.yaml.
fn back_config(tls_port: u16) -> String {
    let certs = certs();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 1
  default_domain: localhost
apis:
  demo:
    stages: {{ $default: {{}} }}
    routes:
      "GET /ping": {{ integration: {{ type: mock, status: 200, body: '{{"ok":true,"tls":true}}' }} }}
domains:
  localhost:
    cert: "{}"
    key: "{}"
    mappings: {{ "": demo/$default }}
"#,
        certs.join("localhost.pem").display(),
        certs.join("localhost.key").display(),
    )
}

fn front_config(tls_port: u16) -> String {
    let ca = certs().join("demo-ca.pem");
    let ca = ca.display();
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  demo:
    targets: ["https://localhost:{tls_port}"]
    tls: {{ ca: "{ca}" }}
  byip:
    targets: ["https://127.0.0.1:{tls_port}"]
    tls: {{ ca: "{ca}" }}
  wrongname:
    targets: ["https://127.0.0.1:{tls_port}"]
    tls: {{ ca: "{ca}", server_name: api.example.com }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /ping": {{ integration: {{ type: http, upstream: demo }} }}
      "GET /byip/ping": {{ integration: {{ type: http, upstream: byip, path: /ping }} }}
      "GET /wrongname/ping": {{ integration: {{ type: http, upstream: wrongname, path: /ping }} }}
"#
    )
}

#[test]
fn a_portico_trusting_the_demo_ca_reaches_one_serving_the_demo_certificate() {
    for driver in DRIVERS {
        let tls_port = free_port();
        let back = Portico::start(&back_config(tls_port), driver);
        let front = Portico::start(&front_config(tls_port), driver);
        for path in ["/ping", "/byip/ping"] {
            let r = front.get(path);
            assert_eq!(
                r.status,
                200,
                "{driver} {path}: {}\n{}",
                r.text(),
                front.log_text()
            );
            assert_eq!(r.text(), r#"{"ok":true,"tls":true}"#, "{driver} {path}");
        }
        // A certificate the front refuses: 502, and the reason at warn.
        for _ in 0..3 {
            assert_eq!(front.get("/wrongname/ping").status, 502, "{driver}");
        }
        let log = front.log_text();
        let warned: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains("certificate verification failed"))
            .collect();
        assert_eq!(
            warned.len(),
            1,
            "{driver}: once per 10 s, not per request:\n{log}"
        );
        let line = warned[0];
        for part in [
            "upstream=wrongname",
            &format!("target=127.0.0.1:{tls_port}"),
            "server_name=api.example.com",
            "reason=",
            "not valid for name",
        ] {
            assert!(
                line.contains(part),
                "{driver}: {part:?} missing from {line}"
            );
        }
        assert!(front.stop().success());
        assert!(back.stop().success());
    }
}
