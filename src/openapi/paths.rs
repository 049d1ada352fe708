//! Where an imported document's routes go: its base path (Swagger 2.0's `basePath`, or
//! OpenAPI 3's first server, its `basePath` variable first) by `--base-path` mode, and
//! each path joined to it as a route path Portico's router takes.

use serde_json::{Map, Value};

use super::import::{BasePath, Ctx};

/// The base path to put before every path, by mode ("" for none).
pub(super) fn base_path(ctx: &mut Ctx, root: &Map<String, Value>, mode: BasePath) -> String {
    let raw = if ctx.v2 {
        root.get("basePath")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    } else {
        let server = root
            .get("servers")
            .and_then(Value::as_array)
            .and_then(|s| s.first());
        match server {
            None => String::new(),
            Some(s) => {
                let var = s
                    .pointer("/variables/basePath/default")
                    .and_then(Value::as_str);
                match var {
                    Some(v) => v.to_string(),
                    None => {
                        let url = with_defaults(s);
                        let url = url.as_str();
                        let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
                        match after_scheme.find('/') {
                            Some(i) if url.contains("://") => after_scheme[i..].to_string(),
                            _ if !url.contains("://") => url.to_string(),
                            _ => String::new(),
                        }
                    }
                }
            }
        }
    };
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    match mode {
        BasePath::Ignore => String::new(),
        BasePath::Prepend => segments.iter().map(|s| format!("/{s}")).collect(),
        BasePath::Split => {
            ctx.out.stage = segments.first().map(|s| s.to_string());
            segments[1.min(segments.len())..]
                .iter()
                .map(|s| format!("/{s}"))
                .collect()
        }
    }
}

/// A server's `url` with each `{variable}` its `default` (OpenAPI 3 §4.8.5); kept, a
/// `{stage}` became a path parameter of every route, or a stage no name can be.
fn with_defaults(server: &Value) -> String {
    let mut url = server
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(Value::Object(vars)) = server.get("variables") {
        for (name, v) in vars {
            if let Some(default) = v.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    url
}

/// The route path: base + path, every `{…}` a whole segment as Portico's router needs.
pub(super) fn route_path(base: &str, path: &str) -> Result<String, String> {
    let full = format!("{base}{path}");
    let full = if full.len() > 1 {
        full.trim_end_matches('/').to_string()
    } else {
        full
    };
    if !full.starts_with('/') {
        return Err(format!("path {path:?} does not start with /"));
    }
    for seg in full.split('/') {
        let braces = seg.matches('{').count() + seg.matches('}').count();
        if braces > 0 && !(seg.starts_with('{') && seg.ends_with('}') && braces == 2) {
            return Err(format!(
                "segment {seg:?}: a path parameter must be a whole segment; path skipped"
            ));
        }
    }
    // What the router refuses (a space, a parameter named twice, a greedy one before the
    // end, `//`) is skipped here too: written out, it made a config check refuses.
    if let Err(e) = crate::router::key::parse_route_key(&format!("GET {full}")) {
        return Err(format!("{e}; path skipped"));
    }
    Ok(full)
}
