//! Each validation error, with its exact key path.

use super::super::load::load_str_with_env;
use super::validate;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Errors from validating `yaml`, which must load cleanly.
fn check(yaml: &str) -> Vec<String> {
    let cfg = load_str_with_env(yaml, &no_env).unwrap_or_else(|e| panic!("load failed:\n{e}"));
    validate(&cfg).iter().map(ToString::to_string).collect()
}

/// Upstreams `users` and `orders`, then `apis:` with the given YAML under it.
fn apis(yaml: &str) -> String {
    format!(
        "upstreams:\n  users: {{ targets: [\"127.0.0.1:9001\"] }}\n  orders: {{ targets: [\"127.0.0.1:9002\"] }}\napis:\n{yaml}"
    )
}

/// One API `shop` with stage `prod` (backend: users) and the given routes.
fn shop_routes(routes: &str) -> String {
    apis(&format!(
        "  shop:\n    stages:\n      prod: {{ variables: {{ backend: users }} }}\n    routes:\n{routes}"
    ))
}

#[test]
fn clean_config_has_no_errors() {
    let yaml = shop_routes(
        r#"      "GET /users/{id}":
        integration: { type: http, upstream: "${stageVariables.backend}", path: "/v1/users/{id}", timeout: 50ms }
        cache: { ttl: 1h, key: [path.id, querystring.lang, header.accept] }
        parameters: { "overwrite:header.x-id": "$request.path.id", "remove:querystring.debug": "", "overwrite:path": "/x" }
      "ANY /files/{proxy+}":
        integration: { type: http, upstream: orders, path: "/static/{proxy}", timeout: 30s }
      "POST /fn":
        integration: { type: lambda, url: "http://127.0.0.1:9000/invoke", payload_format: "1.0" }
      "GET /":
        integration: { type: mock, status: 599 }
"#,
    );
    assert_eq!(check(&yaml), Vec::<String>::new());
}

#[test]
fn server_and_listeners() {
    let yaml = r#"
server:
  listen: ["127.0.0.1:8080", "localhost:8080"]
  tls_listen: ["127.0.0.1:8080"]
  workers: 0
  limits: { max_header_bytes: 512, header_timeout: 0s }
admin: { listen: "127.0.0.1:8080", token: "" }
"#;
    assert_eq!(
        check(yaml),
        [
            "server.listen[1]: 127.0.0.1:8080 is already used by server.listen[0]",
            "server.tls_listen[0]: 127.0.0.1:8080 is already used by server.listen[0]",
            "admin.listen: 127.0.0.1:8080 is already used by server.listen[0]",
            "server.tls_listen: no domain has a cert and key to serve; add them under domains:",
            "server.workers: must be auto or at least 1",
            "server.limits.max_header_bytes: must be at least 1024, got 512",
            "server.limits.header_timeout: must be more than 0s: every request would time out",
            "admin.token: is empty; leave it out to refuse admin routes",
        ]
    );
    assert_eq!(check("server: { listen: [] }"), [
        "server.listen: no listener: give at least one address in server.listen or server.tls_listen"
    ]);
    assert_eq!(
        check("server: { listen: [], tls_listen: [\"0.0.0.0:443\"] }"),
        ["server.tls_listen: no domain has a cert and key to serve; add them under domains:"]
    );
}

