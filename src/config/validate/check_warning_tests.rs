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

/// Each worker keeps `capacity / workers` bytes of a stage's cache: below the smallest
/// entry, nothing is ever stored, and `capacity: 0` was taken without a word.
#[test]
fn a_cache_too_small_for_one_entry_per_worker_is_a_warning() {
    let yaml = |route_cache: &str| {
        format!(
            "server: {{ workers: 4 }}\n{APP}apis:\n  shop:\n    stages: {{ a: {{ cache: {{ capacity: 0 }} }}, b: {{ cache: {{ capacity: 139 }} }}, c: {{ cache: {{ capacity: 140 }} }} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: http, upstream: app }}{route_cache} }}\n"
        )
    };
    let at = "apis.shop.stages";
    let tail = "workers (server.workers) keeps 0 bytes of it, and the smallest entry takes 35";
    assert_eq!(
        warned_at(&yaml(", cache: {}"), at),
        [
            format!("{at}.a.cache.capacity: 0 bytes: nothing will be stored: each of the 4 {tail}"),
            format!(
                "{at}.b.cache.capacity: 139 bytes: nothing will be stored: each of the 4 {}",
                tail.replace("keeps 0", "keeps 34")
            ),
        ]
    );
    // No route caches: nothing to say about the stages' caches.
    assert_eq!(warned_at(&yaml(""), at), Vec::<String>::new());
    assert_eq!(
        warned_at(&yaml(", cache: { ttl: 0s }"), at),
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
        ]
    );
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
            "usage_plans.p.throttle: written with no value: no throttle here (it is read as absent); give { rate: N, burst: N }, or write `off` or remove the key to say so",
            "usage_plans.p.quota: written with no value: no quota (it is read as absent); give { limit: N, period: day, week or month }, or remove the key",
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
