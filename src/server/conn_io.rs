//! The connection's two basic IO steps, shared by the connection loop and the
//! integrations: append what a peer sends next to a buffer, write a buffer whole; and
//! `within`, the bound on one step.

use std::time::Duration;

use bytes::BytesMut;
use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use super::conn::{Conn, READ_BUF};

impl Conn {
    /// Appends whatever the client sends next to `rbuf`.
    pub async fn read_client(&mut self) -> std::io::Result<usize> {
        let (res, buf) = read_into(&mut self.stream, std::mem::take(&mut self.rbuf)).await;
        self.rbuf = buf;
        res
    }

    /// Writes `wbuf` whole and clears it.
    pub async fn flush_wbuf(&mut self) -> std::io::Result<()> {
        let (res, mut buf) = self.stream.write_all(std::mem::take(&mut self.wbuf)).await;
        buf.clear();
        self.wbuf = buf;
        res.map(|_| ())
    }
}

/// Appends what the peer sends next to `buf`, growing it when it is nearly full.
/// monoio reads at the start of a buffer, so the free tail is passed as a `SliceMut`.
pub async fn read_into<S: AsyncReadRent>(
    stream: &mut S,
    mut buf: BytesMut,
) -> (std::io::Result<usize>, BytesMut) {
    if buf.capacity() - buf.len() < READ_BUF / 4 {
        buf.reserve(READ_BUF);
    }
    let (len, cap) = (buf.len(), buf.capacity());
    let (res, slice) = stream.read(SliceMut::new(buf, len, cap)).await;
    (res, slice.into_inner())
}

/// Bounds one IO step; `Elapsed` becomes `TimedOut`.
pub async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match monoio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
