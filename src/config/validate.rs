//! Checks a decoded `Config` for everything the types can't say: cross-references
//! (upstreams, stages, plans, stage variables), route keys and the limits Amazon API
//! Gateway documents. Every error carries the key path of the value to fix.

mod access_log;
mod auth;
pub(crate) mod cache_use;
#[cfg(test)]
mod check_warning_tests;
pub(crate) mod cors;
mod domains;
pub(crate) mod headers;
mod no_value;
mod routes;
mod size;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub(crate) use headers::{
    api_gateway_reserved, appended_one_valued, client_method_override, content_type_problem,
    header_stage_value_problems, header_twin, header_value_problem, mapped_date,
    method_from_client, reserved_header,
};
pub(crate) use no_value::no_value;

use super::decode::shown;
use super::model::*;
use super::{ConfigError, KeyPath};

const MAX_STAGE_VARIABLES: usize = 100;
const MAX_STAGE_VARIABLE_NAME: usize = 64;
const MAX_STAGE_VARIABLE_VALUE: usize = 512;
/// Smaller than this and ordinary browsers' request heads would be refused with 431.
const MIN_HEADER_BYTES: usize = 1024;
/// One thread per worker (README: `server.workers`). A WebSocket connection id names its
/// worker in one byte (`websocket::connections`): with 300 workers, workers 0 and 256
/// shared ids and an inbox, and `@connections` answered 410 for open connections.
pub(crate) const MAX_WORKERS: usize = 256;

/// What an API's name may be (also `portico openapi import --api`).
pub const API_NAME_RULE: &str = "API names are letters, digits, _, - and .";

/// Whether `name` follows `API_NAME_RULE`.
pub fn api_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether `key` is a `response_parameters` status key: three digits, 200–599, as the
/// integration's status is matched ("0200" and "+200" parsed as 200 and stood beside
/// "200", of which one was silently not applied).
pub fn status_key_ok(key: &str) -> bool {
    key.len() == 3
        && key.bytes().all(|b| b.is_ascii_digit())
        && key.parse::<u16>().is_ok_and(|s| (200..=599).contains(&s))
}

/// Every problem found, in file order; empty means the config can be compiled.
pub fn validate(cfg: &Config) -> Vec<ConfigError> {
    validate_names_apart(cfg).0
}

/// [`validate`], and which of the errors (their indices) are about an entry's own name
/// (an API's, a stage's, a route's key, a domain's), not what the entry holds: what
/// fails to decode inside an entry explains none of them (`check_text_with`). The
/// indices ascend.
pub fn validate_names_apart(cfg: &Config) -> (Vec<ConfigError>, Vec<usize>) {
    let mut v = Validator {
        cfg,
        errors: Vec::new(),
        names: Vec::new(),
    };
    v.server();
    v.upstreams();
    for (name, api) in &cfg.apis {
        let p = KeyPath::root().key("apis").key(name);
        // The name is the API's id: in `api/stage` references (domain mappings, usage
        // plans), ARNs and `$context.apiId`. A slash there made it unreachable, with an
        // error naming the API before the slash.
        if !api_name_ok(name) {
            v.name_error(&p, API_NAME_RULE);
        }
        v.api(api, &p);
    }
    v.compiled_size();
    v.base_paths();
    v.domains();
    v.usage_plans();
    v.api_keys();
    v.errors.extend(auth::validate(cfg));
    (v.errors, v.names)
}

struct Validator<'c> {
    cfg: &'c Config,
    errors: Vec<ConfigError>,
    /// Which `errors` are about an entry's name (`validate_names_apart`).
    names: Vec<usize>,
}

