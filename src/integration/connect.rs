//! Connections to an upstream target for the `http` integration (and the WebSocket and
//! Lambda calls that share its pools): TCP, then TLS for `https://` upstreams, each step
//! within `connect_timeout`, and for requests within the integration timeout too.

use std::time::Instant;

use monoio::net::TcpStream;

use crate::error::{Error, Kind};
use crate::runtime::coarse_timer::Deadline;
use crate::tls::{Io, UpstreamIo};
use crate::upstream::Lease;

/// Connects to the lease's target, with TLS for `https://` upstreams. The handshake gets
/// its own `connect_timeout`, as the TCP connect does.
pub(crate) async fn connect(lease: &Lease) -> Result<UpstreamIo, Error> {
    let tcp = bounded(lease, "connect", TcpStream::connect_addr(lease.addr)).await?;
    let _ = tcp.set_nodelay(true);
    match lease.tls() {
        None => Ok(Io::Plain(tcp)),
        Some(tls) => {
            let handshake = crate::tls::connect(tls, lease.target, tcp);
            let stream = bounded(lease, "TLS handshake with", handshake).await?;
            Ok(Io::Tls(Box::new(stream)))
        }
    }
}

/// Sends now the ACK the kernel holds back for what the upstream sent so far, before
/// waiting for the rest of a response. On a kept-alive connection Linux delays that ACK
/// (up to 40 ms) hoping to ride it on our next request; a backend that writes its head
/// and its body in two small writes with Nagle on (Python's `http.server`, many others)
/// holds the body until the ACK comes: 40 ms a response. Called only when a response
/// came in pieces: one `setsockopt` then, none when it came whole.
pub(crate) fn ack_now(stream: &UpstreamIo) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: `one` is valid for reads of its size for the call.
    unsafe {
        libc::setsockopt(
            stream.tcp().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// `connect` within what is left of the integration timeout as well: a `connect_timeout`
/// longer than it, or a failover started near its end, does not hold the client past it.
pub(super) async fn connect_within(
    lease: &Lease,
    deadline: Deadline<'_>,
) -> Result<UpstreamIo, Error> {
    let r = deadline.bound(connect(lease)).await;
    r.unwrap_or_else(|_| Err(out_of_time(lease)))
}

/// `connect_within` for callers that count time in an `Instant` (WebSocket integration
/// calls, which run outside a request and its coarse deadline).
pub(crate) async fn connect_by(lease: &Lease, until: Instant) -> Result<UpstreamIo, Error> {
    let wait = until.saturating_duration_since(Instant::now());
    let r = monoio::time::timeout(wait, connect(lease)).await;
    r.unwrap_or_else(|_| Err(out_of_time(lease)))
}

fn out_of_time(lease: &Lease) -> Error {
    Error::new(
        Kind::UpstreamTimeout,
        format!(
            "connect {}: no connection within the integration timeout",
            lease.addr
        ),
    )
}

/// One connection step within `connect_timeout`: a failure is ConnectFailed (502), running
/// out of time UpstreamTimeout (504).
async fn bounded<T>(
    lease: &Lease,
    what: &str,
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, Error> {
    match monoio::time::timeout(lease.connect_timeout, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::new(
            Kind::ConnectFailed,
            format!("{what} {}: {e}", lease.addr),
        )),
        Err(_) => Err(Error::new(
            Kind::UpstreamTimeout,
            format!("{what} {} timed out", lease.addr),
        )),
    }
}
