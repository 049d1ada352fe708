//! YAML text → `Config`, collecting every decode error with its key path
//! (docs/ARCHITECTURE.md, Config file). Cross-references (does this upstream exist?) are
//! `validate.rs`'s job; this file only checks that each value has the right shape.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;

use super::decode::{Decoder, EnvLookup, Fields};
use super::model::*;
use super::yaml::Written;
use super::{ConfigError, ConfigErrors, KeyPath};

mod cluster;
mod routes;
mod server;
mod upstreams;
pub(super) use routes::decode_payload_format;
use routes::route;
use server::{admin, compression, server, throttle};
use upstreams::upstream;

const DEFAULT_STATE_DIR: &str = "./state";
const DEFAULT_ADMIN_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 9901);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// How often upstream host names are looked up again (the system resolver gives no TTL).
pub const DEFAULT_RESOLVE_EVERY: Duration = Duration::from_secs(30);
const DEFAULT_ROUTE_CACHE_TTL: Duration = Duration::from_secs(300);

/// Reads and decodes a config file. An unreadable file is one error with an empty path.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = super::read_text(path).map_err(|e| {
        ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    load_str(&text)
}

/// Decodes config text, reading `${env:NAME}` from the process environment.
pub fn load_str(text: &str) -> Result<Config, ConfigErrors> {
    load_str_with_env(text, &|name| std::env::var(name).ok())
}

/// Decodes config text with `env` answering `${env:NAME}`; lets tests (which run in
/// parallel threads) supply variables without touching the shared process environment.
pub fn load_str_with_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let (root, written, mut errors) = parse_yaml(text)?;
    let (mut cfg, d) = decode_partial(&root, &written, env);
    errors.extend(d.errors);
    keep_as_written(&mut cfg, d.read_env, &root, &written, env);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// What [`load_partial`] made of a file.
pub struct Partial {
    /// The config with every bad value left at its default.
    pub cfg: Config,
    pub errors: Vec<ConfigError>,
    /// The paths the errors lie at: an error's path, or for an error about one key of a
    /// map, that key's (see `Decoder::about_key`).
    pub lies_at: Vec<String>,
    /// Lists that lost items that failed to decode, shortest path first: each one's
    /// path and where its kept items stand in the file (see `Decoder::renumbered`).
    pub renumbered: Vec<(String, Vec<usize>)>,
}

/// Decodes what can be decoded, every error reported. Err only when the text is not
/// YAML at all. Relative `openapi` file paths are read from `base` (the config file's
/// directory).
pub fn load_partial(text: &str, base: &std::path::Path) -> Result<Partial, ConfigErrors> {
    let (mut root, written, mut errors) = parse_yaml(text)?;
    // Keys written twice: the first value is kept and decoded like any other, so its
    // path explains none of the errors found in it (they are not lies_at).
    let twice = errors.len();
    // `apis.NAME.openapi` files become part of the tree, so they decode like the rest.
    let (more, warnings) = crate::openapi::merge_files(&mut root, base);
    errors.extend(more);
    let before = errors.len();
    let env = |name: &str| std::env::var(name).ok();
    let (mut cfg, d) = decode_partial(&root, &written, &env);
    errors.extend(d.errors);
    keep_as_written(&mut cfg, d.read_env, &root, &written, &env);
    let about: Vec<usize> = d.about_key.iter().map(|(i, _)| before + i).collect();
    // Errors that explain no other: keys written twice, unknown keys.
    let inert: std::collections::HashSet<usize> = (d.twice.iter().chain(&d.unknown))
        .map(|i| before + i)
        .collect();
    let about: std::collections::HashSet<usize> = about.into_iter().collect();
    let mut lies_at: Vec<String> = (errors.iter().enumerate())
        .filter(|(i, _)| *i >= twice && !about.contains(i) && !inert.contains(i))
        .map(|(_, e)| e.path.clone())
        .collect();
    lies_at.extend(d.about_key.into_iter().map(|(_, key_path)| key_path));
    lies_at.extend(d.stand_ins);
    // A value refused for its tag (a parse error, unlike a key written twice) did not
    // decode: what follows from it is not reported either.
    lies_at.extend(written.tag_refused.iter().cloned());
    cfg.warnings.extend(warnings);
    let mut renumbered = d.renumbered;
    // An outer list's numbering first: an inner list's path holds the outer item's
    // position in the file.
    renumbered.sort_by_key(|(path, _)| path.len());
    Ok(Partial {
        cfg,
        errors,
        lies_at,
        renumbered,
    })
}

