//! AWS Signature Version 4 verification for `authorization: iam` routes (service
//! `execute-api`, the configured region), against the principals of `iam`: the
//! Authorization-header form and the presigned-query form, ±5 minutes of clock skew, the
//! payload hash, and a constant-time comparison of signatures.
//!
//! The canonical request is rebuilt from the request as received. Clients canonicalise
//! the path and query differently (botocore encodes the path a second time and signs the
//! query as sent; requests-aws4auth decodes and re-encodes), so up to two path forms and
//! two query forms are tried — each is a canonical form a correct signer produces for
//! this very request, never a looser match.

use ring::hmac;
use sha2::{Digest, Sha256};

use super::policy::{Effect, Policy, Statement};
use crate::config::auth::Iam;

#[path = "sigv4_canonical.rs"]
mod canonical;
pub use canonical::amz_date;
use canonical::{canonical_headers, canonical_paths, canonical_queries, parse_amz_date};

pub const SERVICE: &str = "execute-api";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Clock skew API Gateway allows on X-Amz-Date.
pub const SKEW_SECS: u64 = 300;
/// Longest presigned URL lifetime SigV4 allows (7 days).
const MAX_EXPIRES: u64 = 604_800;

/// A principal, compiled: its secret and what it may invoke.
#[derive(Debug)]
pub struct PrincipalRt {
    pub name: String,
    pub access_key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
    pub account_id: String,
    pub user_arn: String,
    pub user_id: String,
    pub policy: Policy,
}

#[derive(Debug, Default)]
pub struct Principals {
    pub region: String,
    pub list: Vec<PrincipalRt>,
}

impl Principals {
    pub fn compile(iam: Option<&Iam>) -> Principals {
        let Some(iam) = iam else {
            return Principals::default();
        };
        let list =
            iam.principals
                .iter()
                .map(|(name, p)| {
                    let stmt = |effect, resources: &[String]| Statement {
                        effect,
                        actions: vec!["execute-api:*".into()],
                        resources: resources.iter().map(|r| r.as_str().into()).collect(),
                        conditional: false,
                    };
                    PrincipalRt {
                        name: name.clone(),
                        access_key_id: p.access_key_id.clone(),
                        secret: p.secret_access_key.clone(),
                        session_token: p.session_token.clone(),
                        account_id: p.account_id.clone(),
                        user_arn: p.user_arn.clone().unwrap_or_else(|| {
                            format!("arn:aws:iam::{}:user/{name}", p.account_id)
                        }),
                        user_id: p.user_id.clone().unwrap_or_else(|| p.access_key_id.clone()),
                        policy: Policy {
                            statements: vec![
                                stmt(Effect::Allow, &p.allow),
                                stmt(Effect::Deny, &p.deny),
                            ],
                        },
                    }
                })
                .collect();
        Principals {
            region: iam.region.clone(),
            list,
        }
    }
}

impl Principals {
    fn find(&self, access_key: &str) -> Option<&PrincipalRt> {
        self.list.iter().find(|p| p.access_key_id == access_key)
    }
}

/// The parts of a request a signature covers.
pub struct Input<'a> {
    pub method: &'a [u8],
    /// The path as received (still percent-encoded).
    pub path: &'a [u8],
    /// The raw query string, without `?`.
    pub query: &'a [u8],
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// SHA-256 of the body.
    pub payload: [u8; 32],
}

impl Input<'_> {
    fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }

    fn header<'s>(&'s self, name: &'s str) -> Option<&'s [u8]> {
        self.header_values(name).next()
    }
}

/// Why a request is refused; every kind is a 403 with API Gateway's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    Missing,
    Incomplete(String),
    Scope(String),
    /// Unknown access key, or a session token that does not match.
    Token,
    Expired(String),
    Mismatch,
    Denied {
        user: String,
        resource: String,
    },
}

impl SigError {
    pub fn message(&self) -> String {
        match self {
            SigError::Missing => "Missing Authentication Token".into(),
            SigError::Incomplete(m) | SigError::Scope(m) | SigError::Expired(m) => m.clone(),
            SigError::Token => "The security token included in the request is invalid.".into(),
            SigError::Mismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
            SigError::Denied { user, resource } => format!(
                "User: {user} is not authorized to perform: execute-api:Invoke on resource: {resource}"
            ),
        }
    }

    /// `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::Incomplete(_) => "IncompleteSignatureException",
            SigError::Token => "UnrecognizedClientException",
            SigError::Denied { .. } => "AccessDeniedException",
            _ => "InvalidSignatureException",
        }
    }
}

