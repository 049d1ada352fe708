//! An integration's `uri` as import reads it: its text (not a CloudFormation intrinsic),
//! its parts, and what `check` would refuse once it is an upstream and a path (a port past
//! 65535, credentials, a `{name}` the route lacks), so the method is skipped with a warning
//! at `…/uri` rather than written out for check to refuse the whole config.

use serde_json::{json, Value};

use super::import::Ctx;
use super::integration::Fill;

/// The integration's `uri` text ("" when there is none). A CloudFormation intrinsic
/// (`{"Fn::Sub": …}`, `{"Ref": …}`: a template's value, resolved only when the stack is
/// deployed) or any other non-string is warned about at `p/uri` and None is returned.
pub(super) fn text<'i>(ctx: &mut Ctx, p: &str, integ: &'i Value) -> Option<&'i str> {
    match integ.get("uri") {
        None | Some(Value::Null) => Some(""),
        Some(Value::String(s)) => Some(s),
        Some(Value::Object(m)) if m.len() == 1 => {
            let name = m.keys().next().map(String::as_str).unwrap_or_default();
            let why = match name.starts_with("Fn::") || name == "Ref" {
                true => format!("uri is a CloudFormation intrinsic ({name}); method skipped"),
                false => format!("expected a URI string, got an object ({name}); method skipped"),
            };
            ctx.warn(format!("{p}/uri"), why);
            None
        }
        Some(other) => {
            ctx.warn(
                format!("{p}/uri"),
                format!("expected a URI string, got {other}; method skipped"),
            );
            None
        }
    }
}

/// `scheme://authority/path?query` → parts; None for anything but http(s). A `#fragment`
/// is dropped with a warning at `p/uri`: a client never sends one, and in the path check
/// refuses it.
pub(super) fn split<'u>(ctx: &mut Ctx, p: &str, uri: &'u str) -> Option<Parts<'u>> {
    let (uri, fragment) = match uri.split_once('#') {
        Some((uri, fragment)) => (uri, Some(fragment)),
        None => (uri, None),
    };
    let (scheme, rest) = uri.split_once("://")?;
    // Schemes are case-insensitive (RFC 3986 §3.1): `HTTPS://` is https.
    let scheme = ["http", "https"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(scheme))?;
    if let Some(fragment) = fragment {
        ctx.warn(
            format!("{p}/uri"),
            format!("the fragment #{fragment} is never sent to a backend; dropped"),
        );
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    // A stage variable may hold the authority: `${stageVariables.host}/path`.
    let split_at = if rest.starts_with("${") {
        rest.find('}').map_or(rest.len(), |i| {
            rest[i..].find('/').map_or(rest.len(), |j| i + j)
        })
    } else {
        rest.find('/').unwrap_or(rest.len())
    };
    let (authority, path) = rest.split_at(split_at);
    (!authority.is_empty()).then_some(Parts {
        scheme,
        authority,
        path,
        query,
    })
}

pub(super) struct Parts<'u> {
    pub scheme: &'static str,
    pub authority: &'u str,
    pub path: &'u str,
    pub query: &'u str,
}

/// Why check would refuse `scheme://authority` as an upstream's target (a port past
/// 65535 or 0, `user:password@`, a host that is no name or address), in the config
/// decoder's own words: the decoder reads it, so the two can't disagree.
pub(super) fn target_refused(scheme: &str, authority: &str) -> Option<String> {
    let config = serde_json::json!({
        "upstreams": { "u": { "targets": [format!("{scheme}://{authority}")] } }
    });
    // No `${env:…}` is read: the text is the document's, not the operator's.
    let errors = crate::config::load::load_str_with_env(&config.to_string(), &|_| None).err()?;
    errors.0.into_iter().next().map(|e| e.message)
}

