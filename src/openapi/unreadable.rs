//! Parameters and request bodies an operation declares in a shape the import can't read
//! (a `parameters` map instead of a list, a parameter without `name` or `in`, an `in`
//! OpenAPI has no such place as, a `requestBody` or `content` that is not an object, a
//! `$ref` to nothing). Each is said at its pointer; under a validator that would check
//! it, the method is skipped rather than served with it unchecked (the rule for a body
//! schema that is not a model), since a route that drops a required header or a body
//! model without a word serves what the document meant to refuse.

use serde_json::Value;

use super::import::Ctx;

/// What the import could not read, and whether a body validator or a parameter
/// validator would have checked it.
pub(super) struct Unreadable {
    body: bool,
    at: String,
    what: String,
}

impl Unreadable {
    pub(super) fn param(at: impl Into<String>, what: impl Into<String>) -> Unreadable {
        let (at, what) = (at.into(), what.into());
        Unreadable {
            body: false,
            at,
            what,
        }
    }

    pub(super) fn body(at: impl Into<String>, what: impl Into<String>) -> Unreadable {
        let (at, what) = (at.into(), what.into());
        Unreadable {
            body: true,
            at,
            what,
        }
    }
}

/// `parameters` written as anything but a list.
pub(super) fn not_a_list(v: Option<&Value>, at: String) -> Option<Unreadable> {
    let v = v.filter(|v| !v.is_null() && !v.is_array())?;
    Some(Unreadable::param(
        at,
        format!("expected a list of parameters, got {}", what_is(v)),
    ))
}

/// A resolved `requestBody`: its `content` map, or why there is none to read.
pub(super) fn content<'v>(
    body: &'v Value,
    at: &str,
) -> Result<&'v serde_json::Map<String, Value>, Unreadable> {
    let Value::Object(body) = body else {
        let what = format!("expected a request body object, got {}", what_is(body));
        return Err(Unreadable::body(at, what));
    };
    match body.get("content") {
        Some(Value::Object(content)) => Ok(content),
        None => Err(Unreadable::body(at, "a request body without content")),
        Some(v) => Err(Unreadable::body(
            format!("{at}/content"),
            format!("expected a map of media types, got {}", what_is(v)),
        )),
    }
}

/// One media type's `schema`, if it has one it can be: `Err` for a media type object or
/// schema of another shape.
pub(super) fn media_schema<'v>(
    media: &'v Value,
    at: &str,
) -> Result<Option<&'v Value>, Unreadable> {
    let Value::Object(media) = media else {
        let what = format!("expected a media type object, got {}", what_is(media));
        return Err(Unreadable::body(at, what));
    };
    match media.get("schema") {
        None => Ok(None),
        Some(s @ (Value::Object(_) | Value::Bool(_))) => Ok(Some(s)),
        Some(v) => Err(Unreadable::body(
            format!("{at}/schema"),
            format!("expected a schema object, got {}", what_is(v)),
        )),
    }
}

/// Says each at its pointer; true when the method is to be skipped (`params`, `bodies`:
/// whether its validator checks them).
pub(super) fn settle(ctx: &mut Ctx, found: Vec<Unreadable>, params: bool, bodies: bool) -> bool {
    let mut skip = false;
    for u in found {
        let checked = if u.body { bodies } else { params };
        skip |= checked;
        let outcome = match (checked, u.body) {
            (true, _) => "the method is skipped rather than served with it unvalidated",
            (false, true) => "that body is not validated",
            (false, false) => "not imported (not required, not validated)",
        };
        ctx.warn(u.at, format!("{}: {outcome}", u.what));
    }
    skip
}

fn what_is(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}