#[test]
fn tls_settings() {
    let yaml = r#"
server:
  listen: ["127.0.0.1:8080"]
  default_domain: nowhere.example
  redirect_https: true
upstreams:
  plain: { targets: ["127.0.0.1:9001"], tls: { verify: false } }
  secure: { targets: ["https://127.0.0.1", "https://localhost:9443/"], tls: { server_name: backend.internal } }
domains:
  a.example: { mappings: {} }
"#;
    assert_eq!(
        check(yaml),
        [
            r#"server.default_domain: unknown domain "nowhere.example""#,
            "server.redirect_https: needs server.tls_listen to redirect to",
            "upstreams.plain.tls: only applies to https:// targets; these targets are plain HTTP",
        ]
    );
    let mixed =
        "upstreams:\n  mixed: { targets: [\"https://127.0.0.1:9443\", \"127.0.0.1:9001\"] }\n";
    let errors = load_str_with_env(mixed, &no_env).unwrap_err().to_string();
    assert_eq!(
        errors,
        "upstreams.mixed.targets: mixes https:// and plain targets; use one scheme per upstream"
    );
    let cfg = load_str_with_env(yaml, &no_env).unwrap_or_else(|e| panic!("{e}"));
    let secure = &cfg.upstreams.iter().find(|(n, _)| n == "secure").unwrap().1;
    assert!(secure.https);
    assert_eq!(secure.targets[0].port, 443);
    assert_eq!(secure.targets[1].port, 9443);
    let hosts: Vec<&str> = secure.targets.iter().map(|t| t.host.as_str()).collect();
    assert_eq!(hosts, ["127.0.0.1", "localhost"]);
    assert_eq!(secure.tls.server_name.as_deref(), Some("backend.internal"));
}

#[test]
fn upstreams() {
    let yaml = "upstreams:\n  a: { targets: [] }\n  b: { targets: [\"127.0.0.1:1\"], health: { path: healthz, unhealthy_after: 0 } }\n";
    assert_eq!(
        check(yaml),
        [
            "upstreams.a.targets: needs at least one target",
            "upstreams.b.health.path: must start with /, got \"healthz\"",
            "upstreams.b.health.unhealthy_after: must be at least 1",
        ]
    );
    // Written on the check's request line: CR/LF would add headers or a request.
    let yaml = "upstreams:\n  c: { targets: [\"127.0.0.1:1\"], health: { path: \"/x y\\r\\nX-Injected: 1\" } }\n  d: { targets: [\"127.0.0.1:1\"], health: { path: \"/healthz?deep=1\" } }\n  e: { targets: [\"127.0.0.1:1\"], health: { path: \"/h#f\" } }\n";
    assert_eq!(
        check(yaml),
        [
            "upstreams.c.health.path: has a space, control or non-ASCII character, which would break the check's request line: percent-encode it (%20, %C3%A9)",
            "upstreams.e.health.path: has a #, which no request-target may hold: percent-encode it (%23)"
        ]
    );
    // A function endpoint's pool is `lambda HOST:PORT` in metrics; a name is a label too.
    let yaml = "upstreams:\n  \"lambda 127.0.0.1:9\": { targets: [\"127.0.0.1:1\"] }\n  \"a\\x1bb\": { targets: [\"127.0.0.1:1\"] }\n  lambda: { targets: [\"127.0.0.1:1\"] }\n";
    assert_eq!(
        check(yaml),
        [
            "upstreams.\"lambda 127.0.0.1:9\": names starting with \"lambda \" are kept for Lambda function endpoints' pools; rename it",
            "upstreams.\"a\\u{1b}b\": the name has a control character",
        ]
    );
}

#[test]
fn route_keys() {
    let mock = "{ integration: { type: mock } }";
    let routes = [
        "GET /x",
        "get /x",
        "GET x",
        "GET /users/{id}",
        "GET /users/{name}",
        "GET /{a}/{a}",
        "GET /{p+}/x",
        "GET /a{b}",
        "GET /{a b}",
        "$default",
        "ANY /{proxy+}",
    ];
    let yaml = shop_routes(
        &routes
            .iter()
            .map(|k| format!("      \"{k}\": {mock}\n"))
            .collect::<String>(),
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.shop.routes."get /x": unknown method "get"; use one of GET POST PUT DELETE PATCH HEAD OPTIONS ANY"#,
            r#"apis.shop.routes."GET x": the path must start with /, got "x""#,
            r#"apis.shop.routes."GET /users/{name}": matches the same requests as route "GET /users/{id}""#,
            r#"apis.shop.routes."GET /{a}/{a}": parameter {a} appears twice in the path"#,
            r#"apis.shop.routes."GET /{p+}/x": greedy parameter {p+} must be the last segment"#,
            r#"apis.shop.routes."GET /a{b}": bad segment "a{b}": a parameter must be a whole segment"#,
            r#"apis.shop.routes."GET /{a b}": bad parameter {a b}: names are letters, digits, _ . -"#,
        ]
    );
}

