//! What `check` reports for a route's headers, mappings, mocks and function urls: what
//! would be sent otherwise than the config shows it, or would fail every request.

use super::check_tests::errors;

#[test]
fn a_response_header_given_twice_or_a_content_type_list_is_refused() {
    // Both names went out: two content-types, which a browser joins and reads as the
    // last (the body was quoted for the first). A list is read the same way.
    let out = errors(concat!(
        "apis:\n  a:\n    stages: { $default: {} }\n    gateway_responses:\n",
        "      DEFAULT_4XX: { headers: { Content-Type: application/json, content-type: text/html } }\n",
        "      DEFAULT_5XX: { headers: { content-type: \"application/json, text/html\" } }\n",
        "      THROTTLED: { headers: { content-type: \"json\", x-ok: \"a, b\" } }\n",
        "    routes:\n",
        "      \"GET /m\": { integration: { type: mock, headers: { X-A: \"1\", x-a: \"2\", content-type: \"text/plain,text/html\" } } }\n",
        "      \"GET /ok\": { integration: { type: mock, headers: { content-type: \"text/html; charset=\\\"a,b\\\"\", x-ct: \"${stageVariables.ct}\" } } }\n",
    ));
    let twice = "(header names have no case), so both would be sent; keep one";
    assert_eq!(
        out,
        [
            format!("apis.a.routes.\"GET /m\".integration.headers.x-a: names the same header as \"X-A\" {twice}"),
            "apis.a.routes.\"GET /m\".integration.headers.content-type: \"text/plain,text/html\" is a list: browsers take its last media type (text/html); give one".into(),
            "apis.a.stages.$default.variables: no variable \"ct\", used by routes.\"GET /ok\".integration.headers.x-ct".into(),
            format!("apis.a.gateway_responses.DEFAULT_4XX.headers.content-type: names the same header as \"Content-Type\" {twice}"),
            "apis.a.gateway_responses.DEFAULT_5XX.headers.content-type: \"application/json, text/html\" is a list: browsers take its last media type (text/html); give one".into(),
            "apis.a.gateway_responses.THROTTLED.headers.content-type: \"json\" is not a media type (type/subtype; */* names none)".into(),
        ],
    );
}

#[test]
fn a_mapped_path_that_fails_every_request_or_carries_a_query_is_refused() {
    // Each passed check: the first two answered every request 400, the third sent
    // `/v2/items%3Flimit=10`.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages:\n",
        "      prod: { variables: { seg: \"..\", ok: v1 }, canary: { percent: 5, variables: { ok: \"%00\" } } }\n",
        "    routes:\n",
        "      \"GET /lit\": { integration: { type: http, upstream: u }, parameters: { \"overwrite:path\": \"/a/../b\" } }\n",
        "      \"GET /sv\": { integration: { type: http, upstream: u }, parameters: { \"overwrite:path\": \"/a/$stageVariables.seg/b\" } }\n",
        "      \"GET /q\": { integration: { type: http, upstream: u }, parameters: { \"overwrite:path\": \"/v2/items?limit=10\" } }\n",
        "      \"GET /c/{id}\": { integration: { type: http, upstream: u }, parameters: { \"overwrite:path\": \"/${stageVariables.ok}/$request.path.id/%2e%2E\" } }\n",
        "      \"GET /ok/{id}\": { integration: { type: http, upstream: u }, parameters: { \"overwrite:path\": \"/${stageVariables.ok}/a b/..$request.path.id\" } }\n",
    ));
    let dot = "has a . or .. segment or a %00: every request would be refused with 400, as a client's own such path is (a backend would resolve it to another path)";
    let at = |route: &str| format!("apis.a.routes.\"{route}\".parameters.\"overwrite:path\"");
    assert_eq!(
        out,
        [
            format!("{}: {dot}", at("GET /lit")),
            format!("{}: {dot} (in stage \"prod\": \"/a/../b\")", at("GET /sv")),
            format!("{}: has a ? or #, which the path would carry percent-encoded (%3F, %23): a query goes in parameters (overwrite:querystring.NAME)", at("GET /q")),
            format!("{}: {dot}", at("GET /c/{id}")),
            format!("{}: {dot} (in the canary of stage \"prod\": \"/%00/a b/..${{request.path.id}}\")", at("GET /ok/{id}")),
        ],
    );
}