impl Validator<'_> {
    fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.errors.push(path.error(message));
    }

    /// An error about the name of the entry at `path`.
    fn name_error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.names.push(self.errors.len());
        self.error(path, message);
    }

    /// A mock's `headers`: a literal content-type is one media type (a name given twice
    /// in two cases is refused with the route's other header checks).
    fn response_headers(&mut self, headers: &[(String, String)], p: &KeyPath) {
        for (name, value) in headers {
            if let Some(why) = content_type_problem(name, value) {
                self.error(&p.key(name), why);
            }
        }
    }

    fn server(&mut self) {
        let s = &self.cfg.server;
        let p = KeyPath::root().key("server");
        if s.listen.is_empty() && s.tls_listen.is_empty() {
            self.error(
                &p.key("listen"),
                "no listener: give at least one address in server.listen or server.tls_listen",
            );
        }
        // One socket per address: a second bind would fail at startup, or worse, with
        // SO_REUSEPORT, silently share the port between plain and TLS listeners. The
        // same goes for addresses that overlap on one port (`0.0.0.0:P` and
        // `127.0.0.1:P`): the kernel gives loopback's connections to one socket and
        // every other address's to the other.
        let mut seen: Vec<(SocketAddr, KeyPath)> = Vec::new();
        let admin = self
            .cfg
            .admin
            .iter()
            .map(|a| (a.listen, KeyPath::root().key("admin").key("listen")));
        let listeners = (s
            .listen
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, p.key("listen").index(i))))
        .chain(
            s.tls_listen
                .iter()
                .enumerate()
                .map(|(i, a)| (*a, p.key("tls_listen").index(i))),
        )
        .collect::<Vec<_>>();
        for (addr, path) in &listeners {
            // Port 0 would give each worker's SO_REUSEPORT socket a random port of its
            // own: as many addresses as workers, none of them known.
            if addr.port() == 0 {
                self.error(path, format!("{addr}: port 0 is no fixed port; give one"));
            }
        }
        // Each listener's kind: two of one kind that overlap without being the same
        // address (`listen: ["0.0.0.0:80", "[::]:80"]`, as nginx users write) both bind
        // with SO_REUSEPORT and serve alike; plain beside TLS, or anything beside the
        // admin listener (bound without SO_REUSEPORT), may not.
        let kind = |path: &KeyPath| path.to_string().split('[').next().map(str::to_owned);
        for (addr, path) in listeners.into_iter().chain(admin) {
            let conflict = |(a, first): &&(SocketAddr, KeyPath)| {
                same_address(*a, addr)
                    || (overlap(*a, addr)
                        && (kind(first) != kind(&path) || path.to_string() == "admin.listen"))
            };
            match seen.iter().find(conflict) {
                Some((a, first)) if same_address(*a, addr) => {
                    self.error(&path, format!("{addr} is already used by {first}"))
                }
                Some((a, first)) => {
                    // nginx's `listen [::]:80` is IPv6 only, so its users write both.
                    let wild6 = |x: &SocketAddr| x.is_ipv6() && x.ip().is_unspecified();
                    let v4 = |x: &SocketAddr| match x.ip() {
                        std::net::IpAddr::V4(_) => true,
                        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
                    };
                    let dual = match [*a, addr].into_iter().find(wild6) {
                        Some(w) if v4(a) || v4(&addr) => {
                            format!(" ({w} is dual-stack: it takes IPv4 connections too)")
                        }
                        _ => String::new(),
                    };
                    self.error(
                        &path,
                        format!(
                            "{addr} overlaps {a} at {first}: one listens on the other's \
                             addresses on port {}{dual}, so one listener would take the \
                             other's connections (or fail to bind); give them different \
                             ports, or keep one",
                            addr.port()
                        ),
                    )
                }
                None => seen.push((addr, path)),
            }
        }
        self.tls_server(&p);
        self.access_log();
        match s.workers {
            Workers::Count(0) => self.error(&p.key("workers"), "must be auto or at least 1"),
            // A thread and its buffers each; 18446744073709551615 passed `check` and
            // panicked `run` (an overflow sizing the throttle leases).
            Workers::Count(n) if n > MAX_WORKERS => {
                self.error(&p.key("workers"), format!("at most {MAX_WORKERS}, got {n}"))
            }
            _ => {}
        }
        if s.limits.max_header_bytes < MIN_HEADER_BYTES {
            self.error(
                &p.key("limits").key("max_header_bytes"),
                format!(
                    "must be at least {MIN_HEADER_BYTES}, got {}",
                    s.limits.max_header_bytes
                ),
            );
        }
        if s.limits.header_timeout.is_zero() {
            self.error(
                &p.key("limits").key("header_timeout"),
                "must be more than 0s: every request would time out",
            );
        }
        if let Some(admin) = &self.cfg.admin {
            if admin.token.as_deref() == Some("") {
                // An empty token would let an empty `Authorization: Bearer ` through.
                self.error(
                    &KeyPath::root().key("admin").key("token"),
                    "is empty; leave it out to refuse admin routes",
                );
            } else if let Some(t) = admin.token.as_deref().filter(|t| !token_can_match(t)) {
                self.error(
                    &KeyPath::root().key("admin").key("token"),
                    format!(
                        "{} no presented token can match it (an Authorization value loses \
                         its outer blanks, and control characters cannot be sent)",
                        if t.trim_matches([' ', '\t']).is_empty() {
                            "is blank:"
                        } else if t.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                            "holds a control character:"
                        } else {
                            "starts or ends with a blank:"
                        }
                    ),
                );
            }
        }
    }

    fn tls_server(&mut self, p: &KeyPath) {
        let s = &self.cfg.server;
        let with_cert = |name: &str| {
            self.cfg
                .domains
                .iter()
                .find(|(n, _)| crate::router::bare_host(n) == crate::router::bare_host(name))
                .map(|(_, d)| d.cert.is_some() && d.key.is_some())
        };
        if let Some(name) = &s.default_domain {
            match with_cert(name) {
                None => self.error(
                    &p.key("default_domain"),
                    format!("unknown domain {}", shown(name)),
                ),
                Some(false) => self.error(
                    &p.key("default_domain"),
                    format!("domain {} has no cert and key", shown(name)),
                ),
                Some(true) => {}
            }
        }
        let any_cert = self
            .cfg
            .domains
            .iter()
            .any(|(_, d)| d.cert.is_some() && d.key.is_some());
        if !s.tls_listen.is_empty() && !any_cert {
            self.error(
                &p.key("tls_listen"),
                "no domain has a cert and key to serve; add them under domains:",
            );
        }
        if s.redirect_https && s.tls_listen.is_empty() {
            self.error(
                &p.key("redirect_https"),
                "needs server.tls_listen to redirect to",
            );
        }
    }

    fn upstreams(&mut self) {
        for (name, u) in &self.cfg.upstreams {
            let p = KeyPath::root().key("upstreams").key(name);
            if name.chars().any(char::is_control) {
                // The name is a metrics label and is written in logs.
                self.name_error(&p, "the name has a control character");
            } else if name.starts_with("lambda ") {
                // Function endpoints' pools are `upstream="lambda HOST:PORT"` in metrics.
                self.name_error(
                    &p,
                    "names starting with \"lambda \" are kept for Lambda function endpoints' pools; rename it",
                );
            }
            if u.targets.is_empty() {
                self.error(&p.key("targets"), "needs at least one target");
            }
            if u.connect_timeout.is_zero() {
                self.error(&p.key("connect_timeout"), "must be more than 0");
            }
            if u.resolve_every < std::time::Duration::from_secs(1) {
                self.error(&p.key("resolve_every"), "must be at least 1s");
            }
            if u.tls.given && !u.https && !u.targets.is_empty() {
                self.error(
                    &p.key("tls"),
                    "only applies to https:// targets; these targets are plain HTTP",
                );
            }
            if let Some(h) = &u.health {
                let p = p.key("health");
                if !h.path.starts_with('/') {
                    self.error(
                        &p.key("path"),
                        format!("must start with /, got {}", shown(&h.path)),
                    );
                } else if h.path.bytes().any(|b| !b.is_ascii_graphic()) {
                    // Written byte for byte on the check's request line: a CR/LF in it
                    // added headers, or a second request, to every check.
                    self.error(
                        &p.key("path"),
                        "has a space, control or non-ASCII character, which would break the check's request line: percent-encode it (%20, %C3%A9)",
                    );
                } else if let Some(why) = target_byte_problem(&h.path) {
                    self.error(&p.key("path"), why);
                } else if h.path.contains('#') {
                    // A request-target has no fragment (RFC 9112 §3.2): a backend would
                    // refuse every check, or read another path.
                    self.error(
                        &p.key("path"),
                        "has a #, which no request-target may hold: percent-encode it (%23)",
                    );
                }
                if h.interval.is_zero() {
                    self.error(&p.key("interval"), "must be more than 0");
                }
                for (key, n) in [
                    ("unhealthy_after", h.unhealthy_after),
                    ("healthy_after", h.healthy_after),
                ] {
                    if n == 0 {
                        self.error(&p.key(key), "must be at least 1");
                    }
                }
            }
        }
    }

    fn api(&mut self, api: &Api, p: &KeyPath) {
        if let Some(cors) = &api.cors {
            self.cors(cors, &p.key("cors"));
        }
        if api.stages.is_empty() {
            self.error(
                &p.key("stages"),
                "an API needs at least one stage (call it $default to serve it at the root)",
            );
        }
        for (name, stage) in &api.stages {
            self.stage(name, stage, &p.key("stages").key(name));
        }
        let from = self.errors.len();
        self.routes(api, p);
        self.route_key_errors(api, p, from);
        self.errors.extend(super::definitions::validate(api, p));
    }

    /// Marks the errors `routes` found from `from` on at a route's own path: the key's
    /// (its syntax, a clash with another key); whatever `routes` finds in a route is at
    /// one of its fields.
    fn route_key_errors(&mut self, api: &Api, p: &KeyPath, from: usize) {
        if from == self.errors.len() {
            return;
        }
        let routes = p.key("routes");
        let keys: std::collections::HashSet<String> = (api.routes.iter())
            .map(|(k, _)| routes.key(k).error("").path)
            .collect();
        let at_key = (from..self.errors.len()).filter(|i| keys.contains(&self.errors[*i].path));
        self.names.extend(at_key.collect::<Vec<_>>());
    }

    fn stage(&mut self, name: &str, stage: &Stage, p: &KeyPath) {
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if name != "$default" && !plain {
            self.name_error(p, "stage names are letters, digits, _ and -, or $default");
        }
        self.variables(&stage.variables, &p.key("variables"));
        if let Some(canary) = &stage.canary {
            let cp = p.key("canary");
            if !(0.0..=100.0).contains(&canary.percent) {
                self.error(
                    &cp.key("percent"),
                    format!("must be between 0 and 100, got {}", canary.percent),
                );
            }
            self.variables(&canary.variables, &cp.key("variables"));
        }
    }

    fn variables(&mut self, vars: &[(String, String)], p: &KeyPath) {
        if vars.len() > MAX_STAGE_VARIABLES {
            self.error(
                p,
                format!(
                    "at most {MAX_STAGE_VARIABLES} variables, got {}",
                    vars.len()
                ),
            );
        }
        for (name, value) in vars {
            let ok_name = !name.is_empty()
                && name.len() <= MAX_STAGE_VARIABLE_NAME
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok_name {
                self.error(
                    &p.key(name),
                    format!("variable names are 1–{MAX_STAGE_VARIABLE_NAME} letters, digits or _"),
                );
            }
            let len = value.chars().count();
            if len > MAX_STAGE_VARIABLE_VALUE {
                self.error(
                    &p.key(name),
                    format!("at most {MAX_STAGE_VARIABLE_VALUE} characters, got {len}"),
                );
            }
        }
    }

    fn has_upstream(&self, name: &str) -> bool {
        self.cfg.upstreams.iter().any(|(n, _)| n == name)
    }

    /// On the default endpoint a stage is served at `/{stage}` and `$default` at the root,
    /// so across all APIs each stage name may be used once.
    fn base_paths(&mut self) {
        let mut owners: Vec<(&str, &str)> = Vec::new();
        for (api_name, api) in &self.cfg.apis {
            if api.disable_default_endpoint {
                continue;
            }
            for (stage_name, _) in &api.stages {
                match owners.iter().find(|(s, _)| s == stage_name) {
                    Some((_, owner)) if owner != api_name => {
                        let what = if stage_name == "$default" {
                            "the root of the default endpoint ($default stage)".to_string()
                        } else {
                            format!("base path /{stage_name} on the default endpoint")
                        };
                        let p = KeyPath::root()
                            .key("apis")
                            .key(api_name)
                            .key("stages")
                            .key(stage_name);
                        self.name_error(
                            &p,
                            format!("{what} already belongs to API {}", shown(owner)),
                        );
                    }
                    Some(_) => {}
                    None => owners.push((stage_name, api_name)),
                }
            }
        }
    }

    /// "api/stage" must name an existing stage of an existing API.
    fn stage_ref(&mut self, target: &str, p: &KeyPath) {
        let Some((api_name, stage_name)) = target.split_once('/') else {
            self.error(p, format!("expected \"api/stage\", got {}", shown(target)));
            return;
        };
        match self.cfg.apis.iter().find(|(n, _)| n == api_name) {
            None => self.error(p, format!("no API named {}", shown(api_name))),
            Some((_, api)) if !api.stages.iter().any(|(s, _)| s == stage_name) => {
                self.error(
                    p,
                    format!("API {} has no stage {}", shown(api_name), shown(stage_name)),
                );
            }
            Some(_) => {}
        }
    }

    fn usage_plans(&mut self) {
        for (name, plan) in &self.cfg.usage_plans {
            let p = KeyPath::root().key("usage_plans").key(name);
            for (i, target) in plan.stages.iter().enumerate() {
                self.stage_ref(target, &p.key("stages").index(i));
                // The plan's levels apply once per request whatever the list says.
                if let Some(first) = plan.stages[..i].iter().position(|s| s == target) {
                    let at = p.key("stages").index(i);
                    self.error(
                        &at,
                        format!("{} is listed twice, also stages[{first}]", shown(target)),
                    );
                }
            }
        }
    }

    fn api_keys(&mut self) {
        let keys = &self.cfg.api_keys;
        for (i, key) in keys.iter().enumerate() {
            let p = KeyPath::root().key("api_keys").index(i);
            if let Some(plan) = &key.plan {
                if !self.cfg.usage_plans.iter().any(|(n, _)| n == plan) {
                    self.error(
                        &p.key("plan"),
                        format!("no usage plan named {}", shown(plan)),
                    );
                }
            }
            if let Some(why) = crate::global::registry::name_problem(&key.name) {
                self.error(&p.key("name"), why);
            } else if let Some(first) = keys[..i].iter().position(|k| k.name == key.name) {
                self.error(
                    &p.key("name"),
                    format!(
                        "duplicate name {}, also api_keys[{first}]",
                        shown(&key.name)
                    ),
                );
            }
            // The value is a secret: say which entries clash, never what they contain.
            if key.value.is_empty() {
                self.error(&p.key("value"), "is empty");
            } else if key.value.len() < 20
                || key.value.len() > 128
                || !key.value.bytes().all(|b| b.is_ascii_graphic())
            {
                // As the admin API and API Gateway require; spaces could never match,
                // since the header's value is trimmed.
                self.error(
                    &p.key("value"),
                    "must be 20 to 128 printable ASCII characters, without spaces",
                );
            } else if let Some(first) = keys[..i].iter().position(|k| k.value == key.value) {
                self.error(&p.key("value"), format!("same value as api_keys[{first}]"));
            }
        }
    }
}

