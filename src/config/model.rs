//! The config file as typed values (docs/ARCHITECTURE.md, Config file). `load.rs` fills
//! these from YAML, `validate.rs` checks their cross-references, `compile.rs` turns them
//! into runtime tables. Maps keep file order (`Vec<(String, T)>`) where order is visible to
//! users in errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: Server,
    pub admin: Option<Admin>,
    pub state_dir: PathBuf,
    /// Whether the file wrote `state_dir` (else `paths::resolve` picks the default).
    pub state_dir_set: bool,
    pub upstreams: Vec<(String, Upstream)>,
    pub apis: Vec<(String, Api)>,
    pub domains: Vec<(String, Domain)>,
    pub usage_plans: Vec<(String, UsagePlan)>,
    pub api_keys: Vec<ApiKey>,
    /// SigV4 principals and the region of execute-api ARNs (`config::auth`).
    pub iam: Option<super::auth::Iam>,
    /// Reload when the file changes (polled once a second).
    pub watch: bool,
    /// Several nodes sharing limits, quotas, keys, usage and cache flushes through Redis.
    pub cluster: Option<Cluster>,
    /// Certificates and keys named above, read after validation (`crate::tls::load`).
    pub tls: crate::tls::Loaded,
    /// What is valid but not honoured as written (an OpenAPI file's unsupported parts),
    /// each with its key path: printed by `check`, logged at start and on reload.
    pub warnings: Vec<super::ConfigError>,
    /// The config again with its text values as written, `${env:NAME}` unexpanded, when
    /// any named one (None: it is this one): what the OpenAPI export prints, so that a
    /// shared document holds the references, not the credentials they stand for.
    pub as_written: Option<std::sync::Arc<Config>>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: Vec<SocketAddr>,
    pub tls_listen: Vec<SocketAddr>,
    /// The domain whose certificate a TLS client without SNI (or with an unknown name)
    /// gets; None: the first domain with a certificate.
    pub default_domain: Option<String>,
    /// Plain listeners answer every request with a 308 to the https URL.
    pub redirect_https: bool,
    pub workers: Workers,
    pub driver: DriverChoice,
    pub limits: Limits,
    pub access_log: AccessLog,
    /// Account-wide throttle over every routed request; None (the default) is no limit.
    /// API Gateway's account default is 10,000 r/s, burst 5,000: an opt-in here, since a
    /// gateway replacing nginx must not start answering 429 under ordinary load.
    pub throttle: Option<Throttle>,
    /// Response compression for every API that does not set its own; None: off.
    pub compression: Option<Compression>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            tls_listen: Vec::new(),
            default_domain: None,
            redirect_https: false,
            workers: Workers::Auto,
            driver: DriverChoice::Auto,
            limits: Limits::default(),
            access_log: AccessLog::default(),
            throttle: None,
            compression: None,
        }
    }
}

/// `server.compression` / `apis.NAME.compression` (nginx's gzip, API Gateway's
/// minimumCompressionSize).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    /// Responses whose Content-Length is below this stay as they are.
    pub min_size: u64,
    /// Media types compressed: `type/subtype` or `type/*`, lower-case.
    pub types: Vec<String>,
    /// In order of preference when the client accepts several equally.
    pub algorithms: Vec<Coding>,
    /// Responses a worker compresses as they stream at once (each holds an encoder's
    /// state); past it a response goes uncompressed.
    pub max_streams: u64,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            min_size: 1024,
            types: vec!["application/json".into(), "text/*".into()],
            algorithms: vec![Coding::Br, Coding::Gzip],
            max_streams: 64,
        }
    }
}

/// A content coding Portico can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Br,
}

impl Coding {
    /// The token in Accept-Encoding and Content-Encoding.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Br => "br",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Auto,
    Count(usize),
}