#[test]
fn upstream_references() {
    let yaml = apis(
        r#"  shop:
    stages:
      prod: { variables: { backend: users }, canary: { percent: 5, variables: { backend: nope2 } } }
      beta: { variables: { backend: nope } }
      dev: {}
    routes:
      "GET /x": { integration: { type: http, upstream: nope } }
      "GET /y": { integration: { type: http, upstream: "${stageVariables.backend}" } }
"#,
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.shop.routes."GET /x".integration.upstream: no upstream named "nope""#,
            r#"apis.shop.stages.dev.variables: no variable "backend", used by routes."GET /y".integration.upstream"#,
            r#"apis.shop.routes."GET /y".integration.upstream: no upstream named "nope2" (in the canary of stage "prod")"#,
            r#"apis.shop.routes."GET /y".integration.upstream: no upstream named "nope" (in stage "beta")"#,
        ]
    );
}

#[test]
fn stage_variables_in_every_field() {
    let yaml = shop_routes(
        r#"      "GET /a": { integration: { type: http, upstream: users, path: "/${stageVariables.version}/a" } }
      "GET /b": { integration: { type: lambda, url: "http://fn/${stageVariables.fn}" } }
      "GET /c":
        integration: { type: http, upstream: users }
        parameters: { "overwrite:header.x": "${stageVariables.tenant}" }
      "GET /d": { integration: { type: http, upstream: "${stageVariables.oops" } }
"#,
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.shop.stages.prod.variables: no variable "version", used by routes."GET /a".integration.path"#,
            r#"apis.shop.stages.prod.variables: no variable "fn", used by routes."GET /b".integration.url"#,
            r#"apis.shop.stages.prod.variables: no variable "tenant", used by routes."GET /c".parameters."overwrite:header.x""#,
            r#"apis.shop.routes."GET /d".integration.upstream: unterminated ${stageVariables.…} in "${stageVariables.oops""#,
        ]
    );
}

#[test]
fn integration_limits() {
    let yaml = shop_routes(
        r#"      "GET /users/{id}": { integration: { type: http, upstream: users, path: "/u/{name}/{id}", timeout: 10ms } }
      "GET /orders/{proxy+}": { integration: { type: http, upstream: users, path: "/o/{proxy}", timeout: 31s } }
      "GET /fn": { integration: { type: lambda, url: "https://example.com/fn" } }
      "GET /m": { integration: { type: mock, status: 99 } }
      "GET /n": { integration: { type: mock, headers: { "": "x", "a b": "y", x-ok: "1" } } }
"#,
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.shop.routes."GET /users/{id}".integration.path: {name} is not a parameter of the route key"#,
            r#"apis.shop.routes."GET /users/{id}".integration.timeout: must be between 50ms and 30s, got 10ms"#,
            r#"apis.shop.routes."GET /orders/{proxy+}".integration.timeout: must be between 50ms and 30s, got 31s"#,
            r#"apis.shop.routes."GET /fn".integration.url: must start with http:// (TLS to functions is not supported), got "https://example.com/fn""#,
            r#"apis.shop.routes."GET /m".integration.status: must be an HTTP status 200–599, got 99"#,
            // An empty name went on the wire as `: x`, which strict clients refuse.
            r#"apis.shop.routes."GET /n".integration.headers."": "" is not a header name"#,
            r#"apis.shop.routes."GET /n".integration.headers."a b": "a b" is not a header name"#,
        ]
    );
}

