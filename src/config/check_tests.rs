//! What `check` (and a reload) reports when several things are wrong: each stage runs on
//! whatever the decoder made of the file, and skips only what an earlier error explains.

/// `check`'s errors for `yaml`, as printed.
pub(super) fn errors(yaml: &str) -> Vec<String> {
    super::check_text_in(yaml, std::path::Path::new("."))
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_list_item_that_fails_to_decode_does_not_renumber_the_others() {
    // The third address repeats the second: not "listen[1] is used by listen[0]".
    let out = errors("server: { listen: [12, \"127.0.0.1:28089\", \"127.0.0.1:28089\"] }\n");
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].starts_with("server.listen[0]: expected"), "{out:?}");
    let used = "server.listen[2]: 127.0.0.1:28089 is already used by server.listen[1]";
    assert_eq!(out[1], used);
    // The third key's plan is not blamed on the second.
    let out = errors(
        "api_keys:\n  - { name: a, vale: x }\n  - { name: b, value: bbbbbbbbbbbbbbbbbbbbbbbbb }\n  - { name: c, value: cccccccccccccccccccccccc, plan: nope }\n",
    );
    assert!(out.iter().all(|e| !e.starts_with("api_keys[1]")), "{out:?}");
    assert!(out.iter().any(|e| e.starts_with("api_keys[0]")), "{out:?}");
    // Without decode errors the same list is numbered as written.
    let out = errors("server: { listen: [\"127.0.0.1:28089\", \"127.0.0.1:28089\"] }\n");
    assert_eq!(
        out,
        ["server.listen[1]: 127.0.0.1:28089 is already used by server.listen[0]"]
    );
}

#[test]
fn a_misspelt_key_hides_nothing_about_its_siblings() {
    let yaml = r#"
apis:
  shop:
    stages: { prod: {} }
    throtle: { rate: 1 }
    routes:
      "GET /w": { integration: { type: http, upstream: users }, apikey_required: true }
      "GTE /y": { integration: { type: mock } }
  x:
    stage: { prod: {} }
    routes:
      "GET /q": { integration: { type: mock, status: 99 } }
      "GET /z": { integration: { type: mock, statuz: 200, status: 700 } }
server: { listen: ["127.0.0.1:28090"], workerz: 2, workers: 999 }
"#;
    let out: Vec<String> = super::check_text_in(yaml, std::path::Path::new("."))
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        out,
        [
            r#"server: unknown key "workerz" (did you mean "workers"?)"#,
            r#"apis.shop: unknown key "throtle" (did you mean "throttle"?)"#,
            r#"apis.shop.routes."GET /w": unknown key "apikey_required" (did you mean "api_key_required"?)"#,
            r#"apis.x: unknown key "stage" (did you mean "stages"?)"#,
            r#"apis.x.routes."GET /z".integration: unknown key "statuz" (did you mean "status"?)"#,
            r#"server.workers: at most 256, got 999"#,
            r#"apis.shop.routes."GET /w".integration.upstream: no upstream named "users""#,
            r#"apis.shop.routes."GTE /y": unknown method "GTE"; use one of GET POST PUT DELETE PATCH HEAD OPTIONS ANY"#,
            r#"apis.x.routes."GET /q".integration.status: must be an HTTP status 200–599, got 99"#,
            r#"apis.x.routes."GET /z".integration.status: must be an HTTP status 200–599, got 700"#,
        ],
        // Not "apis.x.stages: an API needs at least one stage": the key meant is missing
        // because of the misspelling already reported. But a key meant that is there
        // too (`workers` beside `workerz`) has its own problems shown.
    );
}

