//! A `mock` integration → Portico's `mock`: the integration response API Gateway would
//! select, its status, static headers and template. API Gateway takes the status from the
//! request template's output (`{"statusCode": 200}`) and matches it against each response's
//! key, a selection pattern (a regular expression of the whole status); `default` answers
//! when none matches. Portico's mock answers one fixed response, so a template that
//! computes the status (VTL) can't be followed: the default response is used, with a
//! warning. What the chosen response holds that Portico's mock can't send as API Gateway
//! would (VTL, `contentHandling`) is named with its pointer.

use serde_json::{json, Map, Value};

use super::extensions::static_response;
use super::import::{esc, Ctx};

pub(super) fn convert(ctx: &mut Ctx, p: &str, integ: &Value, out: &mut Map<String, Value>) {
    if let Some(b) = integ.get("passthroughBehavior").and_then(Value::as_str) {
        if b.eq_ignore_ascii_case("never") || b.eq_ignore_ascii_case("when_no_templates") {
            ctx.warn(
                format!("{p}/passthroughBehavior"),
                "not applied: a request whose content type has no template is answered as the others, not refused with 415",
            );
        }
    }
    if integ.get("contentHandling").is_some() {
        ctx.warn(
            format!("{p}/contentHandling"),
            "not applied: the mock's body is sent as written",
        );
    }
    let status = request_status(ctx, p, integ);
    let Some((key, chosen)) = select(ctx, p, integ, status) else {
        // A known status that no response (and no default) takes: API Gateway's
        // integration response mapping fails, and it answers as for any integration
        // failure (this was a 200 with no body, as if the call had succeeded).
        let responses = integ.get("responses").and_then(Value::as_object);
        if status.is_some() && responses.is_some_and(|r| !r.is_empty()) {
            out.insert("status".into(), json!(500));
            out.insert(
                "headers".into(),
                json!({ "content-type": "application/json" }),
            );
            out.insert(
                "body".into(),
                json!(r#"{"message":"Internal server error"}"#),
            );
        }
        return;
    };
    let rp = format!("{p}/responses/{}", esc(key));
    if chosen.get("contentHandling").is_some() {
        ctx.warn(
            format!("{rp}/contentHandling"),
            "not applied: the mock's body is sent as written",
        );
    }
    // `stageVariables.NAME` (REST's spelling of a mapped header value) is the stage's
    // variable, as in gateway responses.
    let mut chosen = chosen.clone();
    if let Some(Value::Object(params)) = chosen.get_mut("responseParameters") {
        for v in params.values_mut() {
            let name = v.as_str().and_then(|s| s.strip_prefix("stageVariables."));
            if let Some(name) = name.filter(|n| is_var_name(n)) {
                *v = json!(format!("'${{stageVariables.{name}}}'"));
            }
        }
    }
    let mut headers = static_response(ctx, &rp, &chosen, "method.response.header.", out);
    for v in headers.values_mut() {
        if let Some(s) = v.as_str() {
            *v = json!(brace_stage_variables(s));
        }
    }
    if let Some(Value::Object(t)) = chosen.get("responseTemplates") {
        let body = t
            .get_key_value("application/json")
            .or_else(|| t.iter().next());
        if let Some((media, b)) = body.and_then(|(k, v)| Some((k, v.as_str()?))) {
            let status = out.get("status").and_then(Value::as_u64);
            if matches!(status, Some(204 | 304)) && !b.is_empty() {
                ctx.warn(
                    format!("{rp}/responseTemplates"),
                    "a 204 or 304 answer has no body; template skipped",
                );
            } else {
                // API Gateway answers with the template's media type; without it a
                // client (or a browser sniffing) guesses what the body is.
                let named = headers
                    .keys()
                    .any(|h| h.eq_ignore_ascii_case("content-type"));
                if !named && media.contains('/') {
                    headers.insert("content-type".into(), json!(media));
                }
                if has_vtl(b) {
                    ctx.warn(
                        format!("{rp}/responseTemplates/{}", esc(media)),
                        "VTL is not evaluated: the template is sent as written (only ${stageVariables.NAME} is replaced)",
                    );
                }
                out.insert("body".into(), json!(brace_stage_variables(b)));
            }
        }
    }
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Object(headers));
    }
}

