//! Import of what `check` would refuse, or what Portico can't do as API Gateway does: each
//! is skipped (or named) with a warning at its JSON pointer, and the imported config passes
//! check.

use serde_json::{json, Value};

use super::import::{import, BasePath, Imported};
use super::tests::{check_imported, doc, warned};

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
                "overwrite:header.X_Forwarded_For": "$request.header.x-spoof",
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
            format!("{h}/requestParameters/overwrite:header.X_Forwarded_For"),
            "X_Forwarded_For is x-forwarded-for to CGI",
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

fn mock(integration: Value) -> Value {
    json!({ "get": { "x-amazon-apigateway-integration": integration } })
}

#[test]
fn a_mock_answers_the_response_its_request_templates_status_selects() {
    let error = json!({ "statusCode": "500", "responseTemplates": { "application/json": "{\"error\":true}" } });
    let ok = json!({ "statusCode": "200", "responseTemplates": { "application/json": "{\"ok\":true}" } });
    let with = |status: &str| {
        mock(json!({ "type": "mock",
            "requestTemplates": { "text/plain": "x", "application/json": format!("{{\"statusCode\": {status}}}") },
            "responses": { "5\\d{2}": error, "20": { "statusCode": "418" }, "default": ok } }))
    };
    let i = imported(json!({
        // The CORS preflight API Gateway's console writes: a "200" response, no default.
        "/cors": { "options": { "x-amazon-apigateway-integration": {
            "type": "mock", "passthroughBehavior": "when_no_match",
            "requestTemplates": { "application/json": "{\"statusCode\": 200}" },
            "responses": { "200": { "statusCode": "200", "responseParameters": {
                "method.response.header.Access-Control-Allow-Headers": "'Content-Type,X-Api-Key'",
                "method.response.header.Access-Control-Allow-Methods": "'GET,OPTIONS'",
                "method.response.header.Access-Control-Allow-Origin": "'*'"
            }, "responseTemplates": { "application/json": "" } } } } } },
        "/e": with("503"),
        // No pattern matches the whole of 200 ("20" is a prefix): the default.
        "/d": with("200"),
        "/vtl": mock(json!({ "type": "mock",
            "requestTemplates": { "application/json": "{ #if($input.params('x') == \"1\") \"statusCode\": 500 #else \"statusCode\": 200 #end }" },
            "responses": { "5\\d{2}": error, "default": ok } })),
    }));
    assert_eq!(check_imported(&i), Vec::<String>::new());
    let integration = |key: &str| i.api["routes"][key]["integration"].clone();
    let cors = integration("OPTIONS /cors");
    assert_eq!(cors["status"], 200);
    assert_eq!(cors["headers"]["Access-Control-Allow-Origin"], "*");
    assert_eq!(
        cors["headers"]["Access-Control-Allow-Methods"],
        "GET,OPTIONS"
    );
    assert_eq!(
        cors["headers"]["Access-Control-Allow-Headers"],
        "Content-Type,X-Api-Key"
    );
    assert_eq!(
        (
            &integration("GET /e")["status"],
            &integration("GET /e")["body"]
        ),
        (&json!(500), &json!("{\"error\":true}"))
    );
    assert_eq!(
        (
            &integration("GET /d")["status"],
            &integration("GET /d")["body"]
        ),
        (&json!(200), &json!("{\"ok\":true}"))
    );
    // A template that computes the status is not evaluated: the default, with a warning.
    assert_eq!(integration("GET /vtl")["status"], 200);
    let message = warning(
        &i,
        "/paths/~1vtl/get/x-amazon-apigateway-integration/requestTemplates/application~1json",
    );
    assert!(message.contains("VTL is not evaluated"), "{message}");
    assert!(!warned(
        &i,
        "/paths/~1cors/options/x-amazon-apigateway-integration/passthroughBehavior"
    ));
}