/// Why check would refuse the integration path (before `{name}`s are filled): a character
/// the backend's request line can't carry as it is, or a `.`/`..` segment the backend
/// would resolve to another path.
pub(super) fn path_refused(path: &str) -> Option<&'static str> {
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Some("the path has a space, control or non-ASCII character: percent-encode it");
    }
    if crate::http1::has_dot_segment(path.as_bytes()) {
        return Some(
            "the path has a . or .. segment, which the backend would resolve to another path",
        );
    }
    None
}

/// The first `{name}` in the integration path (or, `${request.path.name}` in an
/// `overwrite:path` value) that is not a parameter of the route key: nothing fills it.
/// `${stageVariables.…}` is the stage's.
pub(super) fn unknown_param<'a>(
    path: &'a str,
    overwrite: Option<&'a str>,
    params: &[String],
) -> Option<&'a str> {
    let known = |name: &str| params.iter().any(|n| n == name.trim_end_matches('+'));
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        if !rest[..open].ends_with('$') && !known(name) {
            return Some(name);
        }
        rest = &rest[(close + 1).min(rest.len())..];
    }
    let refs = crate::pipeline::template::parse(overwrite?).ok()?;
    refs.into_iter().find_map(|r| match r {
        crate::pipeline::template::Ref::PathParam(name) if !known(name) => Some(name),
        _ => None,
    })
}

/// A value of the URI's query (`x={id}&q=a+b`) as a mapping value: `{name}` filled as the
/// URI path's is (from the route's parameter, or what an `integration.request.path.name`
/// mapping gives), and `+` read as a space, as a form-encoded query means it (the proxy
/// sends it as `%20`; written as it is, `+` reached the backend as `%2B`). `${…}` (a stage
/// variable) is kept. Err: a `{name}` nothing fills.
pub(super) fn query_value(
    v: &str,
    fills: &[(String, Fill)],
    params: &[String],
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let (before, token) = (&rest[..open], &rest[open..=open + len]);
        rest = &rest[open + len + 1..];
        out.push_str(&before.replace('+', " "));
        if before.ends_with('$') {
            out.push_str(token);
            continue;
        }
        let name = token[1..token.len() - 1].trim_end_matches('+');
        match fills.iter().find(|(n, _)| n == name).map(|(_, f)| f) {
            Some(Fill::Param(from)) => out.push_str(&format!("${{request.path.{from}}}")),
            Some(Fill::Value(value)) => out.push_str(value),
            None if params.iter().any(|n| n == name) => {
                out.push_str(&format!("${{request.path.{name}}}"))
            }
            None => return Err(name.to_string()),
        }
    }
    out.push_str(&rest.replace('+', " "));
    Ok(out)
}

/// The upstream an http integration's URI names: its authority, made one with the URI's
/// address when its host is literal. One upstream's targets share one scheme: an
/// authority the document also reaches over the other scheme (`https://vm/a` beside
/// `http://vm/b`) gets one of its own, named with its scheme, rather than going out over
/// the first one's (an https integration sent in cleartext to port 80). A host from a
/// stage variable names an upstream whose targets decide the scheme.
pub(super) fn upstream(ctx: &mut Ctx, up: &str, scheme: &str, authority: &str) -> String {
    if authority.contains("${stageVariables.") {
        if scheme == "https" {
            ctx.warn(
                up,
                "https:// is not applied to a host from a stage variable: the upstream it names decides the scheme (give that upstream https:// targets)",
            );
        }
        return authority.to_string();
    }
    let target = format!("{scheme}://{authority}");
    let other_scheme =
        (ctx.out.upstreams.get(authority)).is_some_and(|made| made["targets"][0] != json!(target));
    let name = match other_scheme {
        true => target.clone(),
        false => authority.to_string(),
    };
    if !ctx.out.upstreams.contains_key(&name) {
        if other_scheme {
            ctx.warn(
                up,
                format!("{authority} is also reached over another scheme in this document; this one's upstream is named {target:?}"),
            );
        }
        ctx.out
            .upstreams
            .insert(name.clone(), json!({ "targets": [target] }));
    }
    name
}