/// The document, merge keys applied, the text its numbers and booleans were written as,
/// and the problems that did not stop the parse (`yaml.rs`: keys written twice). An
/// empty one (or `null`) is an error, not a config of defaults: a file caught
/// half-written by a reload or the watcher would otherwise drop every API and move the
/// listener to the default address.
fn parse_yaml(text: &str) -> Result<(Value, Written, Vec<ConfigError>), ConfigErrors> {
    // A byte-order mark, as Windows editors save UTF-8, is allowed in YAML: it was read
    // as the start of a second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = super::yaml::parse(text).map_err(|e| {
        let hint = tab_hint(text, e.location().map(|l| l.line()));
        let e = super::yaml::error_text(&e);
        ConfigError::new("", format!("not valid YAML: {e}{hint}"))
    })?;
    let mut root = parsed.root;
    if root.is_null() {
        return Err(ConfigError::new("", "the config is empty").into());
    }
    // The written texts pair keys by position, which a key written twice (dropped by
    // the parse, and an error) would shift: then numbers are rendered from their values.
    // Other errors keep them: a bad value elsewhere (`!!float hi`) turned a key written
    // `!!float 200` from "200" into "200.0", an error that was not there without it.
    let mut shadow = match parsed.keys_dropped {
        false => super::yaml::shadow(text, &root),
        true => Value::Null,
    };
    // YAML anchors with `<<:` merge keys are a common way to share integration blocks.
    root.apply_merge()
        .map_err(|e| ConfigError::new("", format!("bad YAML merge key: {e}")))?;
    // Of the same shape, so it merges alike (and cannot fail where the tree did not).
    let _ = shadow.apply_merge();
    let mut written = Written::new(&root, &shadow);
    written.tag_refused = parsed.tag_refused;
    Ok((root, written, parsed.errors))
}

/// The parser's message for a tab in indentation ("found character that cannot start
/// any token") does not say what to do; editors insert tabs silently.
fn tab_hint(text: &str, line: Option<usize>) -> &'static str {
    let indented_by_tab = line
        .and_then(|n| text.lines().nth(n.saturating_sub(1)))
        .is_some_and(|l| l.trim_start_matches(' ').starts_with('\t'));
    if indented_by_tab {
        " (YAML indentation must be spaces; this line starts with a tab)"
    } else {
        ""
    }
}

/// The config, and the decoder with what it found.
fn decode_partial<'a>(
    root: &Value,
    written: &'a Written,
    env: EnvLookup<'a>,
) -> (Config, Decoder<'a>) {
    let mut d = Decoder::new(env, written);
    let cfg = config(&mut d, root);
    (cfg, d)
}

/// Sets `cfg.as_written` when a text value read the environment. Its decode errors are
/// not reported: they are the first decode's, or a value valid only once expanded.
fn keep_as_written(
    cfg: &mut Config,
    read_env: bool,
    root: &Value,
    written: &Written,
    env: EnvLookup,
) {
    if read_env {
        let mut d = Decoder::as_written(env, written);
        cfg.as_written = Some(std::sync::Arc::new(config(&mut d, root)));
    }
}

fn config(d: &mut Decoder, v: &Value) -> Config {
    let root = KeyPath::root();
    let f = d.fields(
        v,
        &root,
        &[
            "server",
            "admin",
            "state_dir",
            "upstreams",
            "apis",
            "domains",
            "usage_plans",
            "api_keys",
            "watch",
            "iam",
            "cluster",
        ],
    );
    let mut cfg = Config {
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        ..Config::default()
    };
    f.set(d, "server", &mut cfg.server, |d, v, p| {
        Some(server(d, v, p))
    });
    cfg.admin = f.opt(d, "admin", admin);
    if f.null("admin") {
        // Read as absent, as `health:` is, but a reader of the file may think it on.
        cfg.warnings.push(root.key("admin").error(
            "no value: no admin listener; write `admin: {}` for one with the defaults, or remove the key",
        ));
    }
    f.set(d, "state_dir", &mut cfg.state_dir, |d, v, p| {
        // Empty, it resolved to the config file's directory, not to the default.
        match d.string(v, p)? {
            s if s.is_empty() => {
                d.error(p, "is empty: give a directory, or remove the key for the default (state beside the config file)");
                None
            }
            s => Some(PathBuf::from(s)),
        }
    });
    cfg.state_dir_set = f.get("state_dir").is_some();
    cfg.upstreams = named(d, &f, "upstreams", upstream);
    cfg.apis = named(d, &f, "apis", api);
    cfg.domains = named(d, &f, "domains", domain);
    cfg.usage_plans = named(d, &f, "usage_plans", usage_plan);
    f.set(d, "api_keys", &mut cfg.api_keys, |d, v, p| {
        Some(d.list_of(v, p, api_key))
    });
    f.set(d, "watch", &mut cfg.watch, |d, v, p| d.bool(v, p));
    cfg.iam = f.opt(d, "iam", super::auth::iam);
    cfg.cluster = f.opt(d, "cluster", cluster::cluster);
    // Keys the decoder found written with no value where that reads as "off".
    cfg.warnings.append(&mut d.warnings);
    cfg
}

