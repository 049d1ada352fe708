//! What a config serves: for every API stage, where it is reached (the default endpoint
//! and custom-domain mappings, as base paths and URL prefixes), and per route its
//! integration and auth. `portico routes` prints it, admin `GET /routes` answers the
//! same JSON for the running config, and the startup log names each stage's URLs.

use super::compile::substitute;
use super::model::{Config, Integration, Protocol};

/// One API stage and the ways in.
#[derive(Debug, Clone, PartialEq)]
pub struct StageServed {
    pub api: String,
    pub stage: String,
    pub entries: Vec<Entry>,
    pub routes: Vec<RouteServed>,
}

/// A way into a stage: a custom domain (None: the default endpoint, any other host) and
/// the base path under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub domain: Option<String>,
    pub base_path: String,
    /// Where a client would send requests, e.g. `http://127.0.0.1:8080/prod`.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteServed {
    pub key: String,
    pub integration: &'static str,
    /// The upstream (stage variables substituted), the function url, or the mock status.
    pub target: String,
    /// An http integration's path template, if it has one.
    pub path: Option<String>,
    pub api_key_required: bool,
    /// The route's authorizer (`iam` for SigV4 routes).
    pub authorizer: Option<AuthServed>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthServed {
    pub name: String,
    /// "jwt", "lambda" or "iam".
    pub kind: &'static str,
    pub scopes: Vec<String>,
}

impl AuthServed {
    fn of(api: &super::model::Api, auth: &super::auth::RouteAuth) -> Option<AuthServed> {
        if auth.iam {
            return Some(AuthServed {
                name: "iam".into(),
                kind: "iam",
                scopes: Vec::new(),
            });
        }
        let name = auth.authorizer.as_ref()?;
        let kind = match api.authorizers.iter().find(|(n, _)| n == name)?.1 {
            super::auth::Authorizer::Jwt(_) => "jwt",
            super::auth::Authorizer::Lambda(_) => "lambda",
        };
        Some(AuthServed {
            name: name.clone(),
            kind,
            scopes: auth.scopes.clone(),
        })
    }
}

/// Every stage something reaches, in file order. WebSocket APIs are left out: their
/// routes are chosen per message, not by method and path ([`websocket_stages`]).
pub fn stages(cfg: &Config) -> Vec<StageServed> {
    // Text as the file writes it, as `GET /config` and OpenAPI export show it: a path or
    // function URL shows `${env:NAME}`, never the credential it keeps out of the file.
    let cfg = cfg.as_written.as_deref().unwrap_or(cfg);
    let mut out = Vec::new();
    for (api_name, api) in &cfg.apis {
        if api.protocol == Protocol::Websocket {
            continue;
        }
        for (stage_name, stage) in &api.stages {
            let entries = entries(cfg, api_name, api, stage_name, false);
            if entries.is_empty() {
                continue;
            }
            let vars = &stage.variables;
            let routes = api
                .routes
                .iter()
                .map(|(key, route)| {
                    let sub = |s: &str| substitute(s, vars).unwrap_or_else(|_| s.to_string());
                    let (integration, target, path) = match &route.integration {
                        Integration::Http { upstream, path, .. } => {
                            ("http", sub(upstream), path.as_deref().map(sub))
                        }
                        Integration::Lambda { url, .. } => ("lambda", sub(url), None),
                        Integration::Mock { status, .. } => {
                            ("mock", format!("status {status}"), None)
                        }
                    };
                    RouteServed {
                        key: key.clone(),
                        integration,
                        target,
                        path,
                        api_key_required: route.api_key_required,
                        authorizer: AuthServed::of(api, &route.auth),
                    }
                })
                .collect();
            out.push(StageServed {
                api: api_name.clone(),
                stage: stage_name.clone(),
                entries,
                routes,
            });
        }
    }
    out
}

/// Every WebSocket API stage something reaches, as (api, stage, `ws://`/`wss://` URLs,
/// route count), for the start's log: a client needs the URL to connect at all.
pub fn websocket_stages(cfg: &Config) -> Vec<(String, String, Vec<String>, usize)> {
    let cfg = cfg.as_written.as_deref().unwrap_or(cfg);
    let mut out = Vec::new();
    for (api_name, api) in cfg
        .apis
        .iter()
        .filter(|(_, a)| a.protocol == Protocol::Websocket)
    {
        for stage_name in api.stages.iter().map(|(name, _)| name) {
            let urls: Vec<String> = (entries(cfg, api_name, api, stage_name, true).into_iter())
                .map(|e| e.url)
                .collect();
            if !urls.is_empty() {
                out.push((api_name.clone(), stage_name.clone(), urls, api.routes.len()));
            }
        }
    }
    out
}

