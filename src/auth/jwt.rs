//! JWT verification in API Gateway's order: the signature with the key named by `kid`
//! (an allow-listed algorithm whose family matches the key; never `none` or HMAC), then
//! `iss`, `aud` (else `client_id` when `aud` is absent), `exp`, `nbf`, `iat` — numeric
//! only, a claim of another type is a failure, not an absence — and last, per route, the
//! scopes. Header `jku`, `x5u`, `jwk` and `x5c` are ignored: keys come only from the
//! issuer's key set, and `kid` is only a lookup key.

use std::sync::Arc;

use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::jwks::{Curve, Jwk, KeyMaterial, KeySet, KeySource};
use crate::config::auth::{JwtAuthorizer, TokenSource};

/// Why a token is refused. Every kind is a 401 with `error="invalid_token"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    Algorithm,
    UnknownKey,
    KeysUnavailable,
    Signature,
    Issuer,
    Audience,
    Expired,
    /// No `exp` claim: API Gateway requires one, so a token that never expires is refused.
    NoExpiry,
    NotYetValid,
    IssuedInFuture,
}

impl JwtError {
    /// The `error_description`, worded like API Gateway's ("the token does not have a
    /// valid audience"), and `$context.authorizer.error`.
    pub fn description(self) -> &'static str {
        match self {
            JwtError::Malformed => "the token is malformed",
            JwtError::Algorithm => "the token is signed with an algorithm that is not allowed",
            JwtError::UnknownKey => "the token's kid does not match any signing key of the issuer",
            JwtError::KeysUnavailable => "the issuer's signing keys could not be fetched",
            JwtError::Signature => "the token signature is invalid",
            JwtError::Issuer => "the token does not have a valid issuer",
            JwtError::Audience => "the token does not have a valid audience",
            JwtError::Expired => "the token has expired",
            JwtError::NoExpiry => "the token has no exp claim",
            JwtError::NotYetValid => "the token is not valid yet",
            JwtError::IssuedInFuture => "the token was issued in the future",
        }
    }
}

/// A JWT authorizer, compiled.
#[derive(Debug)]
pub struct JwtRt {
    pub source: Arc<KeySource>,
    pub token: TokenSource,
    pub issuer: String,
    pub audience: Vec<String>,
    pub algorithms: Vec<Alg>,
    pub leeway: u64,
    /// Mixed into the token cache key, so a cached verdict never crosses authorizers
    /// (or survives a change of issuer, audience or algorithms).
    pub fingerprint: [u8; 32],
}

impl JwtRt {
    pub fn compile(a: &JwtAuthorizer) -> JwtRt {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for part in [&a.issuer, a.jwks_uri.as_deref().unwrap_or("")] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for aud in &a.audience {
            h.update(aud.as_bytes());
            h.update([1]);
        }
        for alg in &a.algorithms {
            h.update(alg.as_bytes());
            h.update([2]);
        }
        h.update(a.leeway.as_secs().to_le_bytes());
        JwtRt {
            source: super::jwks::source(&a.issuer, a.jwks_uri.as_deref()),
            token: crate::config::auth::token_source(&a.identity_source)
                .unwrap_or(TokenSource::Header("authorization".into())),
            issuer: a.issuer.clone(),
            audience: a.audience.clone(),
            algorithms: a.algorithms.iter().filter_map(|s| Alg::parse(s)).collect(),
            leeway: a.leeway.as_secs(),
            fingerprint: h.finalize().into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    /// Verifies with `key` if the key's type fits this algorithm (no cross-family use).
    fn verify(self, key: &KeyMaterial, msg: &[u8], sig: &[u8]) -> bool {
        use Alg::*;
        match (self, key) {
            (Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512, KeyMaterial::Rsa { n, e }) => {
                let params = match self {
                    Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    _ => &signature::RSA_PSS_2048_8192_SHA512,
                };
                RsaPublicKeyComponents { n: &**n, e: &**e }
                    .verify(params, msg, sig)
                    .is_ok()
            }
            (
                Es256,
                KeyMaterial::Ec {
                    curve: Curve::P256,
                    point,
                },
            ) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg, sig)
                .is_ok(),
            (
                Es384,
                KeyMaterial::Ec {
                    curve: Curve::P384,
                    point,
                },
            ) => UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(msg, sig)
                .is_ok(),
            (EdDsa, KeyMaterial::Ed25519(x)) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
            _ => false,
        }
    }
}

fn b64(s: &[u8]) -> Result<Vec<u8>, JwtError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwtError::Malformed)
}

/// A token split and its header read; the signature not yet checked.
pub struct Parsed<'t> {
    pub alg: Alg,
    pub kid: Box<str>,
    signing_input: &'t [u8],
    payload: &'t [u8],
    signature: Vec<u8>,
}

/// Splits the token and checks its header: a known, allowed algorithm, a `kid`, and no
/// critical extension.
pub fn parse<'t>(token: &'t [u8], allowed: &[Alg]) -> Result<Parsed<'t>, JwtError> {
    let mut parts = token.splitn(3, |&b| b == b'.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    if s.contains(&b'.') {
        return Err(JwtError::Malformed);
    }
    let header: Map<String, Value> =
        serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
    // `crit` names extensions the recipient must understand or refuse the token for
    // (RFC 7515 §4.1.11); none is understood here.
    if header.contains_key("crit") {
        return Err(JwtError::Malformed);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    let alg = Alg::parse(alg)
        .filter(|a| allowed.contains(a))
        .ok_or(JwtError::Algorithm)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::UnknownKey)?;
    Ok(Parsed {
        alg,
        kid: kid.into(),
        signing_input: &token[..h.len() + 1 + p.len()],
        payload: p,
        signature: b64(s)?,
    })
}

