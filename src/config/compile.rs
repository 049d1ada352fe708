//! Config → immutable runtime tables (the snapshot every worker reads through an `Arc`).
//! Everything that can be decided before a request arrives is decided here: stage
//! variables substituted, upstream names turned into indices, path templates split into
//! literal and parameter parts, mock responses encoded to bytes, parameter mappings and
//! CORS parsed into the pipeline's tables, Lambda function urls resolved to pool entries.

use std::time::Duration;

use super::model::{self, Config, PayloadFormat};
use crate::metrics::log_format::LogFormat;
use crate::metrics::RouteLabels;
use crate::pipeline::compress::CompressRt;
use crate::pipeline::cors::CorsRt;
use crate::pipeline::params::RequestMap;
use crate::pipeline::response::ResponseMap;
use crate::router::{parse_route_key, BasePaths, RouteTable, Router, StageRef};

mod integrations;
use integrations::integration;
pub(crate) use integrations::lambda;
pub use integrations::substitute;

/// The runtime form of a config file.
#[derive(Debug)]
pub struct Snapshot {
    pub server: model::Server,
    pub watch: bool,
    /// None when access logging is off.
    pub access_log: Option<LogFormat>,
    /// The file as `GET /config` shows it (secrets redacted); set by whoever loaded it.
    pub view: serde_json::Value,
    /// Hex SHA-256 prefix of the file's text (`/health`, metrics, cluster drift check);
    /// set by whoever loaded it.
    pub config_hash: String,
    pub router: Router,
    pub apis: Vec<ApiRt>,
    pub upstreams: Vec<UpstreamRt>,
    /// Throttles, usage plans, API key digests (config/traffic.rs).
    pub traffic: super::traffic::TrafficRt,
    /// Labels of every (api, stage, route), indexed by `StageRt::metric_base + route`.
    pub metric_labels: Vec<RouteLabels>,
    /// TLS termination for `server.tls_listen`; None when no domain has a certificate.
    pub tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
    /// What is served, for `GET /routes` and the startup log.
    pub served: Vec<super::served::StageServed>,
    /// WebSocket API stages as (api, stage, URLs, route count), for the startup log.
    pub served_websocket: Vec<(String, String, Vec<String>, usize)>,
    /// The config this was compiled from (OpenAPI export of the served APIs).
    pub source: std::sync::Arc<Config>,
    /// Some API is a WebSocket API (requests look up their stage before routing).
    pub websocket_apis: bool,
    /// The region in execute-api ARNs (`iam.region`, default us-east-1).
    pub auth_region: String,
    /// SigV4 principals (`iam`), empty without.
    pub iam: crate::auth::sigv4::Principals,
}

#[derive(Debug)]
pub struct ApiRt {
    pub name: String,
    pub routes: Vec<RouteRt>,
    pub stages: Vec<StageRt>,
    pub cors: Option<Box<CorsRt>>,
    /// Response compression (the API's own setting, else the server's); None: off.
    pub compression: Option<Box<CompressRt>>,
    /// `gateway_responses`; None when the API customises none.
    pub gateway_responses: Option<Box<crate::pipeline::gateway_responses::GatewayResponsesRt>>,
    /// `protocol: websocket`: its stages answer WebSocket handshakes and `@connections`.
    pub websocket: Option<Box<crate::websocket::WsApiRt>>,
    /// Authorizers and what each route requires.
    pub auth: crate::auth::ApiAuth,
}

#[derive(Debug)]
pub struct RouteRt {
    /// As written in the config: "GET /users/{id}" or "$default".
    pub key: String,
    /// The path of the route key ("/users/{id}"), or "$default": `$context.resourcePath`.
    pub path: String,
    /// Names of the captured parameters, in the order the router reports values.
    pub param_names: Vec<String>,
    /// Request validation; None when the route validates nothing.
    pub check: Option<Box<crate::pipeline::validate::RouteCheck>>,
}

#[derive(Debug)]
pub struct StageRt {
    pub name: String,
    pub variables: Vec<(String, String)>,
    /// This stage's routes' metric cells start here in `Snapshot::metric_labels`.
    pub metric_base: usize,
    /// Indexed by route id.
    pub integrations: Vec<IntegrationRt>,
    /// Response parameter mappings, indexed by route id.
    pub responses: Vec<Option<Box<ResponseMap>>>,
    pub canary: Option<CanaryRt>,
    /// The response cache, when the stage has `cache`.
    pub cache: Option<crate::pipeline::cache::StageCacheRt>,
}

/// The canary side of a stage: the same routes built with the canary's variables.
#[derive(Debug)]
pub struct CanaryRt {
    pub percent: f64,
    /// The stage's variables with the canary's overrides applied.
    pub variables: Vec<(String, String)>,
    pub integrations: Vec<IntegrationRt>,
    pub responses: Vec<Option<Box<ResponseMap>>>,
}