/// The ways into one stage: the default endpoint unless disabled, then each domain
/// mapping that names it. `websocket`: URLs in `ws://`/`wss://`.
fn entries(
    cfg: &Config,
    api_name: &str,
    api: &super::model::Api,
    stage_name: &str,
    websocket: bool,
) -> Vec<Entry> {
    let (scheme, port) = scheme_and_port(cfg);
    let named = |s: &'static str| match (websocket, s) {
        (true, "https") => "wss",
        (true, _) => "ws",
        (false, s) => s,
    };
    let mut entries = Vec::new();
    if !api.disable_default_endpoint {
        let base = if stage_name == "$default" {
            "/".to_string()
        } else {
            format!("/{stage_name}")
        };
        entries.push(Entry {
            domain: None,
            url: format!(
                "{}://{}{}",
                named(scheme),
                default_host(cfg),
                base.trim_end_matches('/')
            ),
            base_path: base,
        });
    }
    let target = format!("{api_name}/{stage_name}");
    for (host, domain) in &cfg.domains {
        for (base, to) in &domain.mappings {
            if *to != target {
                continue;
            }
            let base = format!("/{}", base.trim_matches('/'));
            // A mutual-TLS domain answers only on TLS listeners (elsewhere 421).
            let (s, port) = match &cfg.server.tls_listen.first() {
                Some(tls) if domain.client_ca.is_some() => ("https", port_part(tls, 443)),
                _ => (scheme, port.clone()),
            };
            entries.push(Entry {
                domain: Some(host.clone()),
                url: format!("{}://{host}{port}{}", named(s), base.trim_end_matches('/')),
                base_path: base,
            });
        }
    }
    entries
}

/// Plain listeners serve unless they only redirect to https.
fn scheme_and_port(cfg: &Config) -> (&'static str, String) {
    let s = &cfg.server;
    let (scheme, addr, default_port) = match (s.listen.first(), s.tls_listen.first()) {
        (_, Some(tls)) if s.redirect_https || s.listen.is_empty() => ("https", Some(tls), 443),
        (Some(plain), _) => ("http", Some(plain), 80),
        (None, tls) => ("https", tls, 443),
    };
    (
        scheme,
        addr.map_or_else(String::new, |a| port_part(a, default_port)),
    )
}

/// `:PORT` for a URL, or nothing for the scheme's own port.
fn port_part(addr: &std::net::SocketAddr, default_port: u16) -> String {
    if addr.port() == default_port {
        String::new()
    } else {
        format!(":{}", addr.port())
    }
}

/// The listen address, as a client on this host would reach it.
fn default_host(cfg: &Config) -> String {
    let s = &cfg.server;
    let addr = if s.redirect_https || s.listen.is_empty() {
        s.tls_listen.first().or(s.listen.first())
    } else {
        s.listen.first()
    };
    addr.map_or_else(|| "localhost".into(), |a| a.to_string())
}

/// The JSON of `portico routes --json` and `GET /routes`: one item per way in and route,
/// `{"routes": [...]}`. Written straight from the stages, not through a `Value` tree:
/// at the route limit (100,000 routes) the tree took some 450 MB for 24 MB of JSON.
pub fn to_json(stages: &[StageServed], pretty: bool) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Routes<'a> {
        routes: Items<'a>,
    }
    struct Items<'a>(&'a [StageServed]);
    impl serde::Serialize for Items<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().flat_map(|stage| {
                (stage.entries.iter())
                    .flat_map(move |e| stage.routes.iter().map(move |r| Item::of(stage, e, r)))
            }))
        }
    }
    #[derive(serde::Serialize)]
    struct Item<'a> {
        domain: Option<&'a str>,
        base_path: &'a str,
        url: &'a str,
        api: &'a str,
        stage: &'a str,
        route: &'a str,
        integration: ItemIntegration<'a>,
        auth: ItemAuth<'a>,
    }
    #[derive(serde::Serialize)]
    struct ItemIntegration<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        target: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct ItemAuth<'a> {
        api_key_required: bool,
        authorizer: Option<ItemAuthorizer<'a>>,
    }
    #[derive(serde::Serialize)]
    struct ItemAuthorizer<'a> {
        name: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        scopes: &'a [String],
    }
    impl<'a> Item<'a> {
        fn of(s: &'a StageServed, e: &'a Entry, r: &'a RouteServed) -> Self {
            Item {
                domain: e.domain.as_deref(),
                base_path: &e.base_path,
                url: &e.url,
                api: &s.api,
                stage: &s.stage,
                route: &r.key,
                integration: ItemIntegration {
                    kind: r.integration,
                    target: &r.target,
                    path: r.path.as_deref(),
                },
                auth: ItemAuth {
                    api_key_required: r.api_key_required,
                    authorizer: r.authorizer.as_ref().map(|a| ItemAuthorizer {
                        name: &a.name,
                        kind: a.kind,
                        scopes: &a.scopes,
                    }),
                },
            }
        }
    }
    let doc = Routes {
        routes: Items(stages),
    };
    let written = match pretty {
        true => serde_json::to_vec_pretty(&doc),
        false => serde_json::to_vec(&doc),
    };
    written.expect("routes serialize")
}