/// What the client sent to prove who it is.
struct Claim<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: String,
    amz_date: String,
    /// Where `amz_date` came from, for the message when it is no ISO 8601 date.
    amz_date_from: &'static str,
    /// Presigned: the lifetime in seconds.
    expires: Option<u64>,
    token: Option<Vec<u8>>,
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

fn decoded(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    crate::http1::percent_decode(b, false, &mut out);
    out
}

fn query_pairs(q: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    q.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| {
        match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &b""[..]),
        }
    })
}

fn parse_credential(c: &str) -> Result<(&str, &str, &str, &str), SigError> {
    let parts: Vec<&str> = c.split('/').collect();
    match parts[..] {
        [key, date, region, service, "aws4_request"] => Ok((key, date, region, service)),
        [.., last] => Err(SigError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{last}'."
        ))),
        [] => Err(SigError::Incomplete("Credential is empty.".into())),
    }
}

fn claim<'a>(
    input: &'a Input<'a>,
    presigned: &'a mut Vec<(String, Vec<u8>)>,
) -> Result<Claim<'a>, SigError> {
    if let Some(auth) = input.header("authorization") {
        let value = text(auth).trim();
        let params = value.strip_prefix(ALGORITHM).map(str::trim);
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in params.unwrap_or("").split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        // SigV4 takes the request time from `X-Amz-Date`, else from `Date` (in the same
        // ISO 8601 basic form), as AWS documents.
        let (amz_date, amz_date_from) = match input.header("x-amz-date") {
            Some(v) => (Some(text(v)), "X-Amz-Date"),
            None => (input.header("date").map(text), "Date"),
        };
        if params.is_none()
            || credential.is_none()
            || signed.is_none()
            || signature.is_none()
            || amz_date.is_none()
        {
            let mut m = String::new();
            if credential.is_none() {
                m.push_str("Authorization header requires 'Credential' parameter. ");
            }
            if signature.is_none() {
                m.push_str("Authorization header requires 'Signature' parameter. ");
            }
            if signed.is_none() {
                m.push_str("Authorization header requires 'SignedHeaders' parameter. ");
            }
            if amz_date.is_none() {
                m.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
            }
            if params.is_none() && m.is_empty() {
                m.push_str("Authorization header requires the 'AWS4-HMAC-SHA256' algorithm. ");
            }
            m.push_str("Authorization=");
            m.push_str(value);
            return Err(SigError::Incomplete(m));
        }
        let (access_key, date, region, service) = parse_credential(credential.unwrap_or(""))?;
        return Ok(Claim {
            access_key,
            date,
            region,
            service,
            signed_headers: signed.unwrap_or("").split(';').collect(),
            signature: signature.unwrap_or("").to_string(),
            amz_date: amz_date.unwrap_or("").to_string(),
            amz_date_from,
            expires: None,
            token: input.header("x-amz-security-token").map(<[u8]>::to_vec),
        });
    }
    for (n, v) in query_pairs(input.query) {
        if n.starts_with(b"X-Amz-") {
            presigned.push((text(n).to_string(), decoded(v)));
        }
    }
    let get = |name: &str| {
        presigned
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    if get("X-Amz-Signature").is_none() {
        return Err(SigError::Missing);
    }
    // The one parameter the signature does not cover: a second one would reach the
    // backend unsigned (and a backend reading the last of a repeated name sees it).
    if presigned
        .iter()
        .filter(|(n, _)| n == "X-Amz-Signature")
        .count()
        > 1
    {
        return Err(SigError::Incomplete(
            "X-Amz-Signature must appear once in the query string.".into(),
        ));
    }
    let missing: Vec<&str> = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    ]
    .into_iter()
    .filter(|n| get(n).is_none())
    .collect();
    if !missing.is_empty() {
        return Err(SigError::Incomplete(format!(
            "AWS query-string parameters must include {}. Re-examine the query-string parameters.",
            missing
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if get("X-Amz-Algorithm") != Some(ALGORITHM.as_bytes()) {
        return Err(SigError::Incomplete(
            "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'".into(),
        ));
    }
    let expires = text(get("X-Amz-Expires").unwrap_or_default())
        .parse::<u64>()
        .ok()
        .filter(|e| *e <= MAX_EXPIRES)
        .ok_or_else(|| {
            SigError::Incomplete("X-Amz-Expires must be a number of seconds up to 604800.".into())
        })?;
    let (access_key, date, region, service) =
        parse_credential(text(get("X-Amz-Credential").unwrap_or_default()))?;
    Ok(Claim {
        access_key,
        date,
        region,
        service,
        signed_headers: text(get("X-Amz-SignedHeaders").unwrap_or_default())
            .split(';')
            .collect(),
        signature: text(get("X-Amz-Signature").unwrap_or_default()).to_string(),
        amz_date: text(get("X-Amz-Date").unwrap_or_default()).to_string(),
        amz_date_from: "X-Amz-Date",
        expires: Some(expires),
        token: get("X-Amz-Security-Token")
            .map(<[u8]>::to_vec)
            .or_else(|| input.header("x-amz-security-token").map(<[u8]>::to_vec)),
    })
}

/// Verifies the request's signature; returns the principal that signed it.
pub fn verify<'p>(
    principals: &'p Principals,
    service: &str,
    input: &Input,
    now: u64,
) -> Result<&'p PrincipalRt, SigError> {
    let mut presigned = Vec::new();
    let c = claim(input, &mut presigned)?;
    if c.service != service {
        return Err(SigError::Scope(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if c.region != principals.region {
        return Err(SigError::Scope(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            c.region
        )));
    }
    let principal = principals.find(c.access_key).ok_or(SigError::Token)?;
    match (&principal.session_token, &c.token) {
        (None, None) => {}
        (Some(want), Some(got)) if equal(want.as_bytes(), got) => {}
        _ => return Err(SigError::Token),
    }
    let t = parse_amz_date(&c.amz_date).ok_or_else(|| {
        SigError::Incomplete(format!(
            "{} {:?} is not an ISO 8601 basic date (YYYYMMDDTHHMMSSZ).",
            c.amz_date_from, c.amz_date
        ))
    })?;
    // The whole YYYYMMDD: as a prefix, a scope date of "" or "2026" matched every day
    // it begins, and a key derived for it served them all.
    if c.amz_date.get(..8) != Some(c.date) {
        return Err(SigError::Scope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            c.date,
            &c.amz_date[..8],
            c.amz_date
        )));
    }
    match c.expires {
        None if t + SKEW_SECS < now => {
            return Err(SigError::Expired(format!(
                "Signature expired: {} is now earlier than {} ({} - 5 min.)",
                c.amz_date,
                amz_date(now - SKEW_SECS),
                amz_date(now)
            )))
        }
        Some(e) if t + e < now => return Err(SigError::Expired("Request has expired".into())),
        _ if t > now + SKEW_SECS => {
            return Err(SigError::Expired(format!(
                "Signature not yet current: {} is still later than {} ({} + 5 min.)",
                c.amz_date,
                amz_date(now + SKEW_SECS),
                amz_date(now)
            )))
        }
        _ => {}
    }
    if !c.signed_headers.contains(&"host") {
        return Err(SigError::Mismatch);
    }
    let key = signing_key(&principal.secret, c.date, c.region, c.service);
    let scope = format!("{}/{}/{}/aws4_request", c.date, c.region, c.service);
    let actual = hex(&input.payload);
    let mut payloads: Vec<String> = Vec::with_capacity(2);
    match input.header("x-amz-content-sha256") {
        // A client may state the hash (and sign it); it must be the body's, presigned
        // too (where it may also say UNSIGNED-PAYLOAD, as the signature does): a false
        // one went on to the backend.
        Some(h) => {
            let unsigned = c.expires.is_some() && h == b"UNSIGNED-PAYLOAD";
            if !unsigned && !h.eq_ignore_ascii_case(actual.as_bytes()) {
                return Err(SigError::Mismatch);
            }
            payloads.push(actual.clone());
        }
        _ => payloads.push(actual),
    }
    if c.expires.is_some() {
        payloads.push("UNSIGNED-PAYLOAD".into());
    }
    let headers = canonical_headers(input, &c.signed_headers).ok_or(SigError::Mismatch)?;
    let skip_sig = c.expires.is_some();
    let queries = canonical_queries(input.query, skip_sig);
    let paths = canonical_paths(input.path);
    for path in &paths {
        for query in &queries {
            for payload in &payloads {
                let mut creq = Vec::with_capacity(256);
                creq.extend_from_slice(input.method);
                creq.push(b'\n');
                creq.extend_from_slice(path.as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(query.as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(headers.as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(c.signed_headers.join(";").as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(payload.as_bytes());
                let sts = format!(
                    "{ALGORITHM}\n{}\n{scope}\n{}",
                    c.amz_date,
                    hex(&Sha256::digest(&creq))
                );
                let sig = hex(hmac::sign(&key, sts.as_bytes()).as_ref());
                if equal(sig.as_bytes(), c.signature.as_bytes()) {
                    return Ok(principal);
                }
            }
        }
    }
    Err(SigError::Mismatch)
}

/// Constant-time equality (length is not secret).
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &k), part.as_bytes());
        k = tag.as_ref().to_vec();
    }
    hmac::Key::new(hmac::HMAC_SHA256, &k)
}

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[usize::from(x >> 4)] as char);
        s.push(DIGITS[usize::from(x & 15)] as char);
    }
    s
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
