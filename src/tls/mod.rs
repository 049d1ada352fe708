//! TLS with rustls: termination on `server.tls_listen` (a certificate and optional client
//! CA per custom domain, picked by SNI), TLS to `https://` upstream targets, and the
//! socket type the connection code reads and writes, plain or TLS alike.
//!
//! Certificates are read when the config is loaded (`load`), so a missing or bad file is a
//! config error with its key path and a reload that hits one keeps the running config.
//! The loaded server and client configs live in the `Snapshot`: connections accepted after
//! a reload handshake with the new certificates, connections made before keep theirs.

mod ca;
mod client;
pub mod dn;
mod intermediates;
mod keys;
mod load;
mod refused;
mod server;
mod stream;

use crate::runtime::socket_now::peek;
use std::io;
use std::ops::{Deref, DerefMut};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::{ClientConnection, ConnectionCommon, ServerConnection, SideData};

pub use client::{connect, AcceptAnyCertificate, ClientTls};
pub use load::{load, Loaded};
pub use server::{accept, AcceptError, Accepted, PeerCert, ServerTls, Site};
pub use stream::TlsStream;

/// A socket that may carry TLS. One branch per operation; the TLS side is boxed because a
/// rustls connection is a few KiB and most sockets are plain.
pub enum Io<C> {
    Plain(TcpStream),
    Tls(Box<TlsStream<C>>),
}

/// A client's connection to us.
pub type ClientIo = Io<ServerConnection>;
/// Our connection to an upstream.
pub type UpstreamIo = Io<ClientConnection>;

impl<C> Io<C> {
    pub fn is_tls(&self) -> bool {
        matches!(self, Io::Tls(_))
    }

    /// The socket's local port: for an accepted connection, the port the client
    /// connected to (0 if the socket can't say).
    pub fn local_port(&self) -> u16 {
        self.tcp().local_addr().map_or(0, |a| a.port())
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.tcp(),
        }
    }
}

/// Whether the peer has closed its side of the connection or reset it: a peek finds the
/// end of the stream or an error. Bytes waiting (a pipelined request, a TLS record)
/// don't count, so a TLS peer that sent close_notify before its FIN is not seen here.
pub fn peer_closed(fd: std::os::fd::RawFd) -> bool {
    match peek(fd, &mut [0u8; 1]) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

impl<C, SD> Io<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    /// Whether an idle connection has received nothing since its last exchange (no byte,
    /// no end of stream), so a request written now gets the answer to itself. A pooled
    /// upstream connection that fails this is discarded: whatever arrived (a backend's
    /// 408 after its own idle timeout, the rest of a body it was not asked for, a TLS
    /// alert) was sent before our request and is never a response to it.
    pub fn is_quiet(&mut self) -> bool {
        match self {
            Io::Plain(tcp) => socket_is_quiet(tcp),
            Io::Tls(tls) => tls.is_quiet(),
        }
    }

    /// Whether a client sent bytes past its last request that are still unread, so that
    /// closing now would answer them with a reset (see `Conn::linger`). Its end of stream
    /// alone is not: nothing can follow it, so there is nothing to linger for (a client that
    /// closes as soon as it has read its answer was lingered on, a shutdown and a read
    /// more for nine connections in ten under load). On TLS, what `is_quiet` sees.
    pub fn unread_waiting(&mut self) -> bool {
        match self {
            Io::Plain(tcp) => {
                use std::os::fd::AsRawFd;
                crate::runtime::socket_now::bytes_waiting(tcp.as_raw_fd())
            }
            Io::Tls(tls) => !tls.is_quiet(),
        }
    }

    /// Whether a read's 0 (the end of the stream) came without close_notify on a TLS
    /// connection: a body delimited by the close is then cut short, not complete.
    pub fn truncated(&self) -> bool {
        match self {
            Io::Plain(_) => false,
            Io::Tls(tls) => tls.truncated(),
        }
    }
}

impl UpstreamIo {
    /// The socket of a plain upstream connection, for [`answered_early`].
    pub fn plain_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Io::Plain(tcp) => Some(tcp.as_raw_fd()),
            Io::Tls(_) => None,
        }
    }
}

