//! What the TLS test binaries share: config helpers, starting Portico with a TLS
//! listener, and small waits and reads.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::tls::*;
use crate::common::*;

// ---------------------------------------------------------------- config helpers

/// One entry under `domains:`: optional cert/key files and client CA, the root mapping.
pub fn domain(
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
pub fn config(
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

/// `config` with one domain: a.example (certificate and key `fa`) on shop's prod stage.
pub fn a_example_config(
    tls_port: u16,
    origin: &Origin,
    server_extra: &str,
    fa: &(PathBuf, PathBuf),
) -> String {
    config(
        tls_port,
        origin,
        server_extra,
        "",
        &[domain("a.example", Some(fa), None, "shop/prod")],
    )
}

/// An origin that answers `origin <target> proto=<every X-Forwarded-Proto, joined by |>`.
pub fn proto_origin() -> Origin {
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
pub fn start(yaml: &str, driver: &str, tls_port: u16) -> Portico {
    let p = Portico::start(yaml, driver);
    wait_port(tls_port);
    p
}

/// Polls `cond` for up to `secs` seconds.
pub fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
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
pub fn served_leaf(tls_port: u16, sni: &str) -> Result<Vec<u8>, String> {
    let c = TlsClient::accept_any().build().connect(tls_port, sni)?;
    Ok(c.leaf().to_vec())
}

pub fn plain_get(p: &Portico, host: &str, path: &str) -> Response {
    p.raw(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
}

pub fn ok_text(r: std::io::Result<Response>, what: &str) -> String {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    r.text()
}