#[test]
fn a_function_url_is_checked_as_a_path_in_each_stage_and_canary() {
    // Each passed check: the endpoint got `POST /fn/../admin` (literal, or from a stage
    // or canary variable) and `POST /fn/{id}`; `http://{id}/x` failed at run time; a
    // query was blamed on the port.
    let out = errors(concat!(
        "apis:\n  a:\n    stages:\n",
        "      prod: { variables: { seg: ok }, canary: { percent: 5, variables: { seg: \"..\" } } }\n",
        "    authorizers:\n",
        "      gate: { type: lambda, url: \"http://127.0.0.1:41711/authz/./x\", identity_source: [\"$request.header.a\"] }\n",
        "    routes:\n",
        "      \"GET /sv\": { integration: { type: lambda, url: \"http://127.0.0.1:41711/fn/${stageVariables.seg}/admin\" } }\n",
        "      \"GET /lit\": { integration: { type: lambda, url: \"http://127.0.0.1:41711/fn/../admin\" } }\n",
        "      \"GET /br\": { integration: { type: lambda, url: \"http://127.0.0.1:41711/fn/{id}\" } }\n",
        "      \"GET /host\": { integration: { type: lambda, url: \"http://{id}/x\" } }\n",
        "      \"GET /q\": { integration: { type: lambda, url: \"http://127.0.0.1:9000?x=1\" } }\n",
    ));
    let at = |r: &str| format!("apis.a.routes.\"{r}\".integration.url: ");
    let dot = "has a . or .. segment, which the function endpoint would resolve to another path";
    assert_eq!(
        out,
        [
            format!("{}\"http://127.0.0.1:41711/fn/../admin\" {dot} (in the canary of stage \"prod\")", at("GET /sv")),
            format!("{}\"http://127.0.0.1:41711/fn/../admin\" {dot}", at("GET /lit")),
            format!("{}\"http://127.0.0.1:41711/fn/{{id}}\" has {{ or }} in its path: a function url is no template (only ${{stageVariables.NAME}} is replaced); percent-encode them (%7B, %7D)", at("GET /br")),
            format!("{}\"http://{{id}}/x\" has a bad host \"{{id}}\"", at("GET /host")),
            format!("{}\"http://127.0.0.1:9000?x=1\" has a query but no path: write the path before the ? (…/invocations?Qualifier=…)", at("GET /q")),
            format!("apis.a.authorizers.gate.url: \"http://127.0.0.1:41711/authz/./x\" {dot}"),
        ],
    );
}

#[test]
fn a_request_mapping_to_a_reserved_header_spelled_with_underscores_is_refused() {
    // The backend got `x_forwarded_for: 6.6.6.6` from the client's header, which CGI,
    // WSGI, PHP and Rack read as the forwarded address.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n",
        "      \"GET /h\":\n        integration: { type: http, upstream: u }\n",
        "        parameters: { \"overwrite:header.x_forwarded_for\": \"$request.header.x-spoof\", \"append:header.Transfer_Encoding\": \"x\", \"overwrite:header.x-user\": \"$request.header.x-u\" }\n",
        // A response goes to clients, which don't read `_` as `-`.
        "        response_parameters: { \"200\": { \"overwrite:header.x_amzn_requestid\": \"x\" } }\n",
    ));
    let at = "apis.a.routes.\"GET /h\".parameters.";
    assert_eq!(
        out,
        [
            format!("{at}\"overwrite:header.x_forwarded_for\": x_forwarded_for is x-forwarded-for to CGI, WSGI, PHP and Rack backends (they read _ as -), and x-forwarded-for is reserved: Portico sets it itself"),
            format!("{at}\"append:header.Transfer_Encoding\": Transfer_Encoding is transfer-encoding to CGI, WSGI, PHP and Rack backends (they read _ as -), and transfer-encoding is reserved: Portico sets it itself"),
        ],
    );
}