/// Whether two listen addresses take some of the same connections: the same port, and
/// the same address or a wildcard covering the other. Listeners leave IPV6_V6ONLY at the
/// system's default, which on Linux (`net.ipv6.bindv6only = 0`) makes `[::]` dual-stack:
/// it covers IPv4 addresses too. `[::ffff:a.b.c.d]` is `a.b.c.d`.
pub(crate) fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    let (x, y) = (plain(a.ip()), plain(b.ip()));
    let covers = |wild: std::net::IpAddr, other: std::net::IpAddr| {
        wild.is_unspecified() && (wild.is_ipv6() || other.is_ipv4())
    };
    a.port() == b.port() && (x == y || covers(x, y) || covers(y, x))
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as the IPv4 address it is.
fn plain(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// One address however written: `[::ffff:127.0.0.1]:80` is `127.0.0.1:80` (two listeners
/// of one kind on it bound twice).
fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && plain(a.ip()) == plain(b.ip())
}

/// Whether some `Authorization: Bearer` value can present `token`: the router compares
/// the value with its outer blanks trimmed, and a header value carries no control
/// character but tab. A token from `${env:NAME}` set from a file can end in a newline.
fn token_can_match(token: &str) -> bool {
    token.trim_matches([' ', '\t']).len() == token.len()
        && !token.bytes().any(|b| b.is_ascii_control() && b != b'\t')
}

/// Why a path (with any query) written byte for byte on a request line holds a byte that
/// no request-target may: RFC 3986 allows none of `" < > \ ^ ` { } |` in a path or query,
/// and `[ ]` only around an IPv6 host. A backend refuses it with 400 or reads it its own
/// way; an `overwrite:path` sends the same characters percent-encoded (`%7C`), a path
/// written in the config as it is.
pub(crate) fn target_byte_problem(target: &str) -> Option<String> {
    let b = target.bytes().find(|b| b"\"<>\\^`{}|[]".contains(b))?;
    Some(format!(
        "has `{}` (one of \" < > \\ ^ ` {{ }} | [ ], which no request-target may hold, RFC 3986), which would be sent as it is: percent-encode it (%{b:02X})",
        b as char
    ))
}
