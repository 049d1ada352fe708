//! Import of protections written in a shape Portico does not expect: each method whose
//! protection can't be read is skipped with a warning at its pointer, never served open
//! or with a weaker check; settings of the wrong type are named.

use serde_json::{json, Value};

use super::import::{import, BasePath, Imported};
use super::tests::{doc, warned};

fn http(path: &str) -> Value {
    json!({ "type": "http_proxy", "httpMethod": "GET", "uri": format!("http://127.0.0.1:9{path}") })
}

fn get(path: &str, extra: Value) -> Value {
    let mut op = json!({ "x-amazon-apigateway-integration": http(path) });
    op.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({ "get": op })
}

fn imported_with(extra: Value, paths: Value) -> Imported {
    import(&doc(extra, paths), BasePath::Ignore, &[]).unwrap()
}

fn route<'i>(i: &'i Imported, key: &str) -> Option<&'i Value> {
    i.api["routes"].get(key)
}

#[test]
fn protections_of_the_wrong_shape_skip_the_method() {
    let schemes = json!({ "components": { "securitySchemes": {
        "api_key": { "type": "apiKey", "name": "x-api-key", "in": "header" },
        "aliased": { "$ref": "#/components/securitySchemes/api_key" },
        "dangling": { "$ref": "#/components/securitySchemes/nope" },
        "cognito": { "type": "apiKey", "name": "Authorization", "in": "header",
                     "x-amazon-apigateway-authtype": "cognito_user_pools" },
        "typeless": { "name": "x" },
        // Asked for by the document, enforced by no authorizer Portico has.
        "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
        "oidc": { "type": "openIdConnect", "openIdConnectUrl": "https://idp.example/.well-known/openid-configuration" }
    } } });
    let i = imported_with(
        schemes,
        json!({
            "/ok": get("/ok", json!({ "security": [{ "api_key": [] }] })),
            "/obj": get("/obj", json!({ "security": { "api_key": [] } })),
            "/nested": get("/nested", json!({ "security": [["api_key"]] })),
            "/scopes": get("/scopes", json!({ "security": [{ "api_key": "read" }] })),
            "/authstr": get("/authstr", json!({ "x-amazon-apigateway-auth": "AWS_IAM" })),
            "/authtype": get("/authtype", json!({ "x-amazon-apigateway-auth": { "Type": "AWS_IAM" } })),
            "/aliased": get("/aliased", json!({ "security": [{ "aliased": [] }] })),
            "/dangling": get("/dangling", json!({ "security": [{ "dangling": [] }] })),
            "/cognito": get("/cognito", json!({ "security": [{ "cognito": [] }] })),
            "/typeless": get("/typeless", json!({ "security": [{ "typeless": [] }] })),
            "/open": get("/open", json!({ "security": [] })),
            "/bearer": get("/bearer", json!({ "security": [{ "bearer": [] }] })),
            "/oidc": get("/oidc", json!({ "security": [{ "oidc": ["read"] }] })),
        }),
    );
    assert_eq!(route(&i, "GET /ok").unwrap()["api_key_required"], true);
    // A `$ref`'d scheme is the scheme it names.
    assert_eq!(route(&i, "GET /aliased").unwrap()["api_key_required"], true);
    // `security: []` is no requirement, as OpenAPI says.
    assert!(route(&i, "GET /open").is_some());
    for (path, pointer) in [
        ("/obj", "/paths/~1obj/get/security"),
        ("/nested", "/paths/~1nested/get/security/0"),
        ("/scopes", "/paths/~1scopes/get/security/0/api_key"),
        ("/authstr", "/paths/~1authstr/get/x-amazon-apigateway-auth"),
        (
            "/authtype",
            "/paths/~1authtype/get/x-amazon-apigateway-auth",
        ),
        ("/dangling", "/paths/~1dangling/get/security"),
        ("/cognito", "/paths/~1cognito/get/security"),
        ("/typeless", "/paths/~1typeless/get/security"),
        ("/bearer", "/paths/~1bearer/get/security"),
        ("/oidc", "/paths/~1oidc/get/security"),
    ] {
        assert!(
            route(&i, &format!("GET {path}")).is_none(),
            "{path} was imported: {:?}",
            i.api["routes"]
        );
        assert!(
            warned(&i, pointer),
            "no warning at {pointer}: {:?}",
            i.warnings
        );
    }
    for scheme in [
        "dangling",
        "cognito/x-amazon-apigateway-authtype",
        "typeless",
        "bearer",
        "oidc",
    ] {
        let p = format!("/components/securitySchemes/{scheme}");
        assert!(warned(&i, &p), "no warning at {p}: {:?}", i.warnings);
    }
}

