//! Import cases API Gateway documents (base path modes as its import records them, stage
//! variables in URIs, shared integrations by `$ref`, the endpoint switch, what is only a
//! warning) checked on the config tree the import produces.

use serde_json::{json, Value};

use super::import::{import, BasePath, Imported};

pub(super) const MOCK: &str =
    r#"{"type": "mock", "responses": {"default": {"statusCode": "200"}}}"#;

pub(super) fn doc(extra: Value, paths: Value) -> Value {
    let mut d =
        json!({ "openapi": "3.0.1", "info": { "title": "t", "version": 1 }, "paths": paths });
    if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    d
}

fn mock_get() -> Value {
    json!({ "get": { "x-amazon-apigateway-integration": serde_json::from_str::<Value>(MOCK).unwrap() } })
}

fn route_keys(i: &Imported) -> Vec<String> {
    i.api["routes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

pub(super) fn warned(i: &Imported, pointer: &str) -> bool {
    i.warnings.iter().any(|w| w.pointer == pointer)
}

#[test]
fn base_path_modes_match_api_gateways_import() {
    // AWS's recorded results: server URL path /base-url/part, path /test.
    let d = doc(
        json!({ "servers": [{ "url": "https://testdomain.com/base-url/part/" }] }),
        json!({ "/test": mock_get() }),
    );
    let keys = |mode| route_keys(&import(&d, mode, &[]).unwrap());
    assert_eq!(keys(BasePath::Ignore), ["GET /test"]);
    assert_eq!(keys(BasePath::Prepend), ["GET /base-url/part/test"]);
    let split = import(&d, BasePath::Split, &[]).unwrap();
    assert_eq!(route_keys(&split), ["GET /part/test"]);
    assert_eq!(split.stage.as_deref(), Some("base-url"));
    // A basePath server variable wins over the URL's path; Swagger's basePath.
    let d = doc(
        json!({ "servers": [{ "url": "https://x/{basePath}", "variables": { "basePath": { "default": "/v1" } } }] }),
        json!({ "/test": mock_get() }),
    );
    assert_eq!(
        route_keys(&import(&d, BasePath::Prepend, &[]).unwrap()),
        ["GET /v1/test"]
    );
    // Other variables take their defaults (a `{stage}` kept became a path parameter).
    let d = doc(
        json!({ "servers": [{ "url": "https://{host}.example.com:{port}/{stage}/api",
                              "variables": { "host": { "default": "h" }, "port": { "default": "443" },
                                             "stage": { "default": "dev" } } }] }),
        json!({ "/test": mock_get() }),
    );
    assert_eq!(
        route_keys(&import(&d, BasePath::Prepend, &[]).unwrap()),
        ["GET /dev/api/test"]
    );
    let split = import(&d, BasePath::Split, &[]).unwrap();
    assert_eq!(split.stage.as_deref(), Some("dev"));
    let d = json!({ "swagger": "2.0", "info": { "title": "t", "version": "1" },
                    "basePath": "/base", "paths": { "/test": mock_get() } });
    assert_eq!(
        route_keys(&import(&d, BasePath::Prepend, &[]).unwrap()),
        ["GET /base/test"]
    );
    let split = import(&d, BasePath::Split, &[]).unwrap();
    assert_eq!(
        (route_keys(&split), split.stage.as_deref()),
        (vec!["GET /test".to_string()], Some("base"))
    );
}

/// A `trace` operation is no route: it was dropped without a word.
#[test]
fn a_trace_operation_is_skipped_with_a_warning() {
    let integration = serde_json::from_str::<Value>(MOCK).unwrap();
    let i = import(
        &doc(json!({}), json!({ "/m": { "trace": { "x-amazon-apigateway-integration": integration.clone() },
                                       "get": { "x-amazon-apigateway-integration": integration } } })),
        BasePath::Ignore,
        &[],
    )
    .unwrap();
    assert_eq!(route_keys(&i), ["GET /m"]);
    assert!(warned(&i, "/paths/~1m/trace"), "{:?}", i.warnings);
}

/// `$default` sends the full request path (API Gateway's own example); `http://b/` is the
/// URI `http://b` is, and its `/` sent every request to the backend's root. Other routes
/// keep the URI's path.
#[test]
fn a_default_route_to_a_backends_root_forwards_the_whole_path() {
    let proxy = |uri: &str| {
        json!({ "x-amazon-apigateway-any-method": {
        "isDefaultRoute": true,
        "x-amazon-apigateway-integration": {
            "type": "HTTP_PROXY", "httpMethod": "ANY", "uri": uri, "payloadFormatVersion": "1.0" } } })
    };
    for uri in ["http://127.0.0.1:22001/", "http://127.0.0.1:22001"] {
        let i = import(
            &doc(json!({}), json!({ "/$default": proxy(uri) })),
            BasePath::Ignore,
            &[],
        )
        .unwrap();
        let integration = &i.api["routes"]["$default"]["integration"];
        assert_eq!(integration["upstream"], "127.0.0.1:22001", "{uri}");
        assert_eq!(integration.get("path"), None, "{uri}");
    }
    let i = import(
        &doc(json!({}), json!({ "/$default": proxy("http://b/v1") })),
        BasePath::Ignore,
        &[],
    )
    .unwrap();
    assert_eq!(i.api["routes"]["$default"]["integration"]["path"], "/v1");
    let i = import(&doc(json!({}), json!({ "/x": { "get": proxy("http://b/")["x-amazon-apigateway-any-method"].clone() } })), BasePath::Ignore, &[]).unwrap();
    assert_eq!(i.api["routes"]["GET /x"]["integration"]["path"], "/");
}

#[test]
fn stage_variables_in_uris_and_shared_integrations() {
    let d = doc(
        json!({ "components": { "x-amazon-apigateway-integrations": { "shared": {
            "type": "http_proxy", "httpMethod": "GET", "uri": "http://orders.internal:8081/v2/orders",
            "payloadFormatVersion": "1.0"
        } } } }),
        json!({
            "/sv": { "get": { "x-amazon-apigateway-integration": {
                "type": "http_proxy", "httpMethod": "GET",
                "uri": "https://${stageVariables.TestHost}/items", "payloadFormatVersion": "1.0" } } },
            "/fn": { "get": { "x-amazon-apigateway-integration": {
                "type": "aws_proxy", "httpMethod": "POST", "payloadFormatVersion": "2.0",
                "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}/invocations" } } },
            "/shared": { "get": { "x-amazon-apigateway-integration": {
                "$ref": "#/components/x-amazon-apigateway-integrations/shared" } } }
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let r = &i.api["routes"];
    assert_eq!(
        r["GET /sv"]["integration"]["upstream"],
        "${stageVariables.TestHost}"
    );
    assert_eq!(r["GET /sv"]["integration"]["path"], "/items");
    assert_eq!(r["GET /fn"]["integration"]["url"], "${stageVariables.fn}");
    assert_eq!(
        r["GET /shared"]["integration"]["upstream"],
        "orders.internal:8081"
    );
    assert_eq!(r["GET /shared"]["integration"]["path"], "/v2/orders");
    // Only the literal authority becomes an upstream.
    assert_eq!(
        i.upstreams.keys().collect::<Vec<_>>(),
        ["orders.internal:8081"]
    );
    // The one warning: `https://` can't choose the scheme of the upstream a stage
    // variable names.
    let pointers: Vec<&str> = i.warnings.iter().map(|w| w.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        ["/paths/~1sv/get/x-amazon-apigateway-integration/uri"],
        "{:?}",
        i.warnings
    );
}

#[test]
fn endpoint_switch_and_what_is_only_a_warning() {
    let d = doc(
        json!({
            "servers": [{ "url": "/", "x-amazon-apigateway-endpoint-configuration": { "disableExecuteApiEndpoint": true } }],
            "x-amazon-apigateway-binary-media-types": ["image/png"],
            "x-amazon-apigateway-minimum-compression-size": 1024,
            "components": { "securitySchemes": {
                "a": { "type": "oauth2", "x-amazon-apigateway-authorizer": { "type": "jwt",
                    "jwtConfiguration": { "issuer": "https://idp", "audience": ["x"] } } },
                "b": { "type": "oauth2", "x-amazon-apigateway-authorizer": { "type": "jwt",
                    "jwtConfiguration": { "issuer": "https://idp2", "audience": ["y"] } } }
            } }
        }),
        json!({ "/two": { "get": {
            "security": [{ "a": ["s1"] }, { "b": [] }],
            "x-amazon-apigateway-integration": serde_json::from_str::<Value>(MOCK).unwrap()
        } } }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(i.api["disable_default_endpoint"], true);
    assert!(warned(&i, "/x-amazon-apigateway-binary-media-types"));
    assert!(warned(&i, "/x-amazon-apigateway-minimum-compression-size"));
    // One authorizer per operation: the first is kept, the second reported.
    let two = &i.api["routes"]["GET /two"];
    assert_eq!(two["authorizer"], "a");
    assert_eq!(two["authorization_scopes"], json!(["s1"]));
    assert!(warned(&i, "/paths/~1two/get/security"), "{:?}", i.warnings);
    assert_eq!(i.api["authorizers"]["b"]["issuer"], "https://idp2");
}

#[test]
fn authorizers_round_trip_through_export_with_what_api_gateway_has_no_field_for() {
    let cfg = crate::config::load_and_validate_text(
        r#"
iam:
  principals:
    p: { access_key_id: AKIAX, secret_access_key: s, allow: ["*"] }
apis:
  shop:
    stages: { prod: {} }
    api_key_source: authorizer
    authorizers:
      users: { type: jwt, issuer: "https://idp.example", audience: [a, b], jwks_uri: "https://idp.example/keys",
               algorithms: [ES256], leeway: 30s, identity_source: $request.querystring.t }
      gate: { type: lambda, url: "http://127.0.0.1:9000/fn", payload_format: "1.0", timeout: 2s, result_ttl: 60s,
              identity_source: [$request.header.x-token, $request.querystring.tenant] }
    routes:
      "GET /me": { authorizer: users, authorization_scopes: [profile.read], integration: { type: mock } }
      "POST /orders": { authorizer: gate, api_key_required: true, integration: { type: mock } }
      "GET /reports": { authorization: iam, integration: { type: mock } }
"#,
    )
    .unwrap();
    let ext = super::export::Extensions::parse("apigateway").unwrap();
    let doc = super::export::export(&cfg, "shop", "prod", ext).unwrap();
    // OpenAPI 3.0 wants `flows` on an `oauth2` scheme (API Gateway writes it empty).
    let scheme = &doc["components"]["securitySchemes"]["users"];
    assert_eq!(
        (&scheme["type"], &scheme["flows"]),
        (&json!("oauth2"), &json!({}))
    );
    let i = import(&doc, BasePath::Ignore, &[]).unwrap();
    assert_eq!(
        i.api["authorizers"]["users"],
        json!({ "type": "jwt", "issuer": "https://idp.example", "audience": ["a", "b"],
                "identity_source": "$request.querystring.t", "jwks_uri": "https://idp.example/keys",
                "algorithms": ["ES256"], "leeway": "30000ms" })
    );
    assert_eq!(
        i.api["authorizers"]["gate"],
        json!({ "type": "lambda", "url": "http://127.0.0.1:9000/fn", "payload_format": "1.0",
                "identity_source": ["$request.header.x-token", "$request.querystring.tenant"],
                "result_ttl": "60s", "timeout": "2000ms" })
    );
    assert_eq!(i.api["api_key_source"], "authorizer");
    let r = &i.api["routes"];
    assert_eq!(
        r["GET /me"]["authorization_scopes"],
        json!(["profile.read"])
    );
    assert_eq!(
        (
            &r["POST /orders"]["authorizer"],
            &r["POST /orders"]["api_key_required"]
        ),
        (&json!("gate"), &json!(true))
    );
    assert_eq!(r["GET /reports"]["authorization"], "iam");
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn body_schemas_that_are_not_local_models_are_warned_about() {
    let integration: Value = serde_json::from_str(MOCK).unwrap();
    let body = |r: &str| json!({ "content": { "application/json": { "schema": { "$ref": r } } } });
    let d = doc(
        json!({
            "x-amazon-apigateway-request-validator": "all",
            "x-amazon-apigateway-request-validators": { "all": { "validateRequestBody": true, "validateRequestParameters": true } },
            "components": { "schemas": { "Order": { "type": "object", "required": ["sku"] } } }
        }),
        json!({
            "/ok": { "post": { "requestBody": body("#/components/schemas/Order"), "x-amazon-apigateway-integration": integration } },
            "/typo": { "post": { "requestBody": body("#/components/schemas/Ordr"), "x-amazon-apigateway-integration": integration } },
            "/file": { "post": { "requestBody": body("other.yaml#/components/schemas/Order"), "x-amazon-apigateway-integration": integration } },
            "/item": { "$ref": "#/components/pathItems/X" }
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(
        i.api["routes"]["POST /ok"]["request_model"]["application/json"],
        "Order"
    );
    for pointer in [
        "/paths/~1typo/post",
        "/paths/~1file/post",
        "/paths/~1item/$ref",
    ] {
        assert!(warned(&i, pointer), "{pointer}: {:?}", i.warnings);
    }
    assert!(!warned(&i, "/paths/~1ok/post"), "{:?}", i.warnings);
    // The other file's Order is not taken for this document's.
    assert!(i.api["routes"]["POST /file"].get("request_model").is_none());
}

#[test]
fn mock_body_keeps_its_templates_media_type() {
    let with = |integ: Value| {
        let d = doc(
            json!({}),
            json!({ "/t": { "get": { "x-amazon-apigateway-integration": integ } } }),
        );
        import(&d, BasePath::Ignore, &[]).unwrap().api["routes"]["GET /t"]["integration"].clone()
    };
    let i = with(
        json!({ "type": "mock", "responses": { "default": { "statusCode": "200",
        "responseTemplates": { "application/json": "{\"ok\":true}" } } } }),
    );
    assert_eq!(i["body"], "{\"ok\":true}");
    assert_eq!(i["headers"]["content-type"], "application/json");
    let i = with(
        json!({ "type": "mock", "responses": { "default": { "statusCode": "200",
        "responseTemplates": { "text/html": "<p>hi</p>" } } } }),
    );
    assert_eq!(i["headers"]["content-type"], "text/html");
    // A header the responseParameters set is kept.
    let i = with(
        json!({ "type": "mock", "responses": { "default": { "statusCode": "200",
        "responseParameters": { "method.response.header.Content-Type": "'text/plain'" },
        "responseTemplates": { "application/json": "x" } } } }),
    );
    assert_eq!(i["headers"]["Content-Type"], "text/plain");
    assert!(i["headers"].get("content-type").is_none());
}

#[test]
fn mocks_round_trip_through_export_with_their_headers() {
    let cfg = crate::config::load_and_validate_text(
        r#"
apis:
  shop:
    stages: { prod: {} }
    routes:
      "OPTIONS /a": { integration: { type: mock, status: 204, headers: { allow: GET } } }
      "GET /b": { integration: { type: mock, status: 200, headers: { content-type: text/html }, body: "<p>b</p>" } }
      "GET /c":
        integration: { type: mock }
        response_parameters: { "200": { "overwrite:header.x-stage": "$context.stage" } }
      "GET /fn": { integration: { type: lambda, url: "http://127.0.0.1:9001/fn" } }
    lambda_functions: { "arn:aws:lambda:us-east-1:123456789012:function:fn": "http://127.0.0.1:9001/fn" }
"#,
    )
    .unwrap();
    let ext = super::export::Extensions::parse("apigateway").unwrap();
    let doc = super::export::export(&cfg, "shop", "prod", ext).unwrap();
    let i = import(&doc, BasePath::Ignore, &[]).unwrap();
    let r = &i.api["routes"];
    // An empty mock gained an empty body sent as application/json.
    assert_eq!(
        r["OPTIONS /a"]["integration"],
        json!({ "type": "mock", "status": 204, "headers": { "allow": "GET" } })
    );
    assert_eq!(
        r["GET /b"]["integration"],
        json!({ "type": "mock", "status": 200, "headers": { "content-type": "text/html" }, "body": "<p>b</p>" })
    );
    // A mock's response mappings come back (they were dropped unsaid).
    assert_eq!(
        r["GET /c"]["response_parameters"],
        json!({ "200": { "overwrite:header.x-stage": "$context.stage" } })
    );
    // A function `lambda_functions` names keeps its URL (it came back as the local
    // emulator's default).
    assert_eq!(
        r["GET /fn"]["integration"]["url"],
        "http://127.0.0.1:9001/fn"
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

/// Gateway response headers that read `$context` or `$stageVariables` export as API
/// Gateway's references (quoted, they were literals re-import refused), and a greedy
/// path parameter keeps its `+` (OpenAPI wants the template's name).
#[test]
fn gateway_response_references_and_greedy_parameters_export_as_api_gateway_writes_them() {
    let cfg = crate::config::load_and_validate_text(
        r#"
apis:
  shop:
    stages: { prod: { variables: { tier: gold } } }
    gateway_responses:
      DEFAULT_4XX: { headers: { x-req: "$context.requestId", x-tier: "${stageVariables.tier}", x-fixed: "a b" } }
    routes:
      "GET /files/{proxy+}": { integration: { type: mock } }
"#,
    )
    .unwrap();
    let ext = super::export::Extensions::parse("apigateway").unwrap();
    let doc = super::export::export(&cfg, "shop", "prod", ext).unwrap();
    let params = &doc["x-amazon-apigateway-gateway-responses"]["DEFAULT_4XX"]["responseParameters"];
    assert_eq!(
        params,
        &json!({ "gatewayresponse.header.x-req": "context.requestId",
                 "gatewayresponse.header.x-tier": "stageVariables.tier",
                 "gatewayresponse.header.x-fixed": "'a b'" })
    );
    let get = &doc["paths"]["/files/{proxy+}"]["get"];
    assert_eq!(get["parameters"][0]["name"], "proxy+");
    let i = import(&doc, BasePath::Ignore, &[]).unwrap();
    assert_eq!(
        i.api["gateway_responses"]["DEFAULT_4XX"]["headers"],
        json!({ "x-req": "$context.requestId", "x-tier": "$stageVariables.tier", "x-fixed": "a b" })
    );
    assert!(i.api["routes"].get("GET /files/{proxy+}").is_some());
}

/// The imported API with its upstreams as a config, and what `check` says of it.
pub(super) fn check_imported(i: &Imported) -> Vec<String> {
    let mut api = i.api.clone();
    api.insert("stages".into(), json!({ "$default": {} }));
    let cfg = json!({ "upstreams": i.upstreams, "apis": { "x": api } });
    let text = serde_json::to_string(&cfg).unwrap();
    crate::config::check_text_in(&text, std::path::Path::new("."))
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn models_bodies_and_parameters_import_as_api_gateway_reads_them() {
    let http = |uri: &str, maps: Value| json!({ "type": "http", "httpMethod": "GET", "uri": uri, "requestParameters": maps });
    let body = |schema: Value| json!({ "content": { "application/json": { "schema": schema } } });
    let d = doc(
        json!({
            "x-amazon-apigateway-request-validators": { "all": { "validateRequestBody": true, "validateRequestParameters": true } },
            "x-amazon-apigateway-request-validator": "all",
            // A draft-4 model with definitions of its own: in OpenAPI 3, #/definitions
            // points into it, not at the document's models.
            "components": { "schemas": { "ItemList": {
                "type": "array", "items": { "$ref": "#/definitions/item" },
                "definitions": { "item": { "type": "object", "required": ["id"] } }
            } } }
        }),
        json!({
            "/list": { "post": { "requestBody": body(json!({ "$ref": "#/components/schemas/ItemList" })),
                "x-amazon-apigateway-integration": serde_json::from_str::<Value>(MOCK).unwrap() } },
            // Two inline bodies whose route names fold to the same letters.
            "/a-b": { "post": { "requestBody": body(json!({ "required": ["x"] })),
                "x-amazon-apigateway-integration": serde_json::from_str::<Value>(MOCK).unwrap() } },
            "/a_b": { "post": { "requestBody": body(json!({ "required": ["y"] })),
                "x-amazon-apigateway-integration": serde_json::from_str::<Value>(MOCK).unwrap() } },
            // The operation's x-tenant replaces the path item's.
            "/t/{a}/{b}": {
                "parameters": [{ "name": "x-tenant", "in": "header", "required": true }],
                "get": {
                    "parameters": [{ "name": "x-tenant", "in": "header", "required": false }],
                    "x-amazon-apigateway-integration": http("http://127.0.0.1:9/swap/{a}/{b}", json!({
                        "integration.request.path.a": "method.request.path.b",
                        "integration.request.path.b": "method.request.path.a"
                    }))
                }
            },
            "/q": { "get": { "x-amazon-apigateway-integration": http("http://127.0.0.1:9/items/{id}", json!({
                "integration.request.path.id": "method.request.querystring.id"
            })) } }
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(check_imported(&i), Vec::<String>::new());
    let routes = &i.api["routes"];
    assert_eq!(
        i.api["models"]["ItemList"]["items"]["$ref"],
        "#/definitions/item"
    );
    let (ab, a_b) = (
        &routes["POST /a-b"]["request_model"]["application/json"],
        &routes["POST /a_b"]["request_model"]["application/json"],
    );
    assert_ne!(ab, a_b);
    assert_eq!(
        i.api["models"][ab.as_str().unwrap()]["required"],
        json!(["x"])
    );
    assert_eq!(
        i.api["models"][a_b.as_str().unwrap()]["required"],
        json!(["y"])
    );
    let t = &routes["GET /t/{a}/{b}"];
    // Not x-tenant (the operation's is not required); the path's, as API Gateway's import.
    assert_eq!(t["required_parameters"], json!(["path.a", "path.b"]), "{t}");
    assert_eq!(t["integration"]["path"], "/swap/{b}/{a}");
    let q = &routes["GET /q"];
    assert!(q["integration"].get("path").is_none(), "{q}");
    assert_eq!(
        q["parameters"]["overwrite:path"],
        "/items/${request.querystring.id}"
    );
}

#[test]
fn api_key_and_iam_schemes_never_take_an_authorizers_name() {
    // Authorizers named as the export's own schemes: the API-key and IAM requirements
    // must come back as such, not as these authorizers (nor the reverse).
    let cfg = crate::config::load_and_validate_text(
        r#"
iam:
  principals:
    p: { access_key_id: AKIAX, secret_access_key: s, allow: ["*"] }
apis:
  a:
    stages: { prod: {} }
    authorizers:
      api_key: { type: lambda, url: "http://127.0.0.1:9000/fn", payload_format: "1.0", identity_source: [$request.header.auth] }
      sigv4: { type: lambda, url: "http://127.0.0.1:9000/fn", payload_format: "1.0", identity_source: [$request.header.auth] }
      api_key_2: { type: lambda, url: "http://127.0.0.1:9000/fn", payload_format: "1.0", identity_source: [$request.header.auth] }
    routes:
      "GET /both": { authorizer: api_key, api_key_required: true, integration: { type: mock } }
      "GET /keyonly": { api_key_required: true, integration: { type: mock } }
      "GET /iam": { authorization: iam, integration: { type: mock } }
      "GET /sig": { authorizer: sigv4, integration: { type: mock } }
"#,
    )
    .unwrap();
    let ext = super::export::Extensions::parse("apigateway").unwrap();
    let doc = super::export::export(&cfg, "a", "prod", ext).unwrap();
    let i = import(&doc, BasePath::Ignore, &[]).unwrap();
    let r = &i.api["routes"];
    let auth = |k: &str| {
        let r = &r[k];
        (
            r.get("authorizer").cloned(),
            r.get("authorization").cloned(),
            r.get("api_key_required").cloned(),
        )
    };
    let s = |v: &str| Some(json!(v));
    assert_eq!(auth("GET /both"), (s("api_key"), None, Some(json!(true))));
    assert_eq!(auth("GET /keyonly"), (None, None, Some(json!(true))));
    assert_eq!(auth("GET /iam"), (None, s("iam"), None));
    assert_eq!(auth("GET /sig"), (s("sigv4"), None, None));
    let names: Vec<&String> = i.api["authorizers"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["api_key", "api_key_2", "sigv4"]);
}

#[test]
fn mappings_of_headers_api_gateway_reserves_are_skipped() {
    // They were imported, and check refused the whole config. `authorization` stays:
    // Portico lets a request mapping send a backend's credentials.
    let http = |maps: Value, responses: Value| {
        json!({ "get": { "x-amazon-apigateway-integration": {
            "type": "http_proxy", "httpMethod": "GET", "uri": "http://127.0.0.1:9/h",
            "payloadFormatVersion": "1.0", "requestParameters": maps,
            "responseParameters": responses } } })
    };
    let paths = json!({
        "/h": http(
            json!({ "overwrite:header.X-Amz-Date": "x", "overwrite:header.via": "gw",
                    "overwrite:header.authorization": "Bearer t" }),
            json!({ "200": { "overwrite:header.Content-Encoding": "br",
                             "overwrite:header.access-control-allow-origin": "*",
                             "overwrite:header.Date": "Mon, 01 Jan 2001 00:00:00 GMT",
                             "overwrite:header.x-ok": "1" } }),
        ),
        "/r": { "get": { "x-amazon-apigateway-integration": {
            "type": "http", "httpMethod": "GET", "uri": "http://127.0.0.1:9/r",
            "requestParameters": { "integration.request.header.Origin": "'https://a'" } } } },
    });
    let i = import(&doc(json!({}), paths), BasePath::Ignore, &[]).unwrap();
    assert_eq!(check_imported(&i), Vec::<String>::new());
    let h = "/paths/~1h/get/x-amazon-apigateway-integration";
    for pointer in [
        format!("{h}/requestParameters/overwrite:header.X-Amz-Date"),
        format!("{h}/requestParameters/overwrite:header.via"),
        format!("{h}/responseParameters/200/overwrite:header.Content-Encoding"),
        format!("{h}/responseParameters/200/overwrite:header.access-control-allow-origin"),
        format!("{h}/responseParameters/200/overwrite:header.Date"),
        "/paths/~1r/get/x-amazon-apigateway-integration/requestParameters/integration.request.header.Origin".into(),
    ] {
        assert!(warned(&i, &pointer), "{pointer}: {:?}", i.warnings);
    }
    let r = &i.api["routes"];
    assert_eq!(
        r["GET /h"]["parameters"],
        json!({ "overwrite:header.authorization": "Bearer t" })
    );
    assert_eq!(
        r["GET /h"]["response_parameters"],
        json!({ "200": { "overwrite:header.x-ok": "1" } })
    );
    assert!(r["GET /r"].get("parameters").is_none(), "{:?}", r["GET /r"]);
}
