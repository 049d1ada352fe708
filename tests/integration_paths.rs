//! An http integration's path goes onto the backend's request line byte for byte, stage
//! variables substituted: `check` (and so `run` and reloads) refuses a path, or a stage's
//! value of it, that would break that line (a space, CR/LF, a non-ASCII byte), add a query
//! or fragment, or climb out with a dot-segment. Before, only a literal `?` or `#` was
//! refused: a variable holding `v1 HTTP/1.1\r\n…\r\n\r\nGET /admin` split the backend
//! request in two.

mod common;

use common::*;

fn config(path: &str, prod_vars: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  users: {{ targets: ["127.0.0.1:9"] }}
apis:
  shop:
    stages:
      prod: {{ variables: {prod_vars} }}
      beta: {{ variables: {{ v: "v2/beta" }} }}
    routes:
      "GET /items/{{id}}":
        integration: {{ type: http, upstream: users, path: "{path}" }}
"#
    )
}

const AT: &str = r#"apis.shop.routes."GET /items/{id}".integration.path"#;

fn errors(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("apis.")).collect()
}

#[test]
fn stage_variable_values_that_break_the_request_line_are_refused() {
    let cases = [
        (
            r#"{ v: "v1 HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /admin" }"#,
            "has a space, control or non-ASCII character",
        ),
        (
            r#"{ v: "v1\tx" }"#,
            "has a space, control or non-ASCII character",
        ),
        (
            r#"{ v: "caf\u00e9" }"#,
            "has a space, control or non-ASCII character",
        ),
        (r#"{ v: "v1?admin=true" }"#, "a query goes in parameters"),
        (r#"{ v: "v1#x" }"#, "# is never sent"),
        (r#"{ v: "v1/../../admin" }"#, "has a . or .. segment"),
        (r#"{ v: "%2e%2e" }"#, "has a . or .. segment"),
    ];
    for (vars, why) in cases {
        let (code, text) = check(&config("/${stageVariables.v}/items/{id}", vars));
        assert_eq!(code, 1, "{vars}: {text}");
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{vars}: {text}");
        assert!(
            errors[0].starts_with(&format!("{AT}: ")) && errors[0].contains(why),
            "{vars}: {text}"
        );
        assert!(errors[0].contains(r#"(in stage "prod": "#), "{text}");
    }
    // A value that makes a path that does not start with /.
    let (code, text) = check(&config("${stageVariables.v}/items/{id}", r#"{ v: "v1" }"#));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            r#"{AT}: must start with / (in stage "prod": "v1/items/{{id}}")"#
        )),
        "{text}"
    );
}

#[test]
fn literal_paths_that_break_the_request_line_are_refused() {
    for (path, why) in [
        ("/a b/{id}", "has a space"),
        (r"/a\r\nx-injected: 1/{id}", "control"),
        (r"/caf\u00e9/{id}", "non-ASCII character"),
        ("/public/../admin/{id}", "has a . or .. segment"),
        ("/v1/q?x={id}", "a query goes in parameters"),
    ] {
        let (code, text) = check(&config(path, r#"{ v: "v1" }"#));
        assert_eq!(code, 1, "{path}: {text}");
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{path}: {text}");
        assert!(errors[0].contains(why), "{path}: {text}");
    }
}

#[test]
fn a_splitting_value_never_reaches_the_backend() {
    let origin = Origin::fixed(b"ok");
    let yaml = config(
        "/${stageVariables.v}/items/{id}",
        r#"{ v: "v1/x HTTP/1.1\r\nhost: a\r\n\r\nGET /admin" }"#,
    )
    .replace("127.0.0.1:9", &origin.addr.to_string());
    for driver in DRIVERS {
        let refused = Portico::try_start(&yaml, driver);
        assert!(refused.is_err(), "{driver}: started");
    }
    // Values with slashes, escapes and sub-delimiters are paths: served as before.
    let yaml = config(
        "/${stageVariables.v}/items/{id}",
        r#"{ v: "v1/a%20b;x=1" }"#,
    )
    .replace("127.0.0.1:9", &origin.addr.to_string());
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        let r = p.get("/prod/items/7");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/v1/a%20b;x=1/items/7", "{driver}");
        let r = p.get("/beta/items/8");
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(origin.last().target, "/v2/beta/items/8", "{driver}");
    }
    assert_eq!(origin.requests.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[test]
fn function_urls_are_checked_with_each_stages_values() {
    let yaml = config("/x", r#"{ v: "v1" }"#).replace(
        r#""GET /items/{id}":"#,
        r#""GET /f": { integration: { type: lambda, url: "http://127.0.0.1:9000/2015-03-31/functions/${stageVariables.fn}/invocations" } }
      "GET /items/{id}":"#,
    );
    let yaml = yaml
        .replace(r#"{ v: "v1" }"#, r#"{ v: "v1", fn: "orders#1" }"#)
        .replace(r#"{ v: "v2/beta" }"#, r#"{ v: "v2", fn: "orders" }"#);
    let (code, text) = check(&yaml);
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        errors(&text),
        [
            r#"apis.shop.routes."GET /f".integration.url: "http://127.0.0.1:9000/2015-03-31/functions/orders#1/invocations" has a #: a fragment is never sent (in stage "prod")"#
        ],
        "{text}"
    );
}

/// Integrations substitute `${stageVariables.NAME}` only; the unbraced spelling, which
/// mapped values also read, was sent as its own text (`GET /$stageVariables.v/x`).
#[test]
fn the_unbraced_spelling_is_refused_in_integrations() {
    let yaml = config("/$stageVariables.v/items/{id}", r#"{ v: "v1" }"#).replace(
        r#""GET /items/{id}":"#,
        r#""GET /m": { integration: { type: mock, body: "$stageVariables.v", headers: { x-v: "a-${stageVariables.v}" } } }
      "GET /f": { integration: { type: lambda, url: "http://127.0.0.1:9000/functions/$stageVariables.v_2/invocations" } }
      "GET /items/{id}":"#,
    );
    let (code, text) = check(&yaml);
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        errors(&text),
        [
            r#"apis.shop.routes."GET /m".integration.body: $stageVariables.v is not substituted here: write ${stageVariables.v}"#,
            r#"apis.shop.routes."GET /f".integration.url: $stageVariables.v_2 is not substituted here: write ${stageVariables.v_2}"#,
            r#"apis.shop.routes."GET /items/{id}".integration.path: $stageVariables.v is not substituted here: write ${stageVariables.v}"#,
        ],
        "{text}"
    );
}
