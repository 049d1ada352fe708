//! What an integration's Lambda event says about the authorizer's verdict
//! (`requestContext.authorizer`), in API Gateway's shapes:
//! - 2.0, JWT: `{"jwt":{"claims":{…strings…},"scopes":[…] | null}}` (scopes null when the
//!   route lists none);
//! - 1.0, JWT: `{"claims":{…},"scopes":[…] | null}` (no `jwt` level).
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
    }
}

fn scopes(out: &mut Vec<u8>, auth: &AuthState, json: &str) {
    if auth.route_scoped {
        out.extend_from_slice(json.as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}
