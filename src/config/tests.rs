//! Loading and validation tests: exact key paths for every kind of error, several errors
//! at once, and one file with every key.

use std::net::SocketAddr;
use std::time::Duration;

use super::load::{load_file, load_str, load_str_with_env};
use super::model::*;
use super::validate::validate;
use super::{load_and_validate, ConfigError, ConfigErrors, MAX_FILE_BYTES};

/// Every key the config file has, in one file (README, Config reference).
const FULL_EXAMPLE: &str = r#"server:
  listen: ["127.0.0.1:8080"]          # plain HTTP listeners
  tls_listen: ["0.0.0.0:8443"]        # TLS listeners; certificates come from domains:
  workers: auto                       # or a number
  driver: auto                        # auto | io_uring | epoll
  limits:
    max_header_bytes: 10240           # request line + headers → 431 past it
    max_body_bytes: 10485760          # → 413
    header_timeout: 10s               # → 408
    idle_timeout: 60s                 # keep-alive idle
    drain_timeout: 30s
  access_log:
    path: stdout                      # stdout | off | a file path
    format: '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","routeKey":"$context.routeKey","status":"$context.status","latencyMs":"$context.responseLatency"}'

admin:
  listen: "127.0.0.1:9901"
  token: ${env:PORTICO_ADMIN_TOKEN}   # bearer token for everything but /health and /metrics

state_dir: ./state                    # embedded store: created keys, usage counters

upstreams:
  users:
    targets: ["127.0.0.1:9001", "127.0.0.1:9002"]
    balance: round_robin              # round_robin | least_conn | random
    connect_timeout: 2s
    pool: { max_idle_per_worker: 256, idle_timeout: 60s }
    health: { path: /healthz, interval: 5s, unhealthy_after: 3, healthy_after: 2 }

apis:
  shop:
    protocol: http                    # http | websocket
    throttle: { rate: 10000, burst: 5000 }          # default for every stage and route
    cors:
      allow_origins: ["https://example.com"]
      allow_methods: [GET, POST]
      allow_headers: [content-type, authorization, x-api-key]
      max_age: 10m
    stages:
      prod:
        variables: { backend: users, version: v1 }
        throttle: { rate: 1000, burst: 2000 }
        canary: { percent: 10, variables: { version: v2 } }
        cache: { capacity: 64MiB }
    routes:                           # route keys as in AWS: "METHOD /path", ANY, {param}, {proxy+}, $default
      "GET /users/{id}":
        integration: { type: http, upstream: "${stageVariables.backend}", path: "/${stageVariables.version}/users/{id}", timeout: 29s }
        api_key_required: true
        throttle: { rate: 100, burst: 50 }
        cache: { ttl: 30s, key: [path.id, querystring.lang] }
        parameters:                   # HTTP-API-style parameter mapping
          "overwrite:header.x-tenant": "$request.header.x-org"
          "remove:querystring.debug": ""
      "ANY /orders/{proxy+}":
        integration: { type: lambda, url: "http://127.0.0.1:9000/2015-03-31/functions/function/invocations", payload_format: "2.0" }
      "GET /ping":
        integration: { type: mock, status: 200, headers: { content-type: application/json }, body: '{"ok":true}' }
      "$default":
        integration: { type: http, upstream: users }

domains:                              # custom domain names
  api.example.com:
    cert: certs/api.example.com.pem
    key: certs/api.example.com.key
    client_ca: certs/clients.pem      # optional: mutual TLS
    mappings: { "": shop/prod, "v2": shop/beta }   # base path → api/stage

usage_plans:
  gold:
    stages: [shop/prod]
    throttle: { rate: 100, burst: 200 }
    quota: { limit: 100000, period: day }          # day | week | month (UTC)

api_keys:
  - { name: alice, value: "${env:ALICE_KEY}", plan: gold }
"#;

