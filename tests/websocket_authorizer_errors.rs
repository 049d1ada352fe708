//! A WebSocket API's Lambda authorizer that raises `Unauthorized` (the REST-style
//! blueprint's `raise Exception("Unauthorized")` / `callback("Unauthorized")`) refuses
//! the handshake with API Gateway's 401 `{"message":"Unauthorized"}`, whether the error
//! comes with `X-Amz-Function-Error` or as a runtime's bare error object; any other
//! function error stays a 500. Neither reaches the `$connect` integration.

mod common;

use common::ws::*;
use common::*;
use serde_json::{json, Value};

/// Answers by the `token` query parameter.
fn gate() -> Function {
    Function::start(|ev| {
        let token = ev["queryStringParameters"]["token"].as_str().unwrap_or("");
        match token {
            "raise" => FnReply::Error(
                r#"{"errorMessage":"Unauthorized","errorType":"Exception","requestId":"r","stackTrace":[]}"#
                    .into(),
            ),
            "bare" => FnReply::Raw(
                r#"{"errorType":"Error","errorMessage":"Unauthorized","trace":["Error: Unauthorized"]}"#
                    .into(),
            ),
            "other" => FnReply::Error(
                r#"{"errorMessage":"Unauthorized user","errorType":"Exception"}"#.into(),
            ),
            _ => FnReply::Json(
                json!({
                    "principalId": "u",
                    "policyDocument": {"Version": "2012-10-17", "Statement": [
                        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ev["methodArn"]}]}
                })
                .to_string(),
            ),
        }
    })
}

#[test]
fn lambda_authorizer_raising_unauthorized_is_401() {
    let g = gate();
    let connect = Function::start(|_| FnReply::Json(r#"{"statusCode":200}"#.into()));
    for driver in DRIVERS {
        let state = temp_dir("ws-authz-errors");
        let extra = format!(
            "    authorizers:\n      gate: {{ type: lambda, url: \"{}\", identity_source: [route.request.querystring.token] }}\n",
            g.url()
        );
        let routes = format!(
            "      $connect: {{ authorizer: gate, integration: {{ type: lambda, url: \"{}\" }} }}\n{ECHO_ROUTES}",
            connect.url()
        );
        let p = Portico::start(&ws_api_config(free_port(), &state, &extra, &routes), driver);
        let url = |t: &str| format!("ws://{}/prod?token={t}", p.addr);
        let called = connect.calls();
        for (token, status, message) in [
            ("raise", 401, "Unauthorized"),
            ("bare", 401, "Unauthorized"),
            ("other", 500, "Internal Server Error"),
        ] {
            let ws = WsClient::connect(&url(token), json!({}));
            assert_eq!(
                ws.opened["event"], "rejected",
                "{driver} {token}: {}",
                ws.opened
            );
            assert_eq!(
                ws.opened["status"], status,
                "{driver} {token}: {}",
                ws.opened
            );
            let body: Value = serde_json::from_str(ws.opened["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["message"], message, "{driver} {token}");
        }
        assert_eq!(
            connect.calls(),
            called,
            "{driver}: no $connect call when refused"
        );
        // Allowed: the handshake completes.
        let mut ws = WsClient::connect(&url("ok"), json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(
            ws.ask(r#"{"action":"echo","n":1}"#),
            r#"{"action":"echo","n":1}"#
        );
    }
}
