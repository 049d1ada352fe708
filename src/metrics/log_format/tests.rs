//! Formats: compiling, rendering, and what `check` says about them.

use super::*;

fn record() -> LogRecord<'static> {
    LogRecord {
        request_id: b"id-1",
        source_ip: "127.0.0.1".parse().unwrap(),
        user_agent: b"curl/8 \"quoted\"\n",
        api_key_id: "",
        method: b"GET",
        path: b"/prod/x",
        protocol: "HTTP/1.1",
        route_key: "GET /x",
        resource_path: "/x",
        stage: "prod",
        api_id: "shop",
        domain_name: b"api.example.com",
        status: 200,
        response_length: 11,
        response_latency: Duration::from_millis(7),
        integration_latency: Some(Duration::from_millis(5)),
        integration_status: Some(200),
        function_status: None,
        integration_error: "",
        error_message: "",
        error_response_type: "",
        validation_error: "",
        request_time: 1_795_315_778_000,
        canary: false,
        client_cert: None,
        connection_id: "",
        event_type: "",
        message_id: "",
        authorizer: None,
    }
}

#[test]
fn json_formats_stay_valid_json() {
    let f = LogFormat::compile(
        r#"{"id":"$context.requestId","ua":"$context.identity.userAgent","status":"$context.status","key":"$context.identity.apiKeyId","x":"$context.nope","t":"$context.requestTime","e":$context.requestTimeEpoch}"#,
    );
    let mut out = Vec::new();
    f.render(&mut out, &record());
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(v["ua"], "curl/8 \"quoted\"\n");
    assert_eq!(v["status"], "200");
    assert_eq!(v["key"], "-");
    assert_eq!(v["x"], "-");
    assert_eq!(v["t"], "22/Nov/2026:02:49:38 +0000");
    assert_eq!(v["e"], 1795315778000u64);
}

#[test]
fn error_message_string_is_the_message_quoted_and_longer_names_are_unknown() {
    let f = LogFormat::compile(
        r#"{"m":$context.error.messageString,"e":"$context.error.message","x":"$context.statusCode","id":"$context.requestId."}"#,
    );
    assert_eq!(f.json_problem(), None);
    assert_eq!(
        f.unknown_variables().collect::<Vec<_>>(),
        ["$context.statusCode"]
    );
    let mut r = record();
    r.error_message = "Bad \"Gateway\"";
    let mut out = Vec::new();
    f.render(&mut out, &r);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(
        (v["m"].as_str(), v["e"].as_str()),
        (Some("Bad \"Gateway\""), v["m"].as_str())
    );
    assert_eq!(v["x"], "-", "not the status, then \"Code\"");
    assert_eq!(v["id"], "id-1.");
    r.error_message = "";
    out.clear();
    f.render(&mut out, &r);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(v["m"], "-");
}

#[test]
fn xml_values_cannot_close_their_element() {
    let f = LogFormat::compile(
        r#"<request id="$context.requestId"><ua>$context.identity.userAgent</ua></request>"#,
    );
    let mut r = record();
    r.user_agent = b"x</ua></request><request id=\"forged\"><ua>&'";
    let mut out = Vec::new();
    f.render(&mut out, &r);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<request id=\"id-1\"><ua>x&lt;/ua&gt;&lt;/request&gt;&lt;request id=&quot;forged&quot;&gt;&lt;ua&gt;&amp;&apos;</ua></request>\n"
    );
    // U+FFFE and U+FFFF are not XML characters: written as their bytes, the line stays
    // well-formed; other text beyond ASCII is kept.
    r.user_agent = "a\u{ffff}b\u{fffe}c\u{fffd}\u{e9}".as_bytes();
    let mut out = Vec::new();
    f.render(&mut out, &r);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<request id=\"id-1\"><ua>a\\xEF\\xBF\\xBFb\\xEF\\xBF\\xBEc\u{fffd}\u{e9}</ua></request>\n"
    );
}

