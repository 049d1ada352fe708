//! What `check` says about settings that do nothing or cannot work (a cache too small
//! for one entry, a blank log format, a key written with no value…), each at its key
//! path, as `check` prints it.

use std::path::Path;

/// `check`'s errors for `yaml`.
fn errors(yaml: &str) -> Vec<String> {
    let report = crate::config::check_text_in(yaml, Path::new("."));
    report.errors.iter().map(ToString::to_string).collect()
}

/// `check`'s warnings for `yaml`, which has no error.
fn warnings(yaml: &str) -> Vec<String> {
    let report = crate::config::check_text_in(yaml, Path::new("."));
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors, Vec::<String>::new(), "{yaml}");
    report.warnings.iter().map(ToString::to_string).collect()
}

/// `yaml`'s warnings that start with `at`.
fn warned_at(yaml: &str, at: &str) -> Vec<String> {
    let all = warnings(yaml);
    all.into_iter().filter(|w| w.starts_with(at)).collect()
}

const APP: &str = "upstreams: { app: { targets: [\"127.0.0.1:9\"] } }\n";

/// Each worker keeps `capacity / workers` bytes of a stage's cache: below 1 KiB it
/// holds a few tiny answers at most (an 11-byte JSON answer's entry took 193 bytes), and
/// the warning fired only below 35 bytes, as if a capacity of 50 stored something.
#[test]
fn a_cache_too_small_for_a_few_entries_per_worker_is_a_warning() {
    let yaml = |workers: u32, route_cache: &str| {
        format!(
            "server: {{ workers: {workers} }}\n{APP}apis:\n  shop:\n    stages: {{ a: {{ cache: {{ capacity: 0 }} }}, b: {{ cache: {{ capacity: 4095 }} }}, c: {{ cache: {{ capacity: 4KiB }} }} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: http, upstream: app }}{route_cache} }}\n"
        )
    };
    let at = "apis.shop.stages";
    let tail = "room for a few tiny answers at most, or none: an entry counts its key, head and body, and an 11-byte JSON answer with a Server and a Date header takes about 190 bytes; give some MiB (as 64MiB)";
    let each = "workers (server.workers) keeps";
    assert_eq!(
        warned_at(&yaml(4, ", cache: {}"), at),
        [
            format!("{at}.a.cache.capacity: 0 bytes, each of the 4 {each} 0 of them: {tail}"),
            format!("{at}.b.cache.capacity: 4095 bytes, each of the 4 {each} 1023 of them: {tail}"),
        ]
    );
    // One worker keeps the whole capacity.
    let one = "bytes, all kept by the one worker (server.workers)";
    assert_eq!(
        warned_at(&yaml(1, ", cache: {}"), at),
        [format!("{at}.a.cache.capacity: 0 {one}: {tail}")]
    );
    // No route caches: nothing to say about the stages' caches.
    assert_eq!(warned_at(&yaml(4, ""), at), Vec::<String>::new());
    assert_eq!(
        warned_at(&yaml(4, ", cache: { ttl: 0s }"), at),
        Vec::<String>::new()
    );
}

/// A HEAD request goes to a HEAD route that matches, however general: beside a cached
/// GET route, such a route takes its HEAD requests, which are then never answered from
/// the cache (README, Response cache).
#[test]
fn a_head_route_beside_a_cached_get_route_is_a_warning() {
    let yaml = format!(
        r#"{APP}apis:
  shop:
    stages: {{ prod: {{ cache: {{ capacity: 1MiB }} }} }}
    routes:
      "GET /h": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
      "HEAD /h": {{ integration: {{ type: http, upstream: app }} }}
      "ANY /items/{{id}}": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
      "HEAD /{{proxy+}}": {{ integration: {{ type: http, upstream: app }} }}
      "GET /": {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
      "GET /put": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [GET, PUT] }} }}
      "PUT /only": {{ integration: {{ type: http, upstream: app }}, cache: {{ methods: [PUT] }} }}
      $default: {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}
