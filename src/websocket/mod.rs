//! WebSocket APIs (API Gateway's second API type): the IO-free frame codec (`frame`), the
//! handshake's accept key (`sha1`), route selection on messages (`select`), one session
//! per client connection (`session`: the handshake, lifecycle written there; `open`:
//! the open connection), and the `@connections`
//! management API (`manage` on the stage endpoint) with the per-worker connection
//! registry (`connections`; `across_nodes` in a cluster); what a session does with each message is `deliver`.
//! Integrations are called by `call`, Lambda events built by `event`, the handshake's
//! other parts (the `$connect` authorizer among them) are in `handshake`.

pub mod across_nodes;
pub mod call;
pub mod connections;
mod deliver;
pub mod event;
pub mod frame;
mod handshake;
mod log;
mod manage;
pub mod open;
pub mod select;
pub mod session;
pub mod sha1;

use std::time::Duration;

use crate::config::model::{Api, BinaryFrames};

/// A WebSocket API as the sessions use it. Routes are indexed like the API's routes (and
/// each stage's integrations).
#[derive(Debug)]
pub struct WsApiRt {
    pub selection: select::Selection,
    pub connect: Option<u32>,
    pub disconnect: Option<u32>,
    pub default: Option<u32>,
    /// Custom route keys (action names) → route.
    pub keys: Vec<(String, u32)>,
    /// Indexed by route: the integration's answer goes back to the client.
    pub route_response: Vec<bool>,
    pub limits: frame::Limits,
    pub idle: Duration,
    pub max_duration: Duration,
    pub binary_base64: bool,
}

impl WsApiRt {
    /// From a validated API (a selection expression that fails to compile was reported
    /// by validation; here it falls back to the default).
    pub fn compile(api: &Api) -> WsApiRt {
        let ws = &api.websocket;
        let mut rt = WsApiRt {
            selection: select::Selection::compile(&ws.route_selection_expression)
                .or_else(|_| select::Selection::compile("$request.body.action"))
                .expect("the default expression compiles"),
            connect: None,
            disconnect: None,
            default: None,
            keys: Vec::new(),
            route_response: api.routes.iter().map(|(_, r)| r.route_response).collect(),
            limits: frame::Limits {
                frame: usize::try_from(ws.limits.frame).unwrap_or(usize::MAX),
                message: usize::try_from(ws.limits.message).unwrap_or(usize::MAX),
            },
            idle: ws.limits.idle,
            max_duration: ws.limits.max_duration,
            binary_base64: ws.binary_frames == BinaryFrames::Base64,
        };
        for (i, (key, _)) in api.routes.iter().enumerate() {
            let i = i as u32;
            match key.as_str() {
                "$connect" => rt.connect = Some(i),
                "$disconnect" => rt.disconnect = Some(i),
                "$default" => rt.default = Some(i),
                _ => rt.keys.push((key.clone(), i)),
            }
        }
        rt
    }

    /// The route for a message (None: no route and no `$default`).
    pub fn route_for(&self, message: &[u8]) -> Option<u32> {
        match self.selection.evaluate(message) {
            Some(key) if key == "$default" => self.default,
            Some(key) => self
                .keys
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, i)| *i)
                .or(self.default),
            None => self.default,
        }
    }
}
