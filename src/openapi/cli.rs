//! `portico openapi import|export`: the command-line side of this module, kept here so
//! that `main.rs` only names the subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::export::{self, Extensions};
use super::import::BasePath;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write the Portico config (YAML, stdout) equivalent to an OpenAPI 3 / Swagger 2 file.
    Import {
        file: PathBuf,
        /// The API's name in the config [default: from info.title]
        #[arg(long)]
        api: Option<String>,
        /// What to do with the document's base path: ignore, prepend or split
        #[arg(long, default_value = "ignore")]
        basepath: String,
        /// Exit 1 without output when there is any warning
        #[arg(long)]
        fail_on_warnings: bool,
    },
    /// Print an API as served at a stage, as OpenAPI 3.0 (JSON, stdout).
    Export {
        #[arg(long)]
        api: String,
        #[arg(long)]
        stage: String,
        /// integrations, validators, authorizers, apigateway (comma-separated; "" for none)
        #[arg(long, default_value = "apigateway")]
        extensions: String,
    },
}

/// Runs the subcommand; `default_config` is the config file (`-c`, or the default).
pub fn run(cmd: Command, default_config: &Path) -> ExitCode {
    match cmd {
        Command::Import {
            file,
            api,
            basepath,
            fail_on_warnings,
        } => import(&file, api, &basepath, fail_on_warnings),
        Command::Export {
            api,
            stage,
            extensions,
        } => {
            let path = default_config.to_path_buf();
            let cfg = match crate::config::load_and_validate(&path) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    crate::say!("{}: {} error(s)\n{errors}", path.display(), errors.0.len());
                    return ExitCode::from(1);
                }
            };
            let doc = Extensions::parse(&extensions)
                .and_then(|ext| export::export(&cfg, &api, &stage, ext));
            match doc {
                Ok(doc) => crate::stdout::write(&format!("{doc:#}\n")),
                Err(e) => {
                    crate::say!("{e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn import(file: &Path, api: Option<String>, basepath: &str, strict: bool) -> ExitCode {
    let mode = match basepath {
        "ignore" => BasePath::Ignore,
        "prepend" => BasePath::Prepend,
        "split" => BasePath::Split,
        other => {
            crate::say!("--basepath: expected ignore, prepend or split, got {other:?}");
            return ExitCode::from(2);
        }
    };
    if let Some(name) = api
        .as_deref()
        .filter(|n| !crate::config::validate::api_name_ok(n))
    {
        // What it wrote would not pass `check`.
        let rule = crate::config::validate::API_NAME_RULE;
        crate::say!("--api: {rule}, got {name:?}");
        return ExitCode::from(2);
    }
    // The command that writes this again, options included.
    let mut command = format!("portico openapi import {}", file.display());
    if let Some(name) = &api {
        command.push_str(&format!(" --api {name}"));
    }
    if basepath != "ignore" {
        command.push_str(&format!(" --basepath {basepath}"));
    }
    let imported = match super::import_file(file, mode, &[]) {
        Ok(i) => i,
        Err(e) => {
            crate::say!("{e}");
            return ExitCode::from(1);
        }
    };
    for w in &imported.warnings {
        crate::say!("warning: {}{w}", file.display());
    }
    if strict && !imported.warnings.is_empty() {
        crate::say!(
            "{}: {} warning(s) and --fail-on-warnings: nothing written",
            file.display(),
            imported.warnings.len()
        );
        return ExitCode::from(1);
    }
    let name = api.unwrap_or_else(|| {
        let text = crate::config::read_text(file).unwrap_or_default();
        let title = super::import::parse(&text)
            .ok()
            .and_then(|d| d.pointer("/info/title")?.as_str().map(String::from))
            .unwrap_or_default();
        let slug: String = title
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let slug = slug.trim_matches('-').to_string();
        if slug.is_empty() {
            "api".into()
        } else {
            slug
        }
    });
    let mut api_tree = Map::new();
    let stage = imported.stage.clone().unwrap_or_else(|| "$default".into());
    let stage_tree = if imported.stage_variables.is_empty() {
        json!({})
    } else {
        json!({ "variables": imported.stage_variables })
    };
    api_tree.insert("stages".into(), json!({ stage: stage_tree }));
    api_tree.extend(imported.api);
    let mut root = Map::new();
    if !imported.upstreams.is_empty() {
        root.insert("upstreams".into(), Value::Object(imported.upstreams));
    }
    root.insert("apis".into(), json!({ name: api_tree }));
    match serde_yaml_ng::to_string(&Value::Object(root)) {
        Ok(yaml) => {
            crate::stdout::write(&format!("# Written by `{command}`; edit freely.\n{yaml}"))
        }
        Err(e) => {
            crate::say!("cannot write YAML: {e}");
            ExitCode::from(1)
        }
    }
}