#[test]
fn a_message_names_a_list_item_by_its_place_in_the_file() {
    // The first address failed to decode, so the decoded list was one shorter: the
    // message said `server.listen[0]`, the item that failed.
    let yaml = r#"
server: { listen: ["bad", "127.0.0.1:21080"], tls_listen: ["127.0.0.1:21080"] }
admin: { listen: "127.0.0.1:21080", token: t }
"#;
    let out: Vec<String> = super::check_text_in(yaml, std::path::Path::new("."))
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    let used = "127.0.0.1:21080 is already used by server.listen[1]";
    assert!(
        out.contains(&format!("server.tls_listen[0]: {used}")),
        "{out:?}"
    );
    assert!(out.contains(&format!("admin.listen: {used}")), "{out:?}");
}

#[test]
fn renumbering_touches_only_the_list_named() {
    use super::renumber;
    let kept = [1, 3];
    assert_eq!(
        renumber("a.l[0] and a.l[1]", "a.l", &kept),
        "a.l[1] and a.l[3]"
    );
    assert_eq!(renumber("a.l[1].b[0]: x", "a.l", &kept), "a.l[3].b[0]: x");
    // Another list whose path ends alike, a longer key, the list itself, no such item.
    for same in [
        "x.a.l[0]",
        "a.l_x[0]",
        "a.l: empty",
        "a.l[7]",
        "a.l[",
        "a.l[q]",
    ] {
        assert_eq!(renumber(same, "a.l", &kept), same);
    }
}

#[test]
fn a_bad_item_hides_nothing_about_the_other_items_of_its_list() {
    // They waited until the bad item was fixed: only `[0]` was reported.
    let yaml = r#"
server:
  listen: ["bad", "127.0.0.1:0", "127.0.0.1:21080", "127.0.0.1:21080"]
"#;
    assert_eq!(
        errors(yaml),
        [
            r#"server.listen[0]: expected an address like 127.0.0.1:8080 or localhost:8080, got "bad""#,
            "server.listen[1]: 127.0.0.1:0: port 0 is no fixed port; give one",
            "server.listen[3]: 127.0.0.1:21080 is already used by server.listen[2]",
        ]
    );
    // What depends on the bad item still waits: with every item bad, the list is not
    // also reported empty.
    assert_eq!(errors("server: { listen: [bad] }\n").len(), 1);
}

#[test]
fn every_value_of_a_throttle_or_quota_is_checked_at_once() {
    // A bad burst or limit left the throttle or quota out, and with it the check of
    // its rate or offset.
    let yaml = r#"
server: { throttle: { rate: -1, burst: 1.5 } }
apis:
  a:
    throttle: { rate: .nan, burst: 1 }
    stages: { prod: { throttle: { rate: -2, burst: 1 } } }
    routes:
      "GET /x": { integration: { type: mock }, throttle: { rate: -0.5, burst: 1 } }
usage_plans:
  p: { throttle: { rate: -3, burst: x }, quota: { limit: x, period: month, offset: 30 } }
  w: { quota: { limit: 10, period: week, offset: 7 } }
  d: { quota: { limit: 10, period: day, offset: 0 } }
"#;
    assert_eq!(
        errors(yaml),
        [
            "server.throttle.rate: must be a number ≥ 0, got -1",
            "server.throttle.burst: expected a whole number ≥ 0, got 1.5",
            "apis.a.throttle.rate: must be a number ≥ 0, got NaN",
            "apis.a.stages.prod.throttle.rate: must be a number ≥ 0, got -2",
            r#"apis.a.routes."GET /x".throttle.rate: must be a number ≥ 0, got -0.5"#,
            "usage_plans.p.throttle.rate: must be a number ≥ 0, got -3",
            r#"usage_plans.p.throttle.burst: expected a whole number ≥ 0, got "x""#,
            r#"usage_plans.p.quota.limit: expected a whole number ≥ 0, got "x""#,
            "usage_plans.p.quota.offset: at most 27 for this period, got 30",
            "usage_plans.w.quota.offset: at most 6 for this period, got 7",
        ]
    );
}

