//! Lambda events of WebSocket APIs, in the shape API Gateway sends (captured CONNECT,
//! MESSAGE and DISCONNECT events): `requestContext` with routeKey, eventType,
//! extendedRequestId (= requestId), requestTime, messageDirection "IN", stage, connectedAt,
//! requestTimeEpoch, identity, domainName, connectionId, apiId; MESSAGE adds messageId and
//! the body; DISCONNECT adds disconnectStatusCode and disconnectReason. Headers and the
//! query string are on CONNECT only (without Connection and Upgrade, with X-Forwarded-*);
//! DISCONNECT carries the constant-looking headers real events show.

use serde_json::{json, Map, Value};

/// What every event of one connection shares.
#[derive(Debug, Clone)]
pub struct Context {
    pub api_id: String,
    pub stage: String,
    pub domain_name: String,
    pub connection_id: String,
    pub connected_at_ms: u64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// The authorizer's context from `$connect`, attached to every later event.
    pub authorizer: Option<Value>,
    /// An IAM caller's fields (accessKey, accountId, caller, user, userArn), added to
    /// `requestContext.identity` of every event, as REST-style events carry them.
    pub iam_identity: Option<Map<String, Value>>,
    /// The `$connect` verdict, for `$context.authorizer.*` in access-log lines.
    pub auth: Option<crate::auth::Identity>,
}

/// The stage's variables as a top-level `stageVariables`: left out when it has none, as in
/// the events captured from API Gateway. Each event reads the stage of the config that
/// routed it (a reload's values reach open connections with their next message).
fn add_stage_variables(ev: &mut Map<String, Value>, vars: &[(String, String)]) {
    if !vars.is_empty() {
        ev.insert("stageVariables".into(), variables(vars));
    }
}