#[test]
fn a_mock_status_no_response_takes_is_api_gateways_500() {
    let i = imported(json!({
        "/nomatch": mock(json!({ "type": "mock",
            "requestTemplates": { "application/json": "{\"statusCode\": 302}" },
            "responses": { "200": { "statusCode": "200", "responseTemplates": { "application/json": "{}" } } } })),
    }));
    assert_eq!(check_imported(&i), Vec::<String>::new());
    let m = &i.api["routes"]["GET /nomatch"]["integration"];
    assert_eq!(
        (&m["status"], &m["body"], &m["headers"]["content-type"]),
        (
            &json!(500),
            &json!("{\"message\":\"Internal server error\"}"),
            &json!("application/json")
        )
    );
    let message = warning(
        &i,
        "/paths/~1nomatch/get/x-amazon-apigateway-integration/responses",
    );
    assert!(message.contains("500"), "{message}");
}

#[test]
fn what_a_mock_cannot_do_as_api_gateway_does_is_named() {
    let i = imported(json!({
        "/t": mock(json!({ "type": "mock", "passthroughBehavior": "NEVER", "contentHandling": "CONVERT_TO_TEXT",
            "requestTemplates": { "application/json": "{\"statusCode\": 201}" },
            "responses": {
                "201": { "statusCode": "201", "contentHandling": "CONVERT_TO_BINARY",
                    "responseTemplates": { "application/json": "{\"id\": \"$context.requestId\"}" } },
                "default": { "statusCode": "200" } } })),
        "/u": mock(json!({ "type": "mock", "passthroughBehavior": "when_no_templates",
            "responses": { "default": { "statusCode": "200",
                "responseTemplates": { "application/json": "$util.escapeJavaScript('a')" } } } })),
        "/if": mock(json!({ "type": "mock", "responses": { "default": { "statusCode": "200",
                "responseTemplates": { "text/html": "#if(1)<p>a</p>#end" } } } })),
        // Stage variables are Portico's own: no warning, in the braced form check takes.
        "/sv": mock(json!({ "type": "mock", "responses": { "default": { "statusCode": "200",
                "responseParameters": {
                    "method.response.header.x-env": "'$stageVariables.env'",
                    "method.response.header.x-ver": "stageVariables.version"
                },
                "responseTemplates": { "application/json": "{\"env\": \"$stageVariables.env\", \"color\": \"#fff\", \"price\": \"$5\"}" } } } })),
    }));
    let t = "/paths/~1t/get/x-amazon-apigateway-integration";
    for pointer in [
        format!("{t}/passthroughBehavior"),
        format!("{t}/contentHandling"),
        format!("{t}/responses/201/contentHandling"),
        format!("{t}/responses/201/responseTemplates/application~1json"),
        "/paths/~1u/get/x-amazon-apigateway-integration/passthroughBehavior".into(),
        "/paths/~1u/get/x-amazon-apigateway-integration/responses/default/responseTemplates/application~1json".into(),
        "/paths/~1if/get/x-amazon-apigateway-integration/responses/default/responseTemplates/text~1html".into(),
    ] {
        assert!(warned(&i, &pointer), "{pointer}: {:?}", i.warnings);
    }
    assert_eq!(i.api["routes"]["GET /t"]["integration"]["status"], 201);
    let sv = &i.api["routes"]["GET /sv"]["integration"];
    assert_eq!(
        sv["body"],
        "{\"env\": \"${stageVariables.env}\", \"color\": \"#fff\", \"price\": \"$5\"}"
    );
    assert_eq!(sv["headers"]["x-env"], "${stageVariables.env}");
    assert_eq!(sv["headers"]["x-ver"], "${stageVariables.version}");
    assert!(
        !i.warnings
            .iter()
            .any(|w| w.pointer.starts_with("/paths/~1sv")),
        "{:?}",
        i.warnings
    );
    // check asks only for the variables in the stage (it refuses the unbraced form).
    let errors = check_imported(&i);
    assert!(
        errors.iter().all(|e| e.contains("no variable")),
        "{errors:?}"
    );
}

