//! With `allow_credentials: true`, `*` in allow_methods, allow_headers or expose_headers
//! is not a wildcard to browsers (the Fetch standard reads it as the name `*` on requests
//! with credentials), so such a config fails every credentialed preflight that needs it.
//! `check` warns at the item; it said ok.

mod common;

use common::*;

fn config(credentials: bool) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:18999"]
apis:
  shop:
    cors:
      allow_origins: ["https://app.example"]
      allow_methods: [GET, "*"]
      allow_headers: ["*"]
      expose_headers: [x-total, "*"]
      allow_credentials: {credentials}
    stages:
      $default: {{}}
    routes:
      "GET /m": {{ integration: {{ type: mock, body: "m" }} }}
"#
    )
}

#[test]
fn wildcards_beside_credentials_are_warned_about() {
    let (code, text) = check(&config(true));
    assert_eq!(code, 0, "{text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning")).collect();
    let why = r#""*" with allow_credentials: true: browsers read it as the name "*" on requests with credentials"#;
    assert_eq!(warnings.len(), 3, "{text}");
    for (w, at) in warnings.iter().zip([
        "apis.shop.cors.allow_methods[1]",
        "apis.shop.cors.allow_headers[0]",
        "apis.shop.cors.expose_headers[1]",
    ]) {
        assert!(w.starts_with(&format!("warning: {at}: {why}")), "{w}");
    }
    let (code, text) = check(&config(false));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning"), "{text}");
}