/// A table for people: one line per way in and route.
pub fn to_text(stages: &[StageServed]) -> String {
    let mut rows = vec![[
        "DOMAIN",
        "BASE PATH",
        "API",
        "STAGE",
        "ROUTE",
        "INTEGRATION",
        "AUTH",
    ]
    .map(String::from)];
    for s in stages {
        for e in &s.entries {
            for r in &s.routes {
                let mut integration = format!("{} {}", r.integration, r.target);
                if let Some(p) = &r.path {
                    integration.push(' ');
                    integration.push_str(p);
                }
                rows.push([
                    e.domain.clone().unwrap_or_else(|| "*".into()),
                    e.base_path.clone(),
                    s.api.clone(),
                    s.stage.clone(),
                    r.key.clone(),
                    integration,
                    match (&r.authorizer, r.api_key_required) {
                        (None, false) => "none".into(),
                        (None, true) => "api key".into(),
                        (Some(a), key) => {
                            let mut t = if a.kind == "iam" {
                                "iam".to_string()
                            } else {
                                format!("{}:{}", a.kind, a.name)
                            };
                            if !a.scopes.is_empty() {
                                t.push_str(&format!("[{}]", a.scopes.join(",")));
                            }
                            if key {
                                t.push_str(" + api key");
                            }
                            t
                        }
                    },
                ]);
            }
        }
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::load_str;
    use serde_json::json;

    #[test]
    fn stages_with_their_ways_in_and_routes() {
        let cfg = load_str(
            r#"server: { listen: ["127.0.0.1:8080"] }
upstreams:
  users: { targets: ["127.0.0.1:9000"] }
apis:
  shop:
    stages:
      prod: { variables: { backend: users } }
      $default: {}
    routes:
      "GET /users/{id}":
        integration: { type: http, upstream: "${stageVariables.backend}", path: "/u/{id}" }
        api_key_required: true
  hidden:
    disable_default_endpoint: true
    stages: { $default: {} }
    routes:
      "GET /m": { integration: { type: mock, status: 204 } }
  chat:
    protocol: websocket
    stages: { prod: {} }
    routes: {}
domains:
  api.example.com:
    mappings: { "": shop/prod, v2: hidden/$default }
"#,
        )
        .unwrap();
        let s = stages(&cfg);
        let names: Vec<_> = s.iter().map(|s| (&*s.api, &*s.stage)).collect();
        assert_eq!(
            names,
            [
                ("shop", "prod"),
                ("shop", "$default"),
                ("hidden", "$default")
            ]
        );
        let urls: Vec<_> = s[0].entries.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(
            urls,
            ["http://127.0.0.1:8080/prod", "http://api.example.com:8080"]
        );
        assert_eq!(s[1].entries[0].base_path, "/");
        assert_eq!(s[2].entries[0].url, "http://api.example.com:8080/v2");
        assert_eq!(s[0].routes[0].target, "users");
        assert_eq!(s[1].routes[0].target, "${stageVariables.backend}");
        assert_eq!(s[2].routes[0].target, "status 204");
        // The WebSocket API is not among them, but its URL is known for the start's log.
        assert_eq!(
            websocket_stages(&cfg),
            [(
                "chat".to_string(),
                "prod".to_string(),
                vec!["ws://127.0.0.1:8080/prod".to_string()],
                0
            )]
        );

        let j: serde_json::Value = serde_json::from_slice(&to_json(&s, false)).unwrap();
        assert_eq!(j["routes"].as_array().unwrap().len(), 4);
        assert_eq!(
            j["routes"][0],
            json!({"domain": null, "base_path": "/prod", "url": "http://127.0.0.1:8080/prod",
                   "api": "shop", "stage": "prod", "route": "GET /users/{id}",
                   "integration": {"type": "http", "target": "users", "path": "/u/{id}"},
                   "auth": {"api_key_required": true, "authorizer": null}})
        );
        let text = to_text(&s);
        assert!(text.starts_with("DOMAIN"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [
                        "*",
                        "/prod",
                        "shop",
                        "prod",
                        "GET",
                        "/users/{id}",
                        "http",
                        "users",
                        "/u/{id}",
                        "api",
                        "key"
                    ]),
            "{text}"
        );
    }

    #[test]
    fn a_mutual_tls_domain_is_reached_over_tls() {
        let cfg = load_str(
            r#"server: { listen: ["127.0.0.1:8080"], tls_listen: ["127.0.0.1:8443"] }
apis:
  shop:
    stages: { prod: {} }
    routes: { "GET /m": { integration: { type: mock } } }
domains:
  open.example: { cert: a.pem, key: a.key, mappings: { "": shop/prod } }
  secure.example: { cert: a.pem, key: a.key, client_ca: ca.pem, mappings: { v1: shop/prod } }
"#,
        )
        .unwrap();
        let s = stages(&cfg);
        let urls: Vec<_> = s[0].entries.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:8080/prod",
                "http://open.example:8080",
                "https://secure.example:8443/v1"
            ]
        );
    }

    #[test]
    fn routes_show_their_authorizer() {
        let cfg = load_str(
            r#"server: { listen: ["127.0.0.1:8080"] }
iam:
  principals: { r: { access_key_id: AK, secret_access_key: s, allow: ["*"] } }
apis:
  shop:
    stages: { $default: {} }
    authorizers:
      users: { type: jwt, issuer: "https://idp.example", audience: [a] }
      gate: { type: lambda, url: "http://127.0.0.1:9/fn", identity_source: $request.header.x-t }
    routes:
      "GET /me": { authorizer: users, authorization_scopes: [read], api_key_required: true, integration: { type: mock } }
      "GET /g": { authorizer: gate, integration: { type: mock } }
      "GET /i": { authorization: iam, integration: { type: mock } }
"#,
        )
        .unwrap();
        let s = stages(&cfg);
        let j: serde_json::Value = serde_json::from_slice(&to_json(&s, false)).unwrap();
        assert_eq!(
            j["routes"][0]["auth"],
            json!({"api_key_required": true, "authorizer": {"name": "users", "type": "jwt", "scopes": ["read"]}})
        );
        assert_eq!(j["routes"][1]["auth"]["authorizer"]["type"], "lambda");
        assert_eq!(j["routes"][2]["auth"]["authorizer"]["type"], "iam");
        let text = to_text(&s);
        assert!(text.contains("jwt:users[read] + api key"), "{text}");
        assert!(text.contains("lambda:gate"), "{text}");
    }

    /// `GET /routes` and `portico routes` printed what `${env:NAME}` stood for (a token
    /// in an integration path or a function URL's query) where the rest shows the name.
    #[test]
    fn routes_show_env_references_not_their_values() {
        let cfg = crate::config::load::load_str_with_env(
            r#"server: { listen: ["127.0.0.1:${env:PORT}"] }
upstreams:
  echo: { targets: ["127.0.0.1:9000"] }
apis:
  s:
    stages: { prod: {} }
    routes:
      "GET /a": { integration: { type: http, upstream: echo, path: "/x/${env:SECRET}" } }
      "GET /l": { integration: { type: lambda, url: "http://127.0.0.1:9/fn?q=${env:SECRET}" } }
"#,
            &|name| match name {
                "SECRET" => Some("s3cr3t-value".into()),
                "PORT" => Some("8123".into()),
                _ => None,
            },
        )
        .unwrap();
        let s = stages(&cfg);
        let json = String::from_utf8(to_json(&s, false)).unwrap();
        let text = to_text(&s);
        for out in [&json, &text] {
            assert!(!out.contains("s3cr3t-value"), "{out}");
            assert!(out.contains("${env:SECRET}"), "{out}");
        }
        // Addresses are read further, so theirs stand expanded.
        assert!(json.contains("http://127.0.0.1:8123/prod"), "{json}");
    }
}