#[test]
fn a_mapped_status_with_a_sign_is_refused() {
    // `+201` passed check (Rust's integer parser takes a `+`), literal or from a stage.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { s: { variables: { code: \"+202\" } } }\n    routes:\n",
        "      \"GET /h\":\n        integration: { type: http, upstream: u }\n",
        "        response_parameters: { \"200\": { \"overwrite:statuscode\": \"+201\" }, \"201\": { \"overwrite:statuscode\": \"$stageVariables.code\" }, \"202\": { \"overwrite:statuscode\": \" 203 \" } }\n",
    ));
    let at = "apis.a.routes.\"GET /h\".response_parameters.";
    let why =
        "must be a status 200–599 other than 204, 205 and 304 (the body is already framed), got";
    assert_eq!(
        out,
        [
            format!("{at}200.\"overwrite:statuscode\": {why} \"+201\""),
            format!("{at}201.\"overwrite:statuscode\": {why} \"+202\" in stage \"s\""),
        ],
    );
}

#[test]
fn an_integration_path_a_mapping_replaces_is_a_warning() {
    // It passed without a word: the mapped path replaced the integration's.
    let yaml = concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n",
        "      \"GET /h\": { integration: { type: http, upstream: u, path: /a }, parameters: { \"overwrite:path\": /b } }\n",
        "      \"GET /ok\": { integration: { type: http, upstream: u, path: /a }, parameters: { \"overwrite:header.x\": b } }\n",
    );
    let report = super::check_text_in(yaml, std::path::Path::new("."));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["apis.a.routes.\"GET /h\".integration.path: not used: the route's parameters.\"overwrite:path\" makes the path sent"]
    );
}

#[test]
fn a_request_value_in_a_mock_is_a_warning() {
    // It passed without a word: the mock sent `${context.requestId}` as those letters.
    let yaml = concat!(
        "apis:\n  a:\n    stages: { $default: { variables: { v: x } } }\n    routes:\n",
        "      \"GET /m\": { integration: { type: mock, headers: { x-id: \"${context.requestId}\", x-v: \"${stageVariables.v}\" }, body: '{\"ua\": \"$request.header.user-agent\"}' } }\n",
        "      \"GET /ok\": { integration: { type: mock, body: \"costs $5\" } }\n",
        "  ws:\n    protocol: websocket\n    stages: { prod: {} }\n    routes:\n",
        "      echo: { integration: { type: mock, body: \"$request.body\" }, route_response: true }\n",
        "      said: { integration: { type: mock, body: \"said $request.body\" }, route_response: true }\n",
    );
    let report = super::check_text_in(yaml, std::path::Path::new("."));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let warnings: Vec<String> = (report.warnings.iter())
        .map(ToString::to_string)
        .filter(|w| w.contains(".routes."))
        .collect();
    let unread = "is sent as written: a mock puts in ${stageVariables.NAME} only (response_parameters read the request)";
    assert_eq!(
        warnings,
        [
            format!("apis.a.routes.\"GET /m\".integration.body: $request.header.user-agent {unread}"),
            format!("apis.a.routes.\"GET /m\".integration.headers.x-id: ${{context.requestId}} {unread}"),
            // A WebSocket mock echoes a body of exactly `$request.body`, and only that.
            "apis.ws.routes.said.integration.body: $request.body is sent as written: a mock puts in ${stageVariables.NAME} only, and echoes a body that is $request.body alone".to_string(),
        ]
    );
}