/// The status the request template gives: the `statusCode` of a static JSON object
/// (`application/json`'s template, else the first). None (the default response) without
/// a template, with a warning when the template computes it or has none.
fn request_status(ctx: &mut Ctx, p: &str, integ: &Value) -> Option<u64> {
    let Some(Value::Object(t)) = integ.get("requestTemplates") else {
        return None;
    };
    let (media, template) = t
        .get_key_value("application/json")
        .or_else(|| t.iter().next())?;
    let tp = format!("{p}/requestTemplates/{}", esc(media));
    let template = template.as_str().unwrap_or_default();
    let parsed = serde_json::from_str::<Value>(template).ok();
    if let Some(status) = parsed.as_ref().and_then(|v| v.get("statusCode")?.as_u64()) {
        return Some(status);
    }
    if has_vtl(template) {
        ctx.warn(
            tp,
            "VTL is not evaluated: the status it computes is not known, so the default response is used",
        );
    } else {
        ctx.warn(tp, "no numeric statusCode; the default response is used");
    }
    None
}

/// The integration response for `status`: the first whose selection pattern matches the
/// whole status, else `default`.
fn select<'i>(
    ctx: &mut Ctx,
    p: &str,
    integ: &'i Value,
    status: Option<u64>,
) -> Option<(&'i str, &'i Value)> {
    let Some(Value::Object(responses)) = integ.get("responses") else {
        return None;
    };
    if let Some(status) = status {
        let status = status.to_string();
        for (pattern, r) in responses.iter().filter(|(k, _)| *k != "default") {
            match regex::Regex::new(&format!("^(?:{pattern})$")) {
                Ok(re) if re.is_match(&status) => return Some((pattern.as_str(), r)),
                Ok(_) => {}
                Err(_) => ctx.warn(
                    format!("{p}/responses/{}", esc(pattern)),
                    "not a regular expression Portico reads; response skipped",
                ),
            }
        }
    }
    let chosen = responses
        .get_key_value("default")
        .map(|(k, r)| (k.as_str(), r));
    if chosen.is_none() && !responses.is_empty() {
        let why = match status {
            Some(s) => format!("no response matches status {s} and there is no default: the mock answers 500 Internal server error, as API Gateway"),
            None => "no status is known and there is no default response: the mock answers 200 with no body".to_string(),
        };
        ctx.warn(format!("{p}/responses"), why);
    }
    chosen
}

fn is_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `$stageVariables.NAME` → `${stageVariables.NAME}`: a mock's body and headers take only
/// the braced form (check refuses the other, which would be sent as written).
pub(super) fn brace_stage_variables(s: &str) -> String {
    const OPEN: &str = "$stageVariables.";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let len = after
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        out.push_str(&rest[..at]);
        if len == 0 {
            out.push_str(OPEN);
        } else {
            out.push_str(&format!("${{stageVariables.{}}}", &after[..len]));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// VTL directives (the ones API Gateway's templates use, and comments).
const DIRECTIVES: [&str; 13] = [
    "set", "if", "elseif", "else", "end", "foreach", "break", "stop", "macro", "include", "parse",
    "define", "evaluate",
];

/// Whether a template holds VTL other than stage variables: a reference (`$context.x`,
/// `$input.json('$')`, `$util`, `${x}`, `$!x`) or a directive (`#if`, `#{set}`, `##`, `#*`).
/// A `$` before a digit or a space, and `#` in `#fff`, are text to VTL too.
pub(super) fn has_vtl(s: &str) -> bool {
    for (i, c) in s.bytes().enumerate() {
        // `$` and `#` are one byte: what follows them starts a character.
        let rest = || &s[i + 1..];
        match c {
            b'$' => {
                let rest = rest();
                if rest.starts_with("stageVariables.") || rest.starts_with("{stageVariables.") {
                    continue;
                }
                if rest
                    .bytes()
                    .next()
                    .is_some_and(|n| n.is_ascii_alphabetic() || n == b'{' || n == b'!')
                {
                    return true;
                }
            }
            b'#' => {
                let rest = rest();
                if rest.starts_with('#') || rest.starts_with('*') {
                    return true;
                }
                let word = rest.strip_prefix('{').unwrap_or(rest);
                let len = word
                    .find(|c: char| !c.is_ascii_alphabetic())
                    .unwrap_or(word.len());
                if DIRECTIVES.contains(&&word[..len]) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}