fn test_env(name: &str) -> Option<String> {
    match name {
        "ALICE_KEY" => Some("alice-secret-key-0123456789".into()),
        "PORTICO_ADMIN_TOKEN" => Some("admin-token".into()),
        "TEST_WORKERS" => Some("3".into()),
        "TEST_PORT" => Some("8181".into()),
        _ => None,
    }
}

fn load(yaml: &str) -> Config {
    load_str_with_env(yaml, &test_env).unwrap_or_else(|e| panic!("load failed:\n{e}"))
}

fn load_errors(yaml: &str) -> Vec<String> {
    match load_str_with_env(yaml, &test_env) {
        Ok(_) => panic!("expected load errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn check(yaml: &str) -> Vec<String> {
    validate(&load(yaml))
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A valid config to append one API's worth of YAML to (indented under `apis:`).
fn with_api(api: &str) -> String {
    format!(
        "upstreams:\n  users: {{ targets: [\"127.0.0.1:9001\"] }}\n  orders: {{ targets: [\"localhost:9002\"] }}\napis:\n{api}"
    )
}

const MOCK_CONFIG: &str = r#"
server:
  listen: ["127.0.0.1:18080"]
apis:
  demo:
    stages:
      $default: {}
    routes:
      "GET /ping":
        integration: { type: mock, body: '{"ok":true}', headers: { content-type: application/json } }
      "POST /things/{id}":
        integration: { type: mock, status: 201 }
      $default:
        integration: { type: mock, status: 404, body: nope }
"#;

#[test]
fn design_example_loads() {
    let cfg = load(FULL_EXAMPLE);
    assert_eq!(
        cfg.server.listen,
        [SocketAddr::from(([127, 0, 0, 1], 8080))]
    );
    assert_eq!(
        cfg.server.tls_listen,
        [SocketAddr::from(([0, 0, 0, 0], 8443))]
    );
    assert_eq!(cfg.server.workers, Workers::Auto);
    assert_eq!(cfg.server.access_log.path, LogPath::Stdout);
    assert_eq!(cfg.server.limits.header_timeout, Duration::from_secs(10));
    assert_eq!(
        cfg.admin.as_ref().unwrap().token.as_deref(),
        Some("admin-token")
    );
    assert_eq!(cfg.state_dir.to_str(), Some("./state"));
    let (name, users) = &cfg.upstreams[0];
    assert_eq!(name, "users");
    assert_eq!(users.targets.len(), 2);
    assert_eq!(users.health.as_ref().unwrap().healthy_after, 2);
    let (_, shop) = &cfg.apis[0];
    let keys: Vec<&str> = shop.routes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "GET /users/{id}",
            "ANY /orders/{proxy+}",
            "GET /ping",
            "$default"
        ]
    );
    let prod = &shop.stages[0].1;
    assert_eq!(
        prod.variables,
        [
            ("backend".into(), "users".into()),
            ("version".into(), "v1".into())
        ]
    );
    assert_eq!(prod.canary.as_ref().unwrap().percent, 10.0);
    assert_eq!(prod.cache.as_ref().unwrap().capacity, 64 << 20);
    let route = &shop.routes[0].1;
    assert!(route.api_key_required);
    assert_eq!(route.cache.as_ref().unwrap().ttl, Duration::from_secs(30));
    assert_eq!(
        route.parameters[1],
        ("remove:querystring.debug".into(), String::new())
    );
    match &shop.routes[1].1.integration {
        Integration::Lambda {
            payload_format,
            timeout,
            ..
        } => {
            assert_eq!(*payload_format, PayloadFormat::V2);
            assert_eq!(*timeout, DEFAULT_INTEGRATION_TIMEOUT);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cfg.domains[0].1.mappings[0],
        (String::new(), "shop/prod".into())
    );
    assert_eq!(
        cfg.usage_plans[0].1.quota.as_ref().unwrap().period,
        Period::Day
    );
    assert_eq!(cfg.api_keys[0].value, "alice-secret-key-0123456789");
    // The example maps v2 to a stage it never defines; everything else checks out.
    assert_eq!(
        check(FULL_EXAMPLE),
        [r#"domains."api.example.com".mappings.v2: API "shop" has no stage "beta""#]
    );
}

#[test]
fn mock_config_loads_and_validates_clean() {
    let cfg = load(MOCK_CONFIG);
    assert!(validate(&cfg).is_empty(), "{:?}", validate(&cfg));
    match &cfg.apis[0].1.routes[0].1.integration {
        Integration::Mock {
            status,
            headers,
            body,
        } => {
            assert_eq!(*status, 200);
            assert_eq!(
                headers[0],
                ("content-type".into(), "application/json".into())
            );
            assert_eq!(&**body, r#"{"ok":true}"#);
        }
        other => panic!("{other:?}"),
    }
    let file =
        std::env::temp_dir().join(format!("portico-config-test-{}.yaml", std::process::id()));
    std::fs::write(&file, MOCK_CONFIG).unwrap();
    let loaded = load_and_validate(&file);
    std::fs::remove_file(&file).unwrap();
    assert!(loaded.is_ok(), "{}", loaded.unwrap_err());
}

#[test]
fn an_empty_document_is_refused() {
    for yaml in ["", "\n# only a comment\n", "~\n", "null\n"] {
        assert_eq!(load_errors(yaml), ["the config is empty"], "{yaml:?}");
    }
}

#[test]
fn a_byte_order_mark_is_allowed() {
    let cfg = load("\u{feff}server: { workers: 3 }\napis: {}\n");
    assert_eq!(cfg.server.workers, Workers::Count(3));
}

#[test]
fn defaults_for_missing_sections() {
    // (An empty document is an error: see `an_empty_document_is_refused`.)
    for yaml in ["apis:", "apis: {}\n", "server: {}\n"] {
        let cfg = load(yaml);
        assert_eq!(cfg.server.listen, Server::default().listen);
        assert_eq!(cfg.state_dir.to_str(), Some("./state"));
        assert!(cfg.admin.is_none() && cfg.apis.is_empty());
    }
}

#[test]
fn unreadable_file_is_one_error() {
    let err = load_file(std::path::Path::new("/nonexistent/portico.yaml")).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].path, "");
    assert!(
        err.0[0].message.contains("/nonexistent/portico.yaml"),
        "{err}"
    );
}

#[test]
fn an_endless_or_binary_file_is_one_error_not_a_hang() {
    // /dev/zero was read until memory ran out.
    let err = load_and_validate(std::path::Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read config file /dev/zero: not a regular file (a device, FIFO or socket)"
    );
    // A FIFO blocked the open until something wrote to it: `check` never answered, and
    // a reload held every later one back.
    let fifo = std::env::temp_dir().join(format!("portico-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let err = crate::config::read_file(&fifo).unwrap_err().to_string();
    let _ = std::fs::remove_file(&fifo);
    assert_eq!(err, "not a regular file (a device, FIFO or socket)");
    // A regular file larger than the limit is refused by its size.
    let big = std::env::temp_dir().join(format!("portico-big-{}", std::process::id()));
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    let err = crate::config::read_file(&big).unwrap_err().to_string();
    let _ = std::fs::remove_file(&big);
    assert_eq!(err, "larger than 16 MiB");
    let dir = std::env::temp_dir().join(format!("portico-utf8-{}", std::process::id()));
    std::fs::write(&dir, b"server:\n  workers: 2\n  driver: \"\xff\"\n").unwrap();
    let err = load_file(&dir).unwrap_err().to_string();
    let _ = std::fs::remove_file(&dir);
    assert!(
        err.ends_with("not UTF-8 text: a bad byte on line 3"),
        "{err}"
    );
}

#[test]
fn yaml_syntax_and_duplicate_keys() {
    let errs = load_errors("server: [1,\n");
    assert!(errs[0].starts_with("not valid YAML"), "{errs:?}");
    assert!(!errs[0].contains("tab"), "{errs:?}");
    let errs = load_errors("server:\n\tlisten: [\"127.0.0.1:0\"]\n");
    assert!(errs[0].contains("line 2"), "{errs:?}");
    assert!(errs[0].contains("starts with a tab"), "{errs:?}");
    // A key written twice is an error at its path, and the rest is still decoded.
    let errs =
        load_errors("apis:\n  a:\n    routes:\n      \"GET /x\": {}\n      \"GET /x\": {}\n");
    assert_eq!(
        errs,
        [
            r#"apis.a.routes."GET /x": this key is written twice in its map (the first one is read)"#,
            r#"apis.a.routes."GET /x": missing key "integration""#,
        ]
    );
}

#[test]
fn unknown_keys_with_suggestions() {
    let errs = load_errors("server:\n  lisen: [\"127.0.0.1:1\"]\n  zzz: 1\nupstream: {}\n");
    // A map's own unknown keys come before errors inside its values; the root path is empty.
    assert_eq!(
        errs,
        [
            r#"unknown key "upstream" (did you mean "upstreams"?)"#,
            r#"server: unknown key "lisen" (did you mean "listen"?)"#,
            r#"server: unknown key "zzz" (expected one of: listen, tls_listen, default_domain, redirect_https, workers, driver, limits, access_log, throttle, compression)"#,
        ]
    );
    let errs = load_errors(&with_api(
        "  shop:\n    routes:\n      \"GET /x\":\n        integration: { type: http, upstream: users, timout: 1s }\n",
    ));
    assert_eq!(
        errs,
        [
            r#"apis.shop.routes."GET /x".integration: unknown key "timout" (did you mean "timeout"?)"#
        ]
    );
}

#[test]
fn wrong_types() {
    let yaml = r#"
server:
  listen: "127.0.0.1:8080"
  workers: many
  driver: kqueue
  limits: { header_timeout: abc, idle_timeout: -5, max_body_bytes: 10mb }
  access_log: { path: [] }
upstreams:
  u: { targets: ["example .com:80"], balance: fastest }
api_keys:
  - { name: k, value: v, plan: [gold] }
"#;
    assert_eq!(
        load_errors(yaml),
        [
            r#"server.listen: expected a list, got "127.0.0.1:8080""#,
            r#"server.workers: expected auto or a number of workers, 1 to 256, got "many""#,
            r#"server.driver: expected one of auto, io_uring, epoll, got "kqueue""#,
            r#"server.limits.max_body_bytes: expected a size like 10485760, 512KB or 64MiB, got "10mb""#,
            r#"server.limits.header_timeout: expected a duration like 250ms, 29s, 10m, got "abc""#,
            "server.limits.idle_timeout: expected a duration like 250ms, 29s, 10m, got -5",
            "server.access_log.path: expected a string, got a list",
            r#"upstreams.u.targets[0]: expected an address like 127.0.0.1:8080, users:8080, http://users.internal:8080 or https://api.example.com, got "example .com:80""#,
            r#"upstreams.u.balance: expected one of round_robin, least_conn, random, got "fastest""#,
            "api_keys[0].plan: expected a string, got a list",
        ]
    );
}

#[test]
fn a_target_on_port_0_is_refused() {
    let yaml = "upstreams:\n  u: { targets: [\"127.0.0.1:0\", \"users:0\", \"http://[::1]:0\"] }\n";
    let errors = load_errors(yaml);
    assert_eq!(errors.len(), 3, "{errors:?}");
    for (i, e) in errors.iter().enumerate() {
        let want = format!("upstreams.u.targets[{i}]: port 0 is no port");
        assert!(e.starts_with(&want), "{errors:?}");
    }
}

#[test]
fn a_target_with_credentials_is_refused_without_printing_them() {
    let yaml = "upstreams:\n  u: { targets: [\"http://user:hunter2@10.0.0.1:8080\", \"ops:pw@db:5432\"] }\n";
    let errors = load_errors(yaml);
    assert_eq!(errors.len(), 2, "{errors:?}");
    for (i, host) in ["10.0.0.1:8080", "db:5432"].iter().enumerate() {
        assert!(
            errors[i].starts_with(&format!("upstreams.u.targets[{i}]: ")),
            "{errors:?}"
        );
        assert!(
            errors[i].contains(&format!("@{host}\" has user:password@")),
            "{errors:?}"
        );
        assert!(
            !errors[i].contains("hunter2") && !errors[i].contains("pw@"),
            "{errors:?}"
        );
    }
}

#[test]
fn missing_required_keys() {
    let yaml = with_api(
        "  shop:\n    routes:\n      \"GET /a\": { api_key_required: true }\n      \"GET /b\":\n        integration: { upstream: users }\n      \"GET /c\":\n        integration: { type: http }\n      \"GET /d\":\n        integration: { type: lambda, url: \"http://x\" }\n        throttle: { rate: 1 }\n",
    );
    assert_eq!(
        load_errors(&yaml),
        [
            r#"apis.shop.routes."GET /a": missing key "integration""#,
            r#"apis.shop.routes."GET /b".integration: missing key "type" (http, lambda or mock)"#,
            r#"apis.shop.routes."GET /c".integration: missing key "upstream""#,
            r#"apis.shop.routes."GET /d".throttle: missing key "burst""#,
        ]
    );
}

#[test]
fn env_refs() {
    let yaml = r#"
server:
  listen: ["127.0.0.1:${env:TEST_PORT}"]
  workers: ${env:TEST_WORKERS}
admin: { listen: "127.0.0.1:9901", token: "Bearer-${env:PORTICO_ADMIN_TOKEN}" }
apis:
  shop:
    stages: { prod: { variables: { backend: users } } }
    routes:
      $default:
        integration: { type: http, upstream: "${stageVariables.backend}" }
"#;
    let cfg = load(yaml);
    assert_eq!(cfg.server.listen[0].port(), 8181);
    assert_eq!(cfg.server.workers, Workers::Count(3));
    assert_eq!(
        cfg.admin.unwrap().token.as_deref(),
        Some("Bearer-admin-token")
    );
    match &cfg.apis[0].1.routes[0].1.integration {
        Integration::Http { upstream, .. } => assert_eq!(upstream, "${stageVariables.backend}"),
        other => panic!("{other:?}"),
    }
    let errs = load_errors("admin: { listen: \"127.0.0.1:1\", token: \"${env:NOPE_A}${env:NOPE_B}\" }\napi_keys: [{ name: a, value: \"${env:NOPE_C}\" }]\n");
    assert_eq!(
        errs,
        [
            "admin.token: environment variable NOPE_A is not set",
            "admin.token: environment variable NOPE_B is not set",
            "api_keys[0].value: environment variable NOPE_C is not set",
        ]
    );
}

#[test]
fn env_refs_from_the_process_environment() {
    // A name no other test uses: tests share the process environment across threads.
    std::env::set_var("PORTICO_TEST_CONFIG_ENV_STATE_DIR", "/var/lib/portico-test");
    let cfg = load_str("state_dir: ${env:PORTICO_TEST_CONFIG_ENV_STATE_DIR}\n").unwrap();
    assert_eq!(cfg.state_dir.to_str(), Some("/var/lib/portico-test"));
    let err = load_str("state_dir: ${env:PORTICO_TEST_CONFIG_ENV_UNSET}\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "state_dir: environment variable PORTICO_TEST_CONFIG_ENV_UNSET is not set"
    );
}

#[test]
fn durations_and_sizes() {
    let yaml = r#"
server:
  limits: { max_header_bytes: 16KiB, max_body_bytes: 1GiB, header_timeout: 250ms, idle_timeout: 10m, drain_timeout: 45, send_timeout: 2m }
upstreams:
  u: { targets: ["127.0.0.1:1"], connect_timeout: 1h, pool: { idle_timeout: "90" } }
"#;
    let cfg = load(yaml);
    let l = &cfg.server.limits;
    assert_eq!((l.max_header_bytes, l.max_body_bytes), (16 << 10, 1 << 30));
    assert_eq!(l.header_timeout, Duration::from_millis(250));
    assert_eq!(l.idle_timeout, Duration::from_secs(600));
    assert_eq!(l.drain_timeout, Duration::from_secs(45));
    assert_eq!(l.send_timeout, Duration::from_secs(120));
    assert_eq!(
        cfg.upstreams[0].1.connect_timeout,
        Duration::from_secs(3600)
    );
    assert_eq!(
        cfg.upstreams[0].1.pool.idle_timeout,
        Duration::from_secs(90)
    );
    let cfg = load("server: { limits: { max_body_bytes: 10MB, max_header_bytes: 512KB } }");
    assert_eq!(
        (
            cfg.server.limits.max_body_bytes,
            cfg.server.limits.max_header_bytes
        ),
        (10_000_000, 512_000)
    );
}

#[test]
fn many_load_errors_at_once() {
    let yaml = r#"
server: { workers: 0.5, listne: [] }
state_dir: 7
apis:
  shop:
    protocol: grpc
    stages: { prod: { canary: { percent: lots } } }
    routes:
      "GET /x": { integration: { type: soap } }
      "GET /y": { integration: { type: mock, status: 99999 } }
"#;
    assert_eq!(
        load_errors(yaml),
        [
            r#"server: unknown key "listne" (did you mean "listen"?)"#,
            "server.workers: expected auto or a number of workers, 1 to 256, got 0.5",
            "state_dir: expected a string, got 7",
            r#"apis.shop.protocol: expected one of http, websocket, got "grpc""#,
            r#"apis.shop.stages.prod.canary.percent: expected a number, got "lots""#,
            r#"apis.shop.routes."GET /x".integration.type: expected one of http, lambda, mock, got "soap""#,
            r#"apis.shop.routes."GET /y".integration.status: must be an HTTP status 200–599, got 99999"#,
        ]
    );
}

/// Secrets written without quotes are their text as written, as an API key's value is:
/// refused as "expected a string, got 9081726354091827364", the error printed the secret
/// (on `check`, in the log of a refused reload and in `POST /reload`'s answer).
#[test]
fn a_secret_written_as_a_number_is_its_text_not_an_error_that_prints_it() {
    let cfg = load(
        r#"
admin: { listen: "127.0.0.1:9", token: 9081726354091827364 }
iam:
  principals:
    r: { access_key_id: 12345, secret_access_key: 98765432109876543210, session_token: 1.10, allow: ["*"] }
apis: {}
"#,
    );
    assert_eq!(
        cfg.admin.unwrap().token.as_deref(),
        Some("9081726354091827364")
    );
    let iam = cfg.iam.unwrap();
    let (_, r) = &iam.principals[0];
    assert_eq!(
        (
            r.access_key_id.as_str(),
            r.secret_access_key.as_str(),
            r.session_token.as_deref()
        ),
        ("12345", "98765432109876543210", Some("1.10"))
    );
}

#[test]
fn error_display() {
    let errs = ConfigErrors(vec![
        ConfigError::new("a.b", "bad"),
        ConfigError::new("", "whole file"),
    ]);
    assert_eq!(errs.to_string(), "a.b: bad\nwhole file");
}

#[test]
fn a_key_path_is_under_its_ancestors_only() {
    use super::under;
    assert!(under("server.access_log", "server"));
    assert!(under("server", "server"));
    assert!(under("api_keys[2].plan", "api_keys"));
    assert!(!under("servers", "server"));
    assert!(!under("server", "server.access_log"));
    // The root is nobody's parent: an unknown top-level key hides nothing.
    assert!(!under("server", ""));
}