"#
    );
    let r = "apis.shop.routes";
    let chosen = "(a HEAD route that matches is chosen, however general) and are never answered from this cache; without that route they would be";
    assert_eq!(
        warnings(&yaml),
        [
            format!(
                r#"{r}."GET /h".cache: HEAD requests for this route's paths go to route "HEAD /h" {chosen}"#
            ),
            format!(
                r#"{r}."ANY /items/{{id}}".cache: HEAD requests for the paths it shares with this route go to route "HEAD /{{proxy+}}" {chosen}"#
            ),
            format!(
                r#"{r}."GET /put".cache: HEAD requests for the paths it shares with this route go to route "HEAD /{{proxy+}}" {chosen}"#
            ),
            format!(
                r#"{r}.$default.cache: HEAD requests for the paths of route "HEAD /{{proxy+}}" go to it (a HEAD route that matches is chosen, however general), and those this route answers GETs for are never answered from this cache; without that route they would be"#
            ),
        ]
    );
    // `$default` gets no GET of a path some GET or ANY route matches: a HEAD route for
    // such paths takes nothing from its cache.
    let covered = (yaml.lines())
        .filter(|l| !l.contains("\"HEAD /{proxy+}\""))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert!(!warnings(&covered).iter().any(|w| w.contains("$default")));
    // Without HEAD routes, HEAD requests read the GET entries: nothing to say.
    let plain: String = (yaml.lines())
        .filter(|l| !l.contains("\"HEAD "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(warnings(&plain), Vec::<String>::new());
}

/// `route_response` sends a message route's answer back; on `$connect` the answer decides
/// the handshake, and `$disconnect` runs once the connection is closed.
#[test]
fn route_response_on_connect_or_disconnect_is_a_warning() {
    let yaml = "apis:\n  chat:\n    protocol: websocket\n    stages: { ws: {} }\n    routes:\n      $connect: { integration: { type: mock }, route_response: true }\n      $disconnect: { integration: { type: mock }, route_response: true }\n      echo: { integration: { type: mock }, route_response: true }\n";
    assert_eq!(
        warned_at(yaml, "apis.chat.routes"),
        [
            "apis.chat.routes.$connect.route_response: true on $connect sends the client nothing: its integration's answer decides the handshake (a 2xx completes it, any other is the answer to the upgrade request)",
            "apis.chat.routes.$disconnect.route_response: true on $disconnect sends the client nothing: it runs once the connection is closed: its answer goes nowhere",
        ]
    );
}

/// `allow_origins: []` (or none) matches no origin: the API's CORS does nothing but
/// answer preflights without CORS headers.
#[test]
fn cors_without_origins_is_a_warning() {
    let want = "apis.shop.cors.allow_origins: empty: no origin can match, so no answer carries CORS headers, and preflights are still answered here (204, without them), never by a route; list the origins, or remove `cors`";
    for cors in ["{ allow_origins: [] }", "{ allow_methods: [GET] }"] {
        let yaml = format!("apis:\n  shop:\n    cors: {cors}\n    stages: {{ prod: {{}} }}\n    routes: {{ \"GET /x\": {{ integration: {{ type: mock }} }} }}\n");
        assert_eq!(warnings(&yaml), [want], "{cors}");
        let listed = yaml.replace(cors, "{ allow_origins: [\"https://a.example\"] }");
        assert_eq!(warnings(&listed), Vec::<String>::new());
    }
}

const ROUTE: &str =
    "apis: { a: { stages: { $default: {} }, routes: { \"GET /\": { integration: { type: mock } } } } }\n";

/// A format with logging off (no `path`, or `off`) writes nothing.
#[test]
fn an_access_log_format_without_a_path_is_a_warning() {
    let want = "server.access_log.format: not used: access logging is off (`path` is absent or off), so nothing is written in this format; add path: stdout or a file path";
    for log in [
        "{ format: \"$context.requestId\" }",
        "{ path: off, format: x }",
    ] {
        let yaml = format!("server: {{ access_log: {log} }}\n{ROUTE}");
        assert_eq!(warnings(&yaml), [want], "{log}");
    }
    let on = format!("server: {{ access_log: {{ path: stdout, format: x }} }}\n{ROUTE}");
    assert_eq!(warnings(&on), Vec::<String>::new());
}

/// `$context.error.messageString` writes its own quotes: quoted again, the line is not
/// JSON, and the hint was to put each variable in quotes.
#[test]
fn a_quoted_message_string_is_told_to_lose_its_quotes() {
    let at = "server.access_log.format: it starts with {, so lines are meant to be JSON, but";
    let yaml = |format: &str| {
        format!("server: {{ access_log: {{ path: stdout, format: '{format}' }} }}\n{ROUTE}")
    };
    for var in [
        "$context.error.messageString",
        "${context.error.messageString}",
    ] {
        let out = warnings(&yaml(&format!(
            r#"{{"id":"$context.requestId","e":"{var}"}}"#
        )));
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].starts_with(&format!("{at} not JSON: ")), "{out:?}");
        let hint =
            ": $context.error.messageString writes its own quotes: remove the ones around it";
        assert!(out[0].ends_with(hint), "{out:?}");
        let fixed = warnings(&yaml(&format!(
            r#"{{"id":"$context.requestId","e":{var}}}"#
        )));
        assert_eq!(fixed, Vec::<String>::new());
    }
    // With another variable outside quotes, both are said.
    let out = warnings(&yaml(
        r#"{"l":$context.integrationLatency,"e":"$context.error.messageString"}"#,
    ));
    assert!(
        out[0].ends_with("remove the ones around it, and put each other $context variable in quotes (an empty value is logged as -)"),
        "{out:?}"
    );
}

