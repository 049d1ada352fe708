//! The wait between two requests on a keep-alive connection, and what it holds while it
//! waits: a busy connection keeps its buffers for one cheap read, a quiet one gives them
//! back to the worker (`runtime::buffers`) and waits for readability without them.

use std::time::{Duration, Instant};

use monoio::buf::SliceMut;
use monoio::io::CancelableAsyncReadRent;

use super::conn::{Conn, READ_BUF};
use crate::runtime::WorkerCtx;
use crate::tls::Io;

/// A keep-alive connection silent for this long gives its buffers back to the worker and
/// waits for readability without them (`wait_for_next_request`).
const PARK_AFTER: Duration = Duration::from_millis(500);
/// At most this many idle connections per worker wait with a buffer; the rest park at
/// once. A benchmark's or a busy site's connections keep the one-read fast path, and
/// 10,000 idle connections still hold no more than this many buffers.
pub(crate) const IDLE_WITH_BUFFERS: usize = 256;
impl Conn {
    /// Waits until `idle` after `since` (the last answer) for the first bytes of the next
    /// request on a keep-alive connection; false when the connection should close
    /// (silence, EOF, error, drain, its listener closed by a reload). Blank lines the
    /// client sends meanwhile (dropped by the head reader) don't restart the wait: a
    /// CRLF every few seconds held a connection open for ever.
    ///
    /// On a plain connection the read runs with a buffer for `PARK_AFTER` only: a busy
    /// client's next request comes sooner, and costs no more than before. A connection
    /// still silent then cancels that read, gives its buffers back to the worker, and
    /// waits for readability holding none (io_uring PollAdd, or epoll readiness), taking
    /// buffers again when bytes arrive. (TLS connections keep theirs: rustls holds its
    /// own buffers anyway.)
    ///
    /// The waits end when the connection's listener closes, not on the worker's drain: a
    /// stop closes every listener before the drain begins (`runtime::workers`), so one
    /// wait covers both, and an idle connection's task stays within its size budget.
    pub(super) async fn wait_for_next_request(&mut self, ctx: &WorkerCtx, idle: Duration) -> bool {
        let give_up = match self.since {
            Some(since) => since + idle,
            None => crate::runtime::coarse_timer::coarse_now() + idle,
        };
        if self.stream.is_tls() {
            return self.wait_with_buffers(ctx, give_up).await;
        }
        let holding = &ctx.idle_with_buffers;
        if holding.get() < IDLE_WITH_BUFFERS {
            holding.set(holding.get() + 1);
            let left =
                give_up.saturating_duration_since(crate::runtime::coarse_timer::coarse_now());
            let res = self.read_briefly(ctx, PARK_AFTER.min(left)).await;
            holding.set(holding.get() - 1);
            match res {
                Ok(n) => return n > 0,
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
                Err(_) => return false,
            }
            if self.closing(ctx) {
                return false;
            }
        }
        // Each phase is its own future, awaited at its own point, so the connection's
        // task holds the larger of the two, not both.
        self.wait_parked(ctx, give_up).await
    }

    /// Reads the next bytes holding the buffers (TLS: rustls keeps its own anyway; a
    /// parked connection once it is readable), until `give_up` or its listener closes.
    async fn wait_with_buffers(&mut self, ctx: &WorkerCtx, give_up: Instant) -> bool {
        // The read borrows the stream and the wait the listener: two fields, not `self`.
        let buf = std::mem::take(&mut self.rbuf);
        let (read, buf) = monoio::select! {
            r = super::conn_io::read_into(&mut self.stream, buf) => r,
            _ = ctx.timers.sleep_until(give_up) => return false,
            _ = self.listener.wait() => return false,
        };
        self.rbuf = buf;
        matches!(read, Ok(n) if n > 0)
    }

