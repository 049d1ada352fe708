//! A response body that breaks on the upstream's side after its head was relayed: the
//! upstream closed mid-body, sent broken chunks, or sent nothing more within the
//! integration timeout. The client sees the cut (no last chunk, fewer bytes than the
//! Content-Length, then a close); this module tells such failures apart from the
//! client's own (a write to a client that left), so they are logged, counted and given
//! to `$context.integrationErrorMessage` as failures before the head are, as nginx logs
//! "upstream prematurely closed connection while reading upstream".

use std::fmt::Write as _;
use std::io;

use tracing::warn;

use crate::metrics::log_limit;
use crate::runtime::workers::Generation;
use crate::server::conn::Conn;
use crate::upstream::Lease;

/// The upstream's side of a failed body relay; carried inside the `io::Error`.
#[derive(Debug)]
struct UpstreamSide(String);

impl std::fmt::Display for UpstreamSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UpstreamSide {}

/// An upstream body failure of `kind`, described by `why` (built on failure only).
pub(crate) fn upstream(kind: io::ErrorKind, why: impl Into<String>) -> io::Error {
    io::Error::new(kind, UpstreamSide(why.into()))
}

pub(crate) fn cut_short() -> io::Error {
    upstream(io::ErrorKind::UnexpectedEof, "upstream closed mid-body")
}

/// A close-delimited body from a TLS upstream that ended without close_notify.
pub(crate) fn truncated() -> io::Error {
    upstream(
        io::ErrorKind::UnexpectedEof,
        "upstream TLS closed without close_notify: a close-delimited body may be cut short",
    )
}

/// An upstream body that failed before the relay wrote anything to the client (the
/// head still waits in `wbuf`), so the client can still be answered.
#[derive(Debug)]
struct NothingSent;

impl std::fmt::Display for NothingSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bad chunked body from upstream, before any byte was sent")
    }
}

impl std::error::Error for NothingSent {}

/// An upstream's chunked framing was broken; `sent`: whether any byte went to the client.
pub(crate) fn bad_chunked_body(sent: bool) -> io::Error {
    let kind = io::ErrorKind::InvalidData;
    if sent {
        upstream(kind, "bad chunked body from upstream")
    } else {
        io::Error::new(kind, NothingSent)
    }
}

pub(crate) fn nothing_sent(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NothingSent>())
}

/// Whether the relay failed on the upstream's side (not the client's).
pub(crate) fn on_upstream_side(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<UpstreamSide>() || inner.is::<NothingSent>())
}

/// Counts, logs (at warn, at most once a second per target) and records for the access
/// log a body the upstream broke.
pub(crate) fn report(
    gen: &Generation,
    c: &mut Conn,
    lease: &Lease,
    upstream: usize,
    e: &io::Error,
) {
    let timed_out = e.kind() == io::ErrorKind::TimedOut;
    lease.count_failure(timed_out);
    let text = &mut c.out.texts().integration;
    text.clear();
    let _ = write!(text, "{e}");
    if let Some(held_back) = log_limit::allow(lease.addr) {
        let name = &gen.snap.upstreams[upstream].name;
        if nothing_sent(e) {
            // The head waited for the body's first bytes: the client gets a 502 instead.
            warn!(upstream = %name, target = %lease.addr, cause = %e, held_back, "upstream broke its body before any of it was relayed; the client gets 502");
        } else {
            warn!(upstream = %name, target = %lease.addr, status = c.out.status, sent = c.out.body_sent, cause = %e, held_back, "upstream failed after the response head was relayed; the client sees the body cut short");
        }
    }
}
