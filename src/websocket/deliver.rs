//! What a session does with each message and at its end: the message routed by the
//! config current when it arrives (`current`), the route's throttles passed (a throttled
//! message gets a "Too Many Requests" notice instead), the route's integration called, its
//! answer (with `route_response`) or API Gateway's notice queued, the access-log line and
//! the route's metrics; then `$disconnect`, best effort. The connection loop is
//! `session`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine;
use tracing::warn;

use super::call::{call, Call};
use super::connections;
use super::event;
use super::frame;
use super::open::Session;
use crate::config::compile::IntegrationRt;
use crate::metrics::cells::bump;
use crate::pipeline::admission::admit_message;
use crate::runtime::removed_stages::locate;
use crate::runtime::workers::Generation;

impl Session<'_> {
    /// Where this API and stage are in `g`, if it has them (as a WebSocket API).
    fn locate(&self, g: &Generation) -> Option<(usize, usize)> {
        locate(g, self.api_name, self.stage_name)
    }

    /// The generation a message (or `$disconnect`) is routed by, and this API and stage
    /// in it: the current config when it still has them; else the last one that had
    /// them (the worker's record of the reload that removed them, or the last a message
    /// was routed by, whichever is newer); else (None) the one the connection opened on.
    fn routed_by(&self) -> (Option<Rc<Generation>>, (usize, usize)) {
        let g = self.ctx.generation();
        if let Some(at) = self.locate(&g) {
            let mut last = self.last_seen.borrow_mut();
            if !last.as_ref().is_some_and(|l| Rc::ptr_eq(l, &g)) {
                *last = Some(g.clone());
            }
            return (Some(g), at);
        }
        let recorded = self
            .ctx
            .removed_ws
            .last_with(self.api_name, self.stage_name);
        let last = [recorded, self.last_seen.borrow().clone()]
            .into_iter()
            .flatten()
            .max_by_key(|g| g.number);
        match last.as_ref().and_then(|l| self.locate(l)) {
            Some(at) => (last, at),
            None => (None, self.locate(self.gen).unwrap_or((0, 0))),
        }
    }

    pub(super) async fn on_message(&self, text: bool, data: Vec<u8>) {
        let (held, (a, s)) = self.routed_by();
        let gen = held.as_deref().unwrap_or(self.gen);
        let api = &gen.snap.apis[a];
        let Some(ws) = api.websocket.as_deref() else {
            return;
        };
        if !text && !ws.binary_base64 {
            self.close_with(frame::CLOSE_UNSUPPORTED, "Binary frames are not supported");
            return;
        }
        let request_id = String::from_utf8_lossy(&crate::runtime::request_id::next()).into_owned();
        let Some(route) = ws.route_for(&data) else {
            self.refuse(gen, (403, "Forbidden"), "", "", &request_id);
            gen.unrouted.count(403);
            return;
        };
        let route_key = api.routes[route as usize].key.as_str();
        let message_id = connections::new_id(self.ctx.id, self.ctx.rng.borrow_mut().next_u64());
        // Messages count in their route's request metrics.
        let cells = &gen.route_cells[api.stages[s].metric_base + route as usize];
        let admitted = admit_message(self.ctx, gen, (a, s, route), self.live.key.as_deref()).await;
        if admitted.is_err() {
            // Throttled (route, stage, API, plan × key or account): not delivered, and
            // the connection stays. AWS documents no frame for this case; the notice is
            // shaped as its Forbidden one.
            let why = (429, "Too Many Requests");
            self.refuse(gen, why, route_key, &message_id, &request_id);
            bump(&cells.throttled, 1);
            cells.count(429);
            return;
        }
        let body = if text {
            String::from_utf8(data).unwrap_or_default()
        } else {
            base64::engine::general_purpose::STANDARD.encode(&data)
        };
        let integration = &api.stages[s].integrations[route as usize];
        let lambda_event = matches!(integration, IntegrationRt::Lambda(_)).then(|| {
            let vars = &api.stages[s].variables;
            event::message(
                self.ectx,
                &request_id,
                &message_id,
                route_key,
                &body,
                !text,
                vars,
            )
        });
        let started = Instant::now();
        let answer = call(
            gen,
            integration,
            &Call {
                route_key,
                event_type: "MESSAGE",
                connection_id: &self.ectx.connection_id,
                message: body.as_bytes(),
                lambda_event: lambda_event.as_deref(),
                handshake: None,
            },
        )
        .await;
        let took = started.elapsed();
        let mut line = super::log::Line {
            request_id: &request_id,
            route_key,
            event_type: "MESSAGE",
            message_id: &message_id,
            status: 200,
            latency: took,
            integration_latency: Some(took),
            integration_status: None,
            function_status: None,
            integration_error: "",
            error_message: "",
            response_length: 0,
        };
        let error;
        match &answer {
            Ok(a) => {
                // `$context.status` is the integration's status (a 503 is not a 200).
                line.status = a.status;
                (line.integration_status, line.function_status) = a.logged_statuses();
                let respond =
                    ws.route_response[route as usize] && (a.from_mock || !a.body.is_empty());
                if respond && a.body.len() > ws.limits.message {
                    // Past the message limit (API Gateway's 128 KiB by default), which
                    // API Gateway does not deliver either: dropped, the connection stays.
                    warn!(connection = %self.ectx.connection_id, route = %route_key, bytes = a.body.len(), "route response over limits.message not sent");
                    line.error_message = "Message too long";
                } else if respond && self.closing.get().is_none() {
                    self.live.last_active_ms.set(event::now_ms());
                    self.live.push_message(&a.body);
                    line.response_length = a.body.len() as u64;
                }
            }
            Err(e) => {
                // At warn as an http route's upstream failures are (rate-limited): a
                // dead WebSocket backend must show in the log at the default level.
                if let Some(held_back) = crate::metrics::log_limit::allow(("ws route", route_key)) {
                    warn!(connection = %self.ectx.connection_id, route = %route_key, error = %e, held_back, "WebSocket integration failed");
                }
                self.notice(e.message, &request_id);
                error = e.reason.clone();
                line.status = if e.status == 504 { 504 } else { 500 };
                line.integration_error = &error;
                line.error_message = e.message;
            }
        }
        super::log::write(self.ctx, gen, self.ectx, self.peer, &line);
        cells.count(line.status);
        cells.duration.observe(took);
        cells.integration.observe(took);
    }

    /// A message not delivered (no route, throttled): API Gateway's notice to the client
    /// and the access-log line with `status` and its message.
    fn refuse(
        &self,
        gen: &Generation,
        (status, message): (u16, &str),
        route_key: &str,
        message_id: &str,
        request_id: &str,
    ) {
        self.notice(message, request_id);
        let line = super::log::Line {
            request_id,
            route_key,
            event_type: "MESSAGE",
            message_id,
            status,
            latency: Duration::ZERO,
            integration_latency: None,
            integration_status: None,
            function_status: None,
            integration_error: "",
            error_message: message,
            response_length: 0,
        };
        super::log::write(self.ctx, gen, self.ectx, self.peer, &line);
    }

    /// API Gateway's own message to the client; the connection stays open.
    fn notice(&self, message: &str, request_id: &str) {
        if self.closing.get().is_some() {
            return;
        }
        let body = serde_json::json!({
            "message": message,
            "connectionId": self.ectx.connection_id,
            "requestId": request_id,
        });
        self.live
            .push_message(&serde_json::to_vec(&body).unwrap_or_default());
    }

    /// `$disconnect`, best effort: its answer goes nowhere.
    pub(super) async fn disconnect(&self, code: u16, reason: &str) {
        // A connection whose API or stage a reload removed still has its `$disconnect`,
        // from the last config that had them (as its messages do).
        let (held, (a, s)) = self.routed_by();
        let gen = held.as_deref().unwrap_or(self.gen);
        let request_id = String::from_utf8_lossy(&crate::runtime::request_id::next()).into_owned();
        let started = Instant::now();
        let mut line = super::log::Line {
            request_id: &request_id,
            route_key: "$disconnect",
            event_type: "DISCONNECT",
            message_id: "",
            status: 200,
            latency: Duration::ZERO,
            integration_latency: None,
            integration_status: None,
            function_status: None,
            integration_error: "",
            error_message: "",
            response_length: 0,
        };
        let route = {
            let api = &gen.snap.apis[a];
            api.websocket
                .as_deref()
                .and_then(|ws| ws.disconnect)
                .map(|route| {
                    let stage = &api.stages[s];
                    let route = route as usize;
                    (&stage.integrations[route], stage.metric_base + route)
                })
        };
        let error;
        if let Some((integration, _)) = route {
            let lambda_event = matches!(integration, IntegrationRt::Lambda(_)).then(|| {
                let vars = &gen.snap.apis[a].stages[s].variables;
                event::disconnect(self.ectx, &request_id, code, reason, vars)
            });
            let result = call(
                gen,
                integration,
                &Call {
                    route_key: "$disconnect",
                    event_type: "DISCONNECT",
                    connection_id: &self.ectx.connection_id,
                    message: b"",
                    lambda_event: lambda_event.as_deref(),
                    handshake: None,
                },
            )
            .await;
            line.integration_latency = Some(started.elapsed());
            match result {
                Ok(a) => {
                    line.status = a.status;
                    (line.integration_status, line.function_status) = a.logged_statuses();
                }
                Err(e) => {
                    if let Some(held_back) =
                        crate::metrics::log_limit::allow(("ws route", "$disconnect"))
                    {
                        warn!(connection = %self.ectx.connection_id, error = %e, held_back, "WebSocket $disconnect integration failed");
                    }
                    error = e.reason;
                    line.status = 500;
                    line.integration_error = &error;
                }
            }
        }
        line.latency = started.elapsed();
        super::log::write(self.ctx, gen, self.ectx, self.peer, &line);
        if let Some((_, i)) = route {
            gen.route_cells[i].count(line.status);
            gen.route_cells[i].duration.observe(line.latency);
        }
    }
}
