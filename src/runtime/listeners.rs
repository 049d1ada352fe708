//! A worker's listening sockets: binding them, their accept loops, following a reload's
//! `listen` and `tls_listen`, and closing them at a stop without resetting a connection
//! a client saw open.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};
use tracing::{error, info, warn};

use super::shutdown::{stop_now_requested, stop_requested, Drain};
use super::workers::{Driver, WorkerCtx};

/// Every listener a config asks for: (address, TLS).
fn wanted_listeners(snap: &crate::config::compile::Snapshot) -> Vec<(SocketAddr, bool)> {
    let plain = snap.server.listen.iter().map(|a| (*a, false));
    plain
        .chain(snap.server.tls_listen.iter().map(|a| (*a, true)))
        .collect()
}

/// This worker's listening sockets. A reload keeps the ones still configured (never
/// rebinding them, so no connection is refused in between), binds new ones and stops
/// the accept loops of removed ones. An address that moves between `listen` and
/// `tls_listen` counts as removed and added.
#[derive(Default)]
pub(super) struct Listeners {
    open: HashMap<SocketAddr, Listening>,
    pending: Vec<Listening>,
    /// `limits.send_timeout`, set on each listener for its connections to inherit.
    send_timeout: Duration,
    /// Removed listeners still in their `HANDSHAKE_GRACE`: still bound and dropping
    /// SYNs, so their address neither refuses a client nor can be listened on again.
    closing: Rc<std::cell::Cell<usize>>,
}

#[derive(Clone)]
struct Listening {
    socket: Rc<TcpListener>,
    stop: Rc<Drain>,
    tls: bool,
}

impl Listeners {
    /// Binds every listener `snap` asks for (none is accepting until `spawn_pending`):
    /// Err(the address that could not be bound).
    pub(super) fn bind_all(
        snap: &crate::config::compile::Snapshot,
    ) -> Result<Listeners, (SocketAddr, std::io::Error)> {
        let mut listeners = Listeners {
            send_timeout: snap.server.limits.send_timeout,
            ..Listeners::default()
        };
        for (addr, tls) in wanted_listeners(snap) {
            listeners.bind(addr, tls).map_err(|e| (addr, e))?;
        }
        Ok(listeners)
    }

    /// Closes every listener (a stop): see [`close_listeners`].
    pub(super) async fn close_all(&mut self, ctx: &Rc<WorkerCtx>) {
        let open: Vec<Listening> = self.open.drain().map(|(_, l)| l).collect();
        close_listeners(ctx, &open).await;
    }

    fn bind(&mut self, addr: SocketAddr, tls: bool) -> std::io::Result<()> {
        let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
        let socket = TcpListener::bind_with_config(addr, &opts)?;
        super::listen_socket::set_options_for_connections(&socket, self.send_timeout)?;
        let l = Listening {
            socket: Rc::new(socket),
            stop: Rc::new(Drain::default()),
            tls,
        };
        self.open.insert(addr, l.clone());
        self.pending.push(l);
        Ok(())
    }

    /// Whether every listener a reload removed is closed (refuses connections, and its
    /// address is free for the next reload to add back).
    pub(super) fn none_closing(&self) -> bool {
        self.closing.get() == 0
    }

    pub(super) fn spawn_pending(&mut self, ctx: &Rc<WorkerCtx>) {
        for l in self.pending.drain(..) {
            monoio::spawn(accept_loop(ctx.clone(), l));
        }
    }

    /// Follows a reload's `listen`, `tls_listen` and `limits.send_timeout`.
    pub(super) fn reconcile(
        &mut self,
        ctx: &Rc<WorkerCtx>,
        snap: &crate::config::compile::Snapshot,
    ) {
        let wanted = &wanted_listeners(snap)[..];
        let send_timeout = snap.server.limits.send_timeout;
        if send_timeout != self.send_timeout {
            // Connections accepted from now on inherit the new value.
            self.send_timeout = send_timeout;
            for (addr, l) in &self.open {
                let set = super::listen_socket::set_options_for_connections;
                if let Err(e) = set(&l.socket, send_timeout) {
                    warn!(worker = ctx.id, %addr, error = %e, "cannot set send_timeout on a listener");
                }
            }
        }
        self.open.retain(|addr, l| {
            let keep = wanted.contains(&(*addr, l.tls));
            if !keep {
                info!(worker = ctx.id, %addr, "listener removed by reload");
                let (ctx, l, closing) = (ctx.clone(), l.clone(), self.closing.clone());
                closing.set(closing.get() + 1);
                monoio::spawn(async move {
                    close_listeners(&ctx, &[l]).await;
                    closing.set(closing.get() - 1);
                });
            }
            keep
        });
        for &(addr, tls) in wanted {
            if !self.open.contains_key(&addr) {
                match self.bind(addr, tls) {
                    Ok(()) => info!(worker = ctx.id, %addr, tls, "listener added by reload"),
                    Err(e) => {
                        error!(worker = ctx.id, %addr, error = %e, "cannot listen on a reloaded address")
                    }
                }
            }
        }
        self.spawn_pending(ctx);
    }
}