#[test]
fn route_cache_and_parameters() {
    let yaml = shop_routes(
        r#"      "GET /users/{id}":
        integration: { type: http, upstream: users }
        cache: { ttl: 2h, key: [path.nope, cookie.x, "header.bad name", header.X-Lang, header.x-lang, querystring.a, querystring.a, querystring.A], methods: [GET, GET], statuses: [200, 404, 200] }
        parameters: { "overwrite:header.x": "$request.path.nope", "delete:header.y": "", "append:path": "/x" }
"#,
    );
    let p = r#"apis.shop.routes."GET /users/{id}""#;
    assert_eq!(check(&yaml), [
        format!("{p}.cache.ttl: at most 3600s, got 7200s"),
        format!("{p}.cache.key[0]: {{nope}} is not a parameter of the route key"),
        format!("{p}.cache.key[1]: expected path.NAME, querystring.NAME or header.NAME, got \"cookie.x\""),
        format!("{p}.cache.key[2]: expected a header name (an HTTP token), got \"bad name\""),
        format!("{p}.cache.key[4]: \"header.x-lang\" is listed twice"),
        format!("{p}.cache.key[6]: \"querystring.a\" is listed twice"),
        // Query names are keyed as sent (`?A=` is not `?a=`): querystring.A is its own.
        format!("{p}.cache.methods[1]: \"GET\" is listed twice"),
        format!("{p}.cache.statuses[2]: 200 is listed twice"),
        format!("{p}.parameters.\"overwrite:header.x\": {{nope}} is not a parameter of the route key"),
        format!("{p}.parameters.\"delete:header.y\": expected append:, overwrite: or remove: then header.NAME or querystring.NAME (or overwrite:path)"),
        format!("{p}.parameters.\"append:path\": expected append:, overwrite: or remove: then header.NAME or querystring.NAME (or overwrite:path)"),
    ]);
}

/// An empty `methods` or `statuses` reads as "none": it was the default, caching GET 200s.
#[test]
fn route_cache_empty_lists() {
    let yaml = shop_routes(
        r#"      "GET /a": { integration: { type: http, upstream: users }, cache: { methods: [] } }
      "GET /b": { integration: { type: http, upstream: users }, cache: { statuses: [] } }
"#,
    );
    let said = "an empty list caches nothing: leave the key out for the default";
    let errors: Vec<String> = match load_str_with_env(&yaml, &no_env) {
        Ok(_) => panic!("expected load errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            r#"apis.shop.routes."GET /a".cache.methods: {said} (GET)"#
        )),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with(&format!(
            r#"apis.shop.routes."GET /b".cache.statuses: {said} (200)"#
        )),
        "{errors:?}"
    );
}

#[test]
fn stages_and_variables() {
    let many: String = (0..101).map(|i| format!("v{i}: x, ")).collect();
    let long = "x".repeat(513);
    let yaml = apis(&format!(
        r#"  shop:
    cors: {{ allow_origins: ["*"], allow_credentials: true }}
    stages:
      "pro d": {{}}
      big: {{ variables: {{ {many} }} }}
      odd: {{ variables: {{ "a-b": x, long: {long} }}, canary: {{ percent: 150, variables: {{ "c d": y }} }} }}
  empty: {{}}
"#
    ));
    assert_eq!(check(&yaml), [
        r#"apis.shop.cors.allow_origins: "*" cannot be combined with allow_credentials: true"#,
        r#"apis.shop.stages."pro d": stage names are letters, digits, _ and -, or $default"#,
        "apis.shop.stages.big.variables: at most 100 variables, got 101",
        "apis.shop.stages.odd.variables.a-b: variable names are 1–64 letters, digits or _",
        "apis.shop.stages.odd.variables.long: at most 512 characters, got 513",
        "apis.shop.stages.odd.canary.percent: must be between 0 and 100, got 150",
        r#"apis.shop.stages.odd.canary.variables."c d": variable names are 1–64 letters, digits or _"#,
        "apis.empty.stages: an API needs at least one stage (call it $default to serve it at the root)",
    ]);
}

#[test]
fn base_path_clashes_between_apis() {
    let yaml = apis(
        "  a: { stages: { $default: {}, prod: {} } }\n  b: { stages: { prod: {}, beta: {} } }\n  c: { stages: { $default: {} } }\n",
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.b.stages.prod: base path /prod on the default endpoint already belongs to API "a""#,
            r#"apis.c.stages.$default: the root of the default endpoint ($default stage) already belongs to API "a""#,
        ]
    );
}

