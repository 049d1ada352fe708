//! Mappings that read the authorizer's answer (`$context.authorizer.*`) where import
//! cannot keep them: on an operation without an authorizer, or skipped for another
//! reason. What they would have set must not be left to the client.

use serde_json::{json, Map, Value};

use super::import::{esc, Ctx};

/// A header or query parameter that a skipped mapping of the authorizer's values
/// would have set (`target`, `header.x`) is removed instead: skipped alone, a client's
/// own `x-user: admin` reached a backend that trusts the gateway to write it.
pub(super) fn remove_instead(
    ctx: &mut Ctx,
    at: &str,
    params: &mut Map<String, Value>,
    target: &str,
    value: &str,
) {
    let named = target.starts_with("header.") || target.starts_with("querystring.");
    if named && value.contains("context.authorizer") {
        ctx.warn(
            at.to_string(),
            format!("remove:{target} instead, so a client's own value does not stand for the authorizer's"),
        );
        params.insert(format!("remove:{target}"), json!(""));
    }
}

/// A route the operation gives no authorizer (nor IAM) can't map `$context.authorizer.*`
/// (check refuses it: there is nothing to read). Such mappings are left out with a warning,
/// so the imported config still passes check; API Gateway maps them to nothing there.
/// Returns false (the method is skipped) when one of them made the URI path: the
/// backend then got the client's own path and id.
pub(super) fn without_authorizer(ctx: &mut Ctx, p: &str, route: &mut Map<String, Value>) -> bool {
    if route.contains_key("authorizer") || route.contains_key("authorization") {
        return true;
    }
    let reads_authorizer = |v: &Value| {
        v.as_str().is_some_and(|v| {
            crate::pipeline::template::parse(v).is_ok_and(|refs| {
                refs.iter().any(|r| {
                    matches!(r, crate::pipeline::template::Ref::Context(n) if n.starts_with("authorizer."))
                })
            })
        })
    };
    let drop = |ctx: &mut Ctx, at: String, m: &mut Map<String, Value>| {
        m.retain(|k, v| {
            let keep = !reads_authorizer(v);
            if !keep {
                ctx.warn(
                    at.clone(),
                    format!(
                        "{k}: {} reads the authorizer, and the operation has none; skipped",
                        v.as_str().unwrap_or_default()
                    ),
                );
            }
            keep
        });
    };
    if let Some(Value::Object(m)) = route.get_mut("parameters") {
        let at = format!("{p}/requestParameters");
        if m.get("overwrite:path").is_some_and(reads_authorizer) {
            ctx.warn(
                at,
                "the URI path is made from the authorizer's values, and the operation has none; method skipped",
            );
            return false;
        }
        let set_by_authorizer: Vec<(String, String)> = m
            .iter()
            .filter(|(_, v)| reads_authorizer(v))
            .filter_map(|(k, v)| {
                let target = k
                    .strip_prefix("overwrite:")
                    .or_else(|| k.strip_prefix("append:"))?;
                Some((target.to_string(), v.as_str()?.to_string()))
            })
            .collect();
        drop(ctx, at.clone(), m);
        for (target, value) in set_by_authorizer {
            remove_instead(ctx, &at, m, &target, &value);
        }
        if m.is_empty() {
            route.remove("parameters");
        }
    }
    if let Some(Value::Object(by_status)) = route.get_mut("response_parameters") {
        for (status, m) in by_status.iter_mut() {
            if let Value::Object(m) = m {
                drop(ctx, format!("{p}/responseParameters/{}", esc(status)), m);
            }
        }
        by_status.retain(|_, m| m.as_object().is_some_and(|m| !m.is_empty()));
        if by_status.is_empty() {
            route.remove("response_parameters");
        }
    }
    true
}