async fn accept_loop(ctx: Rc<WorkerCtx>, l: Listening) {
    loop {
        // Biased: an accept that completed before the stop is served, not dropped with
        // its connection when the drain is ready in the same poll.
        let accepted = monoio::select! {
            biased;
            a = l.socket.accept() => a,
            _ = ctx.drain.wait() => return,
            _ = l.stop.wait() => return,
        };
        match accepted {
            Ok((stream, peer)) => spawn_connection(&ctx, stream, peer, &l),
            // Stopping takes the socket out of LISTEN (`stop_listening`), which fails
            // the pending accept (EINVAL); that is the stop, not an error.
            Err(_) if ctx.drain.closing() || l.stop.closing() || stop_requested() => return,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the error, and say
                // so once a second per worker, not at every retry (a client holding every
                // descriptor would otherwise fill the log at twenty lines a second).
                if let Some(held_back) = crate::metrics::log_limit::allow(("accept", ctx.id)) {
                    error!(worker = ctx.id, error = %e, held_back, "accept failed");
                }
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// How long listeners that drop new SYNs keep accepting before they close: a handshake
/// under way when the filter went on completes one round trip after its SYN-ACK.
const HANDSHAKE_GRACE: Duration = Duration::from_millis(100);

/// Takes listeners out of LISTEN without resetting a connection a client saw open:
/// first no new handshake starts (`refuse_new_handshakes`), then for `HANDSHAKE_GRACE`
/// the accept loops take the handshakes that were under way, then the connections still
/// queued are served and the listeners close (closing resets what is queued, and those
/// clients, connected before the stop or the reload and often with their request sent,
/// can't tell that from a request lost). A second stop signal cuts the grace short.
async fn close_listeners(ctx: &Rc<WorkerCtx>, listeners: &[Listening]) {
    if listeners.is_empty() {
        return;
    }
    for l in listeners {
        super::listen_socket::refuse_new_handshakes(&*l.socket);
    }
    let grace_ends = Instant::now() + HANDSHAKE_GRACE;
    while Instant::now() < grace_ends && !stop_now_requested() {
        monoio::time::sleep(Duration::from_millis(10)).await;
        // Requests served meanwhile may wait on a coarse deadline.
        ctx.timers.fire_due();
    }
    let epoll = ctx.driver == Driver::Epoll;
    for l in listeners {
        for s in super::listen_socket::take_queued(&*l.socket, epoll) {
            let Ok(peer) = s.peer_addr() else { continue };
            if let Ok(stream) = monoio::net::TcpStream::from_std(s) {
                spawn_connection(ctx, stream, peer, l);
            }
        }
        super::listen_socket::stop_listening(&*l.socket);
        l.stop.begin();
    }
}

/// Serves an accepted connection on its own task.
fn spawn_connection(
    ctx: &Rc<WorkerCtx>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    l: &Listening,
) {
    // TCP_NODELAY and TCP_USER_TIMEOUT are the listener's, inherited (`listen_socket`).
    let ctx = ctx.clone();
    ctx.connection_opened();
    let listener = l.stop.clone();
    // Two spawns, not one task with an `if`: a task is as large as its largest future,
    // and a TLS connection's is more than twice a plain one's.
    if l.tls {
        monoio::spawn(tls_connection(ctx, stream, peer, listener));
    } else {
        monoio::spawn(plain_connection(ctx, stream, peer, listener));
    }
}

/// A plain connection's whole task: its future is what every open connection costs the
/// worker (`server::idle` holds the budget). It is `serve`'s future inside combinators,
/// not inside an `async` block or fn: one of those keeps its own copy of the arguments
/// it passes on, and one holding the future in a local kept a second copy of that too
/// (rustc saves a moved-out local across an await), which took the task from the
/// allocator's 2 KiB class to 4 KiB per idle connection.
pub(crate) fn plain_connection(
    ctx: Rc<WorkerCtx>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    listener: Rc<Drain>,
) -> impl std::future::Future<Output = ()> {
    let serving = crate::server::conn::serve(ctx.clone(), stream, peer, listener);
    contained(serving, peer, move || ctx.connection_closed())
}

/// `plain_connection` for a TLS listener.
fn tls_connection(
    ctx: Rc<WorkerCtx>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    listener: Rc<Drain>,
) -> impl std::future::Future<Output = ()> {
    let serving = crate::server::conn::serve_tls(ctx.clone(), stream, peer, listener);
    contained(serving, peer, move || ctx.connection_closed())
}

/// Runs a connection so that a panic in it (a bug) ends that connection only, its socket
/// closed as the task unwinds. monoio does not catch a task's panic: it unwound the
/// worker's runtime, every connection of the worker was dropped, and its SO_REUSEPORT
/// listener, still open, kept taking connections no one served. Either way `ended` runs
/// (the connection is counted closed).
fn contained(
    serving: impl std::future::Future<Output = ()>,
    peer: SocketAddr,
    ended: impl FnOnce(),
) -> impl std::future::Future<Output = ()> {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(serving)
        .catch_unwind()
        .map(move |served| {
            if served.is_err() {
                error!(%peer, "a connection's task panicked (a bug: the panic message is above); that connection is closed, the worker goes on");
            }
            ended();
        })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    /// A connection that panics ends alone: the worker's other tasks run on, the runtime
    /// is still there to run more, and the connection is counted closed.
    #[test]
    fn a_panicking_connection_leaves_the_worker_serving() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let done = Rc::new(Cell::new(0));
        let ended = Rc::new(Cell::new(0));
        let peer = "127.0.0.1:9".parse().unwrap();
        rt.block_on(async {
            let d = done.clone();
            let other = monoio::spawn(async move {
                monoio::time::sleep(std::time::Duration::from_millis(20)).await;
                d.set(d.get() + 1);
            });
            let broken = monoio::spawn(super::contained(
                async {
                    monoio::time::sleep(std::time::Duration::from_millis(5)).await;
                    panic!("a bug in a connection");
                },
                peer,
                {
                    let ended = ended.clone();
                    move || ended.set(ended.get() + 1)
                },
            ));
            broken.await;
            other.await;
            let end = || ended.set(ended.get() + 1);
            super::contained(async { done.set(done.get() + 1) }, peer, end).await;
        });
        assert_eq!(done.get(), 2);
        assert_eq!(ended.get(), 2);
    }
}