#[test]
fn validator_settings_that_are_not_booleans_are_named() {
    let validators = json!({ "x-amazon-apigateway-request-validators": {
        "quoted": { "validateRequestBody": "true", "validateRequestParameters": "TRUE" },
        "yaml11": { "validateRequestBody": "yes", "validateRequestParameters": "no" },
        "typo": { "validateBody": true, "validateRequestParameters": 1 }
    } });
    let op = |v: &str| {
        json!({ "x-amazon-apigateway-request-validator": v,
                "parameters": [{ "name": "q", "in": "query", "required": "true" }] })
    };
    let i = imported_with(
        validators,
        json!({
            "/a": get("/a", op("quoted")),
            "/b": get("/b", op("yaml11")),
            "/c": get("/c", op("typo")),
        }),
    );
    let at = "/x-amazon-apigateway-request-validators";
    assert_eq!(route(&i, "GET /a").unwrap()["request_validator"], "all");
    assert_eq!(
        route(&i, "GET /b").unwrap()["request_validator"],
        "body-only"
    );
    assert!(route(&i, "GET /c")
        .unwrap()
        .get("request_validator")
        .is_none());
    // A required flag written as a string still requires.
    assert_eq!(
        route(&i, "GET /a").unwrap()["required_parameters"],
        json!(["querystring.q"])
    );
    for p in [
        "/quoted/validateRequestBody",
        "/quoted/validateRequestParameters",
        "/yaml11/validateRequestBody",
        "/yaml11/validateRequestParameters",
        "/typo/validateBody",
        "/typo/validateRequestParameters",
    ] {
        let p = format!("{at}{p}");
        assert!(warned(&i, &p), "no warning at {p}: {:?}", i.warnings);
    }
    assert!(warned(&i, "/paths/~1a/get/parameters"), "{:?}", i.warnings);
}

