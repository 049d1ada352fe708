//! `GET /apis/{api}/openapi?stage=&extensions=`: the running config's API as OpenAPI 3.0,
//! as `portico openapi export` prints it.

use super::http::{Request, Response};
use super::routes::Params;
use super::AdminCtx;
use crate::openapi::export::{self, Extensions};
use crate::runtime::reload;

pub fn export(_: &AdminCtx, req: &Request, params: &Params) -> Response {
    let Some((_, snap)) = reload::current() else {
        return Response::message(503, "no config installed");
    };
    let api = params.get("api").unwrap_or_default();
    let Some(stage) = req.query("stage") else {
        return Response::message(400, "stage is required (?stage=NAME)");
    };
    let ext = match Extensions::parse(req.query("extensions").unwrap_or("apigateway")) {
        Ok(e) => e,
        Err(e) => return Response::message(400, &e),
    };
    let websocket =
        snap.source.apis.iter().any(|(name, a)| {
            name == api && a.protocol == crate::config::model::Protocol::Websocket
        });
    match export::export(&snap.source, api, stage, ext) {
        Ok(doc) => Response::json(200, &doc),
        // An API that exists but can't be exported is a bad request, as API Gateway's.
        Err(e) if websocket => Response::message(400, &e),
        Err(e) => Response::message(404, &e),
    }
}