/// Inside a longer quoted value messageString's own quotes end the string early: the
/// hint said to put each $context variable in quotes, which it already was.
#[test]
fn a_message_string_inside_quoted_text_is_told_to_stand_alone() {
    let yaml = |format: &str| {
        format!("server: {{ access_log: {{ path: stdout, format: '{format}' }} }}\n{ROUTE}")
    };
    let alone = ": $context.error.messageString writes its own quotes, so it must stand alone as a JSON value (\"err\":$context.error.messageString), not inside a quoted one";
    for format in [
        r#"{"id":"$context.requestId","err":"error: $context.error.messageString"}"#,
        r#"{"id":"$context.requestId","err":"${context.error.messageString}x"}"#,
    ] {
        let out = warnings(&yaml(format));
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].ends_with(alone), "{out:?}");
    }
    let out = warnings(&yaml(
        r#"{"l":$context.integrationLatency,"err":"e: $context.error.messageString"}"#,
    ));
    let other = "; and put each other $context variable in quotes (an empty value is logged as -)";
    assert!(out[0].ends_with(&format!("{alone}{other}")), "{out:?}");
}

/// The decoder notes a key written with no value that reads as "off" (`throttle:`
/// alone, `~`), at its path; `load::config` hands them to `Config::warnings`.
#[test]
fn a_key_with_no_value_that_means_off_is_noted_by_the_decoder() {
    use crate::config::decode::Decoder;
    use crate::config::yaml::{parse, Written};
    let text = "stages: [a/b]\nthrottle:\nquota: ~\n";
    let root = parse(text).unwrap().root;
    let written = Written::new(&root, &serde_yaml_ng::Value::Null);
    let env = |_: &str| None;
    let mut d = Decoder::new(&env, &written);
    let at = crate::config::KeyPath::root().key("usage_plans").key("p");
    let _ = d.fields(&root, &at, &["stages", "throttle", "quota"]);
    let got: Vec<String> = d.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "usage_plans.p.throttle: written with no value: no throttle here (it is read as absent); give { rate: N, burst: N }, or write `off` to say so",
            "usage_plans.p.quota: written with no value: no quota (it is read as absent); give { limit: N, period: day, week or month }, or remove the key, unless it is there to turn off the one a `<<:` merge gives",
        ]
    );
    assert!(d.errors.is_empty(), "{:?}", d.errors);
}

/// The same through `check`: `cache:`, `throttle:`, `quota: ~` and `cors:` with no value
/// are read as absent, "off", each said at its key.
#[test]
fn keys_with_no_value_that_mean_off_are_warnings() {
    let yaml = r#"
apis:
  shop:
    throttle:
    cors:
    stages: { prod: { throttle: ~, cache: } }
    routes:
      "GET /x": { integration: { type: mock }, cache: null, throttle: }
usage_plans:
  p: { stages: [shop/prod], throttle: ~, quota: ~ }
"#;
    let out: Vec<String> = (warnings(yaml).into_iter())
        .filter(|w| w.contains("written with no value"))
        .map(|w| w.split(": written").next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        out,
        [
            "apis.shop.throttle",
            "apis.shop.cors",
            "apis.shop.stages.prod.throttle",
            "apis.shop.stages.prod.cache",
            r#"apis.shop.routes."GET /x".throttle"#,
            r#"apis.shop.routes."GET /x".cache"#,
            "usage_plans.p.throttle",
            "usage_plans.p.quota",
        ]
    );
}