#[test]
fn vtl_is_told_from_text_and_stage_variables() {
    use super::mock::{brace_stage_variables, has_vtl};
    for vtl in [
        "$context.requestId",
        "$input.json('$')",
        "${x}",
        "$!x",
        "#if(a)b#end",
        "#{set}($a = 1)",
        "## comment",
        "#* block *#",
        "#set($a = 1)",
        "é$util.x",
    ] {
        assert!(has_vtl(vtl), "{vtl}");
    }
    for text in [
        "$stageVariables.env",
        "${stageVariables.env}",
        "#fff",
        "$5 or $ 5",
        "#iframe #endpoint",
        "é#",
        "",
    ] {
        assert!(!has_vtl(text), "{text}");
    }
    assert_eq!(
        brace_stage_variables("a $stageVariables.x_1-b ${stageVariables.y} $stageVariables."),
        "a ${stageVariables.x_1}-b ${stageVariables.y} $stageVariables."
    );
}

#[test]
fn an_integration_method_other_than_the_operations_is_named() {
    let http = |method: &str| {
        json!({ "type": "http_proxy", "httpMethod": method, "uri": "http://127.0.0.1:9/x",
                "payloadFormatVersion": "1.0" })
    };
    let i = imported(json!({
        "/post": { "get": { "x-amazon-apigateway-integration": http("POST") } },
        "/same": { "get": { "x-amazon-apigateway-integration": http("get") } },
        "/any": { "get": { "x-amazon-apigateway-integration": http("ANY") },
                  "x-amazon-apigateway-any-method": { "x-amazon-apigateway-integration": http("POST") } },
        "/$default": { "x-amazon-apigateway-any-method": { "x-amazon-apigateway-integration": http("GET") } }
    }));
    let message = warning(
        &i,
        "/paths/~1post/get/x-amazon-apigateway-integration/httpMethod",
    );
    assert!(
        message.contains("the backend gets the client's method (GET), not POST"),
        "{message}"
    );
    // Still served, with the client's method.
    assert!(i.api["routes"].get("GET /post").is_some());
    assert_eq!(
        i.warnings.len(),
        1,
        "only /post's differs: {:?}",
        i.warnings
    );
}

#[test]
fn uris_check_would_refuse_skip_their_method() {
    let http = |uri: Value| {
        json!({ "get": { "x-amazon-apigateway-integration": {
            "type": "http_proxy", "httpMethod": "GET", "uri": uri, "payloadFormatVersion": "1.0" } } })
    };
    let i = imported(json!({
        "/unknown": http(json!("http://backend.example/a/{id}")),
        "/port": http(json!("https://backend.example:99999/a")),
        "/zero": http(json!("http://backend.example:0/a")),
        "/creds": http(json!("http://user:pw@backend.example/a")),
        "/dots": http(json!("http://backend.example/a/../b")),
        "/space": http(json!("http://backend.example/a b")),
        "/fn": http(json!({ "Fn::Sub": "http://${Backend}/a" })),
        "/fragment": http(json!("http://backend.example/f?x=1#top")),
        "/query": http(json!("http://backend.example/q?a%20b=1&ok=2")),
        // A {name} the route has, or a mapping fills, is kept.
        "/kept/{key}": { "get": { "x-amazon-apigateway-integration": {
            "type": "http", "httpMethod": "GET", "uri": "http://backend.example/k/{id}/{key}",
            "requestParameters": { "integration.request.path.id": "method.request.querystring.id" } } } },
        "/fn-lambda": { "get": { "x-amazon-apigateway-integration": {
            "type": "aws_proxy", "httpMethod": "POST", "uri": { "Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/x" } } } },
        // A static fill that makes a dot-segment (every request a 400) fills nothing.
        "/dot-fill": { "get": { "x-amazon-apigateway-integration": {
            "type": "http", "httpMethod": "GET", "uri": "http://backend.example/k/{id}/x",
            "requestParameters": { "integration.request.path.id": "'..'" } } } },
        // An HTTP API's own overwrite:path is skipped, the route kept.
        "/dot-map": { "get": { "x-amazon-apigateway-integration": {
            "type": "http_proxy", "httpMethod": "GET", "uri": "http://backend.example/m",
            "requestParameters": { "overwrite:path": "/a/../b", "overwrite:header.x-ok": "1" } } } },
    }));
    assert_eq!(check_imported(&i), Vec::<String>::new());
    let at = |path: &str| format!("/paths/{path}/get/x-amazon-apigateway-integration/uri");
    for (path, why) in [
        ("~1unknown", "{id} is not a parameter of the route key"),
        ("~1port", "expected an address like"),
        ("~1zero", "port 0"),
        ("~1creds", "upstream targets take no credentials"),
        ("~1dots", ". or .. segment"),
        ("~1space", "percent-encode"),
        (
            "~1fn",
            "uri is a CloudFormation intrinsic (Fn::Sub); method skipped",
        ),
        (
            "~1fn-lambda",
            "uri is a CloudFormation intrinsic (Fn::Sub); method skipped",
        ),
    ] {
        let message = warning(&i, &at(path));
        assert!(
            message.contains(why) && message.ends_with("method skipped"),
            "{path}: {message}"
        );
        assert!(!message.contains("pw"), "{message}");
        let key = format!("GET {}", path.replace("~1", "/"));
        assert!(i.api["routes"].get(&key).is_none(), "{key}");
    }
    let routes = &i.api["routes"];
    assert!(routes.get("GET /dot-fill").is_none());
    assert!(warning(
        &i,
        "/paths/~1dot-fill/get/x-amazon-apigateway-integration/requestParameters"
    )
    .contains(". or .. segment"));
    assert_eq!(
        routes["GET /dot-map"]["parameters"],
        json!({ "overwrite:header.x-ok": "1" })
    );
    assert!(warning(
        &i,
        "/paths/~1dot-map/get/x-amazon-apigateway-integration/requestParameters/overwrite:path"
    )
    .contains(". or .. segment"));
    // The fragment is dropped, the rest kept.
    assert!(warning(&i, &at("~1fragment")).contains("#top"));
    assert_eq!(routes["GET /fragment"]["integration"]["path"], "/f");
    assert_eq!(
        routes["GET /fragment"]["parameters"],
        json!({ "overwrite:querystring.x": "1" })
    );
    assert!(warning(&i, &at("~1query")).contains("dropped"));
    assert_eq!(
        routes["GET /query"]["parameters"],
        json!({ "overwrite:querystring.ok": "2" })
    );
    assert_eq!(
        routes["GET /kept/{key}"]["parameters"]["overwrite:path"],
        "/k/${request.querystring.id}/${request.path.key}"
    );
    // Only the methods kept name an upstream.
    assert_eq!(i.upstreams.keys().collect::<Vec<_>>(), ["backend.example"]);
}

