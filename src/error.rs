//! One error type for the request path. Like Pingora's, it records which side failed
//! (the client, the upstream, or Portico itself) and whether retrying is safe, which is
//! what decides 400 vs 502 vs 504 and whether a stale pooled connection may be retried.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The upstream refused the connection or it could not be made in time.
    ConnectFailed,
    /// The upstream closed or reset before a complete response head.
    UpstreamClosed,
    /// The upstream sent something that is not HTTP/1.x.
    UpstreamGarbage,
    /// The upstream did not answer within the integration timeout.
    UpstreamTimeout,
    /// The client went away or sent a bad body while we were relaying it.
    ClientBody,
    /// The client sent no byte of its body within the wait (nginx's client_body_timeout).
    ClientTimeout,
    /// The client's body broke the size limit while streaming.
    ClientBodyTooLarge,
    /// The client closed its connection while the upstream was still to answer.
    ClientGone,
    /// The config names something that does not exist for this stage.
    Misconfigured,
}

#[derive(Debug, thiserror::Error)]
#[error("{kind:?} on the {side:?} side: {detail}")]
pub struct Error {
    pub kind: Kind,
    pub side: Side,
    /// True when nothing of the response came back, so an idempotent request may be
    /// sent again on a fresh connection.
    pub retry_safe: bool,
    /// The request body was still going out: the upstream may have answered already (a
    /// 413 or 401 sent before reading the body), and that answer is what the client gets.
    pub while_sending_body: bool,
    pub detail: Cow<'static, str>,
}

impl Error {
    pub fn new(kind: Kind, detail: impl Into<Cow<'static, str>>) -> Self {
        let side = match kind {
            Kind::ConnectFailed
            | Kind::UpstreamClosed
            | Kind::UpstreamGarbage
            | Kind::UpstreamTimeout => Side::Upstream,
            Kind::ClientBody
            | Kind::ClientTimeout
            | Kind::ClientBodyTooLarge
            | Kind::ClientGone => Side::Client,
            Kind::Misconfigured => Side::Internal,
        };
        Error {
            kind,
            side,
            retry_safe: false,
            while_sending_body: false,
            detail: detail.into(),
        }
    }

    pub fn retry_safe(mut self) -> Self {
        self.retry_safe = true;
        self
    }

    pub fn while_sending_body(mut self) -> Self {
        self.while_sending_body = true;
        self
    }

    /// What the client gets when the gateway answers for itself (docs/ARCHITECTURE.md,
    /// Gateway answers).
    pub fn status_and_message(&self) -> (u16, &'static str) {
        match self.kind {
            Kind::ConnectFailed | Kind::UpstreamClosed | Kind::UpstreamGarbage => {
                (502, "Bad Gateway")
            }
            Kind::UpstreamTimeout => (504, "Endpoint request timed out"),
            Kind::ClientBody => (400, "Bad Request"),
            Kind::ClientTimeout => (408, "Request Timeout"),
            Kind::ClientBodyTooLarge => (413, "Request Entity Too Large"),
            // Never sent (nobody is there to read it); logged, as nginx logs it.
            Kind::ClientGone => (499, "Client Closed Request"),
            Kind::Misconfigured => (500, "Internal Server Error"),
        }
    }
}
