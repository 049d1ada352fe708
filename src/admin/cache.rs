//! `POST /cache/flush?api=&stage=`: empties a stage's response cache on every worker.
//! The flush itself is `pipeline::cache::flush` (a counter each worker compares before
//! its next lookup); this route only checks that the running config caches that stage.

use serde_json::json;

use super::http::{Request, Response};
use super::routes::Params;
use super::AdminCtx;
use crate::runtime::reload;

pub fn flush(_: &AdminCtx, req: &Request, _: &Params) -> Response {
    let (Some(api), Some(stage)) = (
        req.query("api").filter(|a| !a.is_empty()),
        req.query("stage").filter(|s| !s.is_empty()),
    ) else {
        return Response::message(400, "api and stage are required");
    };
    let cached = reload::current().is_some_and(|(_, snap)| {
        snap.apis.iter().any(|a| {
            a.name == api
                && a.stages
                    .iter()
                    .any(|s| s.name == stage && s.cache.is_some())
        })
    });
    if !cached || !crate::pipeline::cache::flush(api, stage) {
        return Response::message(404, &format!("no stage {api}/{stage} with a cache"));
    }
    if let Some(c) = crate::cluster::get() {
        // The other nodes see the generation move at their next sync.
        if let Err(e) = crate::cluster::admin::flush_cache(c, api, stage) {
            let e = crate::cluster::admin::Failure(&e);
            tracing::error!(error = %e, "admin: cannot flush the cache on the other nodes");
            return Response::message(
                503,
                "flushed on this node only: the cluster's Redis is unavailable",
            );
        }
    }
    // As API Gateway's FlushStageCache: accepted; each worker drops its entries before
    // its next lookup in the stage (an idle one within 50 ms).
    Response::json(
        202,
        &json!({ "message": "Flushed", "api": api, "stage": stage }),
    )
}