#[test]
fn a_key_written_twice_hides_nothing_in_the_value_kept() {
    // The first of each pair is read: its errors were dropped as if it had failed to
    // decode, so they only appeared once the duplicates were deleted.
    let out = errors(
        r#"
upstreams:
  u: { targets: ["127.0.0.1:1"], connect_timeout: 0s }
  u: { targets: ["127.0.0.1:2"] }
apis:
  shop:
    stages: { prod: {} }
    routes:
      "GET /x": { integration: { type: http, upstream: nope } }
      "GET /x": { integration: { type: mock } }
"#,
    );
    let twice = "this key is written twice in its map (the first one is read)";
    assert_eq!(
        out,
        [
            format!("upstreams.u: {twice}"),
            format!(r#"apis.shop.routes."GET /x": {twice}"#),
            "upstreams.u.connect_timeout: must be more than 0".to_string(),
            r#"apis.shop.routes."GET /x".integration.upstream: no upstream named "nope""#
                .to_string(),
        ]
    );
}

#[test]
fn an_access_log_path_that_is_a_directory_is_a_warning() {
    // access(W_OK) passes for a writable directory; `run` cannot open it to append.
    let dir = std::env::temp_dir();
    let yaml = format!(
        "server: {{ access_log: {{ path: \"{}\" }} }}\napis:\n  a: {{ stages: {{ $default: {{}} }}, routes: {{ \"GET /x\": {{ integration: {{ type: mock }} }} }} }}\n",
        dir.display()
    );
    let report = super::check_text_in(&yaml, std::path::Path::new("."));
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [format!(
            "server.access_log.path: {} is a directory: `run` would drop every access-log line",
            dir.display()
        )]
    );
}

#[test]
fn an_infinite_rate_says_how_no_limit_is_written() {
    // README: a rate of 1e9 or more is no limit; `.inf` was refused as "must be a number
    // ≥ 0, got inf", which it is.
    let out = errors("server: { throttle: { rate: .inf, burst: 1 } }\n");
    assert_eq!(
        out,
        ["server.throttle.rate: must be a finite number ≥ 0 (for no limit, 1e9 or more, or throttle: off), got inf"]
    );
}

#[test]
fn a_header_value_with_a_control_character_is_refused_where_it_is_written() {
    // Sent as spaces, the header would not say what the config shows.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    gateway_responses:\n",
        "      DEFAULT_4XX: { headers: { x-g: \"a\\r\\nx-inj: 1\" } }\n",
        "    routes:\n",
        "      \"GET /m\": { integration: { type: mock, headers: { x-m: \"a\\u0000b\", x-tab: \"a\\tb\" } } }\n",
        "      \"GET /h\":\n        integration: { type: http, upstream: u }\n",
        "        parameters: { \"overwrite:header.x-p\": \"v\\nw\" }\n",
        "        response_parameters: { \"200\": { \"overwrite:header.x-r\": \"v\\rw\" } }\n",
        "    stages: { $default: {} }\n",
    ));
    for at in [
        "apis.a.gateway_responses.DEFAULT_4XX.headers.x-g:",
        "apis.a.routes.\"GET /m\".integration.headers.x-m:",
        "apis.a.routes.\"GET /h\".parameters.\"overwrite:header.x-p\":",
        "apis.a.routes.\"GET /h\".response_parameters.200.\"overwrite:header.x-r\":",
    ] {
        assert!(
            out.iter()
                .any(|e| e.starts_with(at) && e.contains("control character")),
            "{at}: {out:?}"
        );
    }
    assert_eq!(out.len(), 4, "a tab is fine: {out:?}");
}