/// A map of user-named items decoded by `item`, in file order.
fn named<T>(
    d: &mut Decoder,
    f: &Fields,
    key: &str,
    item: fn(&mut Decoder, &Value, &KeyPath) -> T,
) -> Vec<(String, T)> {
    let Some((v, p)) = f.get(key) else {
        return Vec::new();
    };
    let entries = d.entries(v, &p);
    entries
        .into_iter()
        .map(|(name, v, p)| (name, item(d, v, &p)))
        .collect()
}

const SERVER_KEYS: &[&str] = &[
    "listen",
    "tls_listen",
    "default_domain",
    "redirect_https",
    "workers",
    "driver",
    "limits",
    "access_log",
    "throttle",
    "compression",
];
const LIMITS_KEYS: &[&str] = &[
    "max_header_bytes",
    "max_body_bytes",
    "request_buffer_bytes",
    "max_buffered_bodies_bytes",
    "header_timeout",
    "idle_timeout",
    "drain_timeout",
    "send_timeout",
];
const CORS_KEYS: &[&str] = &[
    "allow_origins",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "allow_credentials",
    "max_age",
];
fn api(d: &mut Decoder, v: &Value, p: &KeyPath) -> Api {
    let keys = [
        "protocol",
        "disable_default_endpoint",
        "throttle",
        "cors",
        "compression",
        "stages",
        "routes",
        "route_selection_expression",
        "limits",
        "binary_frames",
        "authorizers",
        "api_key_source",
    ];
    let f = d.fields(v, p, &[&keys[..], super::definitions::API_KEYS].concat());
    let protocol = f.opt(d, "protocol", |d, v, p| {
        d.choice(
            v,
            p,
            &[("http", Protocol::Http), ("websocket", Protocol::Websocket)],
        )
    });
    // A protocol that did not decode is reported: what the API was meant to be is unknown.
    let http = protocol == Some(Protocol::Http) || f.get("protocol").is_none();
    Api {
        websocket: websocket_keys(d, &f, http),
        defs: super::definitions::api_defs(d, &f),
        authorizers: named(d, &f, "authorizers", super::auth::authorizer)
            .into_iter()
            .filter_map(|(k, a)| Some((k, a?)))
            .collect(),
        api_key_source: f
            .opt(d, "api_key_source", super::auth::api_key_source)
            .unwrap_or_default(),
        disable_default_endpoint: f
            .opt(d, "disable_default_endpoint", Decoder::bool)
            .unwrap_or(false),
        protocol: protocol.unwrap_or(Protocol::Http),
        throttle: f.opt(d, "throttle", throttle).flatten(),
        cors: f.opt(d, "cors", |d, v, p| Some(cors(d, v, p))),
        compression: f.opt(d, "compression", compression),
        stages: named(d, &f, "stages", stage),
        // A route whose integration failed is kept with a stand-in (`routes::route`).
        routes: named(d, &f, "routes", route)
            .into_iter()
            .filter_map(|(k, r)| Some((k, r?)))
            .collect(),
    }
}

/// A WebSocket API's own keys. On an HTTP API (`http`) each is an error at its key, as
/// a route's `route_response` is: nothing reads them there, so `limits` looked like a
/// request limit and `binary_frames` like a body setting while neither did anything.
fn websocket_keys(d: &mut Decoder, f: &Fields, http: bool) -> WebsocketApi {
    let mut websocket = WebsocketApi::default();
    if http {
        for (key, instead) in [
            ("route_selection_expression", ""),
            ("binary_frames", ""),
            ("limits", "; an HTTP API's request limits are server.limits"),
        ] {
            if let Some((_, p)) = f.get(key) {
                d.error(
                    &p,
                    format!("only for protocol: websocket, and this API is http, which never reads it{instead}"),
                );
            }
        }
        return websocket;
    }
    f.set(
        d,
        "route_selection_expression",
        &mut websocket.route_selection_expression,
        Decoder::string,
    );
    f.set(d, "limits", &mut websocket.limits, websocket_limits);
    f.set(
        d,
        "binary_frames",
        &mut websocket.binary_frames,
        |d, v, p| {
            d.choice(
                v,
                p,
                &[
                    ("reject", BinaryFrames::Reject),
                    ("base64", BinaryFrames::Base64),
                ],
            )
        },
    );
    websocket
}

