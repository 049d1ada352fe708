//! Lambda REQUEST authorizers: the compiled authorizer, and its answers read into a
//! [`Verdict`] — a simple response (`{"isAuthorized": bool, "context": {...}}`, payload
//! 2.0 with `simple_responses`) or an IAM policy response (`principalId`,
//! `policyDocument`, `context`, `usageIdentifierKey`). A verdict is what the per-worker
//! result cache keeps (by identity-source values, per stage): a policy is kept whole and
//! evaluated against each request's route ARN. Anything malformed is an error (500),
//! never cached.

use std::time::Duration;

use serde_json::{Map, Value};

use super::policy::Policy;
use crate::config::auth::{IdentitySource, LambdaAuthorizer};
use crate::config::compile::LambdaIntegration;
use crate::config::model::PayloadFormat;

#[derive(Debug)]
pub struct LambdaAuthRt {
    /// The function endpoint (a pool entry) and its request head.
    pub call: LambdaIntegration,
    pub format: PayloadFormat,
    pub simple: bool,
    pub sources: Vec<IdentitySource>,
    /// 0: every request calls the function.
    pub ttl: Duration,
    /// Mixed into the result cache key.
    pub fingerprint: [u8; 32],
}

impl LambdaAuthRt {
    pub fn compile(
        a: &LambdaAuthorizer,
        upstreams: &mut Vec<crate::config::compile::UpstreamRt>,
    ) -> Result<LambdaAuthRt, String> {
        use sha2::Digest;
        let call = crate::config::compile::lambda(&a.url, a.payload_format, a.timeout, upstreams)?;
        let mut h = sha2::Sha256::new();
        h.update(a.url.as_bytes());
        h.update([a.payload_format as u8, a.simple_responses as u8]);
        for s in &a.identity_source {
            h.update(s.as_bytes());
            h.update([0]);
        }
        Ok(LambdaAuthRt {
            call,
            format: a.payload_format,
            simple: a.simple_responses,
            sources: a
                .identity_source
                .iter()
                .filter_map(|s| IdentitySource::parse(s).ok())
                .collect(),
            ttl: a.result_ttl,
            fingerprint: h.finalize().into(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Simple(bool),
    Policy(Policy),
}

/// What the function answered, kept for the cache and for the integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    pub principal_id: Option<Box<str>>,
    /// The `context` as JSON (types kept), or None.
    pub context_json: Option<Box<str>>,
    /// The `context` stringified, for 1.0 events and `$context.authorizer.NAME`; a JSON
    /// `null` stays one (None), as API Gateway's REST-shaped `authorizer` keeps it.
    pub context: Vec<(Box<str>, Option<Box<str>>)>,
    pub usage_key: Option<Box<str>>,
}

impl Verdict {
    /// Allowed for the request whose route ARN is `arn`.
    pub fn allows(&self, arn: &str) -> bool {
        self.allows_with(|| arn.to_string())
    }

    /// The same, building the ARN only when a policy needs it.
    pub fn allows_with(&self, arn: impl FnOnce() -> String) -> bool {
        match &self.decision {
            Decision::Simple(ok) => *ok,
            Decision::Policy(p) => p.allows("execute-api:Invoke", &arn()),
        }
    }
}

/// Reads the function's answer. Err: malformed (a 500, never cached).
/// The most a verdict's `context` may hold, as JSON: API Gateway's limit on a Lambda
/// authorizer's result for WebSocket APIs, applied to all. Its values go into headers
/// (mappings, gateway responses) and into every cached verdict (10,000 per worker): a
/// context of a megabyte made heads no client or backend takes.
const MAX_CONTEXT: usize = 8 * 1024;

pub fn parse_answer(body: &[u8], simple: bool, format: PayloadFormat) -> Result<Verdict, String> {
    // A number past a double's range (`1e400`) is JSON too: its text, as a string.
    let v = super::function_json::json_allowing_big_numbers(body)
        .map_err(|e| format!("answer is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("answer is not a JSON object")?;
    let context = match obj.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err("context is not an object".into()),
    };
    let decision = if simple {
        match obj.get("isAuthorized") {
            Some(Value::Bool(b)) => Decision::Simple(*b),
            // A string "false" must not grant (nor "true": it is not a boolean).
            _ => return Err("isAuthorized is not a boolean".into()),
        }
    } else {
        let doc = obj.get("policyDocument").ok_or("no policyDocument")?;
        Decision::Policy(Policy::parse(doc)?)
    };
    let principal_id = match obj.get("principalId") {
        Some(Value::String(s)) => Some(s.as_str().into()),
        Some(Value::Number(n)) => Some(n.to_string().into()),
        None | Some(Value::Null) => None,
        Some(_) => return Err("principalId is not a string".into()),
    };
    if format == PayloadFormat::V1 && !simple && principal_id.is_none() {
        return Err("no principalId".into());
    }
    let usage_key = match obj.get("usageIdentifierKey") {
        Some(Value::String(s)) => Some(s.as_str().into()),
        None | Some(Value::Null) => None,
        Some(_) => return Err("usageIdentifierKey is not a string".into()),
    };
    // Each number as the function wrote it: `Value` has lost the digits of an integer
    // past u64.
    let written = context
        .and_then(|_| super::function_json::raw_members(body, "context"))
        .unwrap_or_default();
    let written = |k: &str| {
        let raw = written.iter().find(|(n, _)| n == k)?.1;
        Some(super::function_json::written(raw))
    };
    let context_json = context.map(|m| {
        let mut json = String::from("{");
        for (i, (k, v)) in m.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&Value::String(k.clone()).to_string());
            json.push(':');
            match v {
                Value::Number(_) | Value::Object(_) | Value::Array(_) => {
                    json.push_str(&written(k).unwrap_or_else(|| v.to_string()))
                }
                _ => json.push_str(&v.to_string()),
            }
        }
        json.push('}');
        json
    });
    if let Some(json) = context_json.as_ref().filter(|j| j.len() > MAX_CONTEXT) {
        return Err(format!(
            "context is {} bytes of JSON, more than 8 KiB",
            json.len()
        ));
    }
    let mut flat = Vec::new();
    if let Some(m) = context {
        for (k, v) in m {
            // The flattened (REST-shaped) `authorizer` object writes these two itself: a
            // context key of that name would be a second `principalId` in the event, which
            // most JSON parsers resolve to the last one, the context's.
            if k == "principalId" || k == "integrationLatency" {
                continue;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) => written(k).unwrap_or_else(|| v.to_string()),
                Value::Bool(_) => v.to_string(),
                Value::Null => {
                    flat.push((k.as_str().into(), None));
                    continue;
                }
                // Payload 1.0 (REST-compatible) context values are scalars only.
                _ if format == PayloadFormat::V1 => {
                    return Err(format!(
                        "context value {k:?} is not a string, number or boolean"
                    ))
                }
                _ => written(k).unwrap_or_else(|| v.to_string()),
            };
            flat.push((k.as_str().into(), Some(text.into())));
        }
    }
    Ok(Verdict {
        decision,
        principal_id,
        context_json: context_json.map(Into::into),
        context: flat,
        usage_key,
    })
}

/// Builds the authorizer's event from the integration event for the same request (same
/// headers, query, path and stage variables, requestContext), API Gateway's way:
/// 2.0 adds `type`, `routeArn`, `identitySource` (a list); 1.0 adds `type`, `methodArn`,
/// `identitySource` and `authorizationToken` (the values comma-joined). Neither has a body.
pub fn authorizer_event(
    integration_event: &[u8],
    format: PayloadFormat,
    arn: &str,
    identity: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    let mut ev: Map<String, Value> =
        serde_json::from_slice(integration_event).map_err(|e| e.to_string())?;
    ev.remove("body");
    ev.remove("isBase64Encoded");
    let values: Vec<String> = identity
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let mut out = Map::new();
    out.insert(
        "version".into(),
        ev.remove("version").unwrap_or(Value::Null),
    );
    out.insert("type".into(), Value::String("REQUEST".into()));
    match format {
        PayloadFormat::V2 => {
            out.insert("routeArn".into(), Value::String(arn.into()));
            out.insert(
                "identitySource".into(),
                Value::Array(values.into_iter().map(Value::String).collect()),
            );
        }
        PayloadFormat::V1 => {
            out.insert("methodArn".into(), Value::String(arn.into()));
            let joined = values.join(",");
            out.insert("identitySource".into(), Value::String(joined.clone()));
            out.insert("authorizationToken".into(), Value::String(joined));
        }
    }
    out.extend(ev);
    serde_json::to_vec(&Value::Object(out)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_answers_need_a_real_boolean() {
        let v = parse_answer(
            br#"{"isAuthorized":true,"context":{"n":7,"o":{"a":1}}}"#,
            true,
            PayloadFormat::V2,
        )
        .unwrap();
        assert!(v.allows("anything"));
        assert_eq!(v.context_json.as_deref(), Some(r#"{"n":7,"o":{"a":1}}"#));
        assert_eq!(v.context[0].1.as_deref(), Some("7"));
        assert!(parse_answer(br#"{"isAuthorized":"true"}"#, true, PayloadFormat::V2).is_err());
        assert!(parse_answer(br#"{"isAuthorized":"false"}"#, true, PayloadFormat::V2).is_err());
        assert!(parse_answer(b"nope", true, PayloadFormat::V2).is_err());
    }

    #[test]
    fn policy_answers() {
        let body = br#"{"principalId":"u1","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:*:*:shop/*/GET/*"}]},"context":{"tenant":"t1","admin":false},"usageIdentifierKey":"k-1"}"#;
        let v = parse_answer(body, false, PayloadFormat::V1).unwrap();
        assert!(v.allows("arn:aws:execute-api:us-east-1:0:shop/prod/GET/pets"));
        assert!(!v.allows("arn:aws:execute-api:us-east-1:0:shop/prod/DELETE/pets"));
        assert_eq!(v.principal_id.as_deref(), Some("u1"));
        assert_eq!(v.usage_key.as_deref(), Some("k-1"));
        let admin = v.context.iter().find(|(k, _)| &**k == "admin").unwrap();
        assert_eq!(admin.1.as_deref(), Some("false"));
        let nested = br#"{"principalId":"u","policyDocument":{"Statement":[]},"context":{"o":{}}}"#;
        assert!(parse_answer(nested, false, PayloadFormat::V1).is_err());
        assert!(parse_answer(nested, false, PayloadFormat::V2).is_ok());
        assert!(parse_answer(
            br#"{"policyDocument":{"Statement":[]}}"#,
            false,
            PayloadFormat::V1
        )
        .is_err());
    }

    #[test]
    fn a_context_over_8_kib_is_a_malformed_answer() {
        let answer = |n: usize| {
            let context = serde_json::json!({"team": "b".repeat(n)});
            format!(r#"{{"isAuthorized":true,"context":{context}}}"#)
        };
        // {"team":"…"} is 11 bytes of JSON around the value.
        assert!(parse_answer(answer(8192 - 11).as_bytes(), true, PayloadFormat::V2).is_ok());
        let err = parse_answer(answer(8192 - 10).as_bytes(), true, PayloadFormat::V2);
        assert_eq!(
            err.unwrap_err(),
            "context is 8193 bytes of JSON, more than 8 KiB"
        );
    }

    /// A number past a double's range is JSON: the answer was a 500.
    #[test]
    fn a_context_number_past_a_doubles_range_is_its_text() {
        let body = br#"{"isAuthorized":true,"context":{"n":1e400,"s":"ok"}}"#;
        let v = parse_answer(body, true, PayloadFormat::V2).unwrap();
        assert_eq!(v.decision, Decision::Simple(true));
        let n = v
            .context
            .iter()
            .find(|(k, _)| &**k == "n")
            .and_then(|(_, v)| v.as_deref());
        assert_eq!(n, Some("1e400"));
    }

    /// An integer past u64 keeps its digits (serde's `Value` made it a double:
    /// `18446744073709551616` reached the integration as `1.8446744073709552e+19`), in
    /// 1.0's strings and 2.0's JSON alike, nested too.
    #[test]
    fn context_numbers_keep_the_functions_text() {
        let body = br#"{"isAuthorized":true,"context":{"i":18446744073709551616,
            "m":123456789012345678901234567890,"f":1e2,"o":{"n":[1e400, 36893488147419103232],
            "t": "a \" b"},"s":"x"}}"#;
        let v = parse_answer(body, true, PayloadFormat::V2).unwrap();
        let flat = |k: &str| {
            v.context
                .iter()
                .find(|(n, _)| &**n == k)
                .and_then(|(_, v)| v.as_deref())
        };
        assert_eq!(flat("i"), Some("18446744073709551616"));
        assert_eq!(flat("m"), Some("123456789012345678901234567890"));
        assert_eq!(flat("f"), Some("1e2"));
        let json = v.context_json.unwrap();
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["s"], "x");
        assert_eq!(back["o"]["n"][0], "1e400");
        assert!(json.contains(r#""i":18446744073709551616"#), "{json}");
        assert!(json.contains("123456789012345678901234567890"), "{json}");
        assert!(json.contains("36893488147419103232"), "{json}");
        // The function's blanks between tokens are not passed on; a string's are.
        assert_eq!(
            flat("o"),
            Some(r#"{"n":["1e400",36893488147419103232],"t":"a \" b"}"#)
        );
    }

    /// A `null` context value is kept as one in 1.0's flat `authorizer` (as API Gateway
    /// passes it), not dropped: a function testing for the key saw it missing.
    #[test]
    fn a_null_context_value_is_kept_as_null() {
        let body = br#"{"principalId":"u","policyDocument":{"Statement":[]},"context":{"a":null,"b":"x"}}"#;
        let v = parse_answer(body, false, PayloadFormat::V1).unwrap();
        let want: [(Box<str>, Option<Box<str>>); 2] =
            [("a".into(), None), ("b".into(), Some("x".into()))];
        assert_eq!(v.context, want);
    }

    #[test]
    fn context_keys_never_stand_in_for_the_principal() {
        let body = br#"{"principalId":"u1","policyDocument":{"Statement":[]},"context":{"principalId":"admin","integrationLatency":0,"tenant":"t"}}"#;
        let v = parse_answer(body, false, PayloadFormat::V1).unwrap();
        assert_eq!(v.principal_id.as_deref(), Some("u1"));
        let keys: Vec<&str> = v.context.iter().map(|(k, _)| &**k).collect();
        assert_eq!(keys, ["tenant"]);
        // 2.0's `authorizer.lambda` is the context object as returned: no clash there.
        let v = parse_answer(body, false, PayloadFormat::V2).unwrap();
        assert!(v.context_json.unwrap().contains(r#""principalId":"admin""#));
    }

    #[test]
    fn events_carry_type_arn_and_identity() {
        let integration = br#"{"version":"2.0","routeKey":"GET /x","rawPath":"/x","headers":{"a":"b"},"requestContext":{"stage":"$default"},"body":"zz","isBase64Encoded":false}"#;
        let ev = authorizer_event(
            integration,
            PayloadFormat::V2,
            "arn:x",
            &[b"t1".to_vec(), b"t2".to_vec()],
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&ev).unwrap();
        assert_eq!(v["type"], "REQUEST");
        assert_eq!(v["routeArn"], "arn:x");
        assert_eq!(v["identitySource"], serde_json::json!(["t1", "t2"]));
        assert_eq!(v["headers"]["a"], "b");
        assert!(v.get("body").is_none());
        let ev = authorizer_event(
            br#"{"version":"1.0","path":"/x"}"#,
            PayloadFormat::V1,
            "arn:y",
            &[b"a".to_vec(), b"b".to_vec()],
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&ev).unwrap();
        assert_eq!(v["methodArn"], "arn:y");
        assert_eq!(v["identitySource"], "a,b");
        assert_eq!(v["authorizationToken"], "a,b");
    }
}