#[test]
fn an_integration_path_holding_what_a_clients_path_is_refused_for_is_refused() {
    // Each passed check and went to the backend as written (`GET /a%00/2`,
    // `GET /a\b/%zz/2`), where a client's own such path is a 400.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages:\n",
        "      prod: { variables: { v: ok }, canary: { percent: 5, variables: { v: \"b%zz\" } } }\n",
        "      dev: { variables: { v: \"c\\\\d\" } }\n",
        "    routes:\n",
        "      \"GET /n/{id}\": { integration: { type: http, upstream: u, path: \"/a%00/{id}\" } }\n",
        "      \"GET /b/{id}\": { integration: { type: http, upstream: u, path: \"/a\\\\b/{id}\" } }\n",
        "      \"GET /m/{id}\": { integration: { type: http, upstream: u, path: \"/a/%zz/{id}\" } }\n",
        "      \"GET /s/{id}\": { integration: { type: http, upstream: u, path: \"/s/${stageVariables.v}/{id}\" } }\n",
        "      \"GET /ok/{id}\": { integration: { type: http, upstream: u, path: \"/a%20b/%2F/{id}\" } }\n",
    ));
    let at = |route: &str| format!("apis.a.routes.\"{route}\".integration.path");
    let nul = "has a %00, at which a C, CGI or PHP file handler ends the path (a client's path with one is refused with 400)";
    let backslash = "has a backslash, which some backends read as / (a client's path with one is refused with 400): write / or %5C";
    let malformed = "has a % not followed by two hex digits (a client's path with one is refused with 400): write %25 for a percent sign";
    assert_eq!(
        out,
        [
            format!("{}: {nul}", at("GET /n/{id}")),
            format!("{}: {backslash}", at("GET /b/{id}")),
            format!("{}: {malformed}", at("GET /m/{id}")),
            format!(
                "{}: {malformed} (in the canary of stage \"prod\": \"/s/b%zz/{{id}}\")",
                at("GET /s/{id}")
            ),
            format!(
                "{}: {backslash} (in stage \"dev\": \"/s/c\\\\d/{{id}}\")",
                at("GET /s/{id}")
            ),
        ],
    );
}

#[test]
fn a_response_mapping_that_sends_a_one_valued_field_twice_or_a_content_type_list_is_refused() {
    // Both passed check: the first sent a second Content-Type beside the backend's, the
    // second a list that browsers read as its last type.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n",
        "      \"GET /a\":\n        integration: { type: http, upstream: u }\n",
        "        response_parameters:\n          \"200\":\n",
        "            \"append:header.content-type\": \"$response.header.x-s\"\n",
        "            \"append:header.Location\": \"/b\"\n",
        "            \"overwrite:header.content-type\": \"text/html, application/json\"\n",
        "            \"append:header.x-many\": \"1\"\n",
        "            \"overwrite:header.etag\": \"$response.header.x-e\"\n",
    ));
    let at = |key: &str| format!("apis.a.routes.\"GET /a\".response_parameters.200.\"{key}\"");
    assert_eq!(
        out,
        [
            format!("{}: content-type has one value: append: would send a second content-type beside the integration's; use overwrite:", at("append:header.content-type")),
            format!("{}: Location has one value: append: would send a second Location beside the integration's; use overwrite:", at("append:header.Location")),
            format!("{}: \"text/html, application/json\" is a list: browsers take its last media type (application/json); give one", at("overwrite:header.content-type")),
        ],
    );
}

/// A mapped `date` went out as written, on mocks too (`date: Thu, 01 Jan 1970 …`), where
/// a mock's own configured `date` is left out with a warning.
#[test]
fn a_response_mapping_of_date_is_refused() {
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n    routes:\n",
        "      \"GET /a\":\n        integration: { type: http, upstream: u }\n",
        "        response_parameters:\n          \"200\":\n",
        "            \"overwrite:header.date\": \"yesterday\"\n",
        "            \"remove:header.Date\": \"\"\n",
        "      \"GET /m\":\n        integration: { type: mock }\n",
        "        response_parameters:\n          \"200\":\n",
        "            \"append:header.DATE\": \"Thu, 01 Jan 1970 00:00:00 GMT\"\n",
    ));
    let why = "date can't be mapped: every answer carries Portico's current Date, or a proxied answer its backend's (a fixed one makes caches reckon the answer stale at once or fresh for ever)";
    let at = |route: &str, key: &str| {
        format!("apis.a.routes.\"{route}\".response_parameters.200.\"{key}\": {why}")
    };
    assert_eq!(
        out,
        [
            at("GET /a", "overwrite:header.date"),
            at("GET /a", "remove:header.Date"),
            at("GET /m", "append:header.DATE"),
        ],
    );
}

