//! rustls driven over monoio's ownership-passing IO.
//!
//! rustls is a state machine over byte buffers: ciphertext goes in through `read_tls`,
//! plaintext comes out of `reader()`, plaintext goes in through `writer()` and ciphertext
//! comes out of `write_tls`. This file moves ciphertext between those calls and the
//! socket with two owned buffers, so a read or write handed to io_uring owns its memory
//! for as long as the kernel may touch it.
//!
//! Cancellation: the connection code drops a read on timeout or drain and then closes the
//! connection, never resuming it. A dropped operation takes its buffer with it (the
//! stream gets a fresh empty one), so the state left behind is memory-safe but not worth
//! reusing — which is all the connection code needs.

use std::io::{self, BufRead, Write};
use std::ops::{Deref, DerefMut};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::{ConnectionCommon, SideData};

/// One socket read: a full TLS record (16 KiB plaintext plus its overhead) fits.
const CIPHERTEXT_BUF: usize = 16 * 1024 + 512;

pub struct TlsStream<C> {
    io: TcpStream,
    pub session: C,
    /// Ciphertext read from the socket; `rbuf[rpos..]` is not yet handed to rustls.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Ciphertext rustls produced, written out whole before an operation returns.
    wbuf: Vec<u8>,
    /// A socket write of `wbuf` is in flight (see `flush_tls`).
    writing: bool,
    /// The peer closed the socket without close_notify (see `truncated`).
    truncated: bool,
}

impl<C> TlsStream<C> {
    /// The TCP socket under the TLS session.
    pub fn tcp(&self) -> &TcpStream {
        &self.io
    }
}

impl<C, SD> TlsStream<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    pub fn new(io: TcpStream, session: C) -> Self {
        TlsStream {
            io,
            session,
            rbuf: Vec::with_capacity(CIPHERTEXT_BUF),
            rpos: 0,
            wbuf: Vec::new(),
            writing: false,
            truncated: false,
        }
    }

    /// Runs the handshake to its end (including the server's session tickets, which
    /// rustls queues when the client's Finished arrives).
    pub async fn handshake(&mut self) -> io::Result<()> {
        while self.session.is_handshaking() {
            self.flush_tls().await?;
            if !self.session.is_handshaking() {
                break;
            }
            if self.rpos == self.rbuf.len() && self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed during the TLS handshake",
                ));
            }
            self.feed().await?;
        }
        self.flush_tls().await
    }

    /// Reads ciphertext from the socket into `rbuf`; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        let mut buf = std::mem::take(&mut self.rbuf);
        if buf.capacity() - buf.len() < CIPHERTEXT_BUF / 4 {
            buf.reserve(CIPHERTEXT_BUF);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.io.read(SliceMut::new(buf, len, cap)).await;
        self.rbuf = slice.into_inner();
        res
    }

    /// Hands buffered ciphertext to rustls and processes it. A protocol error sends the
    /// alert rustls queued before failing.
    async fn feed(&mut self) -> io::Result<()> {
        if self.rpos < self.rbuf.len() {
            match self.session.read_tls(&mut &self.rbuf[self.rpos..]) {
                // After close_notify rustls takes nothing more; what follows is dropped.
                Ok(0) => self.rpos = self.rbuf.len(),
                Ok(n) => self.rpos += n,
                // Full of plaintext nobody read yet: the caller reads it first.
                Err(_) if self.plaintext_pending() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if let Err(e) = self.session.process_new_packets() {
            let _ = self.flush_tls().await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }

    fn plaintext_pending(&mut self) -> bool {
        matches!(self.session.reader().fill_buf(), Ok(chunk) if !chunk.is_empty())
    }

    /// Writes every record rustls has queued.
    ///
    /// An upgrade tunnel (integration::tunnel) reads a stream in one direction while the
    /// other direction writes it. A read that owes the peer records (a key update) while a
    /// write is in flight leaves them queued: the writer's loop sends them after its own,
    /// so two socket writes never interleave. A write dropped mid-flight (a timeout) leaves
    /// `writing` set: nothing more goes out on a stream whose last write may still be in
    /// the kernel, and such a stream is only ever closed.
    async fn flush_tls(&mut self) -> io::Result<()> {
        if self.writing {
            return Ok(());
        }
        loop {
            while self.session.wants_write() {
                self.session.write_tls(&mut self.wbuf)?;
            }
            if self.wbuf.is_empty() {
                return Ok(());
            }
            self.writing = true;
            let (res, mut buf) = self.io.write_all(std::mem::take(&mut self.wbuf)).await;
            self.writing = false;
            buf.clear();
            self.wbuf = buf;
            res?;
        }
    }

    /// Copies decrypted bytes into `dst` (`cap` bytes, possibly uninitialised); 0 at a
    /// clean end (close_notify, or the socket's end after a complete record).
    ///
    /// # Safety
    /// `dst` must be valid for writes of `cap` bytes.
    async unsafe fn read_plain(&mut self, dst: *mut u8, cap: usize) -> io::Result<usize> {
        loop {
            match self.session.reader().fill_buf() {
                Ok(chunk) => {
                    let n = chunk.len().min(cap);
                    // SAFETY: the caller guarantees `dst` has room for `cap` bytes.
                    unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst, n) };
                    self.session.reader().consume(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the socket without close_notify: a plain end for
                // HTTP messages that carry their own length (see `truncated`).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.truncated = true;
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
            // Answers rustls owes the peer (a key update, say) go out before we wait.
            self.flush_tls().await?;
            if self.rpos == self.rbuf.len() && self.fill().await? == 0 {
                // A close_notify would have ended the loop above with an empty chunk.
                self.truncated = true;
                return Ok(0);
            }
            self.feed().await?;
        }
    }

    /// Encrypts as much of `src` as rustls buffers and writes it out.
    async fn write_plain(&mut self, src: &[u8]) -> io::Result<usize> {
        let n = self.session.writer().write(src)?;
        self.flush_tls().await?;
        Ok(n)
    }

    /// Whether the stream ended (a read returned 0) with a bare TCP close, no close_notify.
    /// A message that carries its length (Content-Length, chunked) is whole or not by its
    /// own framing, but one delimited by the close is complete only after close_notify
    /// (RFC 9112 §9.8): without it, a FIN injected on the path cuts it unnoticed.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Whether nothing has arrived since the last read: no ciphertext or plaintext
    /// buffered here or in rustls, and no byte or end of stream waiting on the socket.
    pub fn is_quiet(&mut self) -> bool {
        self.rpos == self.rbuf.len()
            && !self.plaintext_pending()
            && super::socket_is_quiet(&self.io)
    }

    /// Sends close_notify; errors are of no interest to a connection that is ending.
    pub async fn close(&mut self) {
        self.session.send_close_notify();
        let _ = self.flush_tls().await;
    }
}

impl<C, SD> AsyncReadRent for TlsStream<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // SAFETY: write_ptr is valid for bytes_total bytes, and `set_init` only covers
        // what `read_plain` copied.
        match unsafe { self.read_plain(buf.write_ptr(), buf.bytes_total()).await } {
            Ok(n) => {
                unsafe { buf.set_init(n) };
                (Ok(n), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        // Nothing here reads vectored; refuse rather than half-implement it.
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }
}

impl<C, SD> AsyncWriteRent for TlsStream<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: read_ptr is valid for bytes_init bytes while we own `buf`.
        let src = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = self.write_plain(src).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.flush_tls().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.close().await;
        self.io.shutdown().await
    }
}
