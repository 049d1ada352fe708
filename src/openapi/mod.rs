//! API definitions in OpenAPI: import (OpenAPI 3.0/3.1 and Swagger 2.0 with API Gateway's
//! `x-amazon-apigateway-*` extensions) into the config tree of an API, and export of a
//! served API as OpenAPI 3.0 with those extensions.
//!
//! Import produces the same tree a user would write under `apis.NAME`, so that
//! `apis.NAME.openapi: FILE` (merged into the config when it loads, and on every reload)
//! and `portico openapi import FILE` (which writes that tree out as YAML) serve exactly
//! the same API.

mod authorizer_mappings;
pub mod cli;
pub mod export;
mod extensions;
pub mod import;
mod integration;
mod mapping;
mod mock;
mod models;
mod paths;
mod security;
mod unreadable;
mod uri;
mod validators;
mod values;

use std::path::Path;

use crate::config::{ConfigError, KeyPath};
use import::{BasePath, Imported};

/// Reads, parses and imports one file.
pub fn import_file(
    path: &Path,
    mode: BasePath,
    lambdas: &[(String, String)],
) -> Result<Imported, String> {
    let text = crate::config::read_text(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc = import::parse(&text).map_err(|e| format!("{}{e}", path.display()))?;
    import::import(&doc, mode, lambdas).map_err(|e| format!("{}{e}", path.display()))
}

/// Merges every `apis.NAME.openapi` file into the config tree before it is decoded:
/// routes, models, gateway responses and authorizers the config itself writes win; upstreams the
/// file's URIs name are added unless the config defines one of that name. Returns the
/// errors and the warnings, each at `apis.NAME.openapi`.
pub fn merge_files(
    root: &mut serde_yaml_ng::Value,
    base: &Path,
) -> (Vec<ConfigError>, Vec<ConfigError>) {
    use serde_yaml_ng::Value;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut new_upstreams = Vec::new();
    let Some(apis) = root.get_mut("apis").and_then(Value::as_mapping_mut) else {
        return (errors, warnings);
    };
    for (name, api) in apis.iter_mut() {
        let Some(file) = api.get("openapi").and_then(Value::as_str).map(String::from) else {
            continue;
        };
        let name = name.as_str().unwrap_or_default();
        let at = KeyPath::root().key("apis").key(name).key("openapi");
        let lambdas: Vec<(String, String)> = api
            .get("lambda_functions")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect();
        let imported = match import_file(&base.join(&file), BasePath::Ignore, &lambdas) {
            Ok(i) => i,
            Err(e) => {
                errors.push(at.error(e));
                continue;
            }
        };
        for w in &imported.warnings {
            warnings.push(at.error(format!("{file}{w}")));
        }
        let Ok(Value::Mapping(from_file)) = serde_yaml_ng::to_value(&imported.api) else {
            continue;
        };
        let Some(api) = api.as_mapping_mut() else {
            continue;
        };
        for (k, v) in from_file {
            match (api.get_mut(&k), v) {
                (None, v) => {
                    api.insert(k, v);
                }
                (Some(Value::Mapping(mine)), Value::Mapping(theirs))
                    if matches!(
                        k.as_str(),
                        Some("routes" | "models" | "gateway_responses" | "authorizers")
                    ) =>
                {
                    for (ik, iv) in theirs {
                        if !mine.contains_key(&ik) {
                            mine.insert(ik, iv);
                        }
                    }
                }
                _ => {}
            }
        }
        new_upstreams.extend(imported.upstreams);
    }
    if !new_upstreams.is_empty() {
        if let Some(map) = root.as_mapping_mut() {
            let ups = map
                .entry(Value::from("upstreams"))
                .or_insert_with(|| Value::Mapping(Default::default()));
            if let Some(ups) = ups.as_mapping_mut() {
                for (k, v) in new_upstreams {
                    let k = Value::from(k);
                    if !ups.contains_key(&k) {
                        if let Ok(v) = serde_yaml_ng::to_value(v) {
                            ups.insert(k, v);
                        }
                    }
                }
            }
        }
    }
    (errors, warnings)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_checks;
#[cfg(test)]
mod tests_parse;
#[cfg(test)]
mod tests_security;
#[cfg(test)]
mod tests_validated;
