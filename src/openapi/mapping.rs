//! What `check` refuses in a parameter mapping, asked before import writes one: a reserved
//! header (Portico's or API Gateway's), a `$context` variable Portico does not have, a
//! `$request` value in a response mapping, a path parameter the route lacks. The rules are
//! the validator's, read from the same tables (`RESERVED_*_HEADERS`,
//! `api_gateway_reserved`, `Var::parse`, the template parser), so that a mapping check
//! would refuse is skipped with a warning at its pointer instead of failing the whole
//! config. Stage variables are not checked here: the config, not the document, gives the
//! stages. `$context.authorizer.*` is `authorizer_mappings`'s to judge, once the
//! operation's authorizer is known.

use crate::http1::parse::is_token;
use crate::pipeline::context::Var;
use crate::pipeline::params::{parse_key, Action, Target, RESERVED_REQUEST_HEADERS};
use crate::pipeline::response::RESERVED_RESPONSE_HEADERS;
use crate::pipeline::template::{self, Ref};

/// Why check would refuse `key: value` in a route's `parameters` (or, with `response`,
/// in its `response_parameters`); None when it would accept it. `path_params` are the
/// route key's parameter names.
pub(super) fn refused(
    key: &str,
    value: &str,
    response: bool,
    path_params: &[String],
) -> Option<String> {
    let key_problem = match (parse_key(key), response) {
        // API Gateway's reserved headers are refused in mappings only (not in a mock's or a
        // gateway response's headers, which `header_refused` also answers for).
        (Some((_, Target::Header(name))), response) => header_refused(name, response)
            .or_else(|| crate::config::validate::api_gateway_reserved(name, response))
            .or_else(|| {
                let date = response.then(|| crate::config::validate::mapped_date(name));
                date.flatten().map(String::from)
            }),
        (Some((_, Target::Query(name))), false) => (!crate::pipeline::params::query_name_ok(name))
            .then(|| format!("{name:?} is not a query parameter name")),
        (Some((Action::Overwrite, Target::Path)), false) => {
            crate::pipeline::params::RequestMap::value_path_problem(value).map(String::from)
        }
        (Some((Action::Overwrite, Target::StatusCode)), true) => {
            let usable = crate::pipeline::response::mapped_status(value.as_bytes())
                .is_some_and(|s| crate::http1::encode::status_with_content(s.into()));
            (!value.contains('$') && !usable)
                .then(|| format!("{value:?} is not a status 200–599 other than 204, 205 and 304"))
        }
        (_, false) => Some(format!("{key:?} is not a request mapping Portico has")),
        (_, true) => Some(format!("{key:?} is not a response mapping Portico has")),
    };
    // A header's value can't hold a control character (check refuses it: it would go out
    // as a space).
    let header = matches!(parse_key(key), Some((_, Target::Header(_))));
    key_problem
        .or_else(|| {
            header
                .then(|| crate::config::validate::header_value_problem(value))
                .flatten()
        })
        .or_else(|| value_refused(value, response, path_params))
}

/// Why check would refuse `value` as a mapped value (request or response).
pub(super) fn value_refused(value: &str, response: bool, path_params: &[String]) -> Option<String> {
    // `${env:NAME}` is the config's, read when the config loads (an export writes mapped
    // values as the file has them): not a mapping variable, and no reason to skip.
    let mut rest = value;
    let mut without_env = String::with_capacity(value.len());
    while let Some(at) = rest.find("${env:") {
        let Some(end) = rest[at..].find('}') else {
            break;
        };
        without_env.push_str(&rest[..at]);
        rest = &rest[at + end + 1..];
    }
    without_env.push_str(rest);
    let refs = match template::parse(&without_env) {
        Ok(refs) => refs,
        Err(e) => return Some(e),
    };
    refs.into_iter().find_map(|r| match r {
        Ref::Context(name) if !name.starts_with("authorizer.") && Var::parse(name).is_none() => {
            Some(format!(
                "$context.{name} is not a context variable Portico has"
            ))
        }
        Ref::Header(_) | Ref::Query(_) | Ref::Path | Ref::PathParam(_) if response => {
            Some("$request values are not available in response mappings".to_string())
        }
        Ref::PathParam(name) if !path_params.iter().any(|n| n == name) => {
            Some(format!("{{{name}}} is not a parameter of the route key"))
        }
        Ref::Header(name) if !is_token(name) => Some(format!("{name:?} is not a header name")),
        Ref::RespHeader(_) if !response => {
            Some("$response values are only available in response mappings".to_string())
        }
        _ => None,
    })
}

/// Why check would refuse a header of this name in a request mapping, or (`response`) in a
/// response mapping, a mock's `headers` or a gateway response's: not a token, or one that
/// frames the message or that Portico sets itself.
pub(super) fn header_refused(name: &str, response: bool) -> Option<String> {
    let reserved = match response {
        true => RESERVED_RESPONSE_HEADERS,
        false => RESERVED_REQUEST_HEADERS,
    };
    if !is_token(name) {
        Some(format!("{name:?} is not a header name"))
    } else {
        crate::config::validate::reserved_header(name, reserved)
    }
}