#[test]
fn a_mapping_of_a_header_api_gateway_reserves_is_refused() {
    // Each passed check, though API Gateway refuses a mapping of any of them. A request
    // mapping may set `authorization` (a backend's credentials: upstreams take none) and
    // `forwarded` (clients' are dropped); mocks and gateway responses are not mappings.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n",
        "    gateway_responses: { DEFAULT_4XX: { headers: { via: gw, x-amz-x: \"1\" } } }\n",
        "    routes:\n",
        "      \"GET /h\":\n        integration: { type: http, upstream: u }\n",
        "        parameters:\n",
        "          \"overwrite:header.Via\": \"x\"\n",
        "          \"remove:header.origin\": \"\"\n",
        "          \"append:header.X-Amz-Date\": \"x\"\n",
        "          \"overwrite:header.proxy-authorization\": \"x\"\n",
        "          \"overwrite:header.access-control-request-method\": \"GET\"\n",
        // Portico's own reason, said once.
        "          \"overwrite:header.x-amzn-requestid\": \"x\"\n",
        "          \"overwrite:header.authorization\": \"Bearer t\"\n",
        "          \"overwrite:header.forwarded\": \"for=1.2.3.4\"\n",
        "          \"overwrite:header.x-ok\": \"x\"\n",
        "        response_parameters:\n          \"200\":\n",
        "            \"overwrite:header.Access-Control-Allow-Origin\": \"*\"\n",
        "            \"remove:header.x-amzn-remapped-x\": \"\"\n",
        "            \"overwrite:header.apigw-x\": \"x\"\n",
        "            \"overwrite:header.authorization\": \"x\"\n",
        "            \"overwrite:header.content-location\": \"/x\"\n",
        "            \"append:header.content-encoding\": \"br\"\n",
        "            \"overwrite:header.x-ok\": \"x\"\n",
        "      \"GET /m\": { integration: { type: mock, headers: { via: m, x-amz-x: \"1\", origin: o } } }\n",
    ));
    let at = "apis.a.routes.\"GET /h\".";
    let aws = "API Gateway lets no mapping set or remove it";
    assert_eq!(
        out,
        [
            format!("{at}parameters.\"overwrite:header.Via\": Via is reserved: {aws}"),
            format!("{at}parameters.\"remove:header.origin\": origin is reserved: {aws}"),
            format!("{at}parameters.\"append:header.X-Amz-Date\": X-Amz-Date is reserved (as every x-amz-* header): {aws}"),
            format!("{at}parameters.\"overwrite:header.proxy-authorization\": proxy-authorization is reserved: {aws}"),
            format!("{at}parameters.\"overwrite:header.access-control-request-method\": access-control-request-method is reserved (as every access-control-* header): {aws}; the API's cors block writes the CORS headers"),
            format!("{at}parameters.\"overwrite:header.x-amzn-requestid\": x-amzn-requestid is reserved: Portico sets it itself"),
            format!("{at}response_parameters.200.\"overwrite:header.Access-Control-Allow-Origin\": Access-Control-Allow-Origin is reserved (as every access-control-* header): {aws}; the API's cors block writes the CORS headers"),
            format!("{at}response_parameters.200.\"remove:header.x-amzn-remapped-x\": x-amzn-remapped-x is reserved (as every x-amzn-* header): {aws}"),
            format!("{at}response_parameters.200.\"overwrite:header.apigw-x\": apigw-x is reserved (as every apigw-* header): {aws}"),
            format!("{at}response_parameters.200.\"overwrite:header.authorization\": authorization is reserved: {aws}"),
            format!("{at}response_parameters.200.\"overwrite:header.content-location\": content-location is reserved: {aws}"),
            format!("{at}response_parameters.200.\"append:header.content-encoding\": content-encoding can't be mapped: Portico's compression decides it from the integration's answer"),
        ],
    );
}