#[test]
fn openapi_3_1_models_are_json_schema_2020_12() {
    let schemas = json!({
        "Order": { "type": "object", "required": ["kind", "qty"],
            "properties": {
                "kind": { "const": "order" },
                "qty": { "type": "number", "exclusiveMinimum": 0 },
                "pair": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "integer" }] },
                "item": { "$ref": "#/components/schemas/Item" }
            },
            "dependentRequired": { "card": ["expiry"] } },
        "Item": { "type": "object", "required": ["sku"] },
        "Own": { "$schema": "http://json-schema.org/draft-07/schema#", "type": "string" },
        "Oas": { "$schema": "https://spec.openapis.org/oas/3.1/dialect/base", "type": "string" }
    });
    let body = json!({ "content": { "application/json": { "schema": {
        "type": "object", "properties": { "n": { "exclusiveMinimum": 1 } } } } } });
    let with = |version: &str, extra: Value| {
        let mut d = doc(
            json!({ "components": { "schemas": schemas } }),
            json!({ "/o": { "post": { "requestBody": body,
                "x-amazon-apigateway-integration": { "type": "mock" } } } }),
        );
        d["openapi"] = json!(version);
        if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        import(&d, BasePath::Ignore, &[])
    };
    let i = with("3.1.0", json!({})).unwrap();
    assert_eq!(check_imported(&i), Vec::<String>::new());
    let models = i.api["models"].as_object().unwrap();
    let draft = |name: &str| models[name]["$schema"].clone();
    let d2020 = json!("https://json-schema.org/draft/2020-12/schema");
    assert_eq!(
        (draft("Order"), draft("Item"), draft("PostOBody")),
        (d2020.clone(), d2020.clone(), d2020.clone())
    );
    assert_eq!(draft("Own"), "http://json-schema.org/draft-07/schema#");
    assert_eq!(draft("Oas"), d2020);
    let all: Vec<(String, Value)> = models.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let order = crate::pipeline::models::compile_model("Order", &all).unwrap();
    let ok = json!({ "kind": "order", "qty": 1, "pair": ["a", 1], "item": { "sku": "x" } });
    assert!(order.is_valid(&ok));
    for bad in [
        json!({ "kind": "other", "qty": 1 }),
        json!({ "kind": "order", "qty": 0 }),
        json!({ "kind": "order", "qty": 1, "pair": [1, "a"] }),
        json!({ "kind": "order", "qty": 1, "card": "4111" }),
        json!({ "kind": "order", "qty": 1, "item": {} }),
    ] {
        assert!(!order.is_valid(&bad), "{bad}");
    }
    // The document's jsonSchemaDialect, when it is a draft Portico validates with.
    let i = with(
        "3.1.0",
        json!({ "jsonSchemaDialect": "http://json-schema.org/draft-07/schema#" }),
    )
    .unwrap();
    assert_eq!(
        i.api["models"]["Item"]["$schema"],
        "http://json-schema.org/draft-07/schema#"
    );
    let i = with(
        "3.1.0",
        json!({ "jsonSchemaDialect": "https://example.com/mine" }),
    )
    .unwrap();
    assert!(warned(&i, "/jsonSchemaDialect"), "{:?}", i.warnings);
    assert_eq!(i.api["models"]["Item"]["$schema"], d2020);
    // OpenAPI 3.0's models stay draft 4, as API Gateway reads them: there, 3.1's dialect
    // is no draft Portico knows, and the document is refused at that model (as `check`
    // would refuse the config it made).
    let e = with("3.0.3", json!({})).unwrap_err();
    assert_eq!(e.pointer, "/components/schemas/Oas");
    assert!(e.message.contains("unsupported $schema"), "{e}");
    let mut d = doc(
        json!({ "components": { "schemas": { "Item": schemas["Item"] } } }),
        json!({}),
    );
    d["openapi"] = json!("3.0.3");
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert!(i.api["models"]["Item"].get("$schema").is_none());
}

