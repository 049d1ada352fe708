//! Settings that are valid but deserve a word, each at its key path: `check` prints them,
//! `run` logs them at start and on every reload. Whatever `run` would say about a file,
//! `check` says too.

use super::auth::Authorizer;
use super::model::Config;
use super::validate::cache_use::{cache_capacity, head_route_over, head_routes};
use super::{ConfigError, KeyPath};
use crate::pipeline::params::{Action, Target};

mod access_log;
mod domains;

/// Why this user could not create or write the store's directory, if it could not: the
/// directory, or the nearest part of its path that exists, must be a writable directory.
/// So must the store file itself, when there is one: a file left by a run as another
/// user (root), or a directory in its place, passed `check` and stopped `run`.
fn unwritable(dir: &std::path::Path) -> Option<String> {
    let existing = dir.ancestors().find(|p| p.symlink_metadata().is_ok())?;
    if !existing.is_dir() {
        // An error, not a warning (`state_dir_error`): no user could make it a directory.
        return None;
    }
    if let Some(why) = refused(existing, libc::W_OK | libc::X_OK, "stop at startup") {
        return Some(why);
    }
    let file = dir.join(crate::store::FILE_NAME);
    match std::fs::metadata(&file) {
        Ok(m) if m.is_dir() => Some(format!(
            "{} is a directory, not the store file: `run` would stop at startup",
            file.display()
        )),
        Ok(_) => refused(&file, libc::R_OK | libc::W_OK, "stop at startup"),
        Err(_) => None,
    }
}

/// The error when the config needs the store and `state_dir`, or the nearest of its
/// ancestors that exists, is not a directory: `run` stops at startup ("File exists")
/// whichever user it runs as, so `check` refuses the file too. A symbolic link to
/// nothing counts as there (`exists` follows it and says no, but no directory can be
/// created in its place).
pub fn state_dir_error(cfg: &Config) -> Option<ConfigError> {
    if !needs_store(cfg) {
        return None;
    }
    let there = cfg
        .state_dir
        .ancestors()
        .find(|p| p.symlink_metadata().is_ok())?;
    let what = match (there.is_dir(), there.exists()) {
        (true, _) => return None,
        (false, true) => "is not a directory",
        (false, false) => "is a symbolic link to nothing",
    };
    Some(KeyPath::root().key("state_dir").error(format!(
        "{}: {} {what}: `run` would stop at startup",
        cfg.state_dir.display(),
        there.display()
    )))
}

/// Whether `run` opens the store (`state_dir`) for this config.
fn needs_store(cfg: &Config) -> bool {
    cfg.cluster.is_some()
        || cfg.admin.is_some()
        || !cfg.usage_plans.is_empty()
        || !cfg.api_keys.is_empty()
}

/// Why this user could not open `file` to append, if it could not: the file if it
/// exists, else its directory (which exists).
fn unappendable(file: &std::path::Path, dir: &std::path::Path) -> Option<String> {
    // access(W_OK) grants a writable directory, but opening it to append fails.
    if file.is_dir() {
        return Some(format!(
            "{} is a directory: `run` would drop every access-log line",
            file.display()
        ));
    }
    let (target, mode) = match file.exists() {
        true => (file, libc::W_OK),
        false => (dir, libc::W_OK | libc::X_OK),
    };
    refused(target, mode, "drop every access-log line")
}

/// The warning when access(2) refuses `mode` on `path` to this user: `run` as this user
/// would then do `what`.
fn refused(path: &std::path::Path, mode: libc::c_int, what: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    if unsafe { libc::access(c_path.as_ptr(), mode) } == 0 {
        return None;
    }
    let e = std::io::Error::last_os_error();
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    Some(format!(
        "{} is not writable by this user (uid {uid}: {e}): `run` as this user would {what}; fine if the service runs as one that can write it",
        path.display()
    ))
}

/// Whether a route of `method` (None: ANY or `$default`) fills entries for any of
/// `cached` (`cache.methods`; empty is GET). HEAD answers are never stored.
fn fills_any(method: Option<&str>, cached: &[String]) -> bool {
    let fills = |m: &str| m != "HEAD" && method.is_none_or(|r| r == "ANY" || r == m);
    if cached.is_empty() {
        fills("GET")
    } else {
        cached.iter().any(|m| fills(m))
    }
}