fn variables(vars: &[(String, String)]) -> Value {
    Value::Object(
        vars.iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect(),
    )
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn clf(ms: u64) -> String {
    let mut out = Vec::with_capacity(32);
    crate::pipeline::context::write_clf_time(&mut out, ms / 1000);
    String::from_utf8(out).unwrap_or_default()
}

fn request_context(
    ctx: &Context,
    route_key: &str,
    event_type: &str,
    request_id: &str,
) -> Map<String, Value> {
    let now = now_ms();
    let mut identity = Map::new();
    if let Some(ua) = &ctx.user_agent {
        identity.insert("userAgent".into(), ua.clone().into());
    }
    identity.insert("sourceIp".into(), ctx.source_ip.clone().into());
    if let Some(iam) = &ctx.iam_identity {
        identity.extend(iam.clone());
    }
    let mut rc = Map::new();
    rc.insert("routeKey".into(), route_key.into());
    rc.insert("eventType".into(), event_type.into());
    rc.insert("extendedRequestId".into(), request_id.into());
    rc.insert("requestTime".into(), clf(now).into());
    rc.insert("messageDirection".into(), "IN".into());
    rc.insert("stage".into(), ctx.stage.clone().into());
    rc.insert("connectedAt".into(), ctx.connected_at_ms.into());
    rc.insert("requestTimeEpoch".into(), now.into());
    rc.insert("identity".into(), Value::Object(identity));
    rc.insert("requestId".into(), request_id.into());
    rc.insert("domainName".into(), ctx.domain_name.clone().into());
    rc.insert("connectionId".into(), ctx.connection_id.clone().into());
    rc.insert("apiId".into(), ctx.api_id.clone().into());
    if let Some(a) = &ctx.authorizer {
        rc.insert("authorizer".into(), a.clone());
    }
    rc
}

/// CONNECT: `headers` (name → last value) and `multiValueHeaders` as the client sent them,
/// query parameters when there is a query string.
pub fn connect(
    ctx: &Context,
    request_id: &str,
    headers: &[(String, String)],
    query: &[(String, String)],
    vars: &[(String, String)],
) -> Vec<u8> {
    let mut ev = request_parts(headers, query);
    ev.insert(
        "requestContext".into(),
        Value::Object(request_context(ctx, "$connect", "CONNECT", request_id)),
    );
    add_stage_variables(&mut ev, vars);
    ev.insert("isBase64Encoded".into(), false.into());
    serde_json::to_vec(&Value::Object(ev)).unwrap_or_default()
}

/// The REQUEST authorizer's event on `$connect`, as API Gateway's sample: `type`,
/// `methodArn` (`…/{stage}/$connect`), headers (with Connection and Upgrade), query,
/// `stageVariables` and the CONNECT `requestContext`.
pub fn authorizer(
    ctx: &Context,
    request_id: &str,
    method_arn: &str,
    headers: &[(String, String)],
    query: &[(String, String)],
    vars: &[(String, String)],
) -> Vec<u8> {
    let mut ev = Map::new();
    ev.insert("type".into(), "REQUEST".into());
    ev.insert("methodArn".into(), method_arn.into());
    ev.extend(request_parts(headers, query));
    // The authorizer's event carries the field even when empty, as API Gateway's sample.
    ev.insert("stageVariables".into(), variables(vars));
    ev.insert(
        "requestContext".into(),
        Value::Object(request_context(ctx, "$connect", "CONNECT", request_id)),
    );
    serde_json::to_vec(&Value::Object(ev)).unwrap_or_default()
}

/// `headers`/`multiValueHeaders`, and the query parameters when there is a query string.
fn request_parts(headers: &[(String, String)], query: &[(String, String)]) -> Map<String, Value> {
    /// Header names are one field in any case (`Authorization` and `authorization`),
    /// kept under the first spelling, as HTTP events do; query names are as sent.
    fn both(
        pairs: &[(String, String)],
        any_case: bool,
    ) -> (Map<String, Value>, Map<String, Value>) {
        let mut single = Map::new();
        let mut multi: Map<String, Value> = Map::new();
        for (n, v) in pairs {
            let n = match single
                .keys()
                .find(|k| any_case && k.eq_ignore_ascii_case(n))
            {
                Some(first) => first.clone(),
                None => n.clone(),
            };
            single.insert(n.clone(), v.clone().into());
            match multi.get_mut(&n) {
                Some(Value::Array(a)) => a.push(v.clone().into()),
                _ => {
                    multi.insert(n.clone(), json!([v]));
                }
            }
        }
        (single, multi)
    }
    let mut ev = Map::new();
    let (single, multi) = both(headers, true);
    ev.insert("headers".into(), Value::Object(single));
    ev.insert("multiValueHeaders".into(), Value::Object(multi));
    if !query.is_empty() {
        let (single, multi) = both(query, false);
        ev.insert("queryStringParameters".into(), Value::Object(single));
        ev.insert(
            "multiValueQueryStringParameters".into(),
            Value::Object(multi),
        );
    }
    ev
}

/// MESSAGE: the body as text, or base64 with `isBase64Encoded: true` (binary frames with
/// `binary_frames: base64`).
pub fn message(
    ctx: &Context,
    request_id: &str,
    message_id: &str,
    route_key: &str,
    body: &str,
    base64: bool,
    vars: &[(String, String)],
) -> Vec<u8> {
    let mut rc = request_context(ctx, route_key, "MESSAGE", request_id);
    rc.insert("messageId".into(), message_id.into());
    let mut ev = Map::new();
    ev.insert("requestContext".into(), Value::Object(rc));
    ev.insert("body".into(), body.into());
    add_stage_variables(&mut ev, vars);
    ev.insert("isBase64Encoded".into(), base64.into());
    serde_json::to_vec(&Value::Object(ev)).unwrap_or_default()
}

/// DISCONNECT, with the close code and reason as API Gateway reports them.
pub fn disconnect(
    ctx: &Context,
    request_id: &str,
    code: u16,
    reason: &str,
    vars: &[(String, String)],
) -> Vec<u8> {
    let mut rc = request_context(ctx, "$disconnect", "DISCONNECT", request_id);
    rc.insert("disconnectStatusCode".into(), code.into());
    rc.insert("disconnectReason".into(), reason.into());
    let mut ev = json!({
        "headers": {
            "Host": ctx.domain_name,
            "x-api-key": "",
            "X-Forwarded-For": "",
            "x-restapi": "",
        },
        "multiValueHeaders": {
            "Host": [ctx.domain_name],
            "x-api-key": [""],
            "X-Forwarded-For": [""],
            "x-restapi": [""],
        },
        "requestContext": Value::Object(rc),
        "isBase64Encoded": false,
    });
    if let Value::Object(ev) = &mut ev {
        add_stage_variables(ev, vars);
    }
    serde_json::to_vec(&ev).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            api_id: "chat".into(),
            stage: "prod".into(),
            domain_name: "ws.example".into(),
            connection_id: "R1kmxc2VNjMCFIA=".into(),
            connected_at_ms: 1_705_751_697_419,
            source_ip: "203.0.113.7".into(),
            user_agent: Some("test".into()),
            authorizer: None,
            iam_identity: None,
            auth: None,
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// Key for key as the events captured from API Gateway (no query, no authorizer).
    #[test]
    fn events_have_api_gateways_keys() {
        let common = [
            "apiId",
            "connectedAt",
            "connectionId",
            "domainName",
            "eventType",
            "extendedRequestId",
            "identity",
            "messageDirection",
            "requestId",
            "requestTime",
            "requestTimeEpoch",
            "routeKey",
            "stage",
        ];
        let hs = [("Host".to_string(), "ws.example".to_string())];
        let c: Value = serde_json::from_slice(&connect(&ctx(), "id1", &hs, &[], &[])).unwrap();
        assert_eq!(
            keys(&c),
            [
                "headers",
                "isBase64Encoded",
                "multiValueHeaders",
                "requestContext"
            ]
        );
        let mut expect = common.to_vec();
        expect.sort_unstable();
        assert_eq!(keys(&c["requestContext"]), expect);
        assert_eq!(c["requestContext"]["eventType"], "CONNECT");
        assert_eq!(c["multiValueHeaders"]["Host"], json!(["ws.example"]));

        let m: Value =
            serde_json::from_slice(&message(&ctx(), "id2", "m1", "$default", "{}", false, &[]))
                .unwrap();
        assert_eq!(keys(&m), ["body", "isBase64Encoded", "requestContext"]);
        let mut expect = common.to_vec();
        expect.push("messageId");
        expect.sort_unstable();
        assert_eq!(keys(&m["requestContext"]), expect);

        let d: Value = serde_json::from_slice(&disconnect(
            &ctx(),
            "id3",
            1005,
            "Client-side close frame status not set",
            &[],
        ))
        .unwrap();
        assert_eq!(
            keys(&d),
            [
                "headers",
                "isBase64Encoded",
                "multiValueHeaders",
                "requestContext"
            ]
        );
        assert_eq!(d["requestContext"]["disconnectStatusCode"], 1005);
        assert_eq!(d["headers"]["x-restapi"], "");
        let rt = d["requestContext"]["requestTime"].as_str().unwrap();
        assert_eq!(rt.len(), "20/Jan/2024:11:55:00 +0000".len(), "{rt}");
    }

    /// The `$connect` authorizer's event: API Gateway's sample keys, the CONNECT context.
    #[test]
    fn authorizer_event_has_the_samples_keys() {
        let hs = [("Upgrade".to_string(), "websocket".to_string())];
        let q = [("token".to_string(), "t".to_string())];
        let vars = [("v".to_string(), "1".to_string())];
        let arn = "arn:aws:execute-api:us-east-1:000000000000:chat/prod/$connect";
        let a: Value =
            serde_json::from_slice(&authorizer(&ctx(), "id1", arn, &hs, &q, &vars)).unwrap();
        let none: Value =
            serde_json::from_slice(&authorizer(&ctx(), "id1", arn, &hs, &q, &[])).unwrap();
        assert_eq!(none["stageVariables"], json!({}));
        assert_eq!(
            keys(&a),
            [
                "headers",
                "methodArn",
                "multiValueHeaders",
                "multiValueQueryStringParameters",
                "queryStringParameters",
                "requestContext",
                "stageVariables",
                "type"
            ]
        );
        assert_eq!(
            (&a["type"], &a["methodArn"]),
            (&json!("REQUEST"), &json!(arn))
        );
        assert_eq!(a["headers"]["Upgrade"], "websocket");
        assert_eq!(a["stageVariables"]["v"], "1");
        assert_eq!(a["requestContext"]["eventType"], "CONNECT");
        assert_eq!(a["requestContext"]["connectionId"], "R1kmxc2VNjMCFIA=");
    }

    /// A stage with variables gives every event of the connection its `stageVariables`.
    #[test]
    fn events_carry_the_stages_variables() {
        let vars = [("table".to_string(), "chat-prod".to_string())];
        let ctx = ctx();
        let events = [
            connect(&ctx, "id1", &[], &[], &vars),
            message(&ctx, "id2", "m1", "$default", "hi", false, &vars),
            disconnect(&ctx, "id3", 1000, "", &vars),
        ];
        for e in events {
            let e: Value = serde_json::from_slice(&e).unwrap();
            assert_eq!(e["stageVariables"], json!({"table": "chat-prod"}), "{e}");
        }
    }

    /// One header field in two cases is one key (the first spelling, the last value);
    /// query names keep their case.
    #[test]
    fn header_names_are_one_field_in_any_case() {
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        let hs = [pair("Authorization", "good"), pair("authorization", "evil")];
        let q = [pair("a", "1"), pair("A", "2")];
        let c: Value = serde_json::from_slice(&connect(&ctx(), "id1", &hs, &q, &[])).unwrap();
        assert_eq!(c["headers"], json!({"Authorization": "evil"}));
        assert_eq!(
            c["multiValueHeaders"],
            json!({"Authorization": ["good", "evil"]})
        );
        assert_eq!(c["queryStringParameters"], json!({"a": "1", "A": "2"}));
    }
}
