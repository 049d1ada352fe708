//! Each route's integration compiled for one stage: stage variables substituted, the
//! upstream named by index, the integration path split into literal and parameter parts,
//! mock answers encoded to bytes, a function url turned into a pool entry.

use std::time::Duration;

use super::{
    HttpIntegration, IntegrationRt, LambdaIntegration, MockResponse, PathPart, RouteRt, UpstreamRt,
};
use crate::config::decode::shown;
use crate::config::model::{self, Config, Integration, PayloadFormat};
use crate::http1::encode;
use crate::pipeline::params::RequestMap;

pub(super) fn integration(
    route: &model::Route,
    vars: &[(String, String)],
    rt: &RouteRt,
    cfg: &Config,
    upstreams: &mut Vec<UpstreamRt>,
) -> IntegrationRt {
    match &route.integration {
        Integration::Http {
            upstream,
            path,
            timeout,
            upgrade,
        } => {
            let name = match substitute(upstream, vars) {
                Ok(n) => n,
                Err(e) => return IntegrationRt::Misconfigured(e),
            };
            let Some(idx) = cfg.upstreams.iter().position(|(n, _)| *n == name) else {
                return IntegrationRt::Misconfigured(format!("no upstream named {}", shown(&name)));
            };
            let path = match path
                .as_deref()
                .map(|p| path_template(p, vars, &rt.param_names))
            {
                None => None,
                Some(Ok(parts)) => Some(parts),
                Some(Err(e)) => return IntegrationRt::Misconfigured(e),
            };
            // A SigV4 Authorization header stops at the gateway (as API Gateway drops it).
            let mut parameters = std::borrow::Cow::Borrowed(&route.parameters);
            if route.auth.iam {
                parameters
                    .to_mut()
                    .push(("remove:header.authorization".into(), String::new()));
            }
            let map = match RequestMap::compile(&parameters, vars, &rt.param_names) {
                Ok(map) => map.map(Box::new),
                Err(e) => return IntegrationRt::Misconfigured(format!("parameters: {e}")),
            };
            IntegrationRt::Http(HttpIntegration {
                upstream: idx,
                path,
                timeout: *timeout,
                map,
                upgrade: upgrade
                    .protocols
                    .iter()
                    .map(|p| p.as_bytes().into())
                    .collect(),
                tunnel_idle: upgrade.idle_timeout,
            })
        }
        Integration::Mock {
            status,
            headers,
            body,
        } => {
            // Mock bodies and headers may name stage variables too (a canary can answer
            // differently from its stage).
            let sub = |s: &str| substitute(s, vars);
            let headers: Result<Vec<_>, _> = headers
                .iter()
                .map(|(n, v)| Ok((n.clone(), sub(v)?)))
                .collect();
            // A body that names no stage variable is the same in every stage: shared, not
            // copied per stage (a 1 MB body in 2,000 stages took 2 GB).
            let body = match body.contains(STAGE_VAR) {
                false => Ok(std::sync::Arc::<[u8]>::from(body.clone())),
                true => sub(body).map(|b| b.into_bytes().into()),
            };
            match (headers, body) {
                (Ok(headers), Ok(body)) => IntegrationRt::Mock(mock(*status, &headers, body)),
                (Err(e), _) | (_, Err(e)) => IntegrationRt::Misconfigured(e),
            }
        }
        Integration::Lambda {
            url,
            payload_format,
            timeout,
        } => match substitute(url, vars)
            .and_then(|url| lambda(&url, *payload_format, *timeout, upstreams))
        {
            Ok(l) => IntegrationRt::Lambda(l),
            Err(e) => IntegrationRt::Misconfigured(e),
        },
    }
}

/// A function url becomes a pool entry (one per address, shared by every route that
/// calls it) and a pre-encoded request head.
pub(crate) fn lambda(
    url: &str,
    format: PayloadFormat,
    timeout: Duration,
    upstreams: &mut Vec<UpstreamRt>,
) -> Result<LambdaIntegration, String> {
    let (host, port, path) = crate::integration::lambda::parse_url(url)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    // An address, or a name resolved (and re-resolved) like an upstream target's.
    let addr = crate::config::decode::parse_socket_addr(&format!("{host}:{port}"));
    let target = model::Target {
        host: bare.to_string(),
        port,
        addr,
    };
    let name = match addr {
        Some(addr) => format!("lambda {addr}"),
        None => format!("lambda {bare}:{port}"),
    };
    // Only the compiler's own pools are candidates: a user upstream is never one, whatever
    // its name (validation also keeps user names out of the `lambda ` namespace, so
    // metric series stay apart).
    let upstream = match upstreams.iter().position(|u| u.internal && u.name == name) {
        Some(i) => i,
        None => {
            let u = model::Upstream {
                targets: vec![target],
                resolve_every: crate::config::load::DEFAULT_RESOLVE_EVERY,
                https: false,
                tls: model::UpstreamTls::default(),
                balance: model::Balance::RoundRobin,
                connect_timeout: timeout.min(Duration::from_secs(2)),
                pool: model::Pool::default(),
                health: None,
            };
            if addr.is_none() {
                crate::upstream::resolve::at_load(&[(name.clone(), u.clone())]);
            }
            let mut rt = UpstreamRt::new(&name, &u, None);
            rt.internal = true;
            upstreams.push(rt);
            upstreams.len() - 1
        }
    };
    let mut head = Vec::new();
    head.extend_from_slice(b"POST ");
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let authority = if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    encode::header(&mut head, b"host", authority.as_bytes());
    encode::header(&mut head, b"content-type", b"application/json");
    Ok(LambdaIntegration {
        upstream,
        format,
        timeout,
        head: head.into(),
        url: url.to_string(),
    })
}