#[test]
fn websocket_route_keys() {
    let yaml = apis(
        "  chat:\n    protocol: websocket\n    stages: { ws: {} }\n    routes:\n      $connect: { integration: { type: mock } }\n      sendMessage: { integration: { type: mock } }\n      \"bad key\": { integration: { type: mock } }\n",
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.chat.routes."bad key": WebSocket route keys are $connect, $disconnect, $default or an action name"#
        ]
    );
}

#[test]
fn websocket_api_keys_are_required_on_connect_only() {
    // On a message route the setting did nothing (a message has no headers); AWS
    // requires keys on `$connect` only.
    let yaml = apis(
        "  chat:\n    protocol: websocket\n    stages: { ws: {} }\n    routes:\n      $connect: { integration: { type: mock }, api_key_required: true }\n      echo: { integration: { type: mock }, api_key_required: true }\n      $default: { integration: { type: mock }, api_key_required: false }\n      $disconnect: { integration: { type: mock }, api_key_required: true }\n",
    );
    assert_eq!(
        check(&yaml),
        [
            "apis.chat.routes.echo.api_key_required: WebSocket APIs check API keys on $connect only; move `api_key_required: true` there",
            "apis.chat.routes.$disconnect.api_key_required: WebSocket APIs check API keys on $connect only; move `api_key_required: true` there",
        ]
    );
}

#[test]
fn domains_plans_and_keys() {
    let yaml = apis(
        r#"  shop: { stages: { prod: {} } }
domains:
  api.example.com:
    cert: a.pem
    client_ca: ca.pem
    mappings: { "": shop/prod, v2: shop/beta, v3: nope/prod, v4: shop, /v5: shop/prod }
  other.example.com: { key: k.pem }
usage_plans:
  gold:
    stages: [shop/prod, shop/dev, shop/prod]
api_keys:
  - { name: alice, value: aaaaaaaaaaaaaaaaaaaa, plan: gold }
  - { name: alice, value: bbbbbbbbbbbbbbbbbbbb, plan: silver }
  - { name: bob, value: aaaaaaaaaaaaaaaaaaaa }
  - { name: carol, value: "" }
  - { name: dave, value: short }
  - { name: erin, value: " spaced-0123456789abcdef " }
"#,
    );
    assert_eq!(
        check(&yaml),
        [
            r#"domains."api.example.com": cert without key"#,
            r#"domains."api.example.com".mappings.v2: API "shop" has no stage "beta""#,
            r#"domains."api.example.com".mappings.v3: no API named "nope""#,
            r#"domains."api.example.com".mappings.v4: expected "api/stage", got "shop""#,
            r#"domains."api.example.com".mappings."/v5": base paths are "" (the root) or words separated by /, without leading /"#,
            r#"domains."other.example.com": key without cert"#,
            r#"usage_plans.gold.stages[1]: API "shop" has no stage "dev""#,
            r#"usage_plans.gold.stages[2]: "shop/prod" is listed twice, also stages[0]"#,
            r#"api_keys[1].plan: no usage plan named "silver""#,
            r#"api_keys[1].name: duplicate name "alice", also api_keys[0]"#,
            "api_keys[2].value: same value as api_keys[0]",
            "api_keys[3].value: is empty",
            "api_keys[4].value: must be 20 to 128 printable ASCII characters, without spaces",
            "api_keys[5].value: must be 20 to 128 printable ASCII characters, without spaces",
        ]
    );
}