#[derive(Debug)]
pub enum IntegrationRt {
    Http(HttpIntegration),
    Mock(MockResponse),
    Lambda(LambdaIntegration),
    /// Known broken only per stage (e.g. a stage variable naming no upstream): 500.
    Misconfigured(String),
}

#[derive(Debug)]
pub struct HttpIntegration {
    pub upstream: usize,
    /// None: forward the request path that follows the stage's base path.
    pub path: Option<Vec<PathPart>>,
    pub timeout: Duration,
    /// Request parameter mapping; None keeps the plain encoder.
    pub map: Option<Box<RequestMap>>,
    /// `Upgrade` protocol names passed through (integration::tunnel); empty: none.
    pub upgrade: Box<[Box<[u8]>]>,
    /// How long a tunnel may carry no byte either way.
    pub tunnel_idle: Duration,
}

#[derive(Debug)]
pub struct LambdaIntegration {
    /// The function endpoint, as an entry of `Snapshot::upstreams` (per-worker pools).
    pub upstream: usize,
    pub format: PayloadFormat,
    pub timeout: Duration,
    /// "POST {path} HTTP/1.1", host and content-type lines, each ending in CRLF.
    pub head: Box<[u8]>,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPart {
    Literal(Box<[u8]>),
    /// Index into the route's captured parameters.
    Param(usize),
}

#[derive(Debug)]
pub struct MockResponse {
    pub status: u16,
    /// Status line and configured headers, each ending in CRLF, without the final CRLF.
    pub head: Box<[u8]>,
    /// The config's own bytes, shared by every stage, when they name no stage variable.
    pub body: std::sync::Arc<[u8]>,
    /// The configured headers, for responses that mapping or CORS edit.
    pub headers: Vec<MockHeader>,
}

/// A mock's header name and value.
pub type MockHeader = (Box<[u8]>, Box<[u8]>);

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRt {
    pub name: String,
    /// As written; their addresses are in `addrs`.
    pub targets: Vec<model::Target>,
    /// Every address of every target, republished when a host name's answer changes
    /// (the same handle across reloads while the targets stay).
    pub addrs: std::sync::Arc<crate::upstream::resolve::Addresses>,
    pub balance: model::Balance,
    pub connect_timeout: Duration,
    pub pool: model::Pool,
    /// `https://` targets: how to reach them (compared by settings across reloads).
    pub tls: Option<std::sync::Arc<crate::tls::ClientTls>>,
    /// Active health checks (each endpoint's state is in `addrs`).
    pub health_check: Option<model::Health>,
    /// A Lambda function endpoint's pool, made by the compiler: only such pools are
    /// shared by function calls, so a user upstream that happens to carry the same name
    /// can never receive a function's events (or an authorizer's tokens).
    pub internal: bool,
}

impl UpstreamRt {
    /// The Host header sent to target `i`: its TLS server name when that is a DNS name,
    /// else `ip:port` for an address, else the host name as written (`localhost` too; with the port
    /// unless it is the scheme's default), as nginx sends `proxy_pass`'s host.
    pub fn host_header(&self, i: usize) -> String {
        let t = &self.targets[i];
        if let Some(h) = self.tls.as_ref().and_then(|tls| tls.host_header(i, t.port)) {
            return h;
        }
        // `localhost` has an address (never looked up) but is a name: sent as written.
        match t.addr {
            Some(addr) if t.host.parse::<std::net::IpAddr>().is_ok() => addr.to_string(),
            _ if t.port == 80 && self.tls.is_none() => t.host.clone(),
            _ => format!("{}:{}", t.host, t.port),
        }
    }