impl Workers {
    /// How many workers run: `auto` is one per available core, at most `MAX_WORKERS`.
    pub fn count(self) -> usize {
        match self {
            Workers::Count(n) => n.max(1),
            Workers::Auto => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(crate::config::validate::MAX_WORKERS),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Request line + headers; past it → 431.
    pub max_header_bytes: usize,
    /// Request body; past it → 413.
    pub max_body_bytes: u64,
    /// `http` integrations read a request body this long or shorter whole before they
    /// take a backend connection (nginx's `proxy_request_buffering`); 0: every body
    /// streams.
    pub request_buffer_bytes: u64,
    /// Read buffers of request bodies being read whole (validation, Lambda, IAM), all
    /// connections together; a read past it → 503 (server::body_budget).
    pub max_buffered_bodies_bytes: u64,
    /// Time to receive a whole request head; past it → 408 and close.
    pub header_timeout: Duration,
    /// Keep-alive idle time between requests.
    pub idle_timeout: Duration,
    /// How long in-flight requests may run after SIGTERM.
    pub drain_timeout: Duration,
    /// How long a client may take no byte of what we send (TCP_USER_TIMEOUT on the
    /// listeners, inherited by every connection); 0 leaves the kernel's default.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 10_240,
            max_body_bytes: 10 * 1024 * 1024,
            request_buffer_bytes: 64 * 1024,
            max_buffered_bodies_bytes: 1 << 30,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPath {
    Stdout,
    Off,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AccessLog {
    pub path: LogPath,
    pub format: String,
}

/// API Gateway's default JSON access-log format for HTTP APIs (requestId, ip,
/// requestTime, httpMethod, routeKey, status, protocol, responseLength), plus the path
/// and the latency in ms.
pub const DEFAULT_ACCESS_LOG_FORMAT: &str = concat!(
    r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","#,
    r#""requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","#,
    r#""routeKey":"$context.routeKey","status":"$context.status","#,
    r#""protocol":"$context.protocol","responseLength":"$context.responseLength","#,
    r#""path":"$context.path","responseLatency":"$context.responseLatency"}"#
);

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            path: LogPath::Off,
            format: DEFAULT_ACCESS_LOG_FORMAT.to_string(),
        }
    }
}

/// `cluster:`: see `crate::cluster`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// `redis://host:port[/db]`.
    pub redis: String,
    pub on_failure: OnFailure,
    /// Longest wait for one Redis answer (connect, command), and for a request that
    /// waits on a lease.
    pub timeout: Duration,
    /// This node's name in Redis (usage counts, heartbeats); default host name and the
    /// first listen port.
    pub node: Option<String>,
    /// Limits and quotas below this many requests per window are counted one request
    /// at a time (exact); at or above it, nodes lease chunks.
    pub exact_below: u64,
    /// Prefix of every Redis key, so several gateways can share one Redis.
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Each node enforces limit ÷ live nodes on its own.
    Local,
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
    /// Bearer token for everything but /health and /metrics. None: admin routes refused.
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host:port`, `http://host:port` or `https://host[:port]`; host names are resolved
    /// off the hot path (upstream::resolve).
    pub targets: Vec<Target>,
    /// How often host names are looked up again.
    pub resolve_every: Duration,
    /// The targets are `https://`: TLS to the backend.
    pub https: bool,
    pub tls: UpstreamTls,
    pub balance: Balance,
    pub connect_timeout: Duration,
    pub pool: Pool,
    pub health: Option<Health>,
}

/// One upstream target as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// As written, without brackets: an IP address, `localhost` or a host name (the TLS
    /// server name when `tls.server_name` is not given).
    pub host: String,
    pub port: u16,
    /// The address when the host is an IP address or `localhost` (always 127.0.0.1, not
    /// looked up, so a `::1` entry in /etc/hosts can't send half the requests to a port
    /// nothing listens on); None for a host name to resolve.
    pub addr: Option<SocketAddr>,
}

/// `upstreams.NAME.tls`: how `https://` targets are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// PEM CA bundle; None: the system's roots.
    pub ca: Option<PathBuf>,
    /// The name to send (SNI) and check; None: each target's host.
    pub server_name: Option<String>,
    /// false accepts any certificate (testing only; warned at start).
    pub verify: bool,
    /// Whether the `tls:` section was written at all (an error on plain targets).
    pub given: bool,
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls {
            ca: None,
            server_name: None,
            verify: true,
            given: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    Random,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub max_idle_per_worker: usize,
    pub idle_timeout: Duration,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            max_idle_per_worker: 256,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub path: String,
    pub interval: Duration,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Requests per second; fractions allowed.
    pub rate: f64,
    pub burst: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Websocket,
}

#[derive(Debug, Clone)]
pub struct Api {
    pub protocol: Protocol,
    /// Served only through custom domains, not at `/{stage}` on the default endpoint
    /// (API Gateway's disableExecuteApiEndpoint).
    pub disable_default_endpoint: bool,
    pub throttle: Option<Throttle>,
    pub cors: Option<Cors>,
    /// None: the server's setting; Some(None): `off` for this API.
    pub compression: Option<Option<Compression>>,
    pub stages: Vec<(String, Stage)>,
    /// Route key ("GET /users/{id}", "ANY /x/{proxy+}", "$default") → route.
    pub routes: Vec<(String, Route)>,
    /// API definitions (request validation, gateway responses, OpenAPI): `definitions.rs`.
    pub defs: super::definitions::ApiDefs,
    /// `protocol: websocket` only: route selection, limits, binary frames.
    pub websocket: WebsocketApi,
    /// Name → JWT or Lambda authorizer (`config::auth`).
    pub authorizers: Vec<(String, super::auth::Authorizer)>,
    pub api_key_source: super::auth::ApiKeySource,
}

/// The settings of a WebSocket API (`protocol: websocket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsocketApi {
    /// `$request.body.action`, `${request.body.a}/${request.body.b}` or literal text.
    pub route_selection_expression: String,
    pub limits: WebsocketLimits,
    pub binary_frames: BinaryFrames,
}