#[test]
fn a_body_a_template_builds_from_the_gateways_values_is_not_passed_as_sent() {
    let templated = |template: &str, passthrough: &str| {
        json!({ "post": { "x-amazon-apigateway-integration": {
            "type": "http", "httpMethod": "POST", "uri": "http://127.0.0.1:9/t",
            "passthroughBehavior": passthrough,
            "requestTemplates": { "application/json": template } } } })
    };
    let i = imported_with(
        json!({}),
        json!({
            "/user": templated(r#"{"user":"$context.authorizer.principalId","item":$input.json('$.item')}"#, "when_no_match"),
            "/ip": templated(r#"{"ip":"${context.identity.sourceIp}"}"#, "when_no_match"),
            "/never": templated(r#"{"item":$input.json('$.item')}"#, "never"),
            "/bracket": templated(r#"{"ip":"$context['identity']['sourceIp']"}"#, "when_no_match"),
            "/get": templated(r#"{"u":"$context.get('authorizer').get('principalId')"}"#, "when_no_match"),
            "/alias": templated(r#"#set($c = $context){"u":"$c.authorizer.principalId"}"#, "when_no_match"),
            "/quiet": templated(r#"{"u":"$!{context.authorizer.principalId}"}"#, "when_no_match"),
            "/stage": templated(r#"{"tenant":"$stageVariables.tenant"}"#, "when_no_match"),
            "/plain": templated(r#"{"item":$input.json('$.item')}"#, "when_no_match"),
        }),
    );
    for path in [
        "/user", "/ip", "/never", "/bracket", "/get", "/alias", "/quiet", "/stage",
    ] {
        assert!(
            route(&i, &format!("POST {path}")).is_none(),
            "{path} imported"
        );
        let p = format!(
            "/paths/~1{}/post/x-amazon-apigateway-integration/requestTemplates",
            &path[1..]
        );
        assert!(warned(&i, &p), "no warning at {p}: {:?}", i.warnings);
    }
    // A template that only picks from the client's own body: passed as sent, warned.
    assert!(route(&i, "POST /plain").is_some());
    assert!(warned(
        &i,
        "/paths/~1plain/post/x-amazon-apigateway-integration"
    ));
}

#[test]
fn static_header_values_are_sent_as_written_or_skipped() {
    let responses = json!({ "x-amazon-apigateway-gateway-responses": {
        "BAD_REQUEST_BODY": { "statusCode": "4xx", "responseParameters": {
            "gatewayresponse.header.x-ua": "'$context.identity.userAgent'",
            "gatewayresponse.header.x-crlf": "'a\r\nb: c'",
            "gatewayresponse.header.x-sv": "'${stageVariables.s}'",
            "gatewayresponse.header.x-ok": "'fixed'"
        } } } });
    let i = imported_with(responses, json!({ "/m": get("/m", json!({})) }));
    let g = &i.api["gateway_responses"]["BAD_REQUEST_BODY"];
    assert_eq!(g["headers"], json!({ "x-ok": "fixed" }), "{g}");
    assert!(g.get("status").is_none(), "{g}");
    let at = "/x-amazon-apigateway-gateway-responses/BAD_REQUEST_BODY";
    for p in [
        "/statusCode",
        "/responseParameters/gatewayresponse.header.x-ua",
        "/responseParameters/gatewayresponse.header.x-crlf",
        "/responseParameters/gatewayresponse.header.x-sv",
    ] {
        let p = format!("{at}{p}");
        assert!(warned(&i, &p), "no warning at {p}: {:?}", i.warnings);
    }
}

#[test]
fn a_header_check_refuses_twice_or_a_content_type_list_is_skipped() {
    let responses = json!({ "x-amazon-apigateway-gateway-responses": {
        "DEFAULT_4XX": { "responseParameters": {
            "gatewayresponse.header.X-A": "'1'",
            "gatewayresponse.header.x-a": "'2'",
            "gatewayresponse.header.content-type": "'application/json, text/html'"
        } } } });
    let i = imported_with(responses, json!({ "/m": get("/m", json!({})) }));
    let headers = &i.api["gateway_responses"]["DEFAULT_4XX"]["headers"];
    assert_eq!(headers.as_object().map(|m| m.len()), Some(1), "{headers}");
    let at = "/x-amazon-apigateway-gateway-responses/DEFAULT_4XX/responseParameters";
    let p = format!("{at}/gatewayresponse.header.content-type");
    assert!(warned(&i, &p), "no warning at {p}: {:?}", i.warnings);
    assert_eq!(super::tests::check_imported(&i), Vec::<String>::new());
}

#[test]
fn two_authorizers_required_together_skip_the_method() {
    let jwt = |iss: &str| {
        json!({ "type": "oauth2", "x-amazon-apigateway-authorizer": { "type": "jwt",
            "jwtConfiguration": { "issuer": iss, "audience": ["a"] },
            "identitySource": "$request.header.Authorization" } })
    };
    let schemes = json!({ "components": { "securitySchemes": {
        "jw": jwt("https://one.example"),
        "jw2": jwt("https://two.example"),
        "sigv4": { "type": "apiKey", "name": "Authorization", "in": "header",
                   "x-amazon-apigateway-authtype": "awsSigv4" }
    } } });
    let i = imported_with(
        schemes,
        json!({
            "/and": get("/and", json!({ "security": [{ "jw": [], "jw2": [] }] })),
            "/iam-and": get("/iam-and", json!({ "security": [{ "sigv4": [], "jw": [] }] })),
            "/or": get("/or", json!({ "security": [{ "jw": [] }, { "jw2": [] }] })),
        }),
    );
    for path in ["/and", "/iam-and"] {
        assert!(
            route(&i, &format!("GET {path}")).is_none(),
            "{path} imported"
        );
        let p = format!("/paths/~1{}/get/security/0", &path[1..]);
        assert!(warned(&i, &p), "no warning at {p}: {:?}", i.warnings);
    }
    // Alternatives: the first is kept, which refuses what only the second would pass
    // (stricter, never weaker).
    assert_eq!(route(&i, "GET /or").unwrap()["authorizer"], "jw");
    assert!(warned(&i, "/paths/~1or/get/security"), "{:?}", i.warnings);
}

#[test]
fn an_integration_header_value_with_a_control_character_is_skipped() {
    let mut op = get("/h", json!({}));
    op["get"]["x-amazon-apigateway-integration"]["requestParameters"] = json!({
        "integration.request.header.x-a": "'a\u{1}b'",
        "integration.request.header.x-b": "'fine'"
    });
    let i = imported_with(json!({}), json!({ "/h": op }));
    let params = &route(&i, "GET /h").unwrap()["parameters"];
    assert_eq!(params.as_object().map(|m| m.len()), Some(1), "{params}");
    assert!(
        i.warnings.iter().any(|w| w
            .pointer
            .starts_with("/paths/~1h/get/x-amazon-apigateway-integration/requestParameters")
            && w.message.contains("control character")),
        "{:?}",
        i.warnings
    );
    assert_eq!(super::tests::check_imported(&i), Vec::<String>::new());
}

/// A GET whose proxy integration calls `uri`.
fn proxy_get(uri: &str) -> Value {
    json!({ "get": { "x-amazon-apigateway-integration": {
        "type": "http_proxy", "httpMethod": "GET", "uri": uri, "payloadFormatVersion": "1.0" } } })
}

/// One authority reached over both schemes: each keeps its own. They shared the upstream
/// the first one made, so `https://vm/secure` went out in cleartext to port 80 when
/// `http://vm/public` came first (and the plain one over TLS to 443 the other way).
#[test]
fn an_authority_reached_over_both_schemes_keeps_each_scheme() {
    let d = doc(
        json!({}),
        json!({
            "/a": proxy_get("http://vm/public"),
            "/b": proxy_get("https://vm/secure"),
            "/c": proxy_get("https://vm/also"),
            "/d": proxy_get("http://vm/again"),
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let upstream = |route: &str| i.api["routes"][route]["integration"]["upstream"].clone();
    assert_eq!(upstream("GET /a"), "vm");
    assert_eq!(upstream("GET /d"), "vm");
    assert_eq!(upstream("GET /b"), "https://vm");
    assert_eq!(upstream("GET /c"), "https://vm");
    assert_eq!(i.upstreams["vm"], json!({ "targets": ["http://vm"] }));
    assert_eq!(
        i.upstreams["https://vm"],
        json!({ "targets": ["https://vm"] })
    );
    assert!(
        warned(&i, "/paths/~1b/get/x-amazon-apigateway-integration/uri"),
        "{:?}",
        i.warnings
    );
    assert!(!warned(
        &i,
        "/paths/~1c/get/x-amazon-apigateway-integration/uri"
    ));
    assert_eq!(super::tests::check_imported(&i), Vec::<String>::new());
}

/// A scheme in capitals is the scheme (RFC 3986 §3.1: the method was skipped); https to a
/// host from a stage variable is warned about, since the upstream it names decides (it
/// was dropped without a word, the call going out in cleartext).
#[test]
fn uri_schemes_in_capitals_and_on_stage_variable_hosts() {
    let d = doc(
        json!({}),
        json!({
            "/a": proxy_get("HTTPS://vm/a"),
            "/b": proxy_get("https://${stageVariables.h}/b"),
            "/c": proxy_get("http://${stageVariables.h}/c"),
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(i.api["routes"]["GET /a"]["integration"]["upstream"], "vm");
    assert_eq!(i.upstreams["vm"], json!({ "targets": ["https://vm"] }));
    let at = |p: &str| format!("/paths/~1{p}/get/x-amazon-apigateway-integration/uri");
    assert!(!warned(&i, &at("a")), "{:?}", i.warnings);
    assert!(warned(&i, &at("b")), "{:?}", i.warnings);
    assert!(!warned(&i, &at("c")), "{:?}", i.warnings);
    assert_eq!(
        i.api["routes"]["GET /b"]["integration"]["upstream"],
        "${stageVariables.h}"
    );
}

/// A header the authorizer's answer would set, on an operation without one: removed, not
/// dropped, so a client's own `x-user: admin` does not reach a backend trusting it.
#[test]
fn a_mapping_of_the_missing_authorizer_removes_what_it_would_set() {
    let op = |params: Value| {
        let mut integration = http("/w");
        integration["requestParameters"] = params;
        json!({ "get": { "x-amazon-apigateway-integration": integration } })
    };
    let i = imported_with(
        json!({}),
        json!({
            "/http": op(json!({
                "overwrite:header.x-user": "$context.authorizer.claims.sub",
                "append:querystring.tenant": "$context.authorizer.tenant",
                "overwrite:header.x-kept": "static"
            })),
            "/rest": op(json!({
                "integration.request.header.x-user": "context.authorizer.principalId"
            })),
            // Skipped for another reason first: removed all the same.
            "/body": op(json!({
                "overwrite:header.x-role": "$context.authorizer.claims.role $request.body.x"
            })),
            // The URI path made from the authorizer's values: the method is skipped (the
            // backend got the client's own path).
            "/path": op(json!({ "overwrite:path": "/users/$context.authorizer.principalId" })),
        }),
    );
    assert!(route(&i, "GET /path").is_none(), "{:?}", i.api["routes"]);
    let params = |k: &str| route(&i, k).unwrap()["parameters"].clone();
    assert_eq!(params("GET /body"), json!({ "remove:header.x-role": "" }));
    assert_eq!(
        params("GET /http"),
        json!({ "remove:header.x-user": "", "remove:querystring.tenant": "", "overwrite:header.x-kept": "static" })
    );
    assert_eq!(params("GET /rest"), json!({ "remove:header.x-user": "" }));
    assert!(
        warned(
            &i,
            "/paths/~1http/get/x-amazon-apigateway-integration/requestParameters"
        ),
        "{:?}",
        i.warnings
    );
}

/// An authorizer identity source `check` refuses (always empty when the authorizer runs)
/// makes its scheme unusable at import, with a warning at the source: written out, the
/// whole API failed to load at a key path in no file.
#[test]
fn an_identity_source_check_refuses_skips_its_scheme() {
    let schemes = json!({ "components": { "securitySchemes": {
        "gate": { "type": "apiKey", "name": "x-token", "in": "header",
                  "x-amazon-apigateway-authtype": "custom",
                  "x-amazon-apigateway-authorizer": { "type": "request",
                      "authorizerUri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:a/invocations",
                      "identitySource": "method.request.header.x-token, context.identity.userArn" } },
        "jw": { "type": "oauth2", "flows": {},
                "x-amazon-apigateway-authorizer": { "type": "jwt",
                    "identitySource": "$context.identity.sourceIp",
                    "jwtConfiguration": { "issuer": "https://issuer.example", "audience": ["a"] } } }
    } } });
    let i = imported_with(
        schemes,
        json!({ "/g": get("/g", json!({ "security": [{ "gate": [] }] })),
                "/j": get("/j", json!({ "security": [{ "jw": [] }] })) }),
    );
    for (path, scheme) in [("GET /g", "gate"), ("GET /j", "jw")] {
        assert!(route(&i, path).is_none(), "{:?}", i.api["routes"]);
        let p = format!(
            "/components/securitySchemes/{scheme}/x-amazon-apigateway-authorizer/identitySource"
        );
        assert!(warned(&i, &p), "{:?}", i.warnings);
    }
}

/// A gateway response answers with one template: the others are said, not dropped
/// without a word; a status that is no HTTP status is told as one.
#[test]
fn templates_left_out_and_statuses_out_of_range_are_said() {
    let responses = json!({ "x-amazon-apigateway-gateway-responses": {
        "BAD_REQUEST_BODY": { "responseTemplates": {
            "application/json": "{\"m\":1}", "text/html": "<p>no</p>" } },
        "DEFAULT_4XX": { "statusCode": "1000" } } });
    let i = imported_with(responses, json!({ "/m": get("/m", json!({})) }));
    let at = "/x-amazon-apigateway-gateway-responses";
    let html = format!("{at}/BAD_REQUEST_BODY/responseTemplates/text~1html");
    assert!(warned(&i, &html), "no warning at {html}: {:?}", i.warnings);
    let json_at = format!("{at}/BAD_REQUEST_BODY/responseTemplates/application~1json");
    assert!(!warned(&i, &json_at), "{:?}", i.warnings);
    let status = i
        .warnings
        .iter()
        .find(|w| w.pointer == format!("{at}/DEFAULT_4XX/statusCode"));
    assert!(
        status.is_some_and(|w| w.message.contains("not an HTTP status")),
        "{:?}",
        i.warnings
    );
}