#[test]
fn json_lines_stay_utf8_whatever_bytes_a_client_sends() {
    let f =
        LogFormat::compile(r#"{"ua":"$context.identity.userAgent","host":"$context.domainName"}"#);
    let mut r = record();
    r.user_agent = b"ev\xff\xfeil \"x\" caf\xc3\xa9 \xe2\x82 \xc2\x9b[2J";
    r.domain_name = b"a\x80b";
    let mut out = Vec::new();
    f.render(&mut out, &r);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid UTF-8 JSON");
    assert_eq!(
        v["ua"],
        "ev\u{fffd}\u{fffd}il \"x\" caf\u{e9} \u{fffd} \u{9b}[2J"
    );
    assert!(String::from_utf8(out.clone())
        .unwrap()
        .contains(r"\u009b[2J"));
    assert_eq!(v["host"], "a\u{fffd}b");
    // Plain formats write bytes that are not UTF-8, and C1 controls, as \xHH (as
    // nginx does), and keep other non-ASCII text.
    let f = LogFormat::compile("$context.identity.userAgent");
    let mut out = Vec::new();
    f.render(&mut out, &r);
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        "ev\\xFF\\xFEil \\x22x\\x22 caf\u{e9} \\xE2\\x82 \\xC2\\x9B[2J\n"
    );
}

#[test]
fn authorizer_names_cut_at_a_colon_are_found() {
    let f = LogFormat::compile(
        r#"{"user":"$context.authorizer.claims.cognito:username","s":"$context.authorizer.claims.sub:$context.stage"}"#,
    );
    let cut: Vec<_> = f.names_cut_at_colon().collect();
    assert_eq!(cut, [("claims.cognito", "username")]);
}