/// Every warning, in file order.
pub fn warnings(cfg: &Config) -> Vec<ConfigError> {
    // What decoding noticed (OpenAPI import: extensions it could not map) comes first.
    let mut out = cfg.warnings.clone();
    // Certificates that load but that clients refuse (read by tls::load).
    out.extend(cfg.tls.warnings.iter().cloned());
    let root = KeyPath::root();
    if cfg.apis.is_empty() {
        out.push(
            root.key("apis")
                .error("no APIs are configured: every request answers 404"),
        );
    }
    out.extend(access_log::warnings(cfg));
    if cfg.server.limits.max_body_bytes == 0 {
        // nginx's `client_max_body_size 0` is no limit: a config carried over from it
        // refused every POST with 413, and `check` said nothing.
        out.push(root.key("server").key("limits").key("max_body_bytes").error(
            "0: every request with a body is refused with 413 (this is not nginx's 0, no limit); give the largest body to accept",
        ));
    }
    let limits = &cfg.server.limits;
    // A body read whole holds a buffer of its size and up to twice it (a buffer grows by
    // doubling), and 16 KiB at least.
    let one_body = limits.max_body_bytes.saturating_mul(2).max(32 * 1024);
    if limits.max_buffered_bodies_bytes < one_body {
        out.push(root.key("server").key("limits").key("max_buffered_bodies_bytes").error(format!(
            "{}: less than one body of max_body_bytes read whole may hold ({one_body} bytes, twice its size as its buffer grows, 32 KiB at least): bodies that validation, a Lambda integration or IAM read whole may be refused with 503 even one at a time",
            limits.max_buffered_bodies_bytes
        )));
    }
    if needs_store(cfg) {
        if let Some(why) = unwritable(&cfg.state_dir) {
            out.push(
                root.key("state_dir")
                    .error(format!("{}: {why}", cfg.state_dir.display())),
            );
        }
    }
    if let Some(admin) = &cfg.admin {
        // Every address of the host, public ones too, while /health and /metrics answer
        // without the token. Loopback and private addresses are what the README asks for.
        if admin.listen.ip().to_canonical().is_unspecified() {
            out.push(root.key("admin").key("listen").error(format!(
                "{} listens on every address of this host: /health and /metrics answer anyone who reaches it, without the token, and admin.token alone guards the rest; give a loopback or private address (127.0.0.1:{})",
                admin.listen,
                admin.listen.port()
            )));
        }
        if admin.token.is_none() {
            out.push(
                root.key("admin")
                    .key("token")
                    .error("not set: only /health and /metrics answer on the admin listener"),
            );
        }
    }
    if let Some(why) = cfg.iam.as_ref().and_then(|i| unlike_a_region(&i.region)) {
        out.push(root.key("iam").key("region").error(why));
    }
    for (name, u) in &cfg.upstreams {
        if u.https && !u.tls.verify {
            out.push(
                root.key("upstreams")
                    .key(name)
                    .key("tls")
                    .key("verify")
                    .error("false: this upstream's certificate is not checked; for testing only"),
            );
        }
    }
    for (name, api) in &cfg.apis {
        let p = root.key("apis").key(name);
        let mapped = cfg.domains.iter().any(|(_, d)| {
            d.mappings
                .iter()
                .any(|(_, target)| target.split('/').next() == Some(name.as_str()))
        });
        // Nothing to serve, as a file caught half-written (or cut short) by a reload can
        // leave it: a valid YAML prefix with the API's stages and none of its routes.
        if api.routes.is_empty() {
            let nothing = match api.protocol {
                super::model::Protocol::Http => "every request to this API answers 404",
                super::model::Protocol::Websocket => {
                    "connections open, but no message reaches a backend"
                }
            };
            // Routes compile from the file's `routes` and the OpenAPI file's paths (merged
            // in before decoding): said at the OpenAPI file when there is one, where an
            // error reading it hides this.
            out.push(match &api.defs.openapi {
                Some(file) => p.key("openapi").error(format!(
                    "{} gives no routes and the API lists none: {nothing}",
                    file.display()
                )),
                None => p.key("routes").error(format!("no routes: {nothing}")),
            });
        }
        let no_principals = cfg.iam.as_ref().is_none_or(|i| i.principals.is_empty());
        if api.protocol == super::model::Protocol::Websocket && no_principals {
            out.push(p.key("protocol").error(
                "websocket without `iam` principals: @connections on the stage endpoint answers callers on this host only (add a principal to sign calls from elsewhere)",
            ));
        }
        if api
            .defs
            .gateway_responses
            .iter()
            .any(|(kind, _)| kind == "REQUEST_TOO_LARGE")
        {
            out.push(p.key("gateway_responses").key("REQUEST_TOO_LARGE").error(
                "is not applied: the 413 is the gateway's own, as in API Gateway, which does not let it be customised",
            ));
        }
        for (kind, resp) in &api.defs.gateway_responses {
            let at = p.key("gateway_responses").key(kind).key("headers");
            out.extend(configured_date(&resp.headers, &at, "a gateway response's"));
        }
        out.extend(cache_capacity(cfg, api, &p));
        let heads = head_routes(api);
        for (key, route) in &api.routes {
            if let super::model::Integration::Http { upgrade, .. } = &route.integration {
                let h2c = upgrade
                    .protocols
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case("h2c"));
                if let Some(i) = h2c {
                    let at = p.key("routes").key(key).key("integration");
                    out.push(at.key("upgrade").key("protocols").index(i).error(
                        "h2c lets a client switch the connection to HTTP/2 with the backend and send it any request on any path (\"h2c smuggling\"), past this API's routes, authorizers, API keys and throttling; list it only for a backend that is public on every path",
                    ));
                }
            }
            // A client's value in a method override the gateway never judged.
            for (k, v) in &route.parameters {
                let why = match crate::pipeline::params::parse_key(k) {
                    Some((action, Target::Header(name))) if action != Action::Remove => {
                        super::validate::client_method_override(name, v)
                    }
                    // `_method` as backends' parsers read it (`?_METHOD=`, `?[_method]=`).
                    Some((action, Target::Query(name)))
                        if action != Action::Remove
                            && crate::pipeline::template::query_name_is(
                                name.as_bytes(),
                                b"_method",
                            ) =>
                    {
                        super::validate::method_from_client(&format!("query parameter {name}"), v)
                    }
                    _ => continue,
                };
                if let Some(why) = why {
                    out.push(p.key("routes").key(key).key("parameters").key(k).error(why));
                }
            }
            // integration::http: a mapped path replaces the integration's, whole.
            let mapped_path = route.parameters.iter().any(|(k, _)| k == "overwrite:path");
            if let super::model::Integration::Http { path: Some(_), .. } = &route.integration {
                if mapped_path {
                    let at = p.key("routes").key(key).key("integration").key("path");
                    out.push(at.error(
                        "not used: the route's parameters.\"overwrite:path\" makes the path sent",
                    ));
                }
            }
            if let super::model::Integration::Mock { headers, body, .. } = &route.integration {
                let at = p.key("routes").key(key).key("integration");
                let fields = (headers.iter()).map(|(n, v)| (at.key("headers").key(n), v.as_str()));
                // websocket::call: a WebSocket mock's body of exactly this echoes.
                let ws = api.protocol == super::model::Protocol::Websocket;
                let body = (!(ws && &**body == "$request.body")).then(|| (at.key("body"), &**body));
                let why = match ws {
                    true => "a mock puts in ${stageVariables.NAME} only, and echoes a body that is $request.body alone",
                    false => "a mock puts in ${stageVariables.NAME} only (response_parameters read the request)",
                };
                for (at, text) in body.into_iter().chain(fields) {
                    if let Some(r) = request_value_in(text) {
                        out.push(at.error(format!("{r} is sent as written: {why}")));
                    }
                }
                out.extend(configured_date(headers, &at.key("headers"), "a mock's"));
            }
            // pipeline::cache::rules::caller: no identity source, no caller to key on.
            let cached = route.cache.as_ref().is_some_and(|c| !c.ttl.is_zero());
            let sourceless = route.auth.authorizer.as_ref().is_some_and(|a| {
                api.authorizers.iter().any(|(n, x)| {
                    n == a && matches!(x, Authorizer::Lambda(l) if l.identity_source.is_empty())
                })
            });
            let http = matches!(route.integration, super::model::Integration::Http { .. });
            if cached && !http {
                // pipeline::cache stores proxied responses only.
                out.push(p.key("routes").key(key).key("cache").error(
                    "not used: only http integrations are cached (mock and lambda answers are never stored)",
                ));
            } else if cached && !api.stages.iter().any(|(_, s)| s.cache.is_some()) {
                out.push(p.key("routes").key(key).key("cache").error(
                    "not used: no stage of this API has a cache (stages.NAME.cache.capacity turns it on)",
                ));
            } else if cached && sourceless && !route.auth.iam {
                out.push(p.key("routes").key(key).key("cache").error(
                    "not used: the route's Lambda authorizer has no identity source, so there is no caller to key entries by",
                ));
            } else if let Some(cache) = route.cache.as_ref().filter(|_| cached) {
                let at = p.key("routes").key(key).key("cache");
                match key.split_once(' ').map(|(method, _)| method) {
                    // pipeline::cache::rules::may_fill: a HEAD answer has no body to store,
                    // and a HEAD route's requests never read its GET route's entries.
                    Some("HEAD") => out.push(at.error(
                        "not used: a HEAD route stores nothing (a HEAD answer has no body) and does not read the GET route's entries; without this route, HEAD requests go to the GET route and are answered from its cache",
                    )),
                    method if !fills_any(method, &cache.methods) => {
                        let stored = match method {
                            Some("ANY") | None => "any method but HEAD",
                            Some(m) => m,
                        };
                        out.push(if cache.methods.is_empty() {
                            at.error(format!(
                                "not used: `methods` defaults to [GET] and this is a {stored} route: list {stored} in `methods` to store its answers"
                            ))
                        } else {
                            at.key("methods").error(format!(
                                "not used: lists none of the methods whose answers this route stores ({stored}; a HEAD answer has no body and is never stored, a HEAD is answered from GET entries)"
                            ))
                        });
                    }
                    _ => {
                        if let Some(why) = head_route_over(&heads, key, &cache.methods) {
                            out.push(at.error(why));
                        }
                    }
                }
            }
            if route.route_response && api.protocol == super::model::Protocol::Websocket {
                // websocket::deliver sends an answer back for message routes only.
                let why = match key.as_str() {
                    "$connect" => "its integration's answer decides the handshake (a 2xx completes it, any other is the answer to the upgrade request)",
                    "$disconnect" => "it runs once the connection is closed: its answer goes nowhere",
                    _ => continue,
                };
                let at = p.key("routes").key(key).key("route_response");
                out.push(at.error(format!("true on {key} sends the client nothing: {why}")));
            }
        }
        // pipeline::cors: no origin to match, so no answer carries CORS headers, and the
        // API's preflights are answered 204 without them, never by a route.
        let http = api.protocol == super::model::Protocol::Http;
        let origins = api.cors.as_ref().map(|c| &c.allow_origins);
        if http && origins.is_some_and(Vec::is_empty) {
            out.push(p.key("cors").key("allow_origins").error(
                "empty: no origin can match, so no answer carries CORS headers, and preflights are still answered here (204, without them), never by a route; list the origins, or remove `cors`",
            ));
        }
        // Fetch: on a request with credentials, `*` in these lists is the name `*`, not
        // "any", so the preflight of a PUT with cookies, say, fails in every browser.
        if let Some(cors) = api.cors.as_ref().filter(|c| c.allow_credentials) {
            for (key, list) in [
                ("allow_methods", &cors.allow_methods),
                ("allow_headers", &cors.allow_headers),
                ("expose_headers", &cors.expose_headers),
            ] {
                if let Some(i) = list.iter().position(|v| v == "*") {
                    out.push(p.key("cors").key(key).index(i).error(
                        "\"*\" with allow_credentials: true: browsers read it as the name \"*\" on requests with credentials (cookies, Authorization), not as any; list the names",
                    ));
                }
            }
            // An echoed scheme wildcard passes the check `*` fails: any site of that
            // scheme may send the user's cookies and read the answers.
            for (i, origin) in cors.allow_origins.iter().enumerate() {
                if origin.eq_ignore_ascii_case("https://*")
                    || origin.eq_ignore_ascii_case("http://*")
                {
                    out.push(p.key("cors").key("allow_origins").index(i).error(format!(
                        "{origin} with allow_credentials: true lets any site of that scheme send its users' cookies and read the answers; list the origins"
                    )));
                }
            }
        }
        // A mutual-TLS domain's API is also on the default endpoint unless switched off:
        // any other Host (plain HTTP too) reaches it there without a client certificate.
        let mutual = cfg.domains.iter().find(|(_, d)| {
            d.client_ca.is_some()
                && d.mappings
                    .iter()
                    .any(|(_, target)| target.split('/').next() == Some(name.as_str()))
        });
        if let (Some((domain, _)), false) = (mutual, api.disable_default_endpoint) {
            out.push(p.key("disable_default_endpoint").error(format!(
                "false, and {domain} maps this API with mutual TLS: the default endpoint (/STAGE/… on any other host, plain HTTP too) serves it without a client certificate; set it to true if mutual TLS must be the only way in"
            )));
        }
        // So does a domain without mutual TLS that maps it too.
        let open = cfg.domains.iter().filter(|(_, d)| d.client_ca.is_none());
        for (other, d) in open.filter(|_| mutual.is_some()) {
            let domain = mutual.map_or("", |(n, _)| n.as_str());
            for (base, target) in &d.mappings {
                if target.split('/').next() == Some(name.as_str()) {
                    let at = root.key("domains").key(other).key("mappings").key(base);
                    out.push(at.error(format!(
                        "maps {target}, an API that {domain} serves with mutual TLS: clients reach it here without a client certificate"
                    )));
                }
            }
        }
        if api.disable_default_endpoint && !mapped {
            out.push(
                p.key("disable_default_endpoint")
                    .error("true and no domain maps this API: nothing reaches it"),
            );
        }
    }
    // A certificate is served on `server.tls_listen` only: without one, the domain is
    // plain HTTP, and a mutual-TLS domain (421 on plain connections) is no use at all.
    if cfg.server.tls_listen.is_empty() {
        for (name, domain) in cfg.domains.iter().filter(|(_, d)| d.cert.is_some()) {
            let effect = match domain.client_ca {
                None => "the domain answers on plain HTTP only",
                Some(_) => "with client_ca, the domain is never reached: a plain HTTP request for it gets 421 Misdirected Request",
            };
            out.push(root.key("domains").key(name).key("cert").error(format!(
                "no server.tls_listen, so this certificate is never served: {effect}; add an address to server.tls_listen"
            )));
        }
    }
    out.extend(domains::warnings(cfg));
    out
}

