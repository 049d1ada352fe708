//! What the HTTP code needs from a connection, so that the same code runs over plain TCP
//! and over TLS: append what arrived to the connection's one buffer, write a request.
//! Each use is monomorphised, so the plain path costs what it did before TLS existed.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::stats::ThreadStats;

/// A byte stream with owned-buffer reads, as monoio's.
pub trait Stream: AsRawFd {
    /// Appends to `buf` what the connection has, at most up to `buf.capacity()`, which
    /// must be larger than `buf.len()`. Returns the byte count; 0 at a clean end.
    async fn read_append(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>);

    /// Writes all of `data`.
    async fn write_all_static(&mut self, data: &'static [u8]) -> io::Result<()>;
}

impl Stream for TcpStream {
    #[inline]
    async fn read_append(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let (len, cap) = (buf.len(), buf.capacity());
        debug_assert!(len < cap, "read_append into a full buffer");
        if len == 0 {
            return self.read(buf).await;
        }
        let (res, slice) = self.read(SliceMut::new(buf, len, cap)).await;
        (res, slice.into_inner())
    }

    #[inline]
    async fn write_all_static(&mut self, data: &'static [u8]) -> io::Result<()> {
        self.write_all(data).await.0.map(|_| ())
    }
}

/// Opens one connection of the kind the load runs on.
pub trait Connector: 'static {
    type Stream: Stream + 'static;

    /// Connects (and for TLS, completes the handshake, counted in `stats`).
    async fn connect(&self, addr: SocketAddr, stats: &ThreadStats) -> io::Result<Self::Stream>;
}

/// Plain HTTP: a TCP connection with Nagle off.
pub struct Plain;

impl Connector for Plain {
    type Stream = TcpStream;

    async fn connect(&self, addr: SocketAddr, _stats: &ThreadStats) -> io::Result<TcpStream> {
        tcp(addr).await
    }
}

pub async fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_addr(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}
