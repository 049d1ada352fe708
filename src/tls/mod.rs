//! TLS with rustls: termination on `server.tls_listen` (a certificate and optional client
//! CA per custom domain, picked by SNI), TLS to `https://` upstream targets, and the
//! socket type the connection code reads and writes, plain or TLS alike.
//!
//! Certificates are read when the config is loaded (`load`), so a missing or bad file is a
//! config error with its key path and a reload that hits one keeps the running config.
//! The loaded server and client configs live in the `Snapshot`: connections accepted after
//! a reload handshake with the new certificates, connections made before keep theirs.

mod client;
pub mod dn;
mod load;
mod server;
mod stream;

use std::io;
use std::ops::{Deref, DerefMut};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::{ClientConnection, ConnectionCommon, ServerConnection, SideData};

pub use client::{connect, AcceptAnyCertificate, ClientTls};
pub use load::{load, Loaded};
pub use server::{accept, AcceptError, Accepted, PeerCert, ServerTls};
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
        let tcp = match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.tcp(),
        };
        tcp.local_addr().map_or(0, |a| a.port())
    }
}

impl<C, SD> AsyncReadRent for Io<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Plain(s) => s.read(buf).await,
            Io::Tls(s) => s.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Plain(s) => s.readv(buf).await,
            Io::Tls(s) => s.readv(buf).await,
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
            Io::Tls(s) => s.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Plain(s) => s.writev(buf).await,
            Io::Tls(s) => s.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.flush().await,
            Io::Tls(s) => s.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.shutdown().await,
            Io::Tls(s) => s.shutdown().await,
        }
    }
}
