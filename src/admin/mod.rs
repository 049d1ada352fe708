//! The admin API on its own listener (docs/ARCHITECTURE.md, Admin API): health, metrics,
//! reload, config, API keys, usage, cache flush. It runs on its own thread, never on a
//! worker, and reaches the workers only through the shared state they read (the key table,
//! usage counters, metric cells).

pub mod cache;
pub mod config;
pub mod http;
pub mod keys;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod usage;

use std::sync::Arc;

use crate::config::compile::Snapshot;
use crate::global::Shared;
pub use server::AdminHandle;

/// What handlers can see. (The running config is `runtime::reload::current()`: it
/// changes on reload, so handlers ask for it rather than keep one.)
pub struct AdminCtx {
    pub shared: Arc<Shared>,
    pub workers: usize,
    pub driver: &'static str,
    token: Option<String>,
}

/// Starts the admin listener if the config has an `admin:` section.
pub fn start(
    snapshot: &Arc<Snapshot>,
    shared: &Arc<Shared>,
    workers: usize,
    driver: &'static str,
) -> std::io::Result<Option<AdminHandle>> {
    let Some(admin) = &snapshot.traffic.admin else {
        return Ok(None);
    };
    let ctx = AdminCtx {
        shared: shared.clone(),
        workers,
        driver,
        token: admin.token.clone(),
    };
    server::start(ctx, admin.listen).map(Some)
}
