//! What an integration's Lambda event says about the authorizer's verdict
//! (`requestContext.authorizer`), in API Gateway's shapes:
//! - 2.0, JWT: `{"jwt":{"claims":{…strings…},"scopes":[…] | null}}` (scopes null when the
//!   route lists none);
//! - 1.0, JWT: `{"claims":{…},"scopes":[…] | null}` (no `jwt` level);
//! - 2.0, Lambda: `{"lambda":{…context, JSON types kept…} | null}`;
//! - 1.0, Lambda: `{"principalId":…, …context stringified…, "integrationLatency":ms}`;
//! - 2.0, IAM: `{"iam":{accessKey, accountId, callerId, cognitoIdentity, principalOrgId,
//!   userArn, userId}}`; 1.0 fills `requestContext.identity` instead.
//!
//! Routes without an authorizer: 2.0 leaves `authorizer` out; 1.0 has
//! `{"claims":null,"scopes":null}` only when asked to (AWS's sample), so it is left out too.

use super::{AuthState, IamCaller, Identity};

/// Appends `,"authorizer":{…}` for payload 2.0, or nothing.
pub fn write_v2(out: &mut Vec<u8>, auth: &AuthState) {
    let Some(id) = &auth.identity else { return };
    match id {
        Identity::Jwt(v) => {
            out.extend_from_slice(br#","authorizer":{"jwt":{"claims":"#);
            out.extend_from_slice(v.claims_json.as_bytes());
            out.extend_from_slice(br#","scopes":"#);
            scopes(out, auth, &v.scopes_json);
            out.extend_from_slice(b"}}");
        }
        Identity::Iam(c) => {
            out.extend_from_slice(br#","authorizer":{"iam":{"accessKey":"#);
            string(out, &c.access_key);
            out.extend_from_slice(br#","accountId":"#);
            string(out, &c.account_id);
            out.extend_from_slice(br#","callerId":"#);
            string(out, &c.user_id);
            out.extend_from_slice(br#","cognitoIdentity":null,"principalOrgId":null,"userArn":"#);
            string(out, &c.user_arn);
            out.extend_from_slice(br#","userId":"#);
            string(out, &c.user_id);
            out.extend_from_slice(b"}}");
        }
        Identity::Lambda(v) => {
            out.extend_from_slice(br#","authorizer":{"lambda":"#);
            out.extend_from_slice(v.context_json.as_deref().unwrap_or("null").as_bytes());
            out.push(b'}');
        }
    }
}

/// Appends `,"authorizer":{…}` for payload 1.0, or nothing.
pub fn write_v1(out: &mut Vec<u8>, auth: &AuthState) {
    let Some(id) = &auth.identity else { return };
    match id {
        Identity::Jwt(v) => {
            out.extend_from_slice(br#","authorizer":{"claims":"#);
            out.extend_from_slice(v.claims_json.as_bytes());
            out.extend_from_slice(br#","scopes":"#);
            scopes(out, auth, &v.scopes_json);
            out.push(b'}');
        }
        // 1.0 carries the IAM caller in `requestContext.identity` (`IamFields`).
        Identity::Iam(_) => {}
        Identity::Lambda(v) => {
            // Flat and stringified, as REST APIs pass a Lambda authorizer's context.
            out.extend_from_slice(br#","authorizer":{"principalId":"#);
            match &v.principal_id {
                Some(p) => string(out, p),
                None => out.extend_from_slice(b"null"),
            }
            for (k, val) in &v.context {
                out.push(b',');
                string(out, k);
                out.push(b':');
                match val {
                    Some(val) => string(out, val),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.extend_from_slice(br#","integrationLatency":"#);
            out.extend_from_slice(auth.latency_ms.to_string().as_bytes());
            out.push(b'}');
        }
    }
}

/// 1.0's `requestContext.identity` fields of an IAM caller (JSON null without one).
pub struct IamFields<'a>(Option<&'a IamCaller>);

impl<'a> IamFields<'a> {
    pub fn of(auth: &'a AuthState) -> Self {
        match &auth.identity {
            Some(Identity::Iam(c)) => IamFields(Some(c)),
            _ => IamFields(None),
        }
    }

    pub fn write(&self, out: &mut Vec<u8>, field: impl Fn(&IamCaller) -> &str) {
        match self.0 {
            Some(c) => string(out, field(c)),
            None => out.extend_from_slice(b"null"),
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

fn scopes(out: &mut Vec<u8>, auth: &AuthState, json: &str) {
    if auth.route_scoped {
        out.extend_from_slice(json.as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}