/// Under a `<<:` merge key a null is what turns a merged value off: removing the key
/// (what the advice said, alone) brings the merged cache back.
#[test]
fn the_advice_for_a_null_holds_under_a_merge_key() {
    let yaml = r#"
upstreams: { app: { targets: ["127.0.0.1:9"] } }
x-cached: &cached { integration: { type: http, upstream: app }, cache: { ttl: 60s } }
apis:
  shop:
    stages: { prod: { cache: { capacity: 1MiB } } }
    routes:
      "GET /a": *cached
      "GET /b": { <<: *cached, cache: ~ }
"#;
    let report = crate::config::check_text_in(yaml, Path::new("."));
    let out: Vec<String> = (report.warnings.iter().map(ToString::to_string))
        .filter(|w| w.contains("written with no value"))
        .collect();
    assert_eq!(
        out,
        [
            r#"apis.shop.routes."GET /b".cache: written with no value: no cache here (it is read as absent); give its settings (a stage's need a capacity; a route's `cache: {}` takes the defaults), or remove the key, unless it is there to turn off the one a `<<:` merge gives"#
        ]
    );
    let throttle = yaml.replace("cache: ~", "throttle: ~");
    let report = crate::config::check_text_in(&throttle, Path::new("."));
    assert!(
        (report.warnings.iter().map(ToString::to_string))
            .any(|w| w.ends_with("give { rate: N, burst: N }, or write `off` to say so")),
        "{:?}",
        report.warnings
    );
}

/// Each limit is blamed where it is wrong: `message: 0` was reported at `limits.frame`.
#[test]
fn websocket_limits_are_reported_at_the_limit_that_is_wrong() {
    let ws = |limits: &str| {
        format!("apis:\n  chat:\n    protocol: websocket\n    stages: {{ ws: {{}} }}\n    limits: {limits}\n    routes:\n      $default: {{ integration: {{ type: mock }} }}\n")
    };
    let at = "apis.chat.limits";
    let frame = format!("{at}.frame: a frame limit must be above 0 and at most the message limit");
    let message = "must be above 0: every message with content would be refused";
    assert_eq!(
        errors(&ws("{ message: 0 }")),
        [format!("{at}.message: {message}")]
    );
    for limits in ["{ frame: 0 }", "{ frame: 64KiB, message: 32KiB }"] {
        assert_eq!(errors(&ws(limits)), [frame.as_str()], "{limits}");
    }
    let big = errors(&ws("{ message: 32MiB }"));
    assert_eq!(big, [format!("{at}.message: at most 16MiB")]);
}

/// `cache` is HTTP only: on a WebSocket API it was accepted and never used, where `cors`
/// and `compression` are refused.
#[test]
fn a_cache_on_a_websocket_api_is_refused() {
    let yaml = format!("{APP}apis:\n  chat:\n    protocol: websocket\n    stages: {{ ws: {{ cache: {{ capacity: 1MiB }} }} }}\n    routes:\n      $default: {{ integration: {{ type: http, upstream: app }}, cache: {{}} }}\n");
    let no = "a WebSocket API has no cache: no handshake or message answer is stored";
    let got: Vec<String> = (errors(&yaml).into_iter())
        .filter(|e| e.contains(".cache:"))
        .collect();
    assert_eq!(
        got,
        [
            format!("apis.chat.stages.ws.cache: {no}"),
            format!("apis.chat.routes.$default.cache: {no}"),
        ]
    );
}

/// A format of blanks writes an empty line per request.
#[test]
fn an_empty_access_log_format_is_refused() {
    let want = "server.access_log.format: is empty: each line would be empty; give a format (with $context.requestId, as API Gateway asks), or remove the key for the default";
    for format in ["\"\"", "\"  \"", "\"\\n\"", "\" \\t\\n \""] {
        let yaml =
            format!("server: {{ access_log: {{ path: stdout, format: {format} }} }}\n{ROUTE}");
        assert_eq!(errors(&yaml), [want], "{format}");
    }
    let some = format!("server: {{ access_log: {{ path: stdout, format: x }} }}\n{ROUTE}");
    assert_eq!(errors(&some), Vec::<String>::new());
}
