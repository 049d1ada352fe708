//! YAML text → `Config`, collecting every decode error with its key path
//! (docs/ARCHITECTURE.md, Config file). Cross-references (does this upstream exist?) are
//! `validate.rs`'s job; this file only checks that each value has the right shape.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;

use super::decode::{Decoder, EnvLookup, Fields};
use super::model::*;
use super::{ConfigError, ConfigErrors, KeyPath};

mod cluster;
mod server;
mod upstreams;
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
    let (root, mut errors) = parse_yaml(text)?;
    let (cfg, more) = decode_partial(&root, env);
    errors.extend(more);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Decodes what can be decoded: the config with every bad value left at its default,
/// and the errors. Err only when the text is not YAML at all. Relative `openapi` file
/// paths are read from `base` (the config file's directory).
pub fn load_partial(
    text: &str,
    base: &std::path::Path,
) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    let (mut root, mut errors) = parse_yaml(text)?;
    // `apis.NAME.openapi` files become part of the tree, so they decode like the rest.
    let (more, warnings) = crate::openapi::merge_files(&mut root, base);
    errors.extend(more);
    let (mut cfg, more) = decode_partial(&root, &|name| std::env::var(name).ok());
    errors.extend(more);
    cfg.warnings = warnings;
    Ok((cfg, errors))
}