#[test]
fn http2_settings_is_refused_as_the_other_hop_by_hop_headers_are() {
    // Each passed check, while te, trailer and keep-alive were refused: the relay's
    // hop-by-hop list has HTTP2-Settings, check's copies of it did not.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n",
        "    gateway_responses: { DEFAULT_4XX: { headers: { http2-settings: AAMAAABkAAQAAP__ } } }\n",
        "    routes:\n",
        "      \"GET /m\": { integration: { type: mock, headers: { HTTP2-Settings: AAMAAABkAAQAAP__ } } }\n",
        "      \"GET /h\":\n        integration: { type: http, upstream: u }\n",
        "        parameters: { \"overwrite:header.http2-settings\": \"x\", \"remove:header.HTTP2_Settings\": \"\" }\n",
        "        response_parameters: { \"200\": { \"overwrite:header.http2-settings\": \"x\" } }\n",
    ));
    // Portico drops it (it is hop-by-hop); it does not set it.
    let reserved = "is hop-by-hop (it describes one connection): Portico drops it";
    let at = "apis.a.routes.\"GET /h\".";
    assert_eq!(
        out,
        [
            format!("apis.a.routes.\"GET /m\".integration.headers.HTTP2-Settings: HTTP2-Settings {reserved}"),
            format!("{at}parameters.\"overwrite:header.http2-settings\": http2-settings {reserved}"),
            format!("{at}parameters.\"remove:header.HTTP2_Settings\": HTTP2_Settings is http2-settings to CGI, WSGI, PHP and Rack backends (they read _ as -), and http2-settings {reserved}"),
            format!("{at}response_parameters.200.\"overwrite:header.http2-settings\": http2-settings {reserved}"),
            format!("apis.a.gateway_responses.DEFAULT_4XX.headers.http2-settings: http2-settings {reserved}"),
        ],
    );
}

#[test]
fn a_mocks_or_gateway_responses_date_is_a_warning() {
    // It passed without a word, and the answer carried Portico's current Date instead.
    let yaml = concat!(
        "apis:\n  a:\n    stages: { $default: {} }\n",
        "    gateway_responses: { DEFAULT_4XX: { headers: { Date: \"Mon, 01 Jan 2024 00:00:00 GMT\", x-a: b } } }\n",
        "    routes:\n",
        "      \"GET /m\": { integration: { type: mock, headers: { date: \"Mon, 01 Jan 2024 00:00:00 GMT\", server: s } } }\n",
        "      \"GET /ok\": { integration: { type: mock, headers: { x-date: d } } }\n",
    );
    let report = super::check_text_in(yaml, std::path::Path::new("."));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "apis.a.gateway_responses.DEFAULT_4XX.headers.Date: Portico writes the current Date; a gateway response's is left out",
            "apis.a.routes.\"GET /m\".integration.headers.date: Portico writes the current Date; a mock's is left out",
        ]
    );
}

#[test]
fn an_integration_path_holds_nothing_a_request_target_cant() {
    // Each passed check and went out raw (`GET /a"<b>|^`{}[]/c HTTP/1.1`), where an
    // `overwrite:path` sends the same characters percent-encoded. `{p}` is a parameter
    // (the client's value, as sent), and a variable's braces are its value's.
    let out = errors(concat!(
        "upstreams: { ua: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages:\n",
        "      $default: { variables: { v: 'a\"<b>|^`{}[]', ok: 'v1;x=1', br: '{p}' } }\n",
        "    routes:\n",
        "      \"GET /x/{p}\": { integration: { type: http, upstream: ua, path: '/${stageVariables.v}/{p}' } }\n",
        "      \"GET /y/{p}\": { integration: { type: http, upstream: ua, path: '/a|b/{p}' } }\n",
        "      \"GET /z/{p}\": { integration: { type: http, upstream: ua, path: '/a[1]/{p}' } }\n",
        "      \"GET /w/{p}\": { integration: { type: http, upstream: ua, path: '/a}/{p}' } }\n",
        "      \"GET /b/{p}\": { integration: { type: http, upstream: ua, path: '/${stageVariables.br}' } }\n",
        "      \"GET /ok/{p+}\": { integration: { type: http, upstream: ua, path: '/${stageVariables.ok}/{p}/$x/{p+}' } }\n",
    ));
    let at = |r: &str| format!("apis.a.routes.\"{r}\".integration.path");
    let has = |c: char, hex: &str| {
        format!("has `{c}` (one of \" < > \\ ^ ` {{ }} | [ ], which no request-target may hold, RFC 3986), which would be sent as it is: percent-encode it (%{hex})")
    };
    assert_eq!(
        out,
        [
            format!(
                "{}: {} (in stage \"$default\": \"/a\\\"<b>|^`{{}}[]/{{p}}\")",
                at("GET /x/{p}"),
                has('"', "22")
            ),
            format!("{}: {}", at("GET /y/{p}"), has('|', "7C")),
            format!("{}: {}", at("GET /z/{p}"), has('[', "5B")),
            format!("{}: {}", at("GET /w/{p}"), has('}', "7D")),
            format!(
                "{}: {} (in stage \"$default\": \"/{{p}}\")",
                at("GET /b/{p}"),
                has('{', "7B")
            ),
        ],
    );
}

