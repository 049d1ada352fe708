//! What an integration's Lambda event says about the authorizer's verdict
//! (`requestContext.authorizer`), in API Gateway's shapes:
//! - 2.0, JWT: `{"jwt":{"claims":{…strings…},"scopes":[…] | null}}` (scopes null when the
//!   route lists none);
//! - 1.0, JWT: `{"claims":{…},"scopes":[…] | null}` (no `jwt` level);
//! - 2.0, Lambda: `{"lambda":{…context, JSON types kept…} | null}`;
//! - 1.0, Lambda: `{"principalId":…, …context stringified…, "integrationLatency":ms}`.
//!
//! Routes without an authorizer: 2.0 leaves `authorizer` out; 1.0 has
//! `{"claims":null,"scopes":null}` only when asked to (AWS's sample), so it is left out too.

use super::{AuthState, Identity};

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
                string(out, val);
            }
            out.extend_from_slice(br#","integrationLatency":"#);
            out.extend_from_slice(auth.latency_ms.to_string().as_bytes());
            out.push(b'}');
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