/// Why `region` does not look like an AWS region name (`us-east-1`, `us-gov-west-1`:
/// lowercase words and a number, joined by hyphens), if it does not. SigV4 clients put
/// the region they were given in the credential scope, and a request scoped to another
/// region than `iam.region` is refused (`Credential should be scoped to a valid
/// region`): a client configured for a real region never matches one spelt otherwise.
/// A warning, not an error: the region is only a name both sides agree on, and a
/// private one (`local`) works with clients told to use it. Text no credential scope can
/// hold (empty, `/`, blanks) is an error (`validate::auth`).
fn unlike_a_region(region: &str) -> Option<String> {
    let parts: Vec<&str> = region.split('-').collect();
    let word = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let number = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let like = parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(word)
        && parts.last().is_some_and(number);
    // validate::auth refuses what holds other characters; this is about the rest.
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (valid && !like).then(|| {
        format!(
            "{} does not look like an AWS region name (lowercase letters, digits and hyphens, such as us-east-1 or eu-central-1): a client that signs for a real region gets 403 \"Credential should be scoped to a valid region\"; give the region the clients sign for",
            super::decode::shown(region)
        )
    })
}

/// The first `$context.`/`$request.` reference in a mock's text (either spelling), which
/// mocks don't resolve: encoded once at load, they know no request.
fn request_value_in(text: &str) -> Option<&str> {
    let at = ["$context.", "${context.", "$request.", "${request."]
        .into_iter()
        .filter_map(|r| text.find(r))
        .min()?;
    let rest = &text[at..];
    let len = match rest.starts_with("${") {
        true => rest.find('}').map_or(rest.len(), |i| i + 1),
        false => rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .map_or(rest.len(), |i| i + 1),
    };
    Some(rest[..len].trim_end_matches('.'))
}

/// A `date` among a mock's or gateway response's `headers` (`whose`), which is not sent:
/// the answer carries Portico's current Date (a fixed one makes caches reckon it stale at
/// once or fresh for ever; config::compile::integrations::mock).
fn configured_date(headers: &[(String, String)], at: &KeyPath, whose: &str) -> Vec<ConfigError> {
    (headers.iter())
        .filter(|(name, _)| name.eq_ignore_ascii_case("date"))
        .map(|(name, _)| {
            at.key(name).error(format!(
                "Portico writes the current Date; {whose} is left out"
            ))
        })
        .collect()
}

/// Logs each warning at warn, with its key path.
pub fn log(warnings: &[ConfigError]) {
    for w in warnings {
        tracing::warn!(key = %w.path, "{}", w.message);
    }
}