#[test]
fn a_key_with_a_line_break_is_shown_on_one_line() {
    let out = errors(
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n      \"GET /a\\nb\": { integration: { type: mock } }\n",
    );
    assert!(!out.is_empty(), "{out:?}");
    assert!(out.iter().all(|e| !e.contains('\n')), "{out:?}");
    assert!(
        out.iter()
            .any(|e| e.starts_with(r#"apis.a.routes."GET /a\nb""#)),
        "{out:?}"
    );
}

#[test]
fn lambda_identity_sources_no_request_can_carry_are_refused() {
    let yaml = r#"
apis:
  shop:
    stages:
      prod: { variables: { env: p, only: x } }
      dev: { variables: { env: d } }
    authorizers:
      gate:
        type: lambda
        url: http://127.0.0.1:9000/2015-03-31/functions/authz/invocations
        identity_source: ["$request.header.a,b", "$request.header.a b", "$request.header.a:b", "$request.querystring.a b", "$stageVariables.nope", "$stageVariables.env", "$stageVariables.only", "$request.header.X-Token", "$request.querystring.t", "$context.identity.userArn", "context.identity.cognitoIdentityId", "$context.identity.sourceIp"]
    routes:
      "GET /a": { authorizer: gate, integration: { type: mock } }
"#;
    let at = |i: usize| format!("apis.shop.authorizers.gate.identity_source[{i}]: ");
    let want = [
        at(0) + r#""$request.header.a,b": "a,b" is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"#,
        at(1) + r#""$request.header.a b": "a b" is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"#,
        at(2) + r#""$request.header.a:b": "a:b" is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"#,
        at(3) + r#""$request.querystring.a b": "a b" is not a query parameter name (it cannot hold ' ')"#,
        r#"apis.shop.stages.prod.variables: no variable "nope", used by authorizers.gate.identity_source[4]"#.into(),
        r#"apis.shop.stages.dev.variables: no variable "nope", used by authorizers.gate.identity_source[4]"#.into(),
        r#"apis.shop.stages.dev.variables: no variable "only", used by authorizers.gate.identity_source[6]"#.into(),
        at(9) + "$context.identity.userArn is always empty here (it is set only on `authorization: iam` routes, never on a Lambda authorizer's), so every request would be refused 401",
        at(10) + "$context.identity.cognitoIdentityId is always empty here (Portico never sets it), so every request would be refused 401",
    ];
    let mut out = errors(yaml);
    out.sort();
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(out, want);
}

#[test]
fn a_stage_variable_that_puts_a_control_character_in_a_header_is_refused() {
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { s: { variables: { v: \"a\\r\\nx-inj: 1\", ok: fine }, canary: { percent: 1, variables: { ok: \"b\\u0001\" } } } }\n",
        "    gateway_responses: { DEFAULT_4XX: { headers: { x-g: \"$stageVariables.v\", x-k: \"$stageVariables.ok\" } } }\n",
        "    routes:\n",
        "      \"GET /m\": { integration: { type: mock, headers: { x-b: \"${stageVariables.v}\", x-ok: \"${stageVariables.ok}\" } } }\n",
        "      \"GET /h\":\n        integration: { type: http, upstream: u }\n",
        "        response_parameters: { \"200\": { \"overwrite:header.x-v\": \"$stageVariables.v\" } }\n",
    ));
    let why = "a header value can't hold the control character '\\r', from stage variable \"v\" in stage \"s\"";
    // Not `in stage "s"`, whose own value is fine.
    let canary = "a header value can't hold the control character '\\u{1}', from stage variable \"ok\" in the canary of stage \"s\"";
    assert_eq!(
        out,
        [
            format!("apis.a.routes.\"GET /m\".integration.headers.x-b: {why}"),
            format!("apis.a.routes.\"GET /m\".integration.headers.x-ok: {canary}"),
            format!(
                "apis.a.routes.\"GET /h\".response_parameters.200.\"overwrite:header.x-v\": {why}"
            ),
            format!("apis.a.gateway_responses.DEFAULT_4XX.headers.x-g: {why}"),
            format!("apis.a.gateway_responses.DEFAULT_4XX.headers.x-k: {canary}"),
        ],
    );
}

#[test]
fn a_key_that_would_show_reversed_is_shown_escaped() {
    let out = errors(
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n      \"GET /a\\u202Eb\\u2028c\": { integration: { type: mock } }\n",
    );
    assert!(
        out.iter()
            .any(|e| e.starts_with(r#"apis.a.routes."GET /a\u{202e}b\u{2028}c""#)),
        "{out:?}"
    );
}

#[test]
fn listeners_that_overlap_through_a_wildcard_are_refused() {
    // `0.0.0.0:P` beside `127.0.0.1:P` passed: with SO_REUSEPORT both bound, and the
    // port was TLS on loopback and plain HTTP on every other address; beside the admin
    // listener (no SO_REUSEPORT) `run` failed with "Address already in use".
    let out = errors(
        r#"
server:
  listen: ["0.0.0.0:21480", "[::]:21481", "[::ffff:127.0.0.1]:21482", "[::1]:21483"]
  tls_listen: ["127.0.0.1:21480", "127.0.0.1:21481", "127.0.0.1:21482", "0.0.0.0:21483"]
admin: { listen: "0.0.0.0:21481", token: t }
domains:
  a.example.com: { cert: c.pem, key: k.pem }
"#,
    );
    let out: Vec<&String> = out.iter().filter(|e| !e.starts_with("domains")).collect();
    let also = "so one listener would take the other's connections (or fail to bind); give them different ports, or keep one";
    let dual = "[::]:21481 is dual-stack: it takes IPv4 connections too";
    assert_eq!(
        out,
        [
            &format!("server.tls_listen[0]: 127.0.0.1:21480 overlaps 0.0.0.0:21480 at server.listen[0]: one listens on the other's addresses on port 21480, {also}"),
            // `[::]` is dual-stack: listeners keep the system's IPV6_V6ONLY (off).
            &format!("server.tls_listen[1]: 127.0.0.1:21481 overlaps [::]:21481 at server.listen[1]: one listens on the other's addresses on port 21481 ({dual}), {also}"),
            // An IPv4-mapped address is the IPv4 address: one socket address, however
            // written (two listeners of one kind on it bound twice).
            &"server.tls_listen[2]: 127.0.0.1:21482 is already used by server.listen[2]".to_string(),
            &format!("admin.listen: 0.0.0.0:21481 overlaps [::]:21481 at server.listen[1]: one listens on the other's addresses on port 21481 ({dual}), {also}"),
        ]
    );
    // An IPv4 wildcard covers no IPv6 address, and other ports are other sockets. Two
    // plain listeners that overlap (nginx's `listen 80; listen [::]:80;` written here)
    // bind and serve alike: only the admin listener beside them is refused.
    let mapped =
        errors("server: { listen: [\"[::ffff:127.0.0.1]:21494\", \"127.0.0.1:21494\"] }\n");
    assert_eq!(
        mapped,
        ["server.listen[1]: 127.0.0.1:21494 is already used by server.listen[0]"]
    );
    let out = errors(
        "server: { listen: [\"0.0.0.0:21490\", \"[::1]:21490\", \"127.0.0.1:21491\", \"[::]:21492\", \"[::1]:21492\", \"0.0.0.0:21492\"], tls_listen: [\"[::]:21493\", \"0.0.0.0:21493\"] }\nadmin: { listen: \"127.0.0.2:21490\", token: t }\ndomains:\n  a.example.com: { cert: c.pem, key: k.pem }\n",
    );
    let out: Vec<&String> = out.iter().filter(|e| !e.starts_with("domains")).collect();
    assert_eq!(
        out,
        [
            &format!("admin.listen: 127.0.0.2:21490 overlaps 0.0.0.0:21490 at server.listen[0]: one listens on the other's addresses on port 21490, {also}"),
        ]
    );
}

#[test]
fn a_key_read_as_the_text_of_another_is_written_twice() {
    // YAML keeps `200:` (a number) and `"200":` (a string) apart; Portico reads both as
    // "200", and the second was silently dropped. `1.10:` is "1.10", not "1.1".
    let out = errors(
        r#"
apis:
  a:
    stages: { $default: { variables: { 1: one, "1": uno, true: x, "true": y, 1.10: a, "1.1": b } } }
    routes:
      "GET /x":
        integration: { type: mock, status: 99 }
        response_parameters:
          200: { "overwrite:statuscode": "99" }
          "200": { "overwrite:header.x-r": "b" }
"#,
    );
    let twice = |spelt: &str, text: &str| {
        format!("this key is written twice in its map, as {spelt} and as \"{text}\", both read as the text \"{text}\" (the first one is read)")
    };
    assert_eq!(
        out,
        [
            format!("apis.a.stages.$default.variables.1: {}", twice("1 (a number)", "1")),
            format!("apis.a.stages.$default.variables.true: {}", twice("true (a boolean)", "true")),
            format!(r#"apis.a.routes."GET /x".response_parameters.200: {}"#, twice("200 (a number)", "200")),
            // The first one's value is checked as any other.
            r#"apis.a.stages.$default.variables."1.10": variable names are 1–64 letters, digits or _"#.to_string(),
            r#"apis.a.stages.$default.variables."1.1": variable names are 1–64 letters, digits or _"#.to_string(),
            r#"apis.a.routes."GET /x".integration.status: must be an HTTP status 200–599, got 99"#.to_string(),
            r#"apis.a.routes."GET /x".response_parameters.200."overwrite:statuscode": must be a status 200–599 other than 204, 205 and 304 (the body is already framed), got "99""#.to_string(),
        ]
    );
}

#[test]
fn a_status_key_is_three_digits() {
    // "0200" and "+200" parsed as 200, beside "200": one of them was not applied.
    let out = errors(
        r#"
apis:
  a:
    stages: { $default: {} }
    routes:
      "GET /x":
        integration: { type: mock }
        response_parameters:
          "0200": { "overwrite:header.x-r": "a" }
          "+201": { "overwrite:header.x-r": "b" }
          "202": { "overwrite:header.x-r": "c" }
"#,
    );
    let at = r#"apis.a.routes."GET /x".response_parameters"#;
    let why = "keys are status codes 200–599 of the integration's response, in three digits";
    assert_eq!(
        out,
        [format!("{at}.0200: {why}"), format!("{at}.\"+201\": {why}")]
    );
}

#[test]
fn one_header_in_two_cases_is_refused() {
    // Both were applied: the backend got two x-p lines from two "overwrite"s, a client
    // two x-dup headers.
    let out = errors(
        r#"
upstreams:
  u: { targets: ["127.0.0.1:1"] }
apis:
  a:
    stages: { $default: {} }
    gateway_responses:
      DEFAULT_4XX: { status: 418, headers: { X-A: first, x-a: second } }
    routes:
      "GET /x":
        integration: { type: mock, headers: { X-Dup: one, x-dup: two } }
        response_parameters:
          "200": { "append:header.X-R": "a", "append:header.x-r": "b", "overwrite:header.x-r": "c" }
      "GET /y":
        integration: { type: http, upstream: u }
        parameters: { "overwrite:header.X-P": "a", "overwrite:header.x-p": "b", "append:header.x-p": "c", "overwrite:querystring.Q": "d", "overwrite:querystring.q": "e" }
"#,
    );
    let same = |first: &str| {
        format!("names the same header as {first:?} (header names have no case), so both would be sent; keep one")
    };
    let x = r#"apis.a.routes."GET /x""#;
    assert_eq!(
        out,
        [
            format!("{x}.integration.headers.x-dup: {}", same("X-Dup")),
            format!(
                r#"{x}.response_parameters.200."append:header.x-r": {}"#,
                same("append:header.X-R")
            ),
            format!(
                r#"apis.a.routes."GET /y".parameters."overwrite:header.x-p": {}"#,
                same("overwrite:header.X-P")
            ),
            format!(
                "apis.a.gateway_responses.DEFAULT_4XX.headers.x-a: {}",
                same("X-A")
            ),
        ]
    );
}

#[test]
fn a_security_key_with_no_value_is_refused() {
    // `authorizer:` with nothing after it read as absent: the route was served open.
    let yaml = r#"
admin:
apis:
  a:
    stages: { $default: {} }
    authorizers:
      jwt: { type: jwt, issuer: "https://issuer.example", audience: [x], jwks_uri: "https://issuer.example/jwks" }
    routes:
      "GET /a": { integration: { type: mock }, authorizer: }
      "GET /b": { integration: { type: mock }, api_key_required: ~ }
      "GET /c": { integration: { type: mock }, authorization: null }
      "GET /d": { integration: { type: mock }, authorizer: jwt, authorization_scopes: }
"#;
    let report = super::check_text_in(yaml, std::path::Path::new("."));
    let r = r#"apis.a.routes."GET"#;
    let show = |list: &[super::ConfigError]| -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        show(&report.errors),
        [
            format!("{r} /a\".authorizer: no value; remove the key or give an authorizer's name"),
            format!("{r} /b\".api_key_required: no value; remove the key or give true or false"),
            format!("{r} /c\".authorization: no value; remove the key or give iam or none"),
            format!(
                "{r} /d\".authorization_scopes: no value; remove the key or give a list of scopes"
            ),
        ]
    );
    // No admin listener either, but that opens nothing: a warning.
    assert_eq!(
        show(&report.warnings),
        ["admin: no value: no admin listener; write `admin: {}` for one with the defaults, or remove the key"]
    );
}

#[test]
fn a_body_limit_of_0_is_a_warning() {
    // nginx's `client_max_body_size 0` is no limit; here every POST got 413, unsaid.
    let report = super::check_text_in(
        "server: { limits: { max_body_bytes: 0 } }\napis: {}\n",
        std::path::Path::new("."),
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings.contains(&"server.limits.max_body_bytes: 0: every request with a body is refused with 413 (this is not nginx's 0, no limit); give the largest body to accept".to_string()),
        "{warnings:?}"
    );
}

#[test]
fn a_body_budget_below_one_body_is_a_warning() {
    let warned = |limits: &str| {
        let yaml = format!("server: {{ limits: {{ {limits} }} }}\napis: {{}}\n");
        let report = super::check_text_in(&yaml, std::path::Path::new("."));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report.warnings.iter().any(|w| {
            w.to_string()
                .starts_with("server.limits.max_buffered_bodies_bytes: ")
        })
    };
    assert!(warned("max_buffered_bodies_bytes: 0"));
    assert!(
        warned("max_buffered_bodies_bytes: 10MiB"),
        "the default body, doubled"
    );
    assert!(!warned("max_buffered_bodies_bytes: 20MiB"));
    assert!(!warned(""), "the defaults");
    assert!(warned(
        "max_body_bytes: 1KiB, max_buffered_bodies_bytes: 16KiB"
    ));
}

#[test]
fn workers_says_what_it_takes() {
    // It said "a whole number ≥ 0": 0 is refused, and `auto` is taken.
    let expected = "expected auto or a number of workers, 1 to 256";
    assert_eq!(
        errors("server: { workers: \"2\" }\napis: {}\n"),
        [format!(
            r#"server.workers: {expected}, got "2" (write a number without quotes)"#
        )]
    );
    assert_eq!(
        errors("server: { workers: -1 }\napis: {}\n"),
        [format!("server.workers: {expected}, got -1")]
    );
    assert_eq!(
        errors("server: { workers: 0 }\napis: {}\n"),
        ["server.workers: must be auto or at least 1"]
    );
}

#[test]
fn a_route_key_with_blanks_at_its_ends_says_so() {
    // It said: unknown method "$default".
    let out = errors(
        r#"
apis:
  a:
    stages: { $default: {} }
    routes:
      "$default ": { integration: { type: mock } }
      " GET /x": { integration: { type: mock } }
"#,
    );
    assert_eq!(
        out,
        [
            r#"apis.a.routes."$default ": the key has blanks at its ends: write "$default""#,
            r#"apis.a.routes." GET /x": the key has blanks at its ends: write "GET /x""#,
        ]
    );
}

/// Each mistake once: a list whose items all failed is not also "empty", a value refused
/// for its tag is not refused again as the value read, and a file that is no map has no
/// warning about the defaults in its place.
#[test]
fn each_mistake_is_reported_once() {
    let out = errors("server: { compression: { types: [foo], algorithms: [zstd] } }\n");
    assert_eq!(out.len(), 2, "{out:?}");
    let out = errors("server: { compression: { types: [], algorithms: [] } }\n");
    assert_eq!(out.len(), 2, "{out:?}");
    let out = errors("server: { workers: !!float hi, listen: !!binary aGk= }\n");
    assert_eq!(out.len(), 2, "{out:?}");
    // Nor for what is in it (`!!set`'s members have no values).
    let out = errors("apis: { a: { stages: { s: { variables: !!set { ? x, ? y } } } } }\nserver: { workers: 0 }\n");
    assert_eq!(out.len(), 2, "{out:?}");
    let report = super::check_text_in("- a\n", std::path::Path::new("."));
    assert_eq!((report.errors.len(), report.warnings.len()), (1, 0));
}

/// `payload_format` is one value however it is written: `1`, `"1"`, `1.0`, `"1.0"`
/// (unquoted `1` was taken and quoted `"1"` refused).
#[test]
fn payload_formats_written_as_numbers_or_text_are_one() {
    for ok in [
        "1", "\"1\"", "1.0", "\"1.0\"", "2", "\"2\"", "2.0", "\"2.0\"",
    ] {
        let yaml = format!("apis:\n  a:\n    stages: {{ s: {{}} }}\n    routes:\n      \"GET /f\": {{ integration: {{ type: lambda, url: \"http://127.0.0.1:9/f\", payload_format: {ok} }} }}\n");
        assert_eq!(errors(&yaml), Vec::<String>::new(), "{ok}");
    }
    let yaml = "apis:\n  a:\n    stages: { s: {} }\n    routes:\n      \"GET /f\": { integration: { type: lambda, url: \"http://127.0.0.1:9/f\", payload_format: \"3\" } }\n";
    assert_eq!(errors(yaml).len(), 1);
}

/// A health-check interval under the checker's 100 ms tick is refused: checks ran every
/// 100 ms all the same, each waiting the interval (`1ms`) for its answer.
#[test]
fn a_health_interval_under_100ms_is_refused() {
    let yaml = |i: &str| {
        format!(
            "upstreams: {{ u: {{ targets: [\"127.0.0.1:9\"], health: {{ interval: {i} }} }} }}\n"
        )
    };
    assert_eq!(
        errors(&yaml("1ms")),
        ["upstreams.u.health.interval: at least 100ms (the checker runs every 100 ms, and a check waits at most the interval for its answer), got 1ms"]
    );
    assert_eq!(errors(&yaml("100ms")), Vec::<String>::new());
}

/// A route's model reaching more than 256 models in a row through references is refused:
/// the validator's calls for 4,000 overflowed the worker's stack at the first invalid body.
#[test]
fn a_routes_model_reaching_too_many_models_in_a_row_is_refused() {
    let mut yaml = String::from("apis:\n  a:\n    stages: { s: {} }\n    models:\n");
    for i in 0..300 {
        yaml.push_str(&format!(
            "      M{i}: {{ allOf: [ {{ $ref: \"#/models/M{}\" }} ] }}\n",
            i + 1
        ));
    }
    yaml.push_str("      M300: { type: object }\n    routes:\n      \"POST /v\": { request_validator: all, request_model: M0, integration: { type: mock } }\n");
    let out = errors(&yaml);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("apis.a.models.M0: reaches 301 models in a row"),
        "{out:?}"
    );
}
