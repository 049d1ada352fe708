//! Access-log lines of WebSocket APIs: one per CONNECT, MESSAGE and DISCONNECT, in the
//! configured format, with `$context.connectionId`, `$context.eventType`,
//! `$context.messageId` and `$context.routeKey` filled, `$context.authorizer.*` from
//! the `$connect` verdict (the handshake's own HTTP line is
//! not written for a connection that opened).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::event;
use crate::metrics::access_log::{hand_off, FLUSH_AT};
use crate::metrics::cells::bump;
use crate::metrics::log_format::LogRecord;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;

pub struct Line<'a> {
    pub request_id: &'a str,
    pub route_key: &'a str,
    pub event_type: &'a str,
    pub message_id: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub integration_latency: Option<Duration>,
    pub integration_status: Option<u16>,
    /// A function's `statusCode` (`$context.integration.status`).
    pub function_status: Option<u16>,
    pub integration_error: &'a str,
    pub error_message: &'a str,
    pub response_length: u64,
}

pub fn write(ctx: &WorkerCtx, gen: &Generation, e: &event::Context, peer: IpAddr, line: &Line) {
    let Some(format) = &gen.snap.access_log else {
        return;
    };
    // `$context.authorizer.*`: the `$connect` verdict, on every line of the connection.
    let auth = e.auth.as_ref().map(|id| crate::auth::AuthState {
        identity: Some(id.clone()),
        ..Default::default()
    });
    let record = LogRecord {
        request_id: line.request_id.as_bytes(),
        source_ip: peer,
        user_agent: e.user_agent.as_deref().unwrap_or("").as_bytes(),
        api_key_id: "",
        authorizer: auth.as_ref(),
        method: b"",
        path: b"",
        protocol: "",
        route_key: line.route_key,
        resource_path: line.route_key,
        stage: &e.stage,
        api_id: &e.api_id,
        domain_name: e.domain_name.as_bytes(),
        status: line.status,
        response_length: line.response_length,
        response_latency: line.latency,
        integration_latency: line.integration_latency,
        integration_status: line.integration_status,
        function_status: line.function_status,
        integration_error: line.integration_error,
        error_message: line.error_message,
        error_response_type: "",
        validation_error: "",
        request_time: (SystemTime::now() - line.latency)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        canary: false,
        client_cert: None,
        connection_id: &e.connection_id,
        event_type: line.event_type,
        message_id: line.message_id,
    };
    let mut buf = ctx.log_buf.borrow_mut();
    format.render(&mut buf, &record);
    ctx.log_lines.set(ctx.log_lines.get() + 1);
    if buf.len() >= FLUSH_AT {
        let dropped = hand_off(&mut buf, ctx.log_lines.replace(0));
        bump(&ctx.cells.access_log_dropped, dropped);
    }
}