impl Parsed<'_> {
    pub fn payload(&self) -> &[u8] {
        self.payload
    }

    /// Err(UnknownKey) when the set has no key by this `kid`, Err(Algorithm) when its keys
    /// by this `kid` are pinned to other algorithms.
    pub fn verify(&self, keys: &KeySet) -> Result<(), JwtError> {
        let mut candidates = keys.by_kid(&self.kid).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::UnknownKey);
        }
        // A kid the issuer has, pinned to another algorithm: the token's algorithm is
        // what is wrong, and asking the issuer for its keys again would not change that.
        let mut candidates = candidates.filter(|k| fits(k, self.alg)).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::Algorithm);
        }
        if candidates.any(|k| self.alg.verify(&k.key, self.signing_input, &self.signature)) {
            Ok(())
        } else {
            Err(JwtError::Signature)
        }
    }
}

/// A key's own `alg`, when present, pins the algorithm (RFC 8725 §3.1).
fn fits(k: &Jwk, alg: Alg) -> bool {
    k.alg.as_deref().is_none_or(|a| Alg::parse(a) == Some(alg))
}

/// A verified token: what integrations, mappings and access logs see of it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Seconds since the epoch (with the leeway); a cached verdict is dropped by then.
    pub exp: u64,
    /// Claims as strings, API Gateway's way (numbers and booleans as text, arrays as
    /// "[a b]", objects as JSON, null claims left out), in the token's order.
    pub claims: Vec<(Box<str>, Box<str>)>,
    /// `claims` as a JSON object.
    pub claims_json: Box<str>,
    /// From `scope` (space-separated) or `scp` (array or string).
    pub scopes: Vec<Box<str>>,
    /// `scopes` as a JSON array.
    pub scopes_json: Box<str>,
}

fn number(v: &Value) -> Result<Option<f64>, JwtError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        _ => Err(JwtError::Malformed),
    }
}

/// Checks the claims (after the signature) and builds the verdict.
pub fn check_claims(payload: &[u8], rt: &JwtRt, now: u64) -> Result<Verified, JwtError> {
    let claims: Map<String, Value> =
        serde_json::from_slice(&b64(payload)?).map_err(|_| JwtError::Malformed)?;
    if claims.get("iss").and_then(Value::as_str) != Some(rt.issuer.as_str()) {
        return Err(JwtError::Issuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => rt.audience.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| rt.audience.iter().any(|x| x == a)),
        Some(Value::Null) | None => claims
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|c| rt.audience.iter().any(|x| x == c)),
        Some(_) => false,
    };
    if !aud_ok {
        return Err(JwtError::Audience);
    }
    let (now_f, leeway) = (now as f64, rt.leeway as f64);
    let field = |name: &str| claims.get(name).map_or(Ok(None), number);
    let exp = field("exp")?.ok_or(JwtError::NoExpiry)?;
    // `now` is whole seconds: a fractional `exp` (a NumericDate may have one) is taken
    // at its second, so a token is never accepted after it, only up to a second before.
    if (exp + leeway).floor() <= now_f {
        return Err(JwtError::Expired);
    }
    if field("nbf")?.is_some_and(|nbf| nbf - leeway > now_f) {
        return Err(JwtError::NotYetValid);
    }
    if field("iat")?.is_some_and(|iat| iat - leeway > now_f) {
        return Err(JwtError::IssuedInFuture);
    }
    let mut scopes: Vec<Box<str>> = Vec::new();
    let mut add_scopes = |v: &Value| match v {
        Value::String(s) => scopes.extend(s.split_ascii_whitespace().map(Into::into)),
        Value::Array(a) => scopes.extend(a.iter().filter_map(Value::as_str).map(Into::into)),
        _ => {}
    };
    if let Some(v) = claims.get("scope") {
        add_scopes(v);
    }
    if let Some(v) = claims.get("scp") {
        add_scopes(v);
    }
    let mut flat = Vec::with_capacity(claims.len());
    let mut json = Map::new();
    for (k, v) in &claims {
        let Some(text) = claim_text(v) else { continue };
        json.insert(k.clone(), Value::String(text.clone()));
        flat.push((k.as_str().into(), text.into()));
    }
    let scopes_json = Value::Array(
        scopes
            .iter()
            .map(|s| Value::String(s.to_string()))
            .collect(),
    );
    Ok(Verified {
        exp: ((exp + leeway) as u64).max(now),
        claims: flat,
        claims_json: Value::Object(json).to_string().into(),
        scopes,
        scopes_json: scopes_json.to_string().into(),
    })
}

/// A claim as API Gateway hands it on: a string.
pub fn claim_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    })
}

/// Any one of the route's scopes in the token (API Gateway's rule).
pub fn has_scope(v: &Verified, route: &[Box<str>]) -> bool {
    route.is_empty() || route.iter().any(|r| v.scopes.iter().any(|s| s == r))
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
