//! Import of what `check` would refuse, or what Portico can't do as API Gateway does: each
//! is skipped (or named) with a warning at its JSON pointer, and the imported config passes
//! check.

use serde_json::{json, Value};

use super::import::{import, BasePath, Imported};
use super::tests::{check_imported, doc};

fn imported(paths: Value) -> Imported {
    import(&doc(json!({}), paths), BasePath::Ignore, &[]).unwrap()
}

fn warning<'i>(i: &'i Imported, pointer: &str) -> &'i str {
    i.warnings
        .iter()
        .find(|w| w.pointer == pointer)
        .map(|w| w.message.as_str())
        .unwrap_or_else(|| panic!("no warning at {pointer}: {:?}", i.warnings))
}

#[test]
fn mappings_check_refuses_are_skipped_in_both_grammars() {
    let i = imported(json!({
        "/r/{id}": { "get": { "x-amazon-apigateway-integration": {
            "type": "http", "httpMethod": "GET", "uri": "http://127.0.0.1:9/r/{id}",
            "requestParameters": {
                "integration.request.path.id": "method.request.path.id",
                "integration.request.header.X-Forwarded-For": "context.identity.sourceIp",
                "integration.request.header.x-res": "context.resourceId",
                "integration.request.header.x-key": "context.identity.apiKey",
                "integration.request.header.x-ip": "context.identity.sourceIp",
                "integration.request.header.x-id": "method.request.path.id"
            } } } },
        "/h": { "get": { "x-amazon-apigateway-integration": {
            "type": "http_proxy", "httpMethod": "GET", "uri": "http://127.0.0.1:9/h",
            "payloadFormatVersion": "1.0",
            "requestParameters": {
                "overwrite:header.host": "example.com",
                "overwrite:header.x-a": "$context.resourceId",
                "overwrite:header.x-p": "$request.path.nope",
                "append:header.x-b": "$context.stage"
            },
            "responseParameters": { "200": {
                "overwrite:header.Content-Length": "1",
                "overwrite:header.x-r": "$request.header.a",
                "overwrite:header.x-c": "$context.identity.apiKey",
                "overwrite:statuscode": "204",
                "append:header.x-ok": "yes"
            }, "default": { "append:header.x-d": "yes" } } } } },
        "/m": { "get": { "x-amazon-apigateway-integration": {
            "type": "mock", "responses": { "default": { "statusCode": "200",
                "responseParameters": {
                    "method.response.header.Content-Length": "'3'",
                    "method.response.header.x-m": "'m'"
                } } } } } }
    }));
    assert_eq!(check_imported(&i), Vec::<String>::new());
    let r = "/paths/~1r~1{id}/get/x-amazon-apigateway-integration/requestParameters";
    let h = "/paths/~1h/get/x-amazon-apigateway-integration";
    for (pointer, why) in [
        (
            format!("{r}/integration.request.header.X-Forwarded-For"),
            "X-Forwarded-For is reserved",
        ),
        (
            format!("{r}/integration.request.header.x-res"),
            "$context.resourceId is not a context variable",
        ),
        (
            format!("{r}/integration.request.header.x-key"),
            "$context.identity.apiKey is not a context variable",
        ),
        (
            format!("{h}/requestParameters/overwrite:header.host"),
            "host is reserved",
        ),
        (
            format!("{h}/requestParameters/overwrite:header.x-a"),
            "$context.resourceId",
        ),
        (
            format!("{h}/requestParameters/overwrite:header.x-p"),
            "{nope} is not a parameter of the route key",
        ),
        (
            format!("{h}/responseParameters/200/overwrite:header.Content-Length"),
            "Content-Length is reserved",
        ),
        (
            format!("{h}/responseParameters/200/overwrite:header.x-r"),
            "$request values are not available",
        ),
        (
            format!("{h}/responseParameters/200/overwrite:header.x-c"),
            "$context.identity.apiKey",
        ),
        (
            format!("{h}/responseParameters/200/overwrite:statuscode"),
            "\"204\" is not a status",
        ),
        (format!("{h}/responseParameters/default"), "status codes"),
        (
            "/paths/~1m/get/x-amazon-apigateway-integration/responses/default/responseParameters/method.response.header.Content-Length".to_string(),
            "Content-Length is reserved",
        ),
    ] {
        let message = warning(&i, &pointer);
        assert!(
            message.contains(why) && message.ends_with("skipped"),
            "{pointer}: {message}"
        );
    }
    // What check accepts is kept.
    let routes = &i.api["routes"];
    assert_eq!(
        routes["GET /r/{id}"]["parameters"],
        json!({ "overwrite:header.x-ip": "${context.identity.sourceIp}",
                "overwrite:header.x-id": "${request.path.id}" })
    );
    assert_eq!(
        routes["GET /h"]["parameters"],
        json!({ "append:header.x-b": "$context.stage" })
    );
    assert_eq!(
        routes["GET /h"]["response_parameters"],
        json!({ "200": { "append:header.x-ok": "yes" } })
    );
    assert_eq!(
        routes["GET /m"]["integration"]["headers"],
        json!({ "x-m": "m" })
    );
}
