//! Reading a document, and what import makes of the parameters and bodies in it.

use serde_json::{json, Value};

use super::import::{import, parse, BasePath};

#[test]
fn yaml_merge_keys_are_applied_as_in_the_config() {
    let d = parse(
        r#"
openapi: 3.0.1
info: { title: t, version: "1" }
paths: {}
components:
  schemas:
    Base: &base
      type: object
      required: [sku]
      additionalProperties: false
    Order:
      <<: *base
      description: an order
"#,
    )
    .unwrap();
    assert_eq!(
        d.pointer("/components/schemas/Order").unwrap(),
        &json!({ "type": "object", "required": ["sku"], "additionalProperties": false,
                 "description": "an order" })
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(i.api["models"]["Order"]["required"], json!(["sku"]));
    assert!(i.api["models"]["Order"].get("<<").is_none());
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_document() {
    let yaml = "\u{feff}openapi: 3.0.1\ninfo: {title: t, version: \"1\"}\npaths: {}\n";
    assert_eq!(parse(yaml).unwrap()["openapi"], "3.0.1");
    // JSON's own parser (a key written twice is the last, as JSON reads it), not YAML's.
    let json = "\u{feff}{\"openapi\":\"3.0.1\",\"paths\":{},\"paths\":{\"/y\":{}}}";
    assert_eq!(parse(json).unwrap()["paths"], json!({ "/y": {} }));
}

const MOCK: &str = r#"{"type": "mock", "responses": {"default": {"statusCode": "200"}}}"#;

fn op(extra: Value) -> Value {
    let mut o =
        json!({ "x-amazon-apigateway-integration": serde_json::from_str::<Value>(MOCK).unwrap() });
    o.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    o
}

#[test]
fn ref_chains_are_followed_and_cycles_named() {
    let d = super::tests::doc(
        json!({
            "x-amazon-apigateway-request-validators": { "all": { "validateRequestBody": true, "validateRequestParameters": true } },
            "x-amazon-apigateway-request-validator": "all",
            "components": {
                "parameters": {
                    "Tenant": { "name": "x-tenant", "in": "header", "required": true },
                    "Alias": { "$ref": "#/components/parameters/Tenant" },
                    "Alias2": { "$ref": "#/components/parameters/Alias" },
                    "Loop": { "$ref": "#/components/parameters/Loop" },
                },
                "requestBodies": {
                    "Body": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/P" } } } },
                    "Alias": { "$ref": "#/components/requestBodies/Body" },
                },
                "schemas": { "P": { "type": "object", "required": ["name"] } },
            },
        }),
        json!({
            "/chained": { "post": op(json!({
                "parameters": [{ "$ref": "#/components/parameters/Alias2" }],
                "requestBody": { "$ref": "#/components/requestBodies/Alias" },
            })) },
            "/loop": { "post": op(json!({
                "parameters": [{ "$ref": "#/components/parameters/Loop" }],
            })) },
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let r = &i.api["routes"]["POST /chained"];
    assert_eq!(r["required_parameters"], json!(["header.x-tenant"]));
    assert_eq!(r["request_model"], json!({ "application/json": "P" }));
    // A parameter that can't be read, under a validator that checks parameters: the
    // method is skipped rather than served without that parameter required.
    assert!(i.api["routes"].get("POST /loop").is_none(), "{:?}", i.api);
    let w = i
        .warnings
        .iter()
        .find(|w| w.pointer == "/paths/~1loop/post/parameters/0")
        .expect("the cycle is named");
    assert!(w.message.contains("cycle"), "{}", w.message);
    assert!(w.message.contains("skipped"), "{}", w.message);
}

#[test]
fn path_parameters_are_required_where_parameters_are_validated() {
    let validators = |v: &str| {
        json!({
            "x-amazon-apigateway-request-validators": {
                "all": { "validateRequestBody": true, "validateRequestParameters": true },
                "body": { "validateRequestBody": true },
            },
            "x-amazon-apigateway-request-validator": v,
        })
    };
    let paths = json!({
        "/o/{id}/{rest+}": { "get": op(json!({})) },
        "/p/{id}": { "get": op(json!({
            "parameters": [{ "name": "q", "in": "query", "required": true }],
        })) },
    });
    let i = import(
        &super::tests::doc(validators("all"), paths.clone()),
        BasePath::Ignore,
        &[],
    )
    .unwrap();
    let r = &i.api["routes"];
    // Not the greedy one, as API Gateway's import.
    assert_eq!(
        r["GET /o/{id}/{rest+}"]["required_parameters"],
        json!(["path.id"])
    );
    assert_eq!(
        r["GET /p/{id}"]["required_parameters"],
        json!(["querystring.q", "path.id"])
    );
    assert_eq!(super::tests::check_imported(&i), Vec::<String>::new());
    // Parameters not validated: nothing to require.
    let i = import(
        &super::tests::doc(validators("body"), paths),
        BasePath::Ignore,
        &[],
    )
    .unwrap();
    assert!(i.api["routes"]["GET /o/{id}/{rest+}"]
        .get("required_parameters")
        .is_none());
}

#[test]
fn of_two_paths_that_match_the_same_requests_the_first_sorted_is_kept() {
    let paths = json!({ "/items/{zid}": { "get": op(json!({})) }, "/items/{aid}": { "get": op(json!({})) } });
    let i = import(&super::tests::doc(json!({}), paths), BasePath::Ignore, &[]).unwrap();
    let keys: Vec<&String> = i.api["routes"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["GET /items/{aid}"]);
    assert!(super::tests::warned(&i, "/paths/~1items~1{zid}/get"));
}

#[test]
fn yaml_in_flow_style_and_json_with_a_comment_are_read_as_yaml() {
    let flow = r#"{openapi: 3.0.1, info: {title: t, version: "1"}, paths: {}}"#;
    assert_eq!(parse(flow).unwrap()["openapi"], "3.0.1");
    let commented = "{\"openapi\": \"3.0.1\", \"info\": {\"title\": \"t\", \"version\": \"1\"}, \"paths\": {}}\n# exported\n";
    assert_eq!(parse(commented).unwrap()["info"]["title"], "t");
    // Broken either way: JSON's complaint.
    let e = parse(r#"{"openapi": "3.0.1", "paths": {"#).unwrap_err();
    assert!(e.message.contains("EOF"), "{}", e.message);
}

#[test]
fn a_swagger_body_is_checked_for_every_type_it_consumes() {
    let d = json!({
        "swagger": "2.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/p": {"post": {
            "consumes": ["application/xml", "application/json"],
            "parameters": [{"in": "body", "name": "b", "schema": {"type": "object", "required": ["a"]}}],
            "responses": {"200": {"description": "ok"}},
            "x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "POST", "uri": "http://backend.internal/p"}
        }}}
    });
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let models = &i.api["routes"]["POST /p"]["request_model"];
    assert!(
        models.get("application/xml").is_some(),
        "{models} in {:?}",
        i.api
    );
    assert!(models.get("application/json").is_some(), "{models}");
}

/// A CORS `maxAge` past API Gateway's 86400 seconds was imported as is, and the config
/// it made failed `check`.
#[test]
fn a_cors_max_age_past_a_day_is_warned_about_and_left_out() {
    use super::tests::{doc, warned, MOCK};
    let mock: Value = serde_json::from_str(MOCK).unwrap();
    for (age, kept) in [(90_000, None), (86_400, Some("86400s"))] {
        let d = doc(
            json!({ "x-amazon-apigateway-cors": { "allowOrigins": ["*"], "maxAge": age } }),
            json!({ "/a": { "get": { "x-amazon-apigateway-integration": mock.clone() } } }),
        );
        let i = import(&d, BasePath::Ignore, &[]).unwrap();
        assert_eq!(i.api["cors"].get("max_age").and_then(Value::as_str), kept);
        assert_eq!(
            warned(&i, "/x-amazon-apigateway-cors/maxAge"),
            kept.is_none()
        );
    }
}

/// CORS values `check` refuses are left out with a warning at their pointer (they were
/// written as they were, and the config refused at start, with no warning and exit 0 even
/// under `--fail-on-warnings`); `*` with credentials keeps the origin, not the credentials.
#[test]
fn cors_values_check_refuses_are_skipped_with_a_warning() {
    use super::tests::{check_imported, doc, warned, MOCK};
    let mock: Value = serde_json::from_str(MOCK).unwrap();
    let d = doc(
        json!({ "x-amazon-apigateway-cors": {
            "allowOrigins": ["*", "https://example.com/", "https://Example.org:443", "https://a.example"],
            "allowCredentials": true,
            "allowMethods": ["get", "FETCH", 7],
            "allowHeaders": ["bad header", "x-ok"],
            "exposeHeaders": ["x-id", "a,b"]
        } }),
        json!({ "/a": { "get": { "x-amazon-apigateway-integration": mock } } }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(
        i.api["cors"],
        json!({
            "allow_origins": ["*", "https://a.example"],
            "allow_methods": ["GET"],
            "allow_headers": ["x-ok"],
            "expose_headers": ["x-id"]
        })
    );
    let at = |tail: &str| format!("/x-amazon-apigateway-cors/{tail}");
    for tail in [
        "allowOrigins/1",
        "allowOrigins/2",
        "allowMethods/1",
        "allowMethods/2",
        "allowHeaders/0",
        "exposeHeaders/1",
        "allowCredentials",
    ] {
        assert!(warned(&i, &at(tail)), "{tail}: {:?}", i.warnings);
    }
    for tail in ["allowOrigins/0", "allowOrigins/3", "allowMethods/0"] {
        assert!(!warned(&i, &at(tail)), "{tail}: {:?}", i.warnings);
    }
    assert_eq!(check_imported(&i), Vec::<String>::new());
}

/// An extension's setting of the wrong type is warned about at its pointer, never
/// skipped unsaid (a string `disableExecuteApiEndpoint` left the default endpoint open
/// without a word); a `true` written as a string counts, as for other flags.
#[test]
fn wrongly_typed_extension_settings_are_warned_about() {
    use super::tests::{doc, warned, MOCK};
    let mock: Value = serde_json::from_str(MOCK).unwrap();
    let d = doc(
        json!({
            "x-amazon-apigateway-endpoint-configuration": { "disableExecuteApiEndpoint": "true" },
            "x-amazon-apigateway-cors": { "allowOrigins": "https://a.example",
                "allowCredentials": "true", "maxAge": "ten", "allowMethods": ["get"] },
            "x-amazon-apigateway-request-validators": ["all"],
            "x-amazon-apigateway-gateway-responses": "nope"
        }),
        json!({ "/a": { "get": {
            "x-amazon-apigateway-request-validator": ["all"],
            "x-amazon-apigateway-integration": mock
        } } }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(i.api["disable_default_endpoint"], true);
    assert_eq!(
        i.api["cors"],
        json!({ "allow_methods": ["GET"], "allow_credentials": true })
    );
    for pointer in [
        "/x-amazon-apigateway-endpoint-configuration/disableExecuteApiEndpoint",
        "/x-amazon-apigateway-cors/allowOrigins",
        "/x-amazon-apigateway-cors/allowCredentials",
        "/x-amazon-apigateway-cors/maxAge",
        "/x-amazon-apigateway-request-validators",
        "/x-amazon-apigateway-gateway-responses",
        "/paths/~1a/get/x-amazon-apigateway-request-validator",
    ] {
        assert!(warned(&i, pointer), "{pointer}: {:?}", i.warnings);
    }
    // Under servers too, and `false` as a string is read as false, also with a warning.
    let d = doc(
        json!({ "servers": [{ "url": "/", "x-amazon-apigateway-endpoint-configuration":
            { "disableExecuteApiEndpoint": "no" } }] }),
        json!({}),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert!(i.api.get("disable_default_endpoint").is_none());
    let pointer = "/servers/0/x-amazon-apigateway-endpoint-configuration/disableExecuteApiEndpoint";
    assert!(warned(&i, pointer), "{:?}", i.warnings);
}

/// `timeoutInMillis` of any other value than a whole number in range is warned about (a
/// float, a string, a negative number or a boolean was left out unsaid); a whole number
/// written as a float is one.
#[test]
fn a_timeout_that_is_not_a_whole_number_in_range_is_warned_about() {
    use super::tests::{doc, warned};
    for (ms, kept) in [
        (json!(5000), Some("5000ms")),
        (json!(5000.0), Some("5000ms")),
        (json!(10), None),
        (json!(5000.5), None),
        (json!("5000"), None),
        (json!(-5), None),
        (json!(true), None),
    ] {
        let d = doc(
            json!({}),
            json!({ "/a": { "get": { "x-amazon-apigateway-integration": {
                "type": "http_proxy", "httpMethod": "GET", "uri": "http://127.0.0.1:9/a",
                "payloadFormatVersion": "1.0", "timeoutInMillis": ms } } } }),
        );
        let i = import(&d, BasePath::Ignore, &[]).unwrap();
        let route = &i.api["routes"]["GET /a"]["integration"];
        assert_eq!(route.get("timeout").and_then(Value::as_str), kept, "{ms}");
        let pointer = "/paths/~1a/get/x-amazon-apigateway-integration/timeoutInMillis";
        assert_eq!(
            warned(&i, pointer),
            kept.is_none(),
            "{ms}: {:?}",
            i.warnings
        );
    }
}
