//! Route checks: route keys, integrations, and the `${stageVariables.X}` references
//! that tie a route to every stage of its API.

use std::time::Duration;

use super::super::model::*;
use super::super::KeyPath;
use super::Validator;
use crate::config::decode::shown;
use crate::pipeline::response::RESERVED_RESPONSE_HEADERS;
use crate::router::key::{is_param_name, parse_route_key};
use stage_vars::{lookup, params_plain, path_problem, resolved, stage_var_refs};

#[path = "mappings.rs"]
mod mappings;
#[path = "stage_vars.rs"]
mod stage_vars;

const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);
/// Methods a route may cache (`cache.methods`); CONNECT and TRACE never are.
const CACHE_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
/// API Gateway allows 50 ms – 29 s for REST APIs and up to 30 s for HTTP APIs.
const MIN_INTEGRATION_TIMEOUT: Duration = Duration::from_millis(50);
const MAX_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

impl Validator<'_> {
    pub(super) fn routes(&mut self, api: &Api, p: &KeyPath) {
        if api.protocol == Protocol::Websocket {
            self.websocket_api(api, p);
        }
        // By shape: a list searched for each route took 25 s for 100,000 routes.
        let mut shapes: std::collections::HashMap<String, &str> = Default::default();
        for (key, route) in &api.routes {
            let rp = p.key("routes").key(key);
            let params = match api.protocol {
                Protocol::Http => match parse_route_key(key) {
                    Ok(parsed) => {
                        let shape = parsed.shape();
                        match shapes.get(&shape) {
                            Some(first) => self.error(
                                &rp,
                                format!("matches the same requests as route {}", shown(first)),
                            ),
                            None => {
                                shapes.insert(shape, key);
                            }
                        }
                        Some(parsed.params().into_iter().map(String::from).collect())
                    }
                    Err(message) => {
                        self.error(&rp, message);
                        None
                    }
                },
                Protocol::Websocket => {
                    let reserved = key.starts_with('$')
                        && !matches!(key.as_str(), "$connect" | "$disconnect" | "$default");
                    if key.is_empty() || key.contains(char::is_whitespace) || reserved {
                        self.error(&rp, "WebSocket route keys are $connect, $disconnect, $default or an action name");
                    }
                    Some(Vec::new())
                }
            };
            if route.route_response && api.protocol != Protocol::Websocket {
                self.error(
                    &rp.key("route_response"),
                    "route_response is for routes of WebSocket APIs (protocol: websocket)",
                );
            }
            let route_check = RouteCheck {
                api,
                api_path: p,
                path: &rp,
                rel: KeyPath::root().key("routes").key(key),
                params,
                auth: &route.auth,
            };
            self.route(route, &route_check);
        }
    }

    /// `route_selection_expression` and `limits` of a WebSocket API.
    fn websocket_api(&mut self, api: &Api, p: &KeyPath) {
        // Neither applies to WebSocket APIs (API Gateway's have no CORS either): an
        // origin list written here would look like a guard against cross-site WebSocket
        // hijacking while every origin connects. Check the Origin in a `$connect`
        // authorizer instead.
        if api.cors.is_some() {
            self.error(
                &p.key("cors"),
                "a WebSocket API has no CORS (browsers do not ask); check the Origin header in a $connect authorizer",
            );
        }
        if matches!(api.compression, Some(Some(_))) {
            self.error(
                &p.key("compression"),
                "a WebSocket API's messages are not compressed (permessage-deflate is not offered)",
            );
        }
        // A cache was accepted and never used: messages and handshakes are never stored
        // (pipeline::cache keys HTTP requests; API Gateway's WebSocket APIs have none).
        let no_cache = "a WebSocket API has no cache: no handshake or message answer is stored";
        // A canary was accepted and never drawn: every connection ran with the stage's own
        // variables.
        for (name, stage) in &api.stages {
            if stage.canary.is_some() {
                self.error(
                    &p.key("stages").key(name).key("canary"),
                    "a WebSocket API's stages have no canary: every connection runs with the stage's variables",
                );
            }
            if stage.cache.is_some() {
                self.error(&p.key("stages").key(name).key("cache"), no_cache);
            }
        }
        for (key, route) in &api.routes {
            if route.cache.is_some() {
                self.error(&p.key("routes").key(key).key("cache"), no_cache);
            }
        }
        let ws = &api.websocket;
        if let Err(e) = crate::websocket::select::Selection::compile(&ws.route_selection_expression)
        {
            self.error(&p.key("route_selection_expression"), e);
        }
        let lp = p.key("limits");
        // Said at the limit that is wrong: `message: 0` was blamed on the frame limit.
        if ws.limits.message == 0 {
            self.error(
                &lp.key("message"),
                "must be above 0: every message with content would be refused",
            );
        } else if ws.limits.message > 16 * 1024 * 1024 {
            self.error(&lp.key("message"), "at most 16MiB");
        }
        if ws.limits.frame == 0 || (ws.limits.message > 0 && ws.limits.frame > ws.limits.message) {
            self.error(
                &lp.key("frame"),
                "a frame limit must be above 0 and at most the message limit",
            );
        }
        for (key, value) in [
            ("idle", ws.limits.idle),
            ("max_duration", ws.limits.max_duration),
        ] {
            if value.is_zero() {
                self.error(&lp.key(key), "must be above 0");
            }
        }
    }

    fn route(&mut self, route: &Route, rc: &RouteCheck) {
        let ip = rc.path.key("integration");
        match &route.integration {
            Integration::Http {
                upstream,
                path,
                timeout,
                ..
            } => {
                let up = ip.key("upstream");
                if let Some(names) = self.stage_refs(rc, &up, upstream) {
                    if names.is_empty() {
                        if !self.has_upstream(upstream) {
                            self.error(&up, format!("no upstream named {}", shown(upstream)));
                        }
                    } else {
                        for (stage, value) in resolved(rc.api, upstream, &names) {
                            if !self.has_upstream(&value) {
                                self.error(
                                    &up,
                                    format!("no upstream named {} (in {stage})", shown(&value)),
                                );
                            }
                        }
                    }
                }
                if let Some(path) = path {
                    let pp = ip.key("path");
                    let names = self.stage_refs(rc, &pp, path);
                    if !path.starts_with('/') && !path.starts_with("${") {
                        self.error(&pp, format!("must start with /, got {}", shown(path)));
                    }
                    if let Some(why) = path_problem(&params_plain(path, false)) {
                        self.error(&pp, why);
                    } else if let Some(names) = names.filter(|n| !n.is_empty()) {
                        // The value goes onto the backend's request line as it is: a
                        // space or CR/LF from a variable would end the line there. Shown
                        // with its `{param}`s as written.
                        let checked = resolved(rc.api, &params_plain(path, true), &names);
                        let shown = resolved(rc.api, path, &names).into_iter();
                        for ((stage, value), (_, as_shown)) in checked.into_iter().zip(shown) {
                            let why = match value.starts_with('/') {
                                true => path_problem(&value),
                                false => Some("must start with /".into()),
                            };
                            if let Some(why) = why {
                                self.error(
                                    &pp,
                                    format!(
                                        "{why} (in {stage}: {})",
                                        crate::config::decode::shown(&as_shown)
                                    ),
                                );
                            }
                        }
                    }
                    if let Some(params) = &rc.params {
                        self.path_params(path, params, &pp);
                    }
                }
                self.timeout(*timeout, &ip.key("timeout"));
            }
            Integration::Lambda { url, timeout, .. } => {
                let up = ip.key("url");
                if let Some(names) = self.stage_refs(rc, &up, url) {
                    // Each stage's url is checked as it will be called: a variable's
                    // value may hold what the url may not (a space, a #).
                    let mut values = vec![(String::new(), url.clone())];
                    if !names.is_empty() {
                        values = resolved(rc.api, url, &names);
                    }
                    for (stage, value) in values {
                        let at = if stage.is_empty() {
                            String::new()
                        } else {
                            format!(" (in {stage})")
                        };
                        if !value.starts_with("http://") {
                            self.error(&up, format!("must start with http:// (TLS to functions is not supported), got {}{at}", shown(&value)));
                        } else if let Err(e) = crate::integration::lambda::parse_url(&value) {
                            self.error(&up, format!("{e}{at}"));
                        }
                    }
                }
                self.timeout(*timeout, &ip.key("timeout"));
            }
            Integration::Mock {
                status,
                headers,
                body,
            } => {
                // A 1xx is not a final answer (a client takes a 101 for a switch of
                // protocol), and a 204 or 304 has no body: the body's bytes would be read
                // as the next response on the connection (a 205 has none either, RFC 9110
                // §15.3.6).
                if !(200..=599).contains(status) {
                    self.error(
                        &ip.key("status"),
                        format!("must be an HTTP status 200–599, got {status}"),
                    );
                } else if matches!(status, 204 | 205 | 304) && !body.is_empty() {
                    self.error(&ip.key("body"), format!("a {status} answer has no body"));
                }
                self.stage_refs(rc, &ip.key("body"), body);
                let names = headers.iter().map(|(n, _)| n.as_str());
                for (name, first) in super::headers::same_header(names, super::headers::name) {
                    let hp = ip.key("headers").key(name);
                    self.error(&hp, super::headers::message(first));
                }
                for (name, value) in headers {
                    let hp = ip.key("headers").key(name);
                    self.mapped_header(rc, name, value, RESERVED_RESPONSE_HEADERS, &hp);
                    self.stage_refs(rc, &hp, value);
                }
                self.response_headers(headers, &ip.key("headers"));
            }
        }
        if let Some(cache) = &route.cache {
            let cp = rc.path.key("cache");
            if cache.ttl > MAX_CACHE_TTL {
                self.error(
                    &cp.key("ttl"),
                    format!("at most 3600s, got {}", fmt_duration(cache.ttl)),
                );
            }
            for (i, key) in cache.key.iter().enumerate() {
                let kp = cp.key("key").index(i);
                self.cache_key(key, rc, &kp);
                // Header names compare without case.
                let same = |other: &String| match (key.split_once('.'), other.split_once('.')) {
                    (Some(("header", a)), Some(("header", b))) => a.eq_ignore_ascii_case(b),
                    _ => other == key,
                };
                if cache.key[..i].iter().any(same) {
                    self.error(&kp, format!("{} is listed twice", shown(key)));
                }
            }
            for (i, method) in cache.methods.iter().enumerate() {
                if !CACHE_METHODS.contains(&method.as_str()) {
                    self.error(
                        &cp.key("methods").index(i),
                        format!(
                            "expected one of {}, got {}",
                            CACHE_METHODS.join(", "),
                            shown(method)
                        ),
                    );
                } else if cache.methods[..i].contains(method) {
                    let at = cp.key("methods").index(i);
                    self.error(&at, format!("{} is listed twice", shown(method)));
                }
            }
            for (i, status) in cache.statuses.iter().enumerate() {
                let p = cp.key("statuses").index(i);
                if cache.statuses[..i].contains(status) {
                    self.error(&p, format!("{status} is listed twice"));
                } else if !(200..=599).contains(status) {
                    self.error(&p, format!("must be a final status 200–599, got {status}"));
                } else if matches!(status, 206 | 304) {
                    // They answer one client's Range or conditional headers, which are
                    // not part of the key.
                    self.error(&p, format!("{status} answers one client's range or conditional request and is never cached"));
                }
            }
        }
        let pp = rc.path.key("parameters");
        if !route.parameters.is_empty() && !matches!(route.integration, Integration::Http { .. }) {
            self.error(
                &pp,
                "request parameter mapping applies to http integrations (a Lambda function gets the whole request; use response_parameters for responses)",
            );
        }
        for (key, value) in &route.parameters {
            self.parameter(key, value, rc, &pp.key(key));
        }
        self.same_header_mapped(&route.parameters, &pp);
        let rp = rc.path.key("response_parameters");
        for (status, params) in &route.response_parameters {
            let sp = rp.key(status);
            if !super::status_key_ok(status) {
                self.error(
                    &sp,
                    "keys are status codes 200–599 of the integration's response, in three digits",
                );
            }
            for (key, value) in params {
                self.response_parameter(key, value, rc, &sp.key(key));
            }
            self.same_header_mapped(params, &sp);
        }
    }

    fn cache_key(&mut self, key: &str, rc: &RouteCheck, p: &KeyPath) {
        match key.split_once('.') {
            Some(("path", name)) => self.param_exists(name, rc, p),
            // A name no request can carry keys nothing, silently.
            Some(("header", name)) if !crate::http1::parse::is_token(name) => {
                self.error(
                    p,
                    format!(
                        "expected a header name (an HTTP token), got {}",
                        shown(name)
                    ),
                );
            }
            Some(("querystring" | "header", name)) if !name.is_empty() => {}
            _ => self.error(
                p,
                format!(
                    "expected path.NAME, querystring.NAME or header.NAME, got {}",
                    shown(key)
                ),
            ),
        }
    }

    fn param_exists(&mut self, name: &str, rc: &RouteCheck, p: &KeyPath) {
        if let Some(params) = &rc.params {
            if !params.iter().any(|n| n == name) {
                self.error(p, format!("{{{name}}} is not a parameter of the route key"));
            }
        }
    }

    /// `{param}` in an integration path must name a parameter of the route key;
    /// `${...}` (stage variables) is skipped.
    fn path_params(&mut self, template: &str, params: &[String], p: &KeyPath) {
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let is_var = rest[..open].ends_with('$');
            let Some(close) = rest[open..].find('}') else {
                self.error(p, format!("unclosed {{ in {}", shown(template)));
                return;
            };
            let name = &rest[open + 1..open + close];
            rest = &rest[open + close + 1..];
            if is_var {
                continue;
            }
            // A greedy `{proxy+}` in the route is written `{proxy}` (or `{proxy+}`) here.
            let bare = name.strip_suffix('+').unwrap_or(name);
            if !is_param_name(bare) || !params.iter().any(|n| n == bare) {
                self.error(p, format!("{{{name}}} is not a parameter of the route key"));
            }
        }
    }

    fn timeout(&mut self, t: Duration, p: &KeyPath) {
        if t < MIN_INTEGRATION_TIMEOUT || t > MAX_INTEGRATION_TIMEOUT {
            self.error(
                p,
                format!("must be between 50ms and 30s, got {}", fmt_duration(t)),
            );
        }
    }

    /// Finds `${stageVariables.X}` in one route field and reports, at each stage that
    /// lacks X, which field needed it. Returns the names, or None if the field is malformed.
    fn stage_refs(
        &mut self,
        rc: &RouteCheck,
        field: &KeyPath,
        template: &str,
    ) -> Option<Vec<String>> {
        let names = match stage_var_refs(template) {
            Ok(names) => names,
            Err(message) => {
                self.error(field, message);
                return None;
            }
        };
        self.stage_names(rc, field, &names);
        Some(names)
    }

    /// Reports, at each stage that lacks one of `names`, which field needed it.
    fn stage_names(&mut self, rc: &RouteCheck, field: &KeyPath, names: &[String]) {
        for (stage_name, stage) in &rc.api.stages {
            for name in names {
                if lookup(&stage.variables, name).is_none() {
                    let at = rc.api_path.key("stages").key(stage_name).key("variables");
                    // Say where the need comes from relative to the API, next to the stage.
                    let used_by = match field.as_str().strip_prefix(rc.path.as_str()) {
                        Some(suffix) => format!("{}{suffix}", rc.rel),
                        None => field.to_string(),
                    };
                    self.error(
                        &at,
                        format!("no variable {}, used by {used_by}", shown(name)),
                    );
                }
            }
        }
    }
}

/// What route checks need to know about the route being checked.
struct RouteCheck<'a> {
    api: &'a Api,
    api_path: &'a KeyPath,
    path: &'a KeyPath,
    /// The route's path relative to its API, for "used by routes.…" messages.
    rel: KeyPath,
    /// Path parameter names; None when the route key itself is bad (already reported).
    params: Option<Vec<String>>,
    /// Who may call the route: `$context.authorizer.*` needs an authorizer.
    auth: &'a crate::config::auth::RouteAuth,
}

/// A duration as an error quotes it (`0s`, `250ms`, `31s`).
pub(super) fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}