    /// A read into `rbuf` for at most `brief`; ECANCELED when nothing came (or a drain
    /// began, or the listener closed).
    async fn read_briefly(&mut self, ctx: &WorkerCtx, brief: Duration) -> std::io::Result<usize> {
        let mut buf = std::mem::take(&mut self.rbuf);
        if buf.capacity() - buf.len() < READ_BUF / 4 {
            buf.reserve(READ_BUF);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let Io::Plain(tcp) = &mut self.stream else {
            unreachable!("TLS waits in wait_for_next_request")
        };
        let handle = self.canceller.handle();
        let mut read = std::pin::pin!(tcp.cancelable_read(SliceMut::new(buf, len, cap), handle));
        let early = monoio::select! {
            r = &mut read => Some(r),
            _ = ctx.timers.sleep(brief) => None,
            _ = self.listener.wait() => None,
        };
        let (res, slice) = match early {
            Some(done) => done,
            None => {
                // The read may still complete with data that raced the cancel.
                self.canceller = std::mem::take(&mut self.canceller).cancel();
                read.await
            }
        };
        self.rbuf = slice.into_inner();
        res
    }

    /// Waits for readability until `give_up` holding no buffer, then reads.
    async fn wait_parked(&mut self, ctx: &WorkerCtx, give_up: Instant) -> bool {
        if crate::runtime::coarse_timer::coarse_now() >= give_up {
            return false;
        }
        self.park_buffers(ctx);
        let Io::Plain(tcp) = &self.stream else {
            unreachable!("TLS waits above")
        };
        let ready = monoio::select! {
            r = tcp.readable(false) => r.is_ok(),
            _ = ctx.timers.sleep_until(give_up) => false,
            _ = self.listener.wait() => false,
        };
        self.unpark_buffers(ctx);
        // The read is bounded as the wait was: readiness without bytes to read (a TCP
        // urgent byte wakes the poll under io_uring) left it, and the connection, waiting
        // past `idle_timeout` and through a stop.
        ready && self.wait_with_buffers(ctx, give_up).await
    }

    /// Gives this connection's (empty) buffers to the worker's spares.
    pub(crate) fn park_buffers(&mut self, ctx: &WorkerCtx) {
        let mut spares = ctx.spares.borrow_mut();
        spares.put_bytes(std::mem::take(&mut self.rbuf));
        spares.put_bytes(std::mem::take(&mut self.ubuf));
        spares.put_vec(std::mem::take(&mut self.wbuf));
        spares.put_vec(std::mem::take(&mut self.log_scratch));
        spares.put_headers(std::mem::take(&mut self.head.headers));
        spares.put_headers(std::mem::take(&mut self.rhead.headers));
    }

    fn unpark_buffers(&mut self, ctx: &WorkerCtx) {
        let mut spares = ctx.spares.borrow_mut();
        self.rbuf = spares.bytes();
        self.ubuf = spares.bytes();
        self.wbuf = spares.vec();
        self.log_scratch = spares.vec();
        self.head.headers = spares.headers();
        self.rhead.headers = spares.headers();
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;
    use std::net::SocketAddr;
    use std::rc::Rc;

    use monoio::net::TcpStream;

    use crate::runtime::shutdown::Drain;
    use crate::runtime::WorkerCtx;

    /// The size of the future a function returns, without calling it: the closure names
    /// its argument types (owned, or `'static` references) so that the future's type is
    /// concrete.
    fn future_size<A, B, C, D, F>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        size_of::<F>()
    }

    /// An idle plain connection costs its task: monoio's header (176 bytes) plus this
    /// future (`serve`'s inside the task's panic guard), which is as large as the largest
    /// thing the connection ever awaits inline. 1,872 bytes is what keeps the task in the
    /// allocator's 2 KiB size class (the next is 2.5 KiB), i.e. under 4 KiB of RSS per
    /// idle connection at 10,000. Whatever makes it grow (an inline monoio sleep is 640
    /// bytes, a rustls read several hundred, a second copy of `serve`'s future in a
    /// wrapper) belongs in a box or a coarse timer instead.
    #[test]
    fn an_idle_plain_connection_fits_its_budget() {
        let task = future_size(
            |ctx: Rc<WorkerCtx>, s: TcpStream, p: SocketAddr, l: Rc<Drain>| {
                crate::runtime::listeners::plain_connection(ctx, s, p, l)
            },
        );
        assert!(
            task <= 1872,
            "a plain connection's task future is {task} bytes"
        );
    }
}
