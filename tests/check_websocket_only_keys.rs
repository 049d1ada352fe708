//! A WebSocket API's own keys (`route_selection_expression`, `binary_frames`, `limits`)
//! on an HTTP API are errors at their keys, as a route's `route_response` is: nothing
//! reads them there, and `check` said ok.

use std::path::Path;

/// `check`'s errors for `yaml`, as it prints them (`PATH: MESSAGE`).
fn errors(yaml: &str) -> Vec<String> {
    let report = portico::config::check_text_in(yaml, Path::new("."));
    report.errors.iter().map(ToString::to_string).collect()
}

/// One API `s` with `protocol` (none: the key is left out), the three WebSocket-only
/// keys, and a route of its kind.
fn api(protocol: Option<&str>) -> String {
    let route = match protocol {
        Some("websocket") => "$default",
        _ => "GET /x",
    };
    let protocol = protocol.map_or(String::new(), |p| format!("    protocol: {p}\n"));
    format!(
        "apis:\n  s:\n{protocol}    binary_frames: base64\n    route_selection_expression: $request.body.x\n    limits: {{ frame: 1KiB, idle: 1s }}\n    stages: {{ prod: {{}} }}\n    routes:\n      \"{route}\": {{ integration: {{ type: mock }} }}\n"
    )
}

#[test]
fn websocket_keys_on_an_http_api_are_errors_at_each_key() {
    let only = "only for protocol: websocket, and this API is http, which never reads it";
    let want = [
        format!("apis.s.binary_frames: {only}"),
        format!("apis.s.route_selection_expression: {only}"),
        format!("apis.s.limits: {only}; an HTTP API's request limits are server.limits"),
    ];
    for protocol in [None, Some("http")] {
        let mut got = errors(&api(protocol));
        got.sort();
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(got, want, "protocol {protocol:?}");
    }
    // A WebSocket API reads them.
    assert_eq!(errors(&api(Some("websocket"))), Vec::<String>::new());
    // A protocol that did not decode is the one error: what the API is, is unknown.
    let got = errors(&api(Some("ws")));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].starts_with("apis.s.protocol: "), "{got:#?}");
}