    fn new(
        name: &str,
        u: &model::Upstream,
        tls: Option<std::sync::Arc<crate::tls::ClientTls>>,
    ) -> UpstreamRt {
        UpstreamRt {
            name: name.to_string(),
            targets: u.targets.clone(),
            addrs: crate::upstream::resolve::addresses_for(
                name,
                &u.targets,
                u.health.as_ref(),
                u.resolve_every,
            ),
            balance: u.balance,
            connect_timeout: u.connect_timeout,
            pool: u.pool.clone(),
            tls,
            health_check: u.health.clone(),
            internal: false,
        }
    }
}

/// Builds the runtime tables. The config must have passed validation; anything still
/// unresolvable per stage becomes `IntegrationRt::Misconfigured` rather than a panic.
pub fn compile(cfg: &Config) -> Snapshot {
    // New host names are looked up before their upstreams are built (bounded wait).
    crate::upstream::resolve::at_load(&cfg.upstreams);
    let mut upstreams: Vec<UpstreamRt> = cfg
        .upstreams
        .iter()
        .enumerate()
        .map(|(i, (name, u))| UpstreamRt::new(name, u, cfg.tls.upstreams.get(i).cloned().flatten()))
        .collect();

    let mut tables = Vec::new();
    let mut apis = Vec::new();
    let mut metric_labels = Vec::new();
    let mut default_endpoint = BasePaths::default();
    for (api_idx, (api_name, api)) in cfg.apis.iter().enumerate() {
        let mut table = RouteTable::default();
        let mut routes = Vec::new();
        for (id, (key, route)) in api.routes.iter().enumerate() {
            let path = key.split_once(' ').map_or(key.as_str(), |(_, p)| p);
            // WebSocket route keys are not HTTP routes ($default would parse as one).
            let parsed = match api.protocol {
                model::Protocol::Http => parse_route_key(key),
                model::Protocol::Websocket => Err(String::new()),
            };
            let param_names = match parsed {
                Ok(parsed) => {
                    table.insert(&parsed, id as u32);
                    parsed.params().into_iter().map(String::from).collect()
                }
                Err(_) => Vec::new(),
            };
            routes.push(RouteRt {
                key: key.clone(),
                path: path.to_string(),
                check: crate::pipeline::validate::RouteCheck::compile(
                    &route.validation,
                    &param_names,
                    &api.defs.models,
                ),
                param_names,
            });
        }
        let mut stages = Vec::new();
        for (stage_idx, (stage_name, stage)) in api.stages.iter().enumerate() {
            let stage_ref = StageRef {
                api: api_idx as u32,
                stage: stage_idx as u32,
            };
            let base = if stage_name == "$default" {
                ""
            } else {
                stage_name.as_str()
            };
            if !api.disable_default_endpoint {
                default_endpoint.insert(base, stage_ref);
            }
            let canary = stage.canary.as_ref().map(|c| {
                let mut vars = stage.variables.clone();
                for (k, v) in &c.variables {
                    match vars.iter_mut().find(|(n, _)| n == k) {
                        Some(slot) => slot.1 = v.clone(),
                        None => vars.push((k.clone(), v.clone())),
                    }
                }
                let (integrations, responses) =
                    build_side(api, &routes, &vars, cfg, &mut upstreams);
                CanaryRt {
                    percent: c.percent,
                    variables: vars,
                    integrations,
                    responses,
                }
            });
            let (integrations, responses) =
                build_side(api, &routes, &stage.variables, cfg, &mut upstreams);
            let metric_base = metric_labels.len();
            metric_labels.extend(api.routes.iter().map(|(key, _)| RouteLabels {
                api: api_name.clone(),
                stage: stage_name.clone(),
                route: key.clone(),
            }));
            let cache = crate::pipeline::cache::rules::compile_stage(
                api,
                (api_name, stage_name),
                stage,
                &routes,
                &integrations,
                &cfg.upstreams,
            );
            stages.push(StageRt {
                name: stage_name.clone(),
                variables: stage.variables.clone(),
                metric_base,
                integrations,
                responses,
                canary,
                cache,
            });
        }
        tables.push(table);
        apis.push(ApiRt {
            name: api_name.clone(),
            routes,
            stages,
            cors: api.cors.as_ref().map(|c| Box::new(CorsRt::compile(c))),
            compression: match &api.compression {
                Some(own) => own.as_ref(),
                None => cfg.server.compression.as_ref(),
            }
            .map(|c| Box::new(CompressRt::compile(c))),
            gateway_responses: crate::pipeline::gateway_responses::GatewayResponsesRt::compile(
                &api.defs.gateway_responses,
            ),
            websocket: (api.protocol == model::Protocol::Websocket)
                .then(|| Box::new(crate::websocket::WsApiRt::compile(api))),
            auth: crate::auth::ApiAuth::compile(api_name, api, &mut upstreams),
        });
    }

    // A stage (or API) without a cache in this config forgets its routes' epochs, so its
    // entries are not served again if a later config caches it as before.
    let cached: Vec<(&str, &str)> = (apis.iter())
        .flat_map(|a| {
            (a.stages.iter())
                .filter(|s| s.cache.is_some())
                .map(move |s| (a.name.as_str(), s.name.as_str()))
        })
        .collect();
    crate::pipeline::cache::forget_uncached_stages(&cached);
    let mut router = Router::new(tables);
    *router.default_endpoint_mut() = default_endpoint;
    for (host, domain) in &cfg.domains {
        let mut paths = BasePaths::default();
        for (base, target) in &domain.mappings {
            if let Some(stage) = find_stage(&apis, target) {
                paths.insert(base, stage);
            }
        }
        router.add_domain(host, paths);
    }
    Snapshot {
        websocket_apis: apis.iter().any(|a| a.websocket.is_some()),
        tls: cfg.tls.server.clone(),
        server: cfg.server.clone(),
        watch: cfg.watch,
        view: serde_json::Value::Null,
        config_hash: String::new(),
        access_log: (cfg.server.access_log.path != model::LogPath::Off)
            .then(|| LogFormat::compile(&cfg.server.access_log.format)),
        router,
        apis,
        upstreams,
        traffic: super::traffic::compile(cfg),
        metric_labels,
        served: super::served::stages(cfg),
        served_websocket: super::served::websocket_stages(cfg),
        source: std::sync::Arc::new(cfg.clone()),
        auth_region: cfg
            .iam
            .as_ref()
            .map_or(super::auth::DEFAULT_REGION, |i| i.region.as_str())
            .to_string(),
        iam: crate::auth::sigv4::Principals::compile(cfg.iam.as_ref()),
    }
}

fn find_stage(apis: &[ApiRt], target: &str) -> Option<StageRef> {
    let (api, stage) = target.split_once('/')?;
    let a = apis.iter().position(|a| a.name == api)?;
    let s = apis[a].stages.iter().position(|s| s.name == stage)?;
    Some(StageRef {
        api: a as u32,
        stage: s as u32,
    })
}

type Side = (Vec<IntegrationRt>, Vec<Option<Box<ResponseMap>>>);

/// The integrations and response mappings of every route, for one set of stage variables
/// (a stage, or its canary).
fn build_side(
    api: &model::Api,
    routes: &[RouteRt],
    vars: &[(String, String)],
    cfg: &Config,
    upstreams: &mut Vec<UpstreamRt>,
) -> Side {
    let mut integrations = Vec::with_capacity(routes.len());
    let mut responses = Vec::with_capacity(routes.len());
    for ((_, route), rt) in api.routes.iter().zip(routes) {
        let mut i = integration(route, vars, rt, cfg, upstreams);
        let resp = ResponseMap::compile(&route.response_parameters, vars, &rt.param_names)
            .unwrap_or_else(|e| {
                i = IntegrationRt::Misconfigured(format!("response_parameters: {e}"));
                None
            });
        integrations.push(i);
        responses.push(resp);
    }
    (integrations, responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What validation reports can still reach compile (a config that skipped `check`):
    /// each stage that lacks a variable gets a route that answers 500, not a panic.
    #[test]
    fn missing_stage_variables_become_misconfigured_routes() {
        let cfg = crate::config::load::load_str(
            r#"
apis:
  a:
    stages:
      good: { variables: { v: "1", fn: "127.0.0.1:9" } }
      bad: {}
    routes:
      "GET /m": { integration: { type: mock, body: "${stageVariables.v}" } }
      "GET /f": { integration: { type: lambda, url: "http://${stageVariables.fn}/" } }
      "GET /h":
        integration: { type: mock }
        response_parameters: { "200": { "overwrite:header.x": "$stageVariables.v" } }
"#,
        )
        .unwrap();
        let snap = compile(&cfg);
        let stages = &snap.apis[0].stages;
        for i in &stages[0].integrations {
            assert!(!matches!(i, IntegrationRt::Misconfigured(_)), "{i:?}");
        }
        for i in &stages[1].integrations {
            assert!(matches!(i, IntegrationRt::Misconfigured(_)), "{i:?}");
        }
        // The function endpoint became a pool entry of its own.
        assert_eq!(snap.upstreams.last().unwrap().name, "lambda 127.0.0.1:9");
    }

    /// A user upstream named like a function endpoint's pool is not that pool: the
    /// function's calls (and its authorizer's tokens) go to the function, never to the
    /// upstream's targets.
    #[test]
    fn function_pools_are_never_user_upstreams() {
        let cfg = crate::config::load::load_str(
            r#"
upstreams:
  "lambda 127.0.0.1:9": { targets: ["127.0.0.1:7"] }
apis:
  a:
    stages: { $default: {} }
    routes:
      "GET /f": { integration: { type: lambda, url: "http://127.0.0.1:9/fn" } }
"#,
        )
        .unwrap();
        let snap = compile(&cfg);
        let IntegrationRt::Lambda(l) = &snap.apis[0].stages[0].integrations[0] else {
            panic!("{:?}", snap.apis[0].stages[0].integrations[0]);
        };
        assert_ne!(l.upstream, 0);
        let pool = &snap.upstreams[l.upstream];
        assert!(pool.internal && !snap.upstreams[0].internal);
        assert_eq!(pool.targets[0].port, 9);
    }
}