/// Replaces every `${stageVariables.NAME}`; a name the stage lacks is an error.
pub fn substitute(s: &str, vars: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(STAGE_VAR) {
        out.push_str(&rest[..at]);
        let (value, after) = stage_var(&rest[at..], vars, s)?;
        out.push_str(value);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

const STAGE_VAR: &str = "${stageVariables.";

/// The value of the `${stageVariables.NAME}` that `at` starts with, and the text after it.
fn stage_var<'a, 'v>(
    at: &'a str,
    vars: &'v [(String, String)],
    whole: &str,
) -> Result<(&'v str, &'a str), String> {
    let after = &at[STAGE_VAR.len()..];
    let end = after
        .find('}')
        .ok_or_else(|| format!("unclosed ${{stageVariables. in {}", shown(whole)))?;
    let name = &after[..end];
    let value = vars
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("no stage variable {}", shown(name)))?;
    Ok((value, &after[end + 1..]))
}

/// Splits an integration path into literal bytes and `{param}` references. A stage
/// variable's value is literal text, whatever it holds: a `{id}` or `${stageVariables.w}`
/// in it was read as a reference (a request's parameter spliced in, or every request a
/// 500).
pub(super) fn path_template(
    p: &str,
    vars: &[(String, String)],
    params: &[String],
) -> Result<Vec<PathPart>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = p;
    while let Some(open) = rest.find('{') {
        let var = rest.find(STAGE_VAR).filter(|&v| v < open);
        if let Some(v) = var {
            literal.push_str(&rest[..v]);
            let (value, after) = stage_var(&rest[v..], vars, p)?;
            literal.push_str(value);
            rest = after;
            continue;
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed {{ in path {}", shown(p)))?
            + open;
        literal.push_str(&rest[..open]);
        if !literal.is_empty() {
            parts.push(PathPart::Literal(
                std::mem::take(&mut literal).into_bytes().into(),
            ));
        }
        let name = rest[open + 1..close].trim_end_matches('+');
        let idx = params
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("path parameter {{{name}}} is not in the route key"))?;
        parts.push(PathPart::Param(idx));
        rest = &rest[close + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(PathPart::Literal(literal.into_bytes().into()));
    }
    Ok(parts)
}

fn mock(status: u16, headers: &[(String, String)], body: std::sync::Arc<[u8]>) -> MockResponse {
    // A mock's answer carries Portico's current Date, whatever its `headers` say: a fixed
    // one makes every cache reckon the answer's age from it (stale at once, or fresh
    // for ever). Its Server, like any other header the gateway adds, replaces Portico's.
    let headers: Vec<&(String, String)> = (headers.iter())
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .collect();
    let mut head = Vec::new();
    encode::status_line(&mut head, status);
    for (name, value) in &headers {
        encode::header(&mut head, name.as_bytes(), value.as_bytes());
    }
    if !matches!(status, 100..=199 | 204 | 304) {
        head.extend_from_slice(b"content-length: ");
        encode::decimal(&mut head, body.len() as u64);
        head.extend_from_slice(b"\r\n");
    }
    MockResponse {
        status,
        head: head.into(),
        body,
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_bytes().into(), v.as_bytes().into()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_stage_variables() {
        let vars = vec![("v".to_string(), "v2".to_string())];
        assert_eq!(
            substitute("/${stageVariables.v}/x", &vars).unwrap(),
            "/v2/x"
        );
        assert!(substitute("${stageVariables.nope}", &vars).is_err());
        assert_eq!(substitute("plain", &vars).unwrap(), "plain");
    }

    #[test]
    fn path_templates_reference_route_params() {
        let params = vec!["id".to_string(), "proxy".to_string()];
        let parts = path_template("/u/{id}/x/{proxy}", &[], &params).unwrap();
        assert_eq!(
            parts,
            vec![
                PathPart::Literal((*b"/u/").into()),
                PathPart::Param(0),
                PathPart::Literal((*b"/x/").into()),
                PathPart::Param(1)
            ]
        );
        assert!(path_template("/{nope}", &[], &params).is_err());
        // A stage variable's value is text, braces and all.
        let vars = vec![
            ("v".to_string(), "x{id}y".to_string()),
            ("w".to_string(), "${stageVariables.v}".to_string()),
        ];
        let parts = path_template("/t/${stageVariables.v}/{id}", &vars, &params).unwrap();
        assert_eq!(
            parts,
            vec![
                PathPart::Literal((*b"/t/x{id}y/").into()),
                PathPart::Param(0)
            ]
        );
        let parts = path_template("/${stageVariables.w}", &vars, &params).unwrap();
        assert_eq!(
            parts,
            vec![PathPart::Literal((*b"/${stageVariables.v}").into())]
        );
    }
}
