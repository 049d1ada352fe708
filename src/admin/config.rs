//! `GET /metrics`, `POST /reload`, `GET /config`, `GET /routes`: thin routes over what the metrics
//! registry and the reload module already do.

use serde_json::json;

use super::http::{Request, Response};
use super::routes::Params;
use super::AdminCtx;
use crate::runtime::reload;

/// Prometheus text (public, like `/health`).
pub fn metrics(_: &AdminCtx, _: &Request, _: &Params) -> Response {
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4",
        headers: Vec::new(),
        body: {
            let mut text = crate::metrics::registry().render();
            let hash = crate::cluster::config_hash();
            match crate::cluster::get() {
                Some(c) => c
                    .metrics
                    .render(&mut text, !c.healthy(), c.nodes(), &c.node, &hash),
                None => crate::cluster::config_info(&mut text, &hash, None),
            }
            text.into_bytes()
        },
    }
}

/// Re-reads the config file: 200 with the new generation and its warnings, or 400 with
/// every error and the warnings (the running config stays).
pub fn reload(_: &AdminCtx, _: &Request, _: &Params) -> Response {
    let list = |errors: &[crate::config::ConfigError]| -> Vec<_> {
        errors
            .iter()
            .map(|e| json!({ "path": e.path, "message": e.message }))
            .collect()
    };
    if crate::runtime::shutdown::stop_requested() {
        return Response::message(503, "Portico is stopping: the config is not reloaded");
    }
    match reload::reload() {
        Ok(done) => Response::json(
            200,
            &json!({
                "message": "Reloaded",
                "generation": done.generation,
                "warnings": list(&done.warnings),
            }),
        ),
        Err(refused) => Response::json(
            400,
            &json!({
                "message": "Config not reloaded",
                "errors": list(&refused.errors.0),
                "warnings": list(&refused.warnings),
            }),
        ),
    }
}

/// What the running config serves, as `portico routes --json` prints it.
pub fn routes(_: &AdminCtx, _: &Request, _: &Params) -> Response {
    match reload::current() {
        Some((_, snap)) => {
            Response::json_bytes(200, crate::config::served::to_json(&snap.served, false))
        }
        None => Response::message(503, "no config installed"),
    }
}

/// The running config as JSON, secrets redacted.
pub fn config(_: &AdminCtx, _: &Request, _: &Params) -> Response {
    match reload::current() {
        Some((_, snap)) => Response::json(200, &snap.view),
        None => Response::message(503, "no config installed"),
    }
}