impl Default for WebsocketApi {
    fn default() -> Self {
        WebsocketApi {
            route_selection_expression: "$request.body.action".to_string(),
            limits: WebsocketLimits::default(),
            binary_frames: BinaryFrames::Reject,
        }
    }
}

/// API Gateway's WebSocket quotas as defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsocketLimits {
    pub frame: u64,
    pub message: u64,
    pub idle: Duration,
    pub max_duration: Duration,
}

impl Default for WebsocketLimits {
    fn default() -> Self {
        WebsocketLimits {
            frame: 32 * 1024,
            message: 128 * 1024,
            idle: Duration::from_secs(600),
            max_duration: Duration::from_secs(7200),
        }
    }
}

/// What a binary frame from a client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryFrames {
    /// Close 1003, as API Gateway does.
    Reject,
    /// Deliver base64-encoded (`isBase64Encoded: true` in Lambda events).
    Base64,
}

#[derive(Debug, Clone, Default)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct Stage {
    pub variables: Vec<(String, String)>,
    pub throttle: Option<Throttle>,
    pub canary: Option<Canary>,
    pub cache: Option<StageCache>,
}

#[derive(Debug, Clone, Default)]
pub struct Canary {
    /// 0.0–100.0
    pub percent: f64,
    pub variables: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct StageCache {
    pub capacity: u64,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub integration: Integration,
    pub api_key_required: bool,
    pub throttle: Option<Throttle>,
    pub cache: Option<RouteCache>,
    /// "overwrite:header.x" → "$request.header.y", in file order.
    pub parameters: Vec<(String, String)>,
    /// Status code of the integration's response → "overwrite:header.x" → value.
    pub response_parameters: Vec<(String, Vec<(String, String)>)>,
    /// Request validation (`request_validator`, `request_model`, `required_parameters`).
    pub validation: super::definitions::RouteValidation,
    /// WebSocket routes: the integration's answer goes back to the client as a message.
    pub route_response: bool,
    /// Who may call the route (`config::auth`).
    pub auth: super::auth::RouteAuth,
}

#[derive(Debug, Clone)]
pub struct RouteCache {
    /// Default 300 s, at most 3600 s, 0 = off.
    pub ttl: Duration,
    pub key: Vec<String>,
    pub client_invalidation: ClientInvalidation,
    /// Request methods whose responses are cached; empty = GET (and HEAD, answered from
    /// the GET entry).
    pub methods: Vec<String>,
    /// Backend statuses that are cached; empty = 200 only.
    pub statuses: Vec<u16>,
}

/// Whether a request's `Cache-Control: max-age=0` refreshes the cached entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientInvalidation {
    #[default]
    Ignore,
    Allow,
    /// Only requests that carry an API key (`x-api-key`).
    RequireApiKey,
}

#[derive(Debug, Clone)]
pub enum Integration {
    Http {
        /// An upstream name, or a string with `${stageVariables.x}` resolved per stage.
        upstream: String,
        /// Path template with {param}, {proxy} and ${stageVariables.x}; None = the request path.
        path: Option<String>,
        timeout: Duration,
        upgrade: Upgrade,
    },
    Lambda {
        url: String,
        payload_format: PayloadFormat,
        timeout: Duration,
    },
    Mock {
        status: u16,
        headers: Vec<(String, String)>,
        /// Shared: every stage and canary of the route answers with these bytes unless
        /// they name a stage variable (a 1 MB body in 2,000 stages was 2 GB).
        body: std::sync::Arc<str>,
    },
}

/// `integration.upgrade` of an http integration: the `Upgrade` protocols passed through
/// to the backend (a 101 turns the connection into a byte tunnel), and how long such a
/// tunnel may carry no byte either way before it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// Protocol names compared case-insensitively ("websocket", "h2c"); empty: none.
    pub protocols: Vec<String>,
    pub idle_timeout: Duration,
}

impl Default for Upgrade {
    fn default() -> Self {
        Upgrade {
            protocols: vec!["websocket".to_string()],
            idle_timeout: Duration::from_secs(600),
        }
    }
}

pub const DEFAULT_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    V1,
    V2,
}

#[derive(Debug, Clone, Default)]
pub struct Domain {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    /// Base path ("" = root) → "api/stage".
    pub mappings: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct UsagePlan {
    /// "api/stage"
    pub stages: Vec<String>,
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// The largest quota offset, as in API Gateway: a day starts at 00:00 UTC, a week
    /// on Monday + offset days, a month on day 1 + offset.
    pub fn max_offset(self) -> u64 {
        match self {
            Period::Day => 0,
            Period::Week => 6,
            Period::Month => 27,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Quota {
    pub limit: u64,
    pub period: Period,
    pub offset: u64,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    pub value: String,
    pub plan: Option<String>,
}