#[test]
fn a_request_mapping_appends_no_second_value_of_a_one_valued_header() {
    // `append:header.authorization` passed: a client's own `Authorization: Bearer
    // forged` reached the backend first, then the mapped one. Response mappings already
    // refused the same for their one-valued fields.
    let out = errors(concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n",
        "    routes:\n",
        "      \"GET /h\":\n        integration: { type: http, upstream: u }\n",
        "        parameters:\n",
        "          \"append:header.authorization\": \"Bearer backend-secret\"\n",
        "          \"append:header.Content-Type\": \"application/json\"\n",
        "          \"append:header.x_http_method_override\": \"GET\"\n",
        "          \"append:header.Cookie\": \"a=b\"\n",
        // Refused for being reserved, said once.
        "          \"append:header.origin\": \"o\"\n",
        "          \"append:header.host\": \"h\"\n",
        // Lists, and the mapped credentials written as meant.
        "          \"append:header.accept\": \"text/html\"\n",
        "          \"append:header.x-tag\": \"a\"\n",
        "          \"overwrite:header.authorization\": \"Bearer backend-secret\"\n",
    ));
    let at = |k: &str| format!("apis.a.routes.\"GET /h\".parameters.\"append:header.{k}\"");
    let one = |n: &str| {
        format!("{n} has one value: append: would send a second {n} beside the client's, and backends read either; use overwrite:")
    };
    assert_eq!(
        out,
        [
            format!("{}: {}", at("authorization"), one("authorization")),
            format!("{}: {}", at("Content-Type"), one("Content-Type")),
            format!(
                "{}: {}",
                at("x_http_method_override"),
                one("x_http_method_override")
            ),
            format!("{}: {}", at("Cookie"), one("Cookie")),
            format!(
                "{}: origin is reserved: API Gateway lets no mapping set or remove it",
                at("origin")
            ),
            format!("{}: host is reserved: Portico sets it itself", at("host")),
        ],
    );
}

#[test]
fn a_method_override_set_from_the_request_is_a_warning() {
    // `?m=DELETE` picked the backend's method past the method-override guard, which reads
    // the client's own headers and `_method` only; check said nothing.
    let yaml = concat!(
        "upstreams: { u: { targets: [\"127.0.0.1:9\"] } }\n",
        "apis:\n  a:\n    stages: { $default: {} }\n",
        "    routes:\n",
        "      \"POST /h/{id}\":\n        integration: { type: http, upstream: u }\n",
        "        parameters:\n",
        "          \"overwrite:header.x-http-method-override\": \"$request.querystring.m\"\n",
        "          \"overwrite:header.X-HTTP-Method\": \"${request.header.x-verb}\"\n",
        "          \"overwrite:header.x_method_override\": \"$request.path.id\"\n",
        "          \"overwrite:querystring._METHOD\": \"$request.querystring.m\"\n",
        // Fixed or the gateway's own: no client's choice.
        "      \"POST /k\":\n        integration: { type: http, upstream: u }\n",
        "        parameters:\n",
        "          \"overwrite:header.x-http-method-override\": \"GET\"\n",
        "          \"overwrite:header.x-method-override\": \"$context.httpMethod\"\n",
        "          \"overwrite:header.x-m\": \"$request.querystring.m\"\n",
        "          \"remove:header.x-http-method\": \"\"\n",
    );
    let report = super::check_text_in(yaml, std::path::Path::new("."));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    let at =
        |k: &str| format!("apis.a.routes.\"POST /h/{{id}}\".parameters.\"overwrite:header.{k}\"");
    let why = |n: &str, from: &str| {
        format!("{n} is set from {from}, which the client chooses: backends read it as the request's method, while routes, authorizers and throttles judged the request line's (the method-override guard reads only the client's own headers and _method); map a fixed method or leave it out")
    };
    assert_eq!(
        warnings,
        [
            format!(
                "{}: {}",
                at("x-http-method-override"),
                why("x-http-method-override", "$request.querystring.m")
            ),
            format!(
                "{}: {}",
                at("X-HTTP-Method"),
                why("X-HTTP-Method", "$request.header.x-verb")
            ),
            format!(
                "{}: {}",
                at("x_method_override"),
                why("x_method_override", "$request.path.id")
            ),
            format!(
                "apis.a.routes.\"POST /h/{{id}}\".parameters.\"overwrite:querystring._METHOD\": {}",
                why("query parameter _METHOD", "$request.querystring.m")
            ),
        ],
    );
}