/// The document, merge keys applied, and the problems that did not stop the parse
/// (`yaml.rs`: keys written twice). An empty one (or `null`) is an error, not a config
/// of defaults: a file caught half-written by a reload or the watcher would otherwise
/// drop every API and move the listener to the default address.
fn parse_yaml(text: &str) -> Result<(Value, Vec<ConfigError>), ConfigErrors> {
    let parsed = super::yaml::parse(text).map_err(|e| {
        let hint = tab_hint(text, e.location().map(|l| l.line()));
        let e = super::yaml::error_text(&e);
        ConfigError::new("", format!("not valid YAML: {e}{hint}"))
    })?;
    let mut root = parsed.root;
    if root.is_null() {
        return Err(ConfigError::new("", "the config is empty").into());
    }
    // YAML anchors with `<<:` merge keys are a common way to share integration blocks.
    root.apply_merge()
        .map_err(|e| ConfigError::new("", format!("bad YAML merge key: {e}")))?;
    Ok((root, parsed.errors))
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

fn decode_partial(
    root: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Config, Vec<ConfigError>) {
    let mut d = Decoder::new(env as EnvLookup);
    let cfg = config(&mut d, root);
    (cfg, d.errors)
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
    f.set(d, "state_dir", &mut cfg.state_dir, |d, v, p| {
        d.string(v, p).map(PathBuf::from)
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
const ROUTE_CACHE_KEYS: &[&str] = &["ttl", "key", "client_invalidation", "methods", "statuses"];
const ROUTE_KEYS: &[&str] = &[
    "integration",
    "api_key_required",
    "throttle",
    "cache",
    "parameters",
    "response_parameters",
    "route_response",
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
    let mut websocket = WebsocketApi::default();
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
    Api {
        websocket,
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
        protocol: f
            .opt(d, "protocol", |d, v, p| {
                d.choice(
                    v,
                    p,
                    &[("http", Protocol::Http), ("websocket", Protocol::Websocket)],
                )
            })
            .unwrap_or(Protocol::Http),
        throttle: f.opt(d, "throttle", throttle).flatten(),
        cors: f.opt(d, "cors", |d, v, p| Some(cors(d, v, p))),
        compression: f.opt(d, "compression", compression),
        stages: named(d, &f, "stages", stage),
        // A route that failed to decode is left out; its errors fail the load anyway.
        routes: named(d, &f, "routes", route)
            .into_iter()
            .filter_map(|(k, r)| Some((k, r?)))
            .collect(),
    }
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

fn route(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Route> {
    let f = d.fields(
        v,
        p,
        &[
            ROUTE_KEYS,
            super::definitions::ROUTE_KEYS,
            super::auth::ROUTE_KEYS,
        ]
        .concat(),
    );
    let auth = super::auth::route_auth(d, v, p);
    let integration = f.need(d, "integration", integration);
    // The other fields are decoded even when the integration failed, so their errors are
    // reported in the same run; the placeholder is never returned.
    let route = Route {
        integration: Integration::Mock {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
        },
        validation: super::definitions::route_validation(d, &f),
        api_key_required: f.opt(d, "api_key_required", Decoder::bool).unwrap_or(false),
        route_response: f.opt(d, "route_response", Decoder::bool).unwrap_or(false),
        throttle: f.opt(d, "throttle", throttle).flatten(),
        cache: f.opt(d, "cache", |d, v, p| {
            let f = d.fields(v, p, ROUTE_CACHE_KEYS);
            let mut cache = RouteCache {
                ttl: DEFAULT_ROUTE_CACHE_TTL,
                key: Vec::new(),
                client_invalidation: ClientInvalidation::Ignore,
                methods: Vec::new(),
                statuses: Vec::new(),
            };
            f.set(d, "ttl", &mut cache.ttl, Decoder::duration);
            f.set(d, "key", &mut cache.key, Decoder::strings);
            f.set(
                d,
                "client_invalidation",
                &mut cache.client_invalidation,
                |d, v, p| {
                    use ClientInvalidation::*;
                    d.choice(
                        v,
                        p,
                        &[
                            ("ignore", Ignore),
                            ("allow", Allow),
                            ("require_api_key", RequireApiKey),
                        ],
                    )
                },
            );
            f.set(d, "methods", &mut cache.methods, Decoder::strings);
            f.set(d, "statuses", &mut cache.statuses, |d, v, p| {
                Some(d.list_of(v, p, |d, v, p| {
                    let n = d.u64(v, p)?;
                    u16::try_from(n).ok().or_else(|| {
                        d.error(p, format!("expected an HTTP status, got {n}"));
                        None
                    })
                }))
            });
            Some(cache)
        }),
        parameters: f
            .opt(d, "parameters", Decoder::text_map)
            .unwrap_or_default(),
        response_parameters: f
            .opt(d, "response_parameters", |d, v, p| {
                let entries = d.entries(v, p);
                Some(
                    entries
                        .into_iter()
                        .filter_map(|(status, v, p)| Some((status, d.text_map(v, &p)?)))
                        .collect(),
                )
            })
            .unwrap_or_default(),
        auth,
    };
    Some(Route {
        integration: integration?,
        ..route
    })
}

fn integration(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Integration> {
    if !v.is_mapping() {
        d.fields(v, p, &[]); // reports "expected a map"
        return None;
    }
    // The allowed keys depend on `type`, so read it before checking the others.
    let kind = match v.get("type") {
        Some(t) if !t.is_null() => {
            let kinds = [("http", "http"), ("lambda", "lambda"), ("mock", "mock")];
            d.choice(t, &p.key("type"), &kinds)?
        }
        _ => {
            d.error(p, "missing key \"type\" (http, lambda or mock)");
            return None;
        }
    };
    match kind {
        "http" => {
            let f = d.fields(v, p, &["type", "upstream", "path", "timeout", "upgrade"]);
            let upstream = f.need(d, "upstream", Decoder::string);
            let path = f.opt(d, "path", Decoder::string);
            let mut timeout = DEFAULT_INTEGRATION_TIMEOUT;
            f.set(d, "timeout", &mut timeout, Decoder::duration);
            let upgrade = f.opt(d, "upgrade", upgrade).unwrap_or_default();
            Some(Integration::Http {
                upstream: upstream?,
                path,
                timeout,
                upgrade,
            })
        }
        "lambda" => {
            let f = d.fields(v, p, &["type", "url", "payload_format", "timeout"]);
            let url = f.need(d, "url", Decoder::string);
            let mut payload_format = PayloadFormat::V2;
            f.set(
                d,
                "payload_format",
                &mut payload_format,
                decode_payload_format,
            );
            let mut timeout = DEFAULT_INTEGRATION_TIMEOUT;
            f.set(d, "timeout", &mut timeout, Decoder::duration);
            Some(Integration::Lambda {
                url: url?,
                payload_format,
                timeout,
            })
        }
        _ => {
            let f = d.fields(v, p, &["type", "status", "headers", "body"]);
            let mut status = 200;
            f.set(d, "status", &mut status, |d, v, p| {
                let got = u16::try_from(d.u64(v, p)?).ok();
                if got.is_none() {
                    d.error(p, "expected an HTTP status 100–599");
                }
                got
            });
            Some(Integration::Mock {
                status,
                headers: f.opt(d, "headers", Decoder::text_map).unwrap_or_default(),
                body: f.opt(d, "body", Decoder::string).unwrap_or_default(),
            })
        }
    }
}

/// `upgrade: { protocols: [websocket, foo], idle_timeout: 10m }`.
fn upgrade(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Upgrade> {
    let f = d.fields(v, p, &["protocols", "idle_timeout"]);
    let mut up = Upgrade::default();
    f.set(d, "protocols", &mut up.protocols, |d, v, p| {
        let names = d.strings(v, p)?;
        let bad = names.iter().find(|n| {
            n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        });
        if let Some(bad) = bad {
            d.error(
                p,
                format!("{bad:?} is not a protocol name (a token such as websocket or h2c)"),
            );
            return None;
        }
        Some(names)
    });
    f.set(d, "idle_timeout", &mut up.idle_timeout, Decoder::duration);
    Some(up)
}

/// "1.0" or "2.0"; unquoted `2.0` arrives as a YAML number and means the same.
pub(super) fn decode_payload_format(
    d: &mut Decoder,
    v: &Value,
    p: &KeyPath,
) -> Option<PayloadFormat> {
    let text = match v {
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => "1.0".to_string(),
            Some(2.0) => "2.0".to_string(),
            _ => n.to_string(),
        },
        _ => d.string(v, p)?,
    };
    match text.as_str() {
        "1.0" => Some(PayloadFormat::V1),
        "2.0" => Some(PayloadFormat::V2),
        _ => {
            d.error(p, format!("expected \"1.0\" or \"2.0\", got {text:?}"));
            None
        }
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
            f.set(d, "offset", &mut offset, |d, v, p| Some(d.u64(v, p)));
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
