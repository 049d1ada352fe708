//! What `tests/cli.rs` and `tests/cli_check.rs` share: a config with four mistakes, the
//! errors `check` and `run` must print for it, and line matching.

#![allow(dead_code)] // each test binary uses its own part

/// Two decode mistakes (an unknown key, a bad duration) and two cross-reference mistakes
/// (an upstream that does not exist, two APIs claiming the root).
pub const FOUR_MISTAKES: &str = r#"server:
  listen: ["127.0.0.1:{PORT}"]
  colour: blue
  limits: { header_timeout: tenseconds }
upstreams:
  real: { targets: ["127.0.0.1:9"] }
apis:
  shop:
    stages:
      $default: {}
    routes:
      "GET /x":
        integration: { type: http, upstream: nope }
  other:
    stages:
      $default: {}
    routes:
      "GET /y":
        integration: { type: mock, status: 200, body: "y" }
"#;

pub const FOUR_ERRORS: [&str; 4] = [
    r#"server: unknown key "colour" (expected one of: listen, tls_listen, default_domain, redirect_https, workers, driver, limits, access_log, throttle, compression)"#,
    r#"server.limits.header_timeout: expected a duration like 250ms, 29s, 10m, got "tenseconds""#,
    r#"apis.shop.routes."GET /x".integration.upstream: no upstream named "nope""#,
    r#"apis.other.stages.$default: the root of the default endpoint ($default stage) already belongs to API "shop""#,
];

/// Lines of `text` that are exactly `line` (so a prefix can't pass for the whole error).
pub fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim_end() == line)
}

pub fn assert_lines(text: &str, lines: &[&str], what: &str) {
    for line in lines {
        assert!(
            has_line(text, line),
            "{what}: missing the line\n  {line}\nin:\n{text}"
        );
    }
}
