//! The admin listener: its own thread, plain blocking sockets, off the workers' cores'
//! hot path. Each connection gets a short-lived thread (a few at most: admin traffic is
//! an operator or a scraper), bounded so a flood cannot spawn without end.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tracing::{debug, info, warn};

use super::http::{read_request, ReadError, Response, IO_TIMEOUT};
use super::routes::Router;
use super::AdminCtx;
use crate::http1::Method;

const MAX_CONNECTIONS: usize = 32;

/// A running admin listener; [`AdminHandle::stop`] closes it.
pub struct AdminHandle {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds the admin address (failing startup if it is taken) and serves on a thread.
pub fn start(ctx: AdminCtx, addr: SocketAddr) -> std::io::Result<AdminHandle> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let router = Router::new(ctx.token.as_deref());
    if ctx.token.is_none() {
        warn!("admin.token is not set: only /health (and /metrics) answer on the admin listener");
    }
    let state = Arc::new((ctx, router, AtomicUsize::new(0)));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("portico-admin".into())
        .spawn(move || accept_loop(listener, state, flag))?;
    info!(%addr, "admin API listening");
    Ok(AdminHandle {
        addr,
        stop,
        thread: Some(thread),
    })
}

impl AdminHandle {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type State = Arc<(AdminCtx, Router, AtomicUsize)>;

fn accept_loop(listener: TcpListener, state: State, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let active = &state.2;
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = Response::message(503, "Service Unavailable").write_to(&mut stream, false);
            continue;
        }
        let state2 = state.clone();
        let spawned = std::thread::Builder::new()
            .name("portico-admin-conn".into())
            .spawn(move || {
                serve(&state2, stream);
                state2.2.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn serve(state: &State, mut stream: TcpStream) {
    let (ctx, router, _) = &**state;
    let (resp, head_only) = match read_request(&mut stream) {
        Ok(req) => {
            let resp = router.dispatch(ctx, &req);
            debug!(method = ?req.method, path = %req.path, status = resp.status, "admin request");
            (resp, req.method == Method::Head)
        }
        Err(ReadError::Closed) => return,
        Err(ReadError::Status(status, message)) => (Response::message(status, message), false),
    };
    let _ = resp.write_to(&mut stream, head_only);
}