#[test]
fn misspelt_references_in_gateway_responses_and_mocks_are_refused() {
    // Each passed check and went out as written; mappings refuse the same spellings.
    let out = errors(concat!(
        "apis:\n  a:\n    stages: { $default: { variables: { v: x } } }\n",
        "    gateway_responses:\n",
        "      DEFAULT_4XX: { headers: { x-h: \"$request.header.x-in\" }, body: '{\"rq\":\"$request.header.x-in\",\"mr\":\"$method.request.header.x-in\"}' }\n",
        "      DEFAULT_5XX: { headers: { x-r: \"$Context.requestId\" }, body: '${stagevariables.v}' }\n",
        "      UNAUTHORIZED: { body: '{\"m\":\"$context.error.message\",\"mr\":\"$method.request.header.x\"}' }\n",
        // What gateway responses read, a `$` that starts nothing, and REST's VTL (an
        // imported template; the import warns that it is sent as written).
        "      THROTTLED: { headers: { x-s: \"${stageVariables.v}-$context.stage\" }, body: '$5.00 US$ $HOME. $USD.50 $set.a $util.escapeJavaScript($context.error.message) $input.path(\"$\")' }\n",
        "    routes:\n",
        "      \"GET /m\": { integration: { type: mock, body: 'b=${stagevariables.v} ${StageVariables.v}' } }\n",
        "      \"GET /n\": { integration: { type: mock, headers: { x-v: '$StageVariables.v' } } }\n",
        "      \"GET /ok\": { integration: { type: mock, body: 'b=${stageVariables.v} $5 $input.json(\"$\")' } }\n",
    ));
    let gw = |what: &str| {
        format!("{what} would be sent as written: gateway responses read $context.VAR and $stageVariables.NAME only (names in that case), and no request values")
    };
    let mock = |what: &str| {
        format!("{what} would be sent as written (stageVariables is spelt in that case): write ${{stageVariables.v}}")
    };
    assert_eq!(
        out,
        [
            format!(
                "apis.a.routes.\"GET /m\".integration.body: {}",
                mock("$stagevariables.v")
            ),
            format!(
                "apis.a.routes.\"GET /n\".integration.headers.x-v: {}",
                mock("$StageVariables.v")
            ),
            format!(
                "apis.a.gateway_responses.DEFAULT_4XX.headers.x-h: {}",
                gw("$request.header.x-in")
            ),
            format!(
                "apis.a.gateway_responses.DEFAULT_4XX.body: {}",
                gw("$request.header.x-in")
            ),
            format!(
                "apis.a.gateway_responses.DEFAULT_5XX.headers.x-r: {}",
                gw("$Context.requestId")
            ),
            format!(
                "apis.a.gateway_responses.DEFAULT_5XX.body: {}",
                gw("$stagevariables.v")
            ),
            format!(
                "apis.a.gateway_responses.UNAUTHORIZED.body: {}",
                gw("$method.request.header.x")
            ),
        ],
    );
}
