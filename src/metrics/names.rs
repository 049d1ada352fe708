//! Every metric name, once (docs/ARCHITECTURE.md, Metrics).

pub const REQUESTS_TOTAL: &str = "portico_requests_total";
pub const REQUEST_DURATION: &str = "portico_request_duration_seconds";
pub const INTEGRATION_DURATION: &str = "portico_integration_duration_seconds";
pub const THROTTLED_TOTAL: &str = "portico_throttled_total";
pub const CACHE_HITS_TOTAL: &str = "portico_cache_hits_total";
pub const CACHE_MISSES_TOTAL: &str = "portico_cache_misses_total";
pub const CACHE_EVICTIONS_TOTAL: &str = "portico_cache_evictions_total";
pub const CACHE_BYTES: &str = "portico_cache_bytes";
pub const CACHE_ENTRIES: &str = "portico_cache_entries";
pub const UPSTREAM_REQUESTS_TOTAL: &str = "portico_upstream_requests_total";
pub const UPSTREAM_TARGET_UP: &str = "portico_upstream_target_up";
pub const CONNECTIONS_ACTIVE: &str = "portico_connections_active";
pub const WORKERS: &str = "portico_workers";
pub const ACCESS_LOG_DROPPED_TOTAL: &str = "portico_access_log_dropped_total";
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "portico_tls_handshake_failures_total";
pub const TUNNELS_ACTIVE: &str = "portico_tunnels_active";
pub const TUNNEL_BYTES_TOTAL: &str = "portico_tunnel_bytes_total";
pub const WEBSOCKET_CONNECTIONS_ACTIVE: &str = "portico_websocket_connections_active";
pub const WEBSOCKET_CONNECTIONS: &str = "portico_websocket_connections";
pub const WEBSOCKET_MESSAGES_TOTAL: &str = "portico_websocket_messages_total";
pub const WEBSOCKET_CLOSES_TOTAL: &str = "portico_websocket_closes_total";
pub const WEBSOCKET_MANAGEMENT_TOTAL: &str = "portico_websocket_management_total";
pub const AUTHORIZER_REQUESTS_TOTAL: &str = "portico_authorizer_requests_total";
pub const AUTHORIZER_CACHE_HITS_TOTAL: &str = "portico_authorizer_cache_hits_total";
pub const JWKS_FETCHES_TOTAL: &str = "portico_jwks_fetches_total";