#[test]
fn mapping_values_and_response_parameters() {
    let yaml = shop_routes(
        r#"      "GET /m/{id}":
        integration: { type: http, upstream: users }
        parameters:
          "overwrite:header.x-a": "$request.header.x-b-$context.nope"
          "append:querystring.q": "$response.header.x"
          "overwrite:header.host": "x"
          "remove:header.bad name": ""
          "overwrite:querystring.x&admin=1": "v"
          "remove:querystring.a;admin": ""
          "overwrite:path": "/v/${request.path.id}/$stageVariables.missing"
        response_parameters:
          "200":
            "overwrite:statuscode": "204"
            "append:header.x-req": "$request.header.x"
            "overwrite:header.content-length": "1"
            "overwrite:path": "/"
          "abc": {}
      "GET /fn":
        integration: { type: lambda, url: "http://127.0.0.1:99999/" }
        parameters: { "overwrite:header.x": "1" }
        response_parameters: { "201": { "overwrite:statuscode": "$response.header.x-status", "append:header.x-id": "$context.requestId" } }
"#,
    );
    let p = r#"apis.shop.routes."GET /m/{id}""#;
    let f = r#"apis.shop.routes."GET /fn""#;
    let known = "accountId, apiId, domainName, domainPrefix, extendedRequestId, httpMethod, identity.sourceIp, identity.userAgent, identity.clientCert.subjectDN, identity.clientCert.issuerDN, identity.clientCert.serialNumber, identity.clientCert.validity.notBefore, identity.clientCert.validity.notAfter, identity.clientCert.clientCertPem, identity.accessKey, identity.accountId, identity.caller, identity.user, identity.userArn, identity.principalOrgId, identity.cognitoAuthenticationProvider, identity.cognitoAuthenticationType, identity.cognitoIdentityId, identity.cognitoIdentityPoolId, isCanaryRequest, path, protocol, requestId, requestTime, requestTimeEpoch, resourcePath, routeKey, stage";
    assert_eq!(
        check(&yaml),
        [
            format!("{p}.parameters.\"overwrite:header.x-a\": $context.nope is not a variable (known: {known})"),
            format!("{p}.parameters.\"append:querystring.q\": $response values are only available in response_parameters"),
            format!("{p}.parameters.\"overwrite:header.host\": host is reserved: Portico sets it itself"),
            format!("{p}.parameters.\"remove:header.bad name\": \"bad name\" is not a header name"),
            format!("{p}.parameters.\"overwrite:querystring.x&admin=1\": \"x&admin=1\" is not a query parameter name (letters, digits and -._~!$'()*,:@/)"),
            format!("{p}.parameters.\"remove:querystring.a;admin\": \"a;admin\" is not a query parameter name (letters, digits and -._~!$'()*,:@/)"),
            "apis.shop.stages.prod.variables: no variable \"missing\", used by routes.\"GET /m/{id}\".parameters.\"overwrite:path\"".to_string(),
            format!("{p}.response_parameters.200.\"overwrite:statuscode\": must be a status 200–599 other than 204, 205 and 304 (the body is already framed), got \"204\""),
            format!("{p}.response_parameters.200.\"append:header.x-req\": $request values are not available in response mappings"),
            format!("{p}.response_parameters.200.\"overwrite:header.content-length\": content-length is reserved: Portico sets it itself"),
            format!("{p}.response_parameters.200.\"overwrite:path\": expected overwrite:statuscode, or append:, overwrite: or remove: then header.NAME"),
            format!("{p}.response_parameters.abc: keys are status codes 200–599 of the integration's response, in three digits"),
            format!("{f}.integration.url: \"http://127.0.0.1:99999/\" has a bad port"),
            format!("{f}.parameters: request parameter mapping applies to http integrations (a Lambda function gets the whole request; use response_parameters for responses)"),
        ]
    );
}

#[test]
fn an_integration_path_holds_no_query() {
    let yaml = shop_routes(
        r#"      "GET /q/{id}": { integration: { type: http, upstream: users, path: "/v1/q?x={id}" } }
"#,
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.shop.routes."GET /q/{id}".integration.path: is a path: a query goes in parameters (overwrite:querystring.NAME), and # is never sent"#
        ]
    );
}

