//! A route (`apis.NAME.routes."KEY"`): its integration, upgrade and payload format.

use super::*;
use crate::config::decode::shown;

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

/// Always `Some` (`Option` to fit `named`): a route whose integration failed to decode
/// is kept with a stand-in, so that its other fields (its authorizer, its mappings) are
/// still checked against the rest of the file.
pub(super) fn route(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Route> {
    let f = d.fields(
        v,
        p,
        &[
            ROUTE_KEYS,
            crate::config::definitions::ROUTE_KEYS,
            crate::config::auth::ROUTE_KEYS,
        ]
        .concat(),
    );
    // Who may call the route: written with nothing after it, such a key read as absent
    // and the route was served to anyone, though the file seemed to guard it.
    for (key, give) in [
        ("authorizer", "an authorizer's name"),
        ("authorization", "iam or none"),
        ("authorization_scopes", "a list of scopes"),
        ("api_key_required", "true or false"),
    ] {
        if f.null(key) {
            let message = format!("no value; remove the key or give {give}");
            d.error(&p.key(key), message);
        }
    }
    let auth = crate::config::auth::route_auth(d, v, p);
    // An http integration to no upstream: what is found about it is left out as being
    // about the stand-in (`Decoder::stand_ins`), and the checks of the route's other
    // fields that depend on its kind (request mappings, `cache`) pass for http, so they
    // say nothing either. The error keeps the config from being used.
    let integration = f.need(d, "integration", integration).unwrap_or_else(|| {
        d.stand_in(&p.key("integration"));
        Integration::Http {
            upstream: String::new(),
            path: None,
            timeout: DEFAULT_INTEGRATION_TIMEOUT,
            upgrade: Upgrade {
                protocols: Vec::new(),
                idle_timeout: Upgrade::default().idle_timeout,
            },
        }
    });
    Some(Route {
        integration,
        validation: crate::config::definitions::route_validation(d, &f),
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
            // An empty list reads as "none", and was the default: `ttl: 0` turns a
            // route's cache off.
            let empty = |d: &mut Decoder, p: &KeyPath, default: &str| {
                d.error(
                    p,
                    format!("an empty list caches nothing: leave the key out for the default ({default}), or set ttl: 0 to cache nothing"),
                );
            };
            f.set(d, "methods", &mut cache.methods, |d, v, p| {
                let methods = d.strings(v, p)?;
                if methods.is_empty() {
                    empty(d, p, "GET");
                }
                Some(methods)
            });
            f.set(d, "statuses", &mut cache.statuses, |d, v, p| {
                if v.as_sequence().is_some_and(|s| s.is_empty()) {
                    empty(d, p, "200");
                }
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
            // A name the `upstreams` section defines: read as it resolves, also by the
            // export's "as written" decode.
            let upstream = f.need(d, "upstream", Decoder::parsed_text);
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
                let n = d.u64(v, p)?;
                let got = u16::try_from(n).ok();
                if got.is_none() {
                    // The range `validate` holds a mock's status to, said once.
                    d.error(p, format!("must be an HTTP status 200–599, got {n}"));
                }
                got
            });
            Some(Integration::Mock {
                status,
                headers: f.opt(d, "headers", Decoder::text_map).unwrap_or_default(),
                body: (f.opt(d, "body", Decoder::string))
                    .unwrap_or_default()
                    .into(),
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
                format!(
                    "{} is not a protocol name (a token such as websocket or h2c)",
                    shown(bad)
                ),
            );
            return None;
        }
        Some(names)
    });
    f.set(d, "idle_timeout", &mut up.idle_timeout, Decoder::duration);
    if up.idle_timeout.is_zero() {
        // Every tunnel would end right after its 101.
        d.error(&p.key("idle_timeout"), "must be above 0");
    }
    Some(up)
}

/// "1.0" or "2.0"; unquoted `2.0` arrives as a YAML number and means the same.
pub(in crate::config) fn decode_payload_format(
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
        _ => d.parsed_text(v, p)?,
    };
    // `1` and `2` as they are read unquoted (a number) or quoted: one value, one meaning.
    match text.as_str() {
        "1.0" | "1" => Some(PayloadFormat::V1),
        "2.0" | "2" => Some(PayloadFormat::V2),
        _ => {
            d.error(
                p,
                format!("expected \"1.0\" or \"2.0\", got {}", shown(&text)),
            );
            None
        }
    }
}
