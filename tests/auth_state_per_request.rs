//! What an authorizer decided belongs to the request it decided, not to the connection:
//! on a kept-alive connection (a load balancer in front reuses one for many clients), a
//! request that matches no route, or whose head is refused, must not show the previous
//! request's claims, authorizer error or request time — in its 404 gateway response or
//! in its access-log line. They did: the state was reset only once a route matched.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::py::Idp;
use common::*;
use serde_json::{json, Value};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn config(issuer: &str, log: &std::path::Path) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 3s, idle_timeout: 5s, drain_timeout: 1s }}
  access_log:
    path: "{}"
    format: '{{"path":"$context.path","status":"$context.status","sub":"$context.authorizer.claims.sub","err":"$context.authorizer.error"}}'
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      users: {{ type: jwt, issuer: "{issuer}", audience: [shop-api] }}
    gateway_responses:
      MISSING_AUTHENTICATION_TOKEN:
        headers: {{ x-t: "$context.requestTimeEpoch" }}
        body: '{{"message":"Not Found","sub":"$context.authorizer.claims.sub","err":"$context.authorizer.error"}}'
    routes:
      "GET /me":
        authorizer: users
        integration: {{ type: mock, status: 200, body: me }}
"#,
        log.display()
    )
}

#[test]
fn an_unrouted_or_refused_request_shows_no_earlier_callers_verdict() {
    let idp = Idp::start();
    let exp = now_ms() / 1000 + 600;
    let token = idp.mint(json!({ "claims": {
        "iss": idp.issuer(), "aud": "shop-api", "sub": "alice-secret-sub", "exp": exp,
    }}));
    for driver in DRIVERS {
        let dir = temp_dir("auth-state");
        let log = dir.join("access.log");
        let p = Portico::start(&config(&idp.issuer(), &log), driver);
        let mut c = Client::new(&p);

        // Client A, authorized; then client B on the same connection, no token, a path
        // no route has, a second later.
        let a = c.send(
            format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(a.status, 200, "{driver}: {}", a.text());
        std::thread::sleep(Duration::from_millis(1100));
        let before_b = now_ms();
        let b = c.get("/nowhere", "t");
        assert_eq!(b.status, 404, "{driver}: {}", b.text());
        let body: Value = serde_json::from_slice(&b.body).unwrap();
        assert_eq!(body["sub"], "", "{driver}: client A's claim in B's 404");
        assert_eq!(body["err"], "", "{driver}");
        let t: u64 = b.header("x-t").expect("x-t").parse().unwrap();
        assert!(
            t >= before_b,
            "{driver}: B's requestTimeEpoch {t} is A's, before B was sent ({before_b})"
        );

        // A refused token leaves an authorizer error; the next unrouted request has none.
        let bad = c.send(b"GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer not.a.jwt\r\n\r\n");
        assert_eq!(bad.status, 401, "{driver}: {}", bad.text());
        let b2 = c.get("/nowhere", "t");
        let body: Value = serde_json::from_slice(&b2.body).unwrap();
        assert_eq!(
            body["err"], "",
            "{driver}: the earlier refusal's reason in a 404"
        );

        // A's again, then a head that does not parse: its log line names no caller.
        let a2 = c.send(
            format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(a2.status, 200, "{driver}");
        let refused = c.send(b"GET /me HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n");
        assert_eq!(refused.status, 400, "{driver}: {}", refused.text());

        let lines = || -> Vec<Value> {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        assert!(eventually(|| lines().len() == 6), "{driver}: {:?}", lines());
        let subs: Vec<(String, String, String)> = lines()
            .iter()
            .map(|l| {
                let s = |k: &str| l[k].as_str().unwrap().to_string();
                (s("status"), s("sub"), s("err"))
            })
            .collect();
        let me = "alice-secret-sub".to_string();
        let none = "-".to_string();
        assert_eq!(
            subs[0],
            ("200".into(), me.clone(), none.clone()),
            "{driver}"
        );
        assert_eq!(
            subs[1],
            ("404".into(), none.clone(), none.clone()),
            "{driver}"
        );
        assert_eq!(subs[2].0, "401", "{driver}");
        assert_eq!(
            subs[3],
            ("404".into(), none.clone(), none.clone()),
            "{driver}"
        );
        assert_eq!(subs[4], ("200".into(), me, none.clone()), "{driver}");
        assert_eq!(subs[5], ("400".into(), none.clone(), none), "{driver}");
        drop(p);
        let _ = std::fs::remove_dir_all(dir);
    }
}
