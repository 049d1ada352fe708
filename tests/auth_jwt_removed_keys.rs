//! A JWT verified once is not accepted forever: when the issuer stops publishing the key
//! that signed it, the worker's cached verdict goes with the key at the next key-set
//! fetch (and stays gone across a reload), however far off the token's `exp` is.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::py::Idp;
use common::*;
use serde_json::json;

fn config(idp: &Idp) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 2s, idle_timeout: 5s, drain_timeout: 1s }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      users: {{ type: jwt, issuer: "{}", audience: [shop-api] }}
    routes:
      "GET /me": {{ authorizer: users, integration: {{ type: mock, status: 200, body: me }} }}
"#,
        idp.issuer()
    )
}

fn get(p: &Portico, token: &str) -> Response {
    p.raw(
        format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn a_cached_token_is_refused_once_its_key_is_removed() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for driver in DRIVERS {
        let idp = Idp::start();
        idp.control(json!({ "publish": ["k2"] }));
        // One worker: the request after the removal meets the cached verdict.
        let p = Portico::start(&config(&idp), driver);
        let claims = |jti: &str| json!({ "iss": idp.issuer(), "aud": "shop-api", "sub": "u", "jti": jti, "exp": now + 86_400 });
        let old = idp.mint(json!({ "key": "k2", "claims": claims("old") }));
        for _ in 0..2 {
            assert_eq!(get(&p, &old).status, 200, "{}", p.log_text());
        }

        // The issuer replaces k2 with k1; a k1 token makes Portico fetch the new set.
        idp.control(json!({ "publish": ["k1"] }));
        let new = idp.mint(json!({ "key": "k1", "claims": claims("new") }));
        assert_eq!(get(&p, &new).status, 200, "{}", p.log_text());

        let refused = "the token's kid does not match any signing key of the issuer";
        for token in [
            &old,
            &idp.mint(json!({ "key": "k2", "claims": claims("fresh") })),
        ] {
            let r = get(&p, token);
            assert_eq!(r.status, 401, "{driver}: {}", r.text());
            let www = r.header("www-authenticate").unwrap_or("");
            assert!(www.contains(refused), "{www}");
        }

        // A reload keeps the issuer's keys, and the old token stays refused.
        p.signal(1);
        assert!(eventually(|| p.log_text().contains("config reloaded")));
        assert_eq!(get(&p, &old).status, 401);
        assert_eq!(get(&p, &new).status, 200);
    }
}