/// Whether a plain upstream has answered, or closed, while its request body is still
/// being written: an interim `1xx` (skipped by the response reader) or a status line not
/// yet whole doesn't count. Safe beside a write in flight on the same socket. (TLS
/// upstreams are not asked: a session ticket arrives unasked, and records can't be
/// peeked.)
pub fn answered_early(fd: std::os::fd::RawFd) -> bool {
    // Room for a few interim responses (a 103 Early Hints with its Link headers) before
    // the final status line: a 401 behind a 103 is an early answer too. A first kilobyte
    // holds them mostly; when it is all interim, up to the largest response head.
    let mut first = [0u8; 1024];
    match peek(fd, &mut first) {
        Ok(0) => true,
        Ok(n) if n < first.len() => final_status_begins(&first[..n]),
        Ok(_) if final_status_begins(&first) => true,
        Ok(_) => {
            let mut more = vec![0u8; INTERIM_PEEK_BYTES];
            peek(fd, &mut more).is_ok_and(|n| final_status_begins(&more[..n]))
        }
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// How far past interim heads an early answer is looked for: as far as one response
/// head may be long (the http integration's limit), only when the first kilobyte was all
/// interim.
const INTERIM_PEEK_BYTES: usize = 64 << 10;

/// Whether `bytes`, what a backend has sent so far, hold the start of a response that is
/// not interim: whole `1xx` heads (and the empty lines a response reader skips before a
/// status line) are passed over; "HTTP/1.1 " and a first status digit other than `1`
/// (or anything else that is no interim head) count.
fn final_status_begins(mut bytes: &[u8]) -> bool {
    loop {
        while let Some(rest) = bytes
            .strip_prefix(b"\r\n")
            .or_else(|| bytes.strip_prefix(b"\n"))
        {
            bytes = rest;
        }
        if bytes.len() < 10 {
            return false;
        }
        if bytes[9] != b'1' {
            return true;
        }
        // An interim head: past its empty line, if it is whole.
        let end = (0..bytes.len()).find_map(|i| match &bytes[i..] {
            [b'\n', b'\n', ..] => Some(i + 2),
            [b'\n', b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        });
        match end {
            Some(end) => bytes = &bytes[end..],
            None => return false,
        }
    }
}

/// One non-blocking peek: would a read now block? One syscall, nothing consumed, under
/// either driver (no read is ever in flight on an idle connection).
fn socket_is_quiet(tcp: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    matches!(peek(tcp.as_raw_fd(), &mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// `recv(MSG_PEEK | MSG_DONTWAIT)`: the bytes waiting (copied into `buf`, not consumed),
/// 0 at the end of the stream, WouldBlock when nothing is there yet.
/// The error the kernel holds for the socket (`SO_ERROR`, taken: a second call finds
/// none). A reset that arrives after the peer's FIN is only seen here: a read returns
/// the end of the stream first, and then again.
pub fn take_socket_error(fd: std::os::fd::RawFd) -> Option<io::Error> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of their sizes for the call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0 && err != 0).then(|| io::Error::from_raw_os_error(err))
}

// The TLS arms are boxed: a rustls read or write is a future of several hundred bytes,
// and inline it would size every plain connection's task too (each connection's task
// is as large as its largest await, held for as long as the connection is open). A TLS
// exchange costs far more than the allocation.
impl<C, SD> AsyncReadRent for Io<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Plain(s) => s.read(buf).await,
            Io::Tls(s) => Box::pin(s.read(buf)).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Plain(s) => s.readv(buf).await,
            Io::Tls(s) => Box::pin(s.readv(buf)).await,
        }
    }
}

impl<C, SD> AsyncWriteRent for Io<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Plain(s) => s.write(buf).await,
            Io::Tls(s) => Box::pin(s.write(buf)).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Plain(s) => s.writev(buf).await,
            Io::Tls(s) => Box::pin(s.writev(buf)).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.flush().await,
            Io::Tls(s) => Box::pin(s.flush()).await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.shutdown().await,
            Io::Tls(s) => Box::pin(s.shutdown()).await,
        }
    }
}

#[cfg(test)]
mod early_answer_tests {
    use super::final_status_begins;

    #[test]
    fn a_final_status_behind_interim_heads_counts() {
        assert!(final_status_begins(b"HTTP/1.1 401 Unauthorized\r\n"));
        assert!(!final_status_begins(b"HTTP/1.1 "));
        assert!(!final_status_begins(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(!final_status_begins(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>"
        ));
        assert!(final_status_begins(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 401 Unauthorized\r\n"
        ));
        assert!(final_status_begins(
            b"HTTP/1.1 100 Continue\n\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 x"
        ));
        // Empty lines before a status line are skipped by the response reader too.
        assert!(final_status_begins(
            b"\r\nHTTP/1.1 413 Payload Too Large\r\n"
        ));
        assert!(!final_status_begins(b"\r\n\r\n"));
    }
}
