//! `x-amazon-apigateway-request-validators` and the document's default validator.

use serde_json::{Map, Value};

use super::import::{esc, Ctx};
use super::values::{flag, typed};

/// Named validators → Portico's (`all`, `params-only`, `body-only`, or none), and the
/// document's default.
pub(super) struct Validators {
    pub(super) named: Vec<(String, Option<&'static str>)>,
    pub(super) default: Option<String>,
}

pub(super) fn validators(ctx: &mut Ctx, root: &Map<String, Value>) -> Validators {
    const AT: &str = "/x-amazon-apigateway-request-validators";
    let mut named = Vec::new();
    let all = typed(ctx, AT, root.get(&AT[1..]), "an object", Value::as_object);
    if let Some(m) = all {
        for (name, v) in m {
            let p = format!("{AT}/{}", esc(name));
            if !v.is_object() {
                // Left out, so that a method naming it is skipped as for a validator
                // not defined, rather than served with nothing checked.
                ctx.warn(
                    p,
                    format!("expected an object (validateRequestBody, validateRequestParameters), got {v}; this validator is not defined"),
                );
                continue;
            }
            for k in v.as_object().into_iter().flat_map(|v| v.keys()) {
                if !matches!(
                    k.as_str(),
                    "validateRequestBody" | "validateRequestParameters"
                ) {
                    ctx.warn(
                        format!("{p}/{}", esc(k)),
                        "not a validator setting (validateRequestBody, validateRequestParameters); ignored",
                    );
                }
            }
            let mut setting = |k: &str| flag(ctx, &format!("{p}/{k}"), v.get(k));
            let kind = match (
                setting("validateRequestBody"),
                setting("validateRequestParameters"),
            ) {
                (true, true) => Some("all"),
                (false, true) => Some("params-only"),
                (true, false) => Some("body-only"),
                (false, false) => None,
            };
            named.push((name.clone(), kind));
        }
    }
    let default = typed(
        ctx,
        "/x-amazon-apigateway-request-validator",
        root.get("x-amazon-apigateway-request-validator"),
        "a validator's name",
        Value::as_str,
    )
    .map(String::from);
    Validators { named, default }
}