#[test]
fn cors_max_age_is_whole_seconds() {
    let at = |age: &str| {
        check(&apis(&format!(
            "  shop:\n    cors: {{ allow_origins: [\"*\"], max_age: {age} }}\n    stages: {{ prod: {{}} }}\n    routes:\n      \"GET /m\": {{ integration: {{ type: mock }} }}\n"
        )))
    };
    let whole = "apis.shop.cors.max_age: must be a whole number of seconds (Access-Control-Max-Age is in seconds)";
    assert_eq!(at("500ms"), [whole]);
    assert_eq!(at("1999ms"), [whole]);
    assert!(at("2000ms").is_empty());
    assert!(at("10m").is_empty());
}

#[test]
fn cors_domains_and_mock_stage_variables() {
    let yaml = apis(
        r#"  shop:
    cors: { allow_origins: ["https://a.example", "https://b.example/", "b.example"], allow_methods: [GET, FETCH], allow_headers: [content-type, "*", "x a", ""], expose_headers: ["x-total", "x\r\nset-cookie: a=1", "a,b"], max_age: 86401s }
    stages: { prod: { variables: { a: "1" } } }
    routes:
      "GET /m": { integration: { type: mock, headers: { x-v: "${stageVariables.v}" }, body: "${stageVariables.a} ${stageVariables.b}" } }
domains:
  api.example.com: { mappings: { "": shop/prod } }
  API.Example.com: { mappings: { "v1": shop/prod } }
"#,
    );
    assert_eq!(
        check(&yaml),
        [
            r#"apis.shop.cors.max_age: must be at most 86400 seconds (24h)"#,
            r#"apis.shop.cors.allow_origins[1]: expected "*", "https://*", "http://*" or scheme://host[:port], got "https://b.example/""#,
            r#"apis.shop.cors.allow_origins[2]: expected "*", "https://*", "http://*" or scheme://host[:port], got "b.example""#,
            r#"apis.shop.cors.allow_methods[1]: expected an HTTP method or "*", got "FETCH""#,
            r#"apis.shop.cors.allow_headers[2]: expected a header name (an HTTP token) or "*", got "x a""#,
            r#"apis.shop.cors.allow_headers[3]: expected a header name (an HTTP token) or "*", got """#,
            r#"apis.shop.cors.expose_headers[1]: expected a header name (an HTTP token) or "*", got "x\r\nset-cookie: a=1""#,
            r#"apis.shop.cors.expose_headers[2]: expected a header name (an HTTP token) or "*", got "a,b""#,
            r#"apis.shop.stages.prod.variables: no variable "b", used by routes."GET /m".integration.body"#,
            r#"apis.shop.stages.prod.variables: no variable "v", used by routes."GET /m".integration.headers.x-v"#,
            r#"domains."API.Example.com": is the same host name as domains."api.example.com""#,
        ]
    );
}

#[test]
fn what_run_cannot_honour_is_refused_by_check() {
    // Both passed `check`: the worker count panicked `run` at start, the timeout a
    // worker at its first request to that upstream.
    assert_eq!(
        check(&apis("  {}\nserver: { workers: 257 }")),
        ["server.workers: at most 256, got 257"]
    );
    let yaml = "upstreams:\n  u: { targets: [\"127.0.0.1:1\"], connect_timeout: 18446744073709551615ms }\n";
    let errs = match load_str_with_env(yaml, &no_env) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    assert_eq!(errs, "upstreams.u.connect_timeout: at most 8760h (a year)");
    assert!(load_str_with_env("server: { limits: { idle_timeout: 8760h } }", &no_env).is_ok());
}

