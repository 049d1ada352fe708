//! What the YAML layer gives the decoder: integers past 64 bits, keys written twice and
//! alias bombs, each reported without hiding the file's other errors.

use std::time::{Duration, Instant};

use crate::config::load::{load_str, load_str_with_env};
use crate::config::model::{Integration, Protocol};

fn errors(yaml: &str) -> Vec<String> {
    match load_str_with_env(yaml, &|_| None) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const HUGE: &str = "99999999999999999999999";

#[test]
fn an_integer_past_64_bits_is_an_error_at_its_key_and_the_others_still_come() {
    // It used to stop the parse: "not valid YAML: … invalid type: integer
    // `99999999999999999999999` as u128, expected any YAML value", and nothing else.
    let yaml = format!(
        r#"
server:
  throttle: {{ rate: 10, burst: {HUGE} }}
  workers: -{HUGE}
  limits: {{ header_timeout: {HUGE}, max_body_bytes: {HUGE}, idle_timeout: soon }}
upstreams:
  u: {{ targets: ["127.0.0.1:1"], pool: {{ max_idle_per_worker: {HUGE} }} }}
apis:
  a:
    stages: {{ prod: {{}} }}
    routes:
      "GET /x": {{ integration: {{ type: mock, status: {HUGE} }}, cache: {{ statuses: [{HUGE}] }} }}
usage_plans:
  p: {{ quota: {{ limit: {HUGE}, period: day }} }}
typo: 1
"#
    );
    let big = format!("got {HUGE}, above what 64 bits hold");
    assert_eq!(
        errors(&yaml),
        [
            r#"unknown key "typo" (expected one of: server, admin, state_dir, upstreams, apis, domains, usage_plans, api_keys, watch, iam, cluster)"#.to_string(),
            format!("server.workers: expected auto or a number of workers, 1 to 1024, got -{HUGE}, below what 64 bits hold"),
            format!("server.limits.max_body_bytes: expected a size like 10485760, 512KB or 64MiB, {big}"),
            format!("server.limits.header_timeout: expected a duration like 250ms, 29s, 10m, {big}"),
            r#"server.limits.idle_timeout: expected a duration like 250ms, 29s, 10m, got "soon""#.to_string(),
            format!("server.throttle.burst: expected a whole number ≥ 0, {big}"),
            format!("upstreams.u.pool.max_idle_per_worker: expected a whole number ≥ 0, {big}"),
            format!(r#"apis.a.routes."GET /x".integration.status: expected a whole number ≥ 0, {big}"#),
            format!(r#"apis.a.routes."GET /x".cache.statuses[0]: expected a whole number ≥ 0, {big}"#),
            format!("usage_plans.p.quota.limit: expected a whole number ≥ 0, {big}"),
        ]
    );
}

#[test]
fn an_integer_past_64_bits_is_its_text_where_text_goes_and_a_float_where_a_number_goes() {
    let yaml = format!(
        r#"
apis:
  a:
    stages: {{ prod: {{ variables: {{ build: {HUGE} }} }} }}
    throttle: {{ rate: {HUGE}, burst: 1 }}
    models:
      Big: {{ type: integer, maximum: {HUGE} }}
    routes:
      "GET /x": {{ integration: {{ type: mock }} }}
"#
    );
    let cfg = load_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let api = &cfg.apis[0].1;
    assert_eq!(api.protocol, Protocol::Http);
    assert_eq!(api.stages[0].1.variables, [("build".into(), HUGE.into())]);
    assert_eq!(api.throttle.as_ref().map(|t| t.rate), Some(1e23));
    assert_eq!(api.defs.models[0].1["maximum"], serde_json::json!(1e23));
    // The running config's view shows it too, not null.
    let view = crate::config::view::redacted_view(&yaml);
    assert_eq!(
        view["apis"]["a"]["models"]["Big"]["maximum"],
        serde_json::json!(1e23)
    );
}

#[test]
fn a_key_written_twice_is_an_error_at_its_path_and_the_rest_is_checked() {
    let yaml = "server:\n  workers: 2\napis: {}\nserver:\n  workers: 3\nstate_dir: [1]\n";
    assert_eq!(
        errors(yaml),
        [
            "server: this key is written twice in its map (the first one is read)",
            "state_dir: expected a string, got a list",
        ]
    );
    // Inside an item of a list, with the item's path.
    let yaml = "api_keys:\n  - { name: a, value: x, name: b }\n";
    assert_eq!(
        errors(yaml),
        ["api_keys[0].name: this key is written twice in its map (the first one is read)"]
    );
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    // 200 KB of text: every alias repeats a list of 20 000 numbers, 400 million values in
    // all (tens of gigabytes), which the parser's own repetition limit lets through.
    let n = 20_000;
    let list = vec!["1"; n].join(",");
    let aliases = vec!["*x"; n].join(",");
    let yaml = format!("x: &x [{list}]\ny: [{aliases}]\n");
    let started = Instant::now();
    let errs = errors(&yaml);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("not valid YAML: y[") && errs[0].contains("through its aliases"),
        "{errs:?}"
    );
    // The classic nested one stops at the parser's own limit, with a word on what it means.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    assert_eq!(
        errors(&laughs),
        ["not valid YAML: repetition limit exceeded: its aliases (*name) expand too many times; refused"]
    );
}

#[test]
fn aliases_that_share_blocks_still_load() {
    let yaml = r#"
x-mock: &mock { type: mock, status: 204 }
"#;
    // Not a key of the config, but the anchor itself parses; used where it belongs:
    assert!(errors(yaml)[0].starts_with("unknown key \"x-mock\""));
    let yaml = r#"
apis:
  a:
    stages: { prod: {} }
    routes:
      "GET /x": { integration: &mock { type: mock, status: 204 } }
      "GET /y": { integration: *mock }
"#;
    let cfg = load_str(yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.apis[0].1.routes.len(), 2);
}

#[test]
fn openapi_documents_read_big_integers_as_json_does_and_name_a_key_written_twice() {
    let doc = format!("openapi: 3.0.1\nx-big: {HUGE}\npaths: {{}}\n");
    let v = crate::openapi::import::parse(&doc).unwrap();
    assert_eq!(v["x-big"], serde_json::json!(1e23));
    let doc = "openapi: 3.0.1\npaths:\n  /a: {}\n  /a: {}\n";
    let e = crate::openapi::import::parse(doc).unwrap_err();
    assert_eq!(
        e.message,
        r#"Invalid OpenAPI input: paths."/a": this key is written twice in its map (the first one is read)"#
    );
}

#[test]
fn numbers_and_booleans_keep_their_text_where_text_goes() {
    // They were the parser's values rendered again: "1.1", "1000.0", "16", "true".
    let yaml = r#"
apis:
  a:
    stages:
      prod:
        variables: &vars { version: 1.10, tag: 1e3, hex: 0x10, yes: True, plus: +5, n: 7, t: !!int 0x1F }
        canary: { percent: 5, variables: { version: 2.0 } }
      dev:
        variables: { <<: *vars, own: 0o17 }
    gateway_responses:
      DEFAULT_4XX: { headers: { x-n: "0x10", x-m: 0x20 } }
    routes:
      "GET /x": { integration: { type: mock, status: 200, headers: { x-n: 0x10, x-f: 1.50 } } }
      "GET /y":
        integration: { type: http, upstream: u }
        parameters: { "append:header.v": 1.0 }
        response_parameters: { 200: { "overwrite:header.w": 2.50 } }
upstreams:
  u: { targets: ["127.0.0.1:1"] }
domains:
  d.example: { mappings: { 1.10: a/prod } }
"#;
    let cfg = load_str(yaml).unwrap_or_else(|e| panic!("{e}"));
    let api = &cfg.apis[0].1;
    let text = |pairs: &[(String, String)]| -> Vec<(String, String)> { pairs.to_vec() };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let prod = &api.stages[0].1;
    assert_eq!(
        text(&prod.variables),
        pairs(&[
            ("version", "1.10"),
            ("tag", "1e3"),
            ("hex", "0x10"),
            ("yes", "True"),
            ("plus", "+5"),
            ("n", "7"),
            ("t", "0x1F"),
        ])
    );
    let canary = prod.canary.as_ref().unwrap();
    assert_eq!(text(&canary.variables), pairs(&[("version", "2.0")]));
    // Merged in with `<<`, at a key path of its own.
    let dev = &api.stages[1].1;
    let mut got = text(&dev.variables);
    got.sort();
    let mut want = text(&prod.variables);
    want.push(("own".into(), "0o17".into()));
    want.sort();
    assert_eq!(got, want);
    let responses = &api.defs.gateway_responses[0].1.headers;
    assert_eq!(*responses, pairs(&[("x-n", "0x10"), ("x-m", "0x20")]));
    let Integration::Mock { headers, .. } = &api.routes[0].1.integration else {
        panic!("{:?}", api.routes[0].1.integration)
    };
    assert_eq!(*headers, pairs(&[("x-n", "0x10"), ("x-f", "1.50")]));
    let y = &api.routes[1].1;
    assert_eq!(y.parameters, pairs(&[("append:header.v", "1.0")]));
    let response = &y.response_parameters;
    assert_eq!(
        *response,
        [("200".into(), pairs(&[("overwrite:header.w", "2.50")]))]
    );
    // A base path written as a number is its text too.
    assert_eq!(cfg.domains[0].1.mappings, pairs(&[("1.10", "a/prod")]));
}
