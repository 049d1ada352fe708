//! One slow or unreachable issuer holds up no other: key-set fetches for different
//! issuers run side by side, so a healthy issuer's rotated key is picked up at once
//! while another issuer's fetches wait out their 1,500 ms limit.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::py::Idp;
use common::*;
use serde_json::{json, Value};

fn config(slow: &Idp, healthy: &Idp) -> String {
    let (s, h) = (slow.issuer(), healthy.issuer());
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
  limits: {{ header_timeout: 5s, idle_timeout: 10s, drain_timeout: 1s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      s1: {{ type: jwt, issuer: "{s}", audience: [shop-api] }}
      s2: {{ type: jwt, issuer: "{s}", jwks_uri: "{s}/jwks.json", audience: [shop-api] }}
      s3: {{ type: jwt, issuer: "{s}", jwks_uri: "{s}/jwks.json?copy=3", audience: [shop-api] }}
      ok: {{ type: jwt, issuer: "{h}", audience: [shop-api] }}
    routes:
      "GET /s1": {{ authorizer: s1, integration: {{ type: mock, status: 200, body: s1 }} }}
      "GET /s2": {{ authorizer: s2, integration: {{ type: mock, status: 200, body: s2 }} }}
      "GET /s3": {{ authorizer: s3, integration: {{ type: mock, status: 200, body: s3 }} }}
      "GET /ok": {{ authorizer: ok, integration: {{ type: mock, status: 200, body: ok }} }}
"#
    )
}

fn claims(idp: &Idp) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({ "iss": idp.issuer(), "aud": "shop-api", "sub": "u", "exp": now + 600 })
}

fn request(path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

#[test]
fn a_stalled_issuer_does_not_delay_another_issuers_rotation() {
    for driver in DRIVERS {
        let (slow, healthy) = (Idp::start(), Idp::start());
        let p = Portico::start(&config(&slow, &healthy), driver);
        // Every key source has its keys.
        let s = slow.mint(json!({ "claims": claims(&slow) }));
        for path in ["/s1", "/s2", "/s3"] {
            assert_eq!(p.raw(&request(path, &s)).status, 200, "{path}");
        }
        let h1 = healthy.mint(json!({ "claims": claims(&healthy) }));
        assert_eq!(p.raw(&request("/ok", &h1)).status, 200);

        // The slow issuer's key set now takes 5 s to answer; unknown kids send its three
        // key sources fetching (each gives up after 1,500 ms).
        slow.control(json!({ "delay_ms": 5000 }));
        let unknown = slow.mint(json!({ "kid": "k9", "claims": claims(&slow) }));
        let stalled: Vec<_> = ["/s1", "/s2", "/s3"]
            .into_iter()
            .map(|path| {
                let (addr, req) = (p.addr, request(path, &unknown));
                std::thread::spawn(move || send_to(addr, &req).status)
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));

        // Meanwhile the healthy issuer rotates to k2.
        healthy.control(json!({ "publish": ["k1", "k2"] }));
        let h2 = healthy.mint(json!({ "key": "k2", "claims": claims(&healthy) }));
        let started = Instant::now();
        let r = p.raw(&request("/ok", &h2));
        let took = started.elapsed();
        assert_eq!(
            r.status,
            200,
            "{driver}: {:?}",
            r.header("www-authenticate")
        );
        assert!(took < Duration::from_millis(2500), "{driver}: {took:?}");

        for t in stalled {
            assert_eq!(t.join().unwrap(), 401);
        }
        assert!(
            eventually(|| p.log_text().matches("no answer within 1500 ms").count() >= 3),
            "{}",
            p.log_text()
        );
    }
}