#[test]
fn json_formats_with_a_variable_outside_quotes_are_found() {
    let ok = r#"{"s":$context.status,"n":$context.responseLength,"t":$context.requestTimeEpoch,"l":"$context.integrationLatency"}"#;
    assert_eq!(LogFormat::compile(ok).json_problem(), None);
    let bare = r#"{"s":"$context.status","l":$context.integrationLatency}"#;
    assert_eq!(
        LogFormat::compile(bare).json_problem().as_deref(),
        Some("$context.integrationLatency is outside quotes")
    );
    let broken = LogFormat::compile(r#"{"a":"$context.path""#).json_problem();
    assert!(broken.unwrap().starts_with("not JSON: EOF"));
    assert_eq!(
        LogFormat::compile("$context.path $context.status").json_problem(),
        None
    );
}

#[test]
fn plain_formats_escape_quotes_backslashes_and_control_characters() {
    let f = LogFormat::compile("$context.httpMethod $context.path $context.status $context.identity.userAgent ($context.responseLatency ms)");
    let mut out = Vec::new();
    f.render(&mut out, &record());
    assert_eq!(
        out,
        b"GET /prod/x 200 curl/8 \\x22quoted\\x22\\x0A (7 ms)\n"
    );
}

#[test]
fn a_variable_inside_a_json_string_is_inside_quotes_wherever_it_stands() {
    // Only a `"` just before a variable counted: both of these were "outside quotes".
    let f =
        r#"{"request":"$context.httpMethod $context.path","ua":"UA: $context.identity.userAgent"}"#;
    assert_eq!(LogFormat::compile(f).json_problem(), None);
    // An escaped quote does not end the string; a closed one does.
    let f = r#"{"a":"say \"$context.path\" now"}"#;
    assert_eq!(LogFormat::compile(f).json_problem(), None);
    let f = r#"{"a":"x\\",$context.path:1}"#;
    assert_eq!(
        LogFormat::compile(f).json_problem().as_deref(),
        Some("$context.path is outside quotes")
    );
    let f = r#"{"a":"$context.status" , "b": $context.stage}"#;
    assert_eq!(
        LogFormat::compile(f).json_problem().as_deref(),
        Some("$context.stage is outside quotes")
    );
}

#[test]
fn messages_name_a_variable_as_written() {
    // The first name of the variable was given: `canary` was `isCanaryRequest`.
    let f =
        LogFormat::compile(r#"{"c":"$context.isCanaryRequest","l":$context.integration.latency}"#);
    assert_eq!(
        f.json_problem().as_deref(),
        Some("$context.integration.latency is outside quotes")
    );
    let f = LogFormat::compile(r#"{"e":$context.integrationErrorMessage}"#);
    assert_eq!(
        f.json_problem().as_deref(),
        Some("$context.integrationErrorMessage is outside quotes")
    );
    // A boolean is JSON as it stands (it is never empty).
    let f = LogFormat::compile(r#"{"c":$context.canary,"d":$context.isCanaryRequest}"#);
    assert_eq!(f.json_problem(), None);
    let f = LogFormat::compile(r#"{"l":${context.integration.latency}}"#);
    assert_eq!(
        f.json_problem().as_deref(),
        Some("${context.integration.latency} is outside quotes")
    );
    let f = LogFormat::compile("$context.nope ${context.nada} ${context.requestId");
    assert_eq!(
        f.unknown_variables().collect::<Vec<_>>(),
        ["$context.nope", "${context.nada}", "${context.requestId"]
    );
}

#[test]
fn braced_variables_are_variables() {
    // `${context.requestId}` was logged as that text, with no warning.
    let f = LogFormat::compile(
        "${context.requestId}-$context.stage ${context.status}ms${context.authorizer.claims.a:b}!",
    );
    assert_eq!(f.unknown_variables().count(), 0);
    assert_eq!(f.names_cut_at_colon().count(), 0);
    let mut out = Vec::new();
    f.render(&mut out, &record());
    assert_eq!(String::from_utf8(out).unwrap(), "id-1-prod 200ms-!\n");
    // A longer name is not a known one and some text.
    let f = LogFormat::compile("${context.statusCode}");
    assert_eq!(
        f.unknown_variables().collect::<Vec<_>>(),
        ["${context.statusCode}"]
    );
}

#[test]
fn line_breaks_at_the_end_of_a_format_are_dropped() {
    // `format: |` keeps one: every line was followed by an empty line.
    for format in [
        "$context.status\n",
        "$context.status\r\n\n",
        "$context.status",
    ] {
        let mut out = Vec::new();
        LogFormat::compile(format).render(&mut out, &record());
        assert_eq!(out, b"200\n", "{format:?}");
    }
    let mut out = Vec::new();
    LogFormat::compile("{\"s\":\"$context.status\"}\n").render(&mut out, &record());
    assert_eq!(out, b"{\"s\":\"200\"}\n");
}

/// U+2028 and U+2029 end a line for some readers (JavaScript, editors): escaped in every
/// format, as the stderr log escapes them, so a client's text can't seem to start a line.
#[test]
fn line_and_paragraph_separators_are_escaped_in_every_format() {
    let mut r = record();
    r.user_agent = "a\u{2028}b\u{2029}c".as_bytes();
    let line = |format: &str| {
        let mut out = Vec::new();
        LogFormat::compile(format).render(&mut out, &r);
        String::from_utf8(out).unwrap()
    };
    let json = line(r#"{"ua":"$context.identity.userAgent"}"#);
    assert_eq!(json, "{\"ua\":\"a\\u2028b\\u2029c\"}\n");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ua"], "a\u{2028}b\u{2029}c");
    assert_eq!(
        line("<ua>$context.identity.userAgent</ua>"),
        "<ua>a&#x2028;b&#x2029;c</ua>\n"
    );
    assert_eq!(
        line("$context.identity.userAgent"),
        "a\\xE2\\x80\\xA8b\\xE2\\x80\\xA9c\n"
    );
}
