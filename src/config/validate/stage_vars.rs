//! Stage variables as route checks see them: the names a field refers to, and its value
//! in each stage (and canary), so a value is checked as it will be used.

use crate::config::decode::shown;
use crate::config::model::*;

pub(super) fn lookup<'v>(vars: &'v [(String, String)], name: &str) -> Option<&'v str> {
    vars.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const STAGE_VAR_OPEN: &str = "${stageVariables.";
const STAGE_VARS: &str = "stageVariables.";

/// Names in `${stageVariables.NAME}` references, each once.
pub(super) fn stage_var_refs(s: &str) -> Result<Vec<String>, String> {
    // A name in another case (`${stagevariables.v}`, `$StageVariables.v`) was sent as
    // written: mapped values refuse it too (`template::unbraced`).
    for at in memchr::memchr_iter(b'$', s.as_bytes()) {
        let after = s[at + 1..].strip_prefix('{').unwrap_or(&s[at + 1..]);
        let word = after.get(..STAGE_VARS.len()).unwrap_or_default();
        if word.eq_ignore_ascii_case(STAGE_VARS) && word != STAGE_VARS {
            let end = (after.bytes().skip(STAGE_VARS.len()))
                .position(|b| !b.is_ascii_alphanumeric() && b != b'_')
                .map_or(after.len(), |n| STAGE_VARS.len() + n);
            let (misspelt, name) = (&after[..end], &after[STAGE_VARS.len()..end]);
            return Err(format!(
                "${misspelt} would be sent as written (stageVariables is spelt in that case): write ${{stageVariables.{name}}}"
            ));
        }
    }
    // Mapped values read both spellings; integrations only the braced one, so the
    // unbraced one would be sent as its own text.
    if let Some(at) = s.find("$stageVariables.") {
        let rest = &s[at + "$stageVariables.".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        let name = &rest[..end];
        return Err(format!(
            "$stageVariables.{name} is not substituted here: write ${{stageVariables.{name}}}"
        ));
    }
    let mut names: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find(STAGE_VAR_OPEN) {
        let after = &rest[start + STAGE_VAR_OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unterminated ${{stageVariables.…}} in {}",
                shown(s)
            ));
        };
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("{} is not a stage variable name", shown(name)));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// The template with every reference replaced, in one pass so that a value containing
/// `${stageVariables.…}` is not expanded again. None if a variable is missing.
fn substitute(template: &str, vars: &[(String, String)]) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find(STAGE_VAR_OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + STAGE_VAR_OPEN.len()..];
        let end = after.find('}')?;
        out.push_str(lookup(vars, &after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Why an integration path (as it will be sent, stage variables substituted, each
/// `{param}` standing as one plain character: see [`params_plain`]) can't go on the
/// backend's request line: it is written there byte for byte after the method.
pub(super) fn path_problem(path: &str) -> Option<String> {
    let why = |s: &str| Some(s.to_string());
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return why("has a space, control or non-ASCII character, which would break the backend's request line: percent-encode it (%20, %C3%A9)");
    }
    if path.contains(['?', '#']) {
        return why("is a path: a query goes in parameters (overwrite:querystring.NAME), and # is never sent");
    }
    if crate::http1::has_dot_segment(path.as_bytes()) {
        return why("has a . or .. segment, which the backend would resolve to another path (a client's is refused with 400)");
    }
    // What a client's own path is refused for (http1/target.rs), for the same reasons: a
    // C, CGI or PHP file handler ends the path at a decoded NUL, IIS and Undertow read `\`
    // as `/`, and a `%` that starts no escape is read by each backend its own way.
    let bytes = path.as_bytes();
    if bytes.contains(&b'\\') {
        return why("has a backslash, which some backends read as / (a client's path with one is refused with 400): write / or %5C");
    }
    // `"`, `|`, `{`, `[`…: an `overwrite:path` sends them percent-encoded, this path as
    // it is (a backend refuses the request, or reads it its own way).
    if let Some(why) = crate::config::validate::target_byte_problem(path) {
        return Some(why);
    }
    if crate::http1::has_malformed_escape(bytes) {
        return why("has a % not followed by two hex digits (a client's path with one is refused with 400): write %25 for a percent sign");
    }
    if crate::http1::has_nul_escape(bytes) {
        return why("has a %00, at which a C, CGI or PHP file handler ends the path (a client's path with one is refused with 400)");
    }
    None
}

/// An integration path with each `{param}` as one plain character, and each
/// `${stageVariables.NAME}` kept (`keep_vars`, for [`resolved`]) or one plain character
/// too. A parameter's value is the client's, as it sent it, so only the path's own text
/// (and a variable's value, literal braces and all) is checked for what a request line
/// can't carry. An unclosed `{` is reported by the route checks.
pub(super) fn params_plain(path: &str, keep_vars: bool) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let var = rest[..open].ends_with('$') && rest[open - 1..].starts_with(STAGE_VAR_OPEN);
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push('x');
            return out;
        };
        match var && keep_vars {
            true => out.push_str(&rest[open..=open + close]),
            false if var => {
                out.pop();
                out.push('x');
            }
            false => out.push('x'),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Why an `overwrite:path` value, as written and as each stage (and canary) resolves its
/// stage variables, fails every request or sends what it does not say
/// (`RequestMap::path_problem`). Request values are unknown here: each stands as one
/// plain character, so `/a/$request.path.id/../b` still shows its `..`.
pub(super) fn mapped_path_problems(api: &Api, value: &str) -> Vec<String> {
    use crate::pipeline::params::RequestMap;
    use crate::pipeline::template::{parse, Ref};
    let Ok(refs) = parse(value) else {
        // Reported with the value's references.
        return Vec::new();
    };
    if let Some(why) = RequestMap::value_path_problem(value) {
        return vec![why.to_string()];
    }
    // The value with stage variables in their braced form for `resolved`: as checked,
    // each request value a plain character, and as shown, request values as written.
    let (mut checked, mut shown, mut names) = (String::new(), String::new(), Vec::new());
    for r in refs {
        let request = match r {
            Ref::Lit(text) => {
                checked.push_str(text);
                shown.push_str(text);
                continue;
            }
            Ref::Stage(name) => {
                let braced = format!("{STAGE_VAR_OPEN}{name}}}");
                checked.push_str(&braced);
                shown.push_str(&braced);
                names.push(name.to_string());
                continue;
            }
            Ref::Header(n) => format!("request.header.{n}"),
            Ref::Query(n) => format!("request.querystring.{n}"),
            Ref::Path => "request.path".to_string(),
            Ref::PathParam(n) => format!("request.path.{n}"),
            Ref::Context(n) => format!("context.{n}"),
            Ref::RespHeader(n) => format!("response.header.{n}"),
        };
        checked.push('x');
        shown.push_str(&format!("${{{request}}}"));
    }
    if names.is_empty() {
        return Vec::new();
    }
    // Both list the same stages, in the same order: they name the same variables.
    let each = resolved(api, &checked, &names).into_iter();
    let each = each.zip(resolved(api, &shown, &names));
    each.filter_map(|((stage, path), (_, as_shown))| {
        let why = RequestMap::path_problem(&path)?;
        Some(format!(
            "{why} (in {stage}: {})",
            crate::config::decode::shown(&as_shown)
        ))
    })
    .collect()
}

/// The template's value in each stage that defines all its variables, and in each canary
/// that overrides one of them (a canary inherits the rest from its stage).
pub(super) fn resolved(api: &Api, template: &str, names: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (stage_name, stage) in &api.stages {
        if let Some(value) = substitute(template, &stage.variables) {
            out.push((format!("stage {}", shown(stage_name)), value));
        }
        let Some(canary) = &stage.canary else {
            continue;
        };
        if !names.iter().any(|n| lookup(&canary.variables, n).is_some()) {
            continue;
        }
        let mut merged = canary.variables.clone();
        merged.extend(
            stage
                .variables
                .iter()
                .filter(|(n, _)| lookup(&canary.variables, n).is_none())
                .cloned(),
        );
        if let Some(value) = substitute(template, &merged) {
            out.push((format!("the canary of stage {}", shown(stage_name)), value));
        }
    }
    out
}

/// A mapped value made of literal text and stage variables only (either spelling), as a
/// `${stageVariables.NAME}` template and its names; None if it reads anything else.
pub(super) fn stage_only(value: &str) -> Option<(String, Vec<String>)> {
    use crate::pipeline::template::{parse, Ref};
    let mut braced = String::new();
    let mut names: Vec<String> = Vec::new();
    for r in parse(value).ok()? {
        match r {
            Ref::Lit(text) => braced.push_str(text),
            Ref::Stage(name) => {
                braced.push_str(&format!("{STAGE_VAR_OPEN}{name}}}"));
                names.push(name.to_string());
            }
            _ => return None,
        }
    }
    (!names.is_empty()).then_some((braced, names))
}

/// A status a response mapping can set: 200–599, and not 204, 205 or 304, which have no
/// body (the body's framing is already decided).
pub(super) fn usable_status(value: &str) -> bool {
    crate::pipeline::response::mapped_status(value.as_bytes())
        .is_some_and(|s| crate::http1::encode::status_with_content(s.into()))
}
