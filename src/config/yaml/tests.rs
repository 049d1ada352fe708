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
            format!("server.workers: expected auto or a number of workers, 1 to 256, got -{HUGE}, below what 64 bits hold"),
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
fn aliases_that_repeat_a_long_string_are_refused_before_the_copies_are_made() {
    // 210 KB of text, one value per alias: the value count stayed far under its budget
    // while each alias copied 200 KB, 400 MB in all (2 MB × 1000 took a gateway down).
    let long = "x".repeat(200_000);
    let aliases = vec!["*b"; 2000].join(",");
    let yaml = format!("x: &b \"{long}\"\ny: [{aliases}]\n");
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1, "{:?}", errs[0].get(..200));
    let budget = (16 << 20) + 2 * yaml.len();
    assert!(
        errs[0].starts_with("not valid YAML: y[")
            && errs[0].contains(&format!(
                "more than {budget} bytes of text through its aliases"
            )),
        "{errs:?}"
    );
    // As a key (explicit: an implicit one is at most 1024 characters), and as a tag.
    let yaml = format!("x: &b\n  ? \"{long}\"\n  : 1\ny: [{aliases}]\n");
    let e = errors(&yaml);
    assert!(e[0].contains("bytes of text"), "{:.300}", e[0]);
    let yaml = format!("x: &b !{long} 1\ny: [{aliases}]\n");
    let e = errors(&yaml);
    assert!(e[0].contains("bytes of text"), "{:.300}", e[0]);
    // A long string used a few times is sharing, not a bomb.
    let yaml = format!(
        "apis:\n  a:\n    stages: {{ prod: {{}} }}\n    routes:\n{}",
        (0..20)
            .map(|i| format!(
                "      \"GET /{i}\": {{ integration: {{ type: mock, body: {} }} }}\n",
                if i == 0 {
                    format!("&b \"{long}\"")
                } else {
                    "*b".into()
                }
            ))
            .collect::<String>()
    );
    let cfg = load_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.apis[0].1.routes.len(), 20);
}

#[test]
fn nesting_is_counted_where_yaml_opens_it_not_skipped_after_a_stray_quote() {
    // A `"` inside a plain scalar, on a plain scalar's next line or in a block scalar is
    // text; the byte scan took it for a quoted scalar and skipped to the next `"`, past
    // the brackets, and the parser then took seconds (20 s for 100,000 deep).
    let n = 20_000;
    let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
    // The document's block mapping is the first level.
    let refused = "not valid YAML: recursion limit exceeded at line 3 column 1003: values \
                   nested more than 128 deep";
    for (open, close) in [
        ("k: x \"\n", "z: x \"\n"),
        ("k: x\n  \"\n", "z: x\n  \"\n"),
        ("k: |\n  \"\n", "z: |\n  \"\n"),
        ("k: x '\n", "z: x '\n"),
    ] {
        let yaml = format!("{open}y: {deep}\n{close}");
        let started = Instant::now();
        let line = 1 + open.matches('\n').count();
        let want = refused.replace("line 3", &format!("line {line}"));
        assert_eq!(errors(&yaml), [want], "{open:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{open:?}");
    }
    // Brackets in a block scalar are text, not nesting (they were refused).
    let many = "[".repeat(2000);
    let yaml = format!(
        "apis:\n  a:\n    stages: {{ s: {{}} }}\n    routes:\n      \"GET /x\":\n        integration:\n          type: mock\n          body: |\n            \"{many}\n"
    );
    let cfg = load_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&cfg.apis[0].1.routes[0].1.integration, Integration::Mock { body, .. } if body.len() == 2002)
    );
}

#[test]
fn block_nesting_is_counted_with_flow_nesting() {
    // `- - - … a` opens a block sequence per `- `; the scan counted only `[`/`{`, and
    // 8,300,000 of them (16.6 MB) took check past 3 GB before the parser's limit.
    let n = 200_000;
    let yaml = format!("x:\n  {}a\n", "- ".repeat(n));
    let started = Instant::now();
    assert_eq!(
        errors(&yaml),
        [
            "not valid YAML: recursion limit exceeded at line 2 column 2001: values nested \
          more than 128 deep"
        ]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Block mappings, one per deeper line, and block and flow levels together.
    let mut deep = String::new();
    for i in 0..1001 {
        deep.push_str(&format!("{}k:\n", " ".repeat(i)));
    }
    let e = crate::config::yaml::parse(&deep).err().unwrap().to_string();
    assert!(
        e.starts_with("recursion limit exceeded at line 1001 column 1001"),
        "{e}"
    );
    let mixed = format!("x:\n  {}{}a\n", "- ".repeat(600), "[".repeat(500));
    let e = crate::config::yaml::parse(&mixed)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("recursion limit exceeded at line 2 column 1602"),
        "{e}"
    );
    // Indentless sequences (`k:\n- a`) close without a BLOCK_END: no level leaks.
    let flat = (0..4000)
        .map(|i| format!("k{i}:\n- 1\n"))
        .collect::<String>();
    assert!(crate::config::yaml::parse(&flat).is_ok());
}

#[test]
fn tag_prefixes_are_counted_before_the_parser_writes_them_out() {
    // No alias: each `!e!x` is written out with the whole 100 KB prefix `%TAG` gave `!e!`,
    // 1000 times (100 MB; 1 MB × 200,000 took a gateway past 4 GB), all of it built by
    // the parser before a value is.
    let prefix = format!("!{}", "p".repeat(100_000));
    let uses = vec!["!e!x a"; 1000].join(", ");
    let yaml = format!("%TAG !e! {prefix}\n---\nx: [{uses}]\n");
    let budget = (16 << 20) + 2 * yaml.len();
    let column = 5 + 8 * (budget / 100_001);
    let started = Instant::now();
    assert_eq!(
        errors(&yaml),
        [format!(
            "not valid YAML: the prefixes that %TAG directives give the document's tags add \
             up to more than {budget} bytes of text at line 3 column {column}; refused"
        )]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The same for the default handles, declared anew, and in an OpenAPI document.
    for handle in ["!", "!!"] {
        let uses = vec![format!("{handle}x a"); 1000].join(", ");
        let yaml = format!("%TAG {handle} {prefix}\n---\nx: [{uses}]\n");
        assert!(errors(&yaml)[0].contains("%TAG directives"), "{handle}");
        let e = crate::openapi::import::parse(&yaml).unwrap_err();
        assert!(e.message.contains("%TAG directives"), "{}", e.message);
    }
    // Tags written in full, and a prefix used a few times, are only their text.
    let yaml = format!("x: [{}]\n", vec![format!("!<{prefix}> a"); 100].join(", "));
    assert!(crate::config::yaml::parse(&yaml).is_ok());
    let yaml = format!(
        "%TAG !e! {prefix}\n---\nx: [{}]\n",
        vec!["!e!x a"; 100].join(", ")
    );
    assert!(crate::config::yaml::parse(&yaml).is_ok());
    // `!` and `!` inside text are no tags.
    let yaml = format!(
        "%TAG !e! {prefix}\n---\nx: [{}]\n",
        vec!["\"!e!x a\""; 1000].join(", ")
    );
    assert!(crate::config::yaml::parse(&yaml).is_ok());
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