#[test]
fn domain_keys_are_host_names() {
    let bad = [
        "api.example.com:8443",
        "*example.com",
        "*.*.example.com",
        "a*.example.com",
        "*",
        "bücher.example",
        "a..example",
        "api example.com",
        // rustls refuses these in SNI: a TLS client gets illegal_parameter.
        "-a.example",
        "a-.example",
        "*.-w.example",
        "x.b-.",
    ];
    let good = [
        "api.example.com",
        "API.Example.com.",
        "*.example.com",
        "xn--bcher-kva.example",
        "a_b.example",
        "a--b.example",
        "localhost",
        "127.0.0.1",
    ];
    let mut yaml = apis("  shop: { stages: { prod: {} } }\ndomains:\n");
    for d in bad.iter().chain(&good) {
        yaml.push_str(&format!(
            "  \"{d}\": {{ mappings: {{ \"\": shop/prod }} }}\n"
        ));
    }
    let errors = check(&yaml);
    let flagged: Vec<&str> = errors
        .iter()
        .filter(|e| e.contains(": not a host name: "))
        .map(|e| e.split(": not a host name").next().unwrap())
        .collect();
    let want: Vec<String> = bad.iter().map(|d| format!("domains.\"{d}\"")).collect();
    assert_eq!(flagged, want, "{errors:?}");
    let hyphen = r#"domains."a-.example": not a host name: the label "a-" starts or ends with - (RFC 1123 host names don't, and TLS clients refuse such a name in SNI)"#;
    assert!(errors.iter().any(|e| e == hyphen), "{errors:?}");
    // The router ignores case and a trailing dot: these two are one domain.
    let same = r#"domains."API.Example.com.": is the same host name as domains."api.example.com""#;
    assert!(errors.iter().any(|e| e == same), "{errors:?}");
}

/// CORS is the `cors` block's alone, compression decides its own coding, and neither
/// means anything on a WebSocket API: each was accepted and did something else.
#[test]
fn cors_and_compression_settings_that_would_not_do_what_they_say() {
    let yaml = apis(
        r#"  shop:
    cors: { allow_origins: ["https://a.example"], allow_methods: [GET, patch] }
    stages: { prod: {} }
    routes:
      "GET /m":
        integration: { type: mock, body: "m" }
        response_parameters:
          "200":
            "overwrite:header.Access-Control-Allow-Origin": "*"
            "append:header.content-encoding": "br"
            "append:header.x-fine": "1"
  chat:
    protocol: websocket
    cors: { allow_origins: ["https://a.example"] }
    compression: {}
    stages: { ws: {}, beta: { canary: { percent: 100 } } }
    routes:
      $default: { integration: { type: mock } }
"#,
    );
    let r = r#"apis.shop.routes."GET /m".response_parameters.200"#;
    assert_eq!(
        check(&yaml),
        [
            r#"apis.shop.cors.allow_methods[1]: methods are case-sensitive: write "PATCH""#.to_string(),
            format!(r#"{r}."overwrite:header.Access-Control-Allow-Origin": Access-Control-Allow-Origin is set by the API's cors block on a CORS API"#),
            format!(r#"{r}."append:header.content-encoding": content-encoding can't be mapped: Portico's compression decides it from the integration's answer"#),
            "apis.chat.cors: a WebSocket API has no CORS (browsers do not ask); check the Origin header in a $connect authorizer".to_string(),
            "apis.chat.compression: a WebSocket API's messages are not compressed (permessage-deflate is not offered)".to_string(),
            "apis.chat.stages.beta.canary: a WebSocket API's stages have no canary: every connection runs with the stage's variables".to_string(),
        ]
    );
}

/// A request_model key no Content-Type can name checked nothing, quietly.
#[test]
fn request_model_keys_are_media_types() {
    let yaml = apis(
        r#"  shop:
    models:
      M: { type: object }
    stages: { prod: {} }
    routes:
      "POST /m":
        integration: { type: mock }
        request_model: { "bad type": M, "": M, "application/json; charset=utf-8": M, "*/*": M, "text/*": M, $default: M, "*/json": M, "a*b/*c": M, "APPLICATION/JSON": M }
"#,
    );
    let r = r#"apis.shop.routes."POST /m".request_model"#;
    let not_media = "expected a media type (type/subtype, type/* or */*) or $default";
    assert_eq!(
        check(&yaml),
        [
            format!(r#"{r}."bad type": {not_media}"#),
            format!(r#"{r}."": {not_media}"#),
            format!(r#"{r}."*/json": {not_media}"#),
            format!(r#"{r}."a*b/*c": {not_media}"#),
            format!(
                r#"{r}."APPLICATION/JSON": the same media type as "application/json" (compared without case and parameters)"#
            ),
        ]
    );
}