/// A schema that is not one is the document's error at that schema (API Gateway refuses
/// to import it): written out, it made a config `check` refused at a model name the
/// user never wrote (`PostXBody`).
#[test]
fn a_schema_that_is_not_one_is_an_error_at_its_pointer() {
    let body = |schema: Value| json!({ "content": { "application/json": { "schema": schema } } });
    let op = |schema: Value| {
        json!({ "/x": { "post": { "requestBody": body(schema),
            "x-amazon-apigateway-integration": { "type": "mock" } } } })
    };
    let bad_pattern =
        json!({ "type": "object", "properties": { "s": { "type": "string", "pattern": "([a-" } } });
    let e = import(&doc(json!({}), op(bad_pattern)), BasePath::Ignore, &[]).unwrap_err();
    assert_eq!(
        e.pointer,
        "/paths/~1x/post/requestBody/content/application~1json/schema"
    );
    assert!(e.message.contains("not a valid JSON Schema"), "{e}");
    assert!(e.message.contains("(at /properties/s/pattern)"), "{e}");
    let components = json!({ "components": { "schemas": { "Thing": { "type": "objekt" } } } });
    let e = import(
        &doc(
            components,
            op(json!({ "$ref": "#/components/schemas/Thing" })),
        ),
        BasePath::Ignore,
        &[],
    )
    .unwrap_err();
    assert_eq!(e.pointer, "/components/schemas/Thing");
    assert!(e.message.contains("(at /type)"), "{e}");
    // Swagger 2.0's `in: body` parameter: on the path item or the operation, by index.
    let body_param = json!({ "in": "body", "name": "b", "schema": { "type": "objekt" } });
    let swagger = |item: Value| {
        json!({ "swagger": "2.0", "info": { "title": "t", "version": "1" },
            "paths": { "/p/{id}": item } })
    };
    let integration = json!({ "type": "mock" });
    let id = json!({ "in": "path", "name": "id", "required": true, "type": "string" });
    let shared = swagger(json!({ "parameters": [id, body_param],
        "put": { "x-amazon-apigateway-integration": integration } }));
    let e = import(&shared, BasePath::Ignore, &[]).unwrap_err();
    assert_eq!(e.pointer, "/paths/~1p~1{id}/parameters/1/schema");
    let own = swagger(json!({ "put": { "parameters": [id, body_param],
        "x-amazon-apigateway-integration": integration } }));
    let e = import(&own, BasePath::Ignore, &[]).unwrap_err();
    assert_eq!(e.pointer, "/paths/~1p~1{id}/put/parameters/1/schema");
    // Through `$ref`s (a chain too), the place is where the schema is written.
    let mut d = swagger(
        json!({ "put": { "parameters": [id, { "$ref": "#/parameters/A" }],
        "x-amazon-apigateway-integration": integration } }),
    );
    d["parameters"] = json!({ "A": { "$ref": "#/parameters/B" }, "B": body_param });
    let e = import(&d, BasePath::Ignore, &[]).unwrap_err();
    assert_eq!(e.pointer, "/parameters/B/schema");
    let d = doc(
        json!({ "components": { "requestBodies": {
            "R": body(json!({ "type": "objekt" })) } } }),
        json!({ "/x": { "post": { "requestBody": { "$ref": "#/components/requestBodies/R" },
            "x-amazon-apigateway-integration": { "type": "mock" } } } }),
    );
    let e = import(&d, BasePath::Ignore, &[]).unwrap_err();
    assert_eq!(
        e.pointer,
        "/components/requestBodies/R/content/application~1json/schema"
    );
    // A good schema still imports, and check takes what it made.
    let i = import(
        &doc(
            json!({}),
            op(json!({ "type": "object", "required": ["a"] })),
        ),
        BasePath::Ignore,
        &[],
    )
    .unwrap();
    assert_eq!(check_imported(&i), Vec::<String>::new());
}

