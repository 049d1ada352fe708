//! Methods whose request validation the import can't follow: skipped rather than served
//! with what the validator should check passing unchecked.

use serde_json::{json, Value};

use super::import::{import, BasePath};
use super::tests::{check_imported, doc, MOCK};

#[test]
fn a_body_model_or_validator_that_is_not_there_skips_the_method() {
    let validators = json!({ "x-amazon-apigateway-request-validators": {
        "all": { "validateRequestBody": true, "validateRequestParameters": true },
        "params": { "validateRequestBody": false, "validateRequestParameters": true } },
        "components": { "schemas": { "Pet": { "type": "object", "required": ["a"] } } } });
    let mock = serde_json::from_str::<Value>(MOCK).unwrap();
    let op = |validator: Option<&str>, model: &str| {
        let mut o = json!({ "requestBody": { "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{model}") } } } },
            "x-amazon-apigateway-integration": mock });
        if let Some(v) = validator {
            o["x-amazon-apigateway-request-validator"] = json!(v);
        }
        json!({ "post": o })
    };
    let d = doc(
        validators,
        json!({
            // Checked bodies, a model that isn't there: the body would pass unchecked.
            "/missing": op(Some("all"), "Missing"),
            // A validator no one defined: nothing would be checked.
            "/typo": op(Some("alll"), "Pet"),
            // Bodies not checked, or no validator: the model is documentation.
            "/params": op(Some("params"), "Missing"),
            "/none": op(None, "Missing"),
            "/good": op(Some("all"), "Pet"),
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let mut keys: Vec<&str> = i.api["routes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["POST /good", "POST /none", "POST /params"]);
    let said = |pointer: &str, what: &str| {
        i.warnings
            .iter()
            .any(|w| w.pointer == pointer && w.message.contains(what))
    };
    assert!(
        said("/paths/~1missing/post", "skipped rather than served"),
        "{:?}",
        i.warnings
    );
    assert!(said(
        "/paths/~1typo/post/x-amazon-apigateway-request-validator",
        "no validator named \"alll\""
    ));
    assert!(said("/paths/~1none/post", "that body is not validated"));
    assert_eq!(
        i.api["routes"]["POST /good"]["request_validator"],
        json!("all")
    );
    assert_eq!(check_imported(&i), Vec::<String>::new());
}

/// `api_key_source: authorizer` without a Lambda authorizer fails `check`: with no
/// operation that requires a key, the import made a config that could not load for a
/// setting nothing reads; with one, the route is refused (`check_api_tests`).
#[test]
fn keys_from_an_authorizer_need_a_lambda_authorizer() {
    let mock = serde_json::from_str::<Value>(MOCK).unwrap();
    let d = doc(
        json!({ "x-amazon-apigateway-api-key-source": "AUTHORIZER" }),
        json!({ "/k": { "get": { "x-amazon-apigateway-integration": mock } } }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert!(i.api.get("api_key_source").is_none(), "{:?}", i.api);
    assert!(
        i.warnings
            .iter()
            .any(|w| w.pointer == "/x-amazon-apigateway-api-key-source"),
        "{:?}",
        i.warnings
    );
    assert_eq!(check_imported(&i), Vec::<String>::new());
}

/// Parameters and bodies written in a shape the import can't read (one wrong YAML
/// indentation makes `content` a list) were dropped without a word, and the method was
/// served with neither the required header nor the body model checked.
#[test]
fn a_parameter_or_body_the_import_cannot_read_skips_a_validated_method() {
    let mock = serde_json::from_str::<Value>(MOCK).unwrap();
    let d = doc(
        json!({ "x-amazon-apigateway-request-validators": {
            "all": { "validateRequestBody": true, "validateRequestParameters": true },
            "body": { "validateRequestBody": true, "validateRequestParameters": false } },
            "x-amazon-apigateway-request-validator": "all",
            "components": { "requestBodies": { "Five": 5 } } }),
        json!({}),
    );
    let schema = json!({ "type": "object", "required": ["sku"] });
    let tenant = json!({ "name": "x-tenant", "in": "header", "required": true });
    let cases = [
        (
            "/content-list",
            json!({ "requestBody": { "content": [{ "application/json": { "schema": schema } }] } }),
            "/paths/~1content-list/post/requestBody/content",
        ),
        (
            "/body-number",
            json!({ "requestBody": 7 }),
            "/paths/~1body-number/post/requestBody",
        ),
        (
            "/media-number",
            json!({ "requestBody": { "content": { "application/json": 5 } } }),
            "/paths/~1media-number/post/requestBody/content/application~1json",
        ),
        (
            "/body-ref-number",
            json!({ "requestBody": { "$ref": "#/components/requestBodies/Five" } }),
            "/components/requestBodies/Five",
        ),
        (
            "/body-ref-nothing",
            json!({ "requestBody": { "$ref": "#/components/requestBodies/Nope" } }),
            "/paths/~1body-ref-nothing/post/requestBody",
        ),
        (
            "/params-map",
            json!({ "parameters": { "x-tenant": tenant } }),
            "/paths/~1params-map/post/parameters",
        ),
        (
            "/no-in",
            json!({ "parameters": [{ "name": "x-tenant", "required": true }] }),
            "/paths/~1no-in/post/parameters/0",
        ),
        (
            "/in-headers",
            json!({ "parameters": [{ "name": "x-tenant", "in": "headers", "required": true }] }),
            "/paths/~1in-headers/post/parameters/0",
        ),
        (
            "/blank-name",
            json!({ "parameters": [{ "name": "", "in": "header", "required": true }] }),
            "/paths/~1blank-name/post/parameters/0",
        ),
    ];
    let mut paths = serde_json::Map::new();
    for (path, op, _) in &cases {
        let mut op = op.clone();
        op["x-amazon-apigateway-integration"] = mock.clone();
        paths.insert(path.to_string(), json!({ "post": op }));
    }
    // Under a validator that checks bodies only, an unreadable parameter is only said.
    let mut op = json!({ "parameters": [{ "name": "x", "in": "headers", "required": true }],
        "x-amazon-apigateway-request-validator": "body" });
    op["x-amazon-apigateway-integration"] = mock.clone();
    paths.insert("/body-only".into(), json!({ "post": op }));
    let mut d = d;
    d["paths"] = Value::Object(paths);
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let routes: Vec<&String> = i.api["routes"].as_object().unwrap().keys().collect();
    assert_eq!(routes, ["POST /body-only"], "{:?}", i.warnings);
    for (path, _, pointer) in cases {
        assert!(
            i.warnings
                .iter()
                .any(|w| w.pointer == pointer && w.message.contains("skipped")),
            "{path}: nothing said at {pointer}: {:?}",
            i.warnings
        );
    }
    assert!(i
        .warnings
        .iter()
        .any(|w| w.pointer == "/paths/~1body-only/post/parameters/0"
            && w.message.contains("not imported")));
    assert_eq!(check_imported(&i), Vec::<String>::new());
}

/// `nullable: true` (OpenAPI 3.0) validates nothing: said where it is written.
#[test]
fn nullable_is_said_where_it_is_written() {
    let mock = serde_json::from_str::<Value>(MOCK).unwrap();
    let d = doc(
        json!({ "components": { "schemas": {
            "P": { "type": "object",
                "properties": { "a": { "type": "string", "nullable": true } } },
            // null allowed already, or nullable only as data: nothing to say.
            "Q": { "properties": { "b": { "type": ["string", "null"], "nullable": true },
                "c": { "nullable": true },
                "d": { "type": "object", "example": { "nullable": true }, "default": { "nullable": true } } } } } } }),
        json!({ "/x": { "post": { "x-amazon-apigateway-integration": mock,
            "requestBody": { "content": { "application/json": { "schema": {
                "type": "array", "items": { "type": "integer", "nullable": true } } } } } } } }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let said: Vec<&str> = i
        .warnings
        .iter()
        .filter(|w| w.message.contains("nullable"))
        .map(|w| w.pointer.as_str())
        .collect();
    assert_eq!(
        said,
        [
            "/components/schemas/P/properties/a/nullable",
            "/paths/~1x/post/requestBody/content/application~1json/schema/items/nullable"
        ]
    );
}

/// An operation's API Gateway extension Portico does not read is said, as at the root
/// and on a path item.
#[test]
fn an_unknown_extension_on_an_operation_is_said() {
    let mock = serde_json::from_str::<Value>(MOCK).unwrap();
    let d = doc(
        json!({}),
        json!({ "/x": { "get": { "x-amazon-apigateway-integration": mock,
            "x-amazon-apigateway-bar": 1, "x-other": 2 } } }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    let at: Vec<&str> = i.warnings.iter().map(|w| w.pointer.as_str()).collect();
    assert_eq!(at, ["/paths/~1x/get/x-amazon-apigateway-bar"]);
}

/// A validator written as something other than an object is not defined: a method that
/// names it is skipped, as for a name no validator has, not served unchecked.
#[test]
fn a_validator_that_is_not_an_object_is_not_defined() {
    let mock = serde_json::from_str::<Value>(MOCK).unwrap();
    let d = doc(
        json!({ "x-amazon-apigateway-request-validators": { "w": 5 } }),
        json!({ "/x": { "post": { "x-amazon-apigateway-integration": mock,
            "x-amazon-apigateway-request-validator": "w",
            "parameters": [{ "name": "q", "in": "query", "required": true }] } } }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert!(i.api["routes"].get("POST /x").is_none(), "{:?}", i.api);
    let at: Vec<&str> = i.warnings.iter().map(|w| w.pointer.as_str()).collect();
    assert!(
        at.contains(&"/x-amazon-apigateway-request-validators/w"),
        "{:?}",
        i.warnings
    );
}