/// `limits: { frame: 32KiB, message: 128KiB, idle: 10m, max_duration: 2h }`.
fn websocket_limits(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<WebsocketLimits> {
    let f = d.fields(v, p, &["frame", "message", "idle", "max_duration"]);
    let mut l = WebsocketLimits::default();
    f.set(d, "frame", &mut l.frame, Decoder::size);
    f.set(d, "message", &mut l.message, Decoder::size);
    f.set(d, "idle", &mut l.idle, Decoder::duration);
    f.set(d, "max_duration", &mut l.max_duration, Decoder::duration);
    Some(l)
}

fn cors(d: &mut Decoder, v: &Value, p: &KeyPath) -> Cors {
    let f = d.fields(v, p, CORS_KEYS);
    let mut c = Cors::default();
    f.set(d, "allow_origins", &mut c.allow_origins, Decoder::strings);
    f.set(d, "allow_methods", &mut c.allow_methods, Decoder::strings);
    f.set(d, "allow_headers", &mut c.allow_headers, Decoder::strings);
    f.set(d, "expose_headers", &mut c.expose_headers, Decoder::strings);
    f.set(
        d,
        "allow_credentials",
        &mut c.allow_credentials,
        Decoder::bool,
    );
    c.max_age = f.opt(d, "max_age", Decoder::duration);
    c
}

fn stage(d: &mut Decoder, v: &Value, p: &KeyPath) -> Stage {
    let f = d.fields(v, p, &["variables", "throttle", "canary", "cache"]);
    Stage {
        variables: f.opt(d, "variables", Decoder::text_map).unwrap_or_default(),
        throttle: f.opt(d, "throttle", throttle).flatten(),
        canary: f.opt(d, "canary", |d, v, p| {
            let f = d.fields(v, p, &["percent", "variables"]);
            Some(Canary {
                percent: f.opt(d, "percent", Decoder::f64).unwrap_or(0.0),
                variables: f.opt(d, "variables", Decoder::text_map).unwrap_or_default(),
            })
        }),
        cache: f.opt(d, "cache", |d, v, p| {
            let f = d.fields(v, p, &["capacity"]);
            Some(StageCache {
                capacity: f.need(d, "capacity", Decoder::size)?,
            })
        }),
    }
}

fn domain(d: &mut Decoder, v: &Value, p: &KeyPath) -> Domain {
    let f = d.fields(v, p, &["cert", "key", "client_ca", "mappings"]);
    let file = |d: &mut Decoder, v: &Value, p: &KeyPath| d.string(v, p).map(PathBuf::from);
    Domain {
        cert: f.opt(d, "cert", file),
        key: f.opt(d, "key", file),
        client_ca: f.opt(d, "client_ca", file),
        mappings: f.opt(d, "mappings", Decoder::text_map).unwrap_or_default(),
    }
}

fn usage_plan(d: &mut Decoder, v: &Value, p: &KeyPath) -> UsagePlan {
    let f = d.fields(v, p, &["stages", "throttle", "quota"]);
    UsagePlan {
        stages: f
            .opt(d, "stages", |d, v, p| {
                // Not a list: the type error alone (it is not an empty list).
                if !matches!(v, Value::Sequence(_) | Value::Null) {
                    return d.strings(v, p);
                }
                let stages = d.strings(v, p)?;
                if stages.is_empty() {
                    // Read as "no stage", it would be AWS's plan with no API stages;
                    // read as absent, every stage. Neither silently.
                    d.error(
                        p,
                        "an empty list: leave stages out for every stage, or list some",
                    );
                }
                Some(stages)
            })
            .unwrap_or_default(),
        throttle: f.opt(d, "throttle", throttle).flatten(),
        quota: f.opt(d, "quota", |d, v, p| {
            let f = d.fields(v, p, &["limit", "period", "offset"]);
            let limit = f.need(d, "limit", Decoder::u64);
            let period = f.need(d, "period", |d, v, p| {
                use Period::*;
                // AWS's spellings too (boto3 and CloudFormation write them), so a plan
                // pasted from there loads.
                let choices = [("day", Day), ("week", Week), ("month", Month)];
                let aws = [("DAY", Day), ("WEEK", Week), ("MONTH", Month)];
                d.choice(v, p, &[choices, aws].concat())
            });
            let mut offset = Some(0);
            // Checked here, not in validation, so a bad limit does not hide it.
            f.set(d, "offset", &mut offset, |d, v, p| {
                let got = d.u64(v, p);
                match (got, period.map(Period::max_offset)) {
                    (Some(got), Some(most)) if got > most => {
                        d.error(p, format!("at most {most} for this period, got {got}"));
                        Some(None)
                    }
                    _ => Some(got),
                }
            });
            Some(Quota {
                limit: limit?,
                period: period?,
                offset: offset?,
            })
        }),
    }
}

fn api_key(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<ApiKey> {
    let f = d.fields(v, p, &["name", "value", "plan"]);
    let name = f.need(d, "name", Decoder::text);
    let value = f.need(d, "value", Decoder::text);
    let plan = f.opt(d, "plan", Decoder::string);
    Some(ApiKey {
        name: name?,
        value: value?,
        plan,
    })
}
