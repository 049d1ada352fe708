//! Claims whose names hold a `:` (Cognito's `cognito:groups` and `cognito:username`, a
//! namespaced `https://example.com/roles`) in parameter mappings: unbraced, the name ends
//! at the `:`, so `check` refuses it (as API Gateway refuses the expression) and says to
//! brace it; braced, the whole claim reaches the backend. Unbraced, the mapping had passed
//! check and sent the backend the literal text ":groups".

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::py::Idp;
use common::*;
use serde_json::json;

fn config(issuer: &str, origin: &Origin, value: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
  limits: {{ header_timeout: 3s, idle_timeout: 5s, drain_timeout: 1s }}
upstreams:
  echo: {{ targets: ["{}"] }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    authorizers:
      users: {{ type: jwt, issuer: "{issuer}", audience: [shop-api] }}
    routes:
      "GET /me":
        authorizer: users
        parameters: {{ "overwrite:header.x-groups": "{value}" }}
        integration: {{ type: http, upstream: echo }}
"#,
        origin.addr
    )
}

#[test]
fn claim_names_with_a_colon_are_braced_or_refused() {
    let origin = Origin::echo();
    let (code, out) = check(&config(
        "https://issuer.test",
        &origin,
        "$context.authorizer.claims.cognito:groups",
    ));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("write ${context.authorizer.claims.cognito:groups}"),
        "{out}"
    );

    let idp = Idp::start();
    let yaml = config(
        &idp.issuer(),
        &origin,
        "g=${context.authorizer.claims.cognito:groups}",
    );
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = idp.mint(json!({ "claims": {
        "iss": idp.issuer(), "aud": "shop-api", "sub": "u1", "exp": exp,
        "cognito:groups": ["admin", "ops"],
    }}));
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let r = p.raw(
            format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(origin.last().header("x-groups"), Some("g=[admin ops]"));
    }
}
