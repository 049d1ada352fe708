//! Portico: a self-hosted API gateway and edge proxy. See docs/ARCHITECTURE.md for the shape:
//! pinned thread-per-core workers (runtime) accept connections (server::conn), route them
//! (router) and run their integration (integration), which uses per-worker upstream pools
//! (upstream). The config is compiled once into an immutable snapshot (config).

pub mod admin;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod global;
pub mod http1;
pub mod integration;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod router;
pub mod runtime;
pub mod server;
pub mod stdout;
pub mod store;
pub mod tls;
pub mod upstream;
pub mod websocket;