#[test]
fn required_parameters_no_validator_can_find_are_warned() {
    let validators = json!({ "x-amazon-apigateway-request-validators": {
        "all": { "validateRequestBody": true, "validateRequestParameters": true },
        "body": { "validateRequestBody": true, "validateRequestParameters": false } } });
    let mock = serde_json::from_str::<Value>(super::tests::MOCK).unwrap();
    let op = |validator: &str, params: Value| {
        json!({ "get": { "x-amazon-apigateway-request-validator": validator,
            "parameters": params, "x-amazon-apigateway-integration": mock } })
    };
    let path = |n: &str| json!({ "name": n, "in": "path", "required": true });
    let cookie = json!({ "name": "c", "in": "cookie", "required": true });
    let d = doc(
        validators.clone(),
        json!({
            // `b` is no segment: API Gateway answers every request 400.
            "/q/{a}": op("all", json!([path("a"), path("b")])),
            "/g/{proxy+}": op("all", json!([path("proxy"), cookie])),
            // Parameters unchecked: nothing refused, nothing to say.
            "/n/{a}": op("body", json!([path("b")])),
        }),
    );
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert_eq!(route_keys(&i), ["GET /g/{proxy+}", "GET /n/{a}"]);
    assert!(
        warning(&i, "/paths/~1q~1{a}/get").contains("[\"b\"] name no {…} segment"),
        "{:?}",
        i.warnings
    );
    assert!(warning(&i, "/paths/~1g~1{proxy+}/get/parameters")
        .contains("cookie parameter \"c\" is not checked"));
    assert_eq!(i.warnings.len(), 2, "{:?}", i.warnings);
    assert_eq!(check_imported(&i), Vec::<String>::new());

    // Swagger 2.0's form fields.
    let mut d = json!({ "swagger": "2.0", "info": { "title": "t", "version": "1" },
        "paths": { "/f": op("all", json!([{ "name": "f", "in": "formData", "required": true, "type": "string" }])) } });
    d.as_object_mut()
        .unwrap()
        .extend(validators.as_object().unwrap().clone());
    let i = import(&d, BasePath::Ignore, &[]).unwrap();
    assert!(warning(&i, "/paths/~1f/get/parameters")
        .contains("formData parameter \"f\" is not checked"));
}

fn route_keys(i: &Imported) -> Vec<&str> {
    i.api["routes"]
        .as_object()
        .map(|r| r.keys().map(String::as_str).collect())
        .unwrap_or_default()
}
