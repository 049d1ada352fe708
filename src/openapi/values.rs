//! Reading an extension's settings by their type, with a warning for any other: an
//! importer that skips a wrongly typed value silently writes an API that differs from
//! the document (`disableExecuteApiEndpoint: "true"` left the default endpoint open) and
//! says nothing, where `--fail-on-warnings` exists so that nothing is imported unsaid.

use serde_json::Value;

use super::import::Ctx;

/// A boolean setting. YAML 1.1's spellings of one (`"true"`, `yes`, `on`, which YAML 1.2
/// reads as strings) count as it, anything else as false, each with a warning: read
/// silently as false, a validator or a required parameter written `"true"` checked
/// nothing.
pub(super) fn flag(ctx: &mut Ctx, p: &str, v: Option<&Value>) -> bool {
    let s = match v {
        None | Some(Value::Null) => return false,
        Some(Value::Bool(b)) => return *b,
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(other) => other.to_string(),
    };
    let read = matches!(s.as_str(), "true" | "yes" | "y" | "on");
    ctx.warn(
        p,
        format!(
            "expected true or false, got {v}; read as {read}",
            v = v.unwrap_or_default()
        ),
    );
    read
}

/// A setting of type `T`, read by `as_t`; one of another type is warned about at `p`
/// (`expected`: what it should be) and read as absent.
pub(super) fn typed<'a, T>(
    ctx: &mut Ctx,
    p: &str,
    v: Option<&'a Value>,
    expected: &str,
    as_t: impl FnOnce(&'a Value) -> Option<T>,
) -> Option<T> {
    let v = v.filter(|v| !v.is_null())?;
    let t = as_t(v);
    if t.is_none() {
        ctx.warn(p, format!("expected {expected}, got {v}; ignored"));
    }
    t
}
