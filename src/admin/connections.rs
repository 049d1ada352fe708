//! `POST · GET · DELETE /@connections/{id}` on the admin listener: the WebSocket
//! management API behind the admin token, for callers that are not on this host. The
//! admin thread hands each call to the worker that owns the connection
//! (websocket::connections) and waits for its answer.

use super::http::{Request, Response};
use super::routes::Params;
use super::AdminCtx;
use crate::websocket::connections::{self, Op, Reply};

pub fn post(_: &AdminCtx, req: &Request, p: &Params) -> Response {
    if req.body.len() > connections::MAX_POST {
        return answer(connections::too_long());
    }
    call(p, Op::Post(req.body.clone()))
}

pub fn get(_: &AdminCtx, _: &Request, p: &Params) -> Response {
    call(p, Op::Get)
}

pub fn delete(_: &AdminCtx, _: &Request, p: &Params) -> Response {
    call(p, Op::Delete)
}

fn call(p: &Params, op: Op) -> Response {
    let id = p.get("id").unwrap_or_default();
    answer(connections::reply(
        crate::websocket::across_nodes::manage_blocking(id, op),
    ))
}

pub(super) fn answer(r: Reply) -> Response {
    let mut out = Response::empty(r.status);
    out.body = r.body;
    match r.error_type {
        Some(t) => out.with_header("x-amzn-ErrorType", t.to_string()),
        None => out,
    }
}
