//! Thread per core. Each worker is pinned to a core, runs its own monoio runtime (io_uring,
//! or epoll where io_uring is unavailable or forced) and its own SO_REUSEPORT listener per
//! configured address, so the kernel spreads connections and no task ever crosses threads.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};
use tracing::{debug, error, info, warn};

use super::request_id::{process_seed, RequestIds};
use super::shutdown::{stop_requested, Drain};
use crate::config::compile::Snapshot;
use crate::config::model::{DriverChoice, Workers};
use crate::upstream::balance::Rng;
use crate::upstream::Pools;

/// Everything one worker owns. Shared by its tasks through `Rc`, never across threads
/// (apart from the read-only snapshot).
pub struct WorkerCtx {
    pub id: usize,
    pub snapshot: Arc<Snapshot>,
    pub pools: Pools,
    pub ids: RequestIds,
    pub drain: Drain,
    pub rng: RefCell<Rng>,
    pub active: Cell<usize>,
    pub driver: Driver,
    /// API keys, throttles, quotas: local buckets and the shared pools (pipeline::admission).
    pub traffic: crate::pipeline::Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("another process already listens on {0}; stop it or change server.listen")]
    AddressInUse(SocketAddr),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("PORTICO_DRIVER={0:?} is not one of io_uring, epoll, auto")]
    BadDriverEnv(String),
    #[error("io_uring was requested but cannot start on this host: {0}")]
    NoIoUring(std::io::Error),
    #[error("worker {0} stopped before it started")]
    WorkerDied(usize),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on admin.listen {0}: {1}")]
    AdminBind(SocketAddr, std::io::Error),
}

/// Starts the workers and blocks until they have drained after a stop request.
pub fn run(snapshot: Arc<Snapshot>) -> Result<(), StartError> {
    let server = &snapshot.server;
    let addrs = server.listen.clone();
    // SO_REUSEPORT would let us silently share a port with a stale process; a plain bind
    // first proves the address is free.
    for addr in &addrs {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            return Err(match e.kind() {
                std::io::ErrorKind::AddrInUse => StartError::AddressInUse(*addr),
                _ => StartError::Bind(*addr, e),
            });
        }
    }
    let choice = driver_choice(server.driver)?;
    let driver = match choice {
        DriverChoice::Epoll => Driver::Epoll,
        DriverChoice::IoUring => Driver::IoUring,
        DriverChoice::Auto if monoio::utils::detect_uring() => Driver::IoUring,
        DriverChoice::Auto => {
            warn!("io_uring is unavailable on this host; workers use the epoll driver");
            Driver::Epoll
        }
    };
    let count = match server.workers {
        Workers::Count(n) => n.max(1),
        Workers::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // Keys, usage and token pools, shared by the workers; then the admin listener.
    let shared = crate::global::Shared::start(&snapshot, count)?;
    let admin = crate::admin::start(&snapshot, &shared, count, driver.name())
        .map_err(|e| StartError::AdminBind(snapshot.traffic.admin.as_ref().unwrap().listen, e))?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let seed = process_seed();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut threads = Vec::new();
    for id in 0..count {
        let snapshot = snapshot.clone();
        let shared = shared.clone();
        let addrs = addrs.clone();
        let core = cores.get(id % cores.len().max(1)).copied();
        let ready = ready_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("portico-w{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let work = worker_main(id, snapshot, shared, addrs, driver, seed, ready.clone());
                let built = match driver {
                    Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                        .enable_timer()
                        .build()
                        .map(|mut rt| rt.block_on(work)),
                    Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                        .enable_timer()
                        .build()
                        .map(|mut rt| rt.block_on(work)),
                };
                if let Err(e) = built {
                    let _ = ready.send(Err(StartError::NoIoUring(e)));
                }
            })
            .expect("spawning a worker thread");
        threads.push(handle);
    }
    drop(ready_tx);
    for id in 0..count {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                super::shutdown::request_stop();
                return Err(e);
            }
            Err(_) => return Err(StartError::WorkerDied(id)),
        }
    }
    info!(workers = count, driver = driver.name(), listen = ?addrs, "portico is serving");
    for t in threads {
        let _ = t.join();
    }
    // Drained: the last usage counts go to the store before the process exits.
    shared.shutdown();
    if let Some(admin) = admin {
        admin.stop();
    }
    Ok(())
}

fn driver_choice(configured: DriverChoice) -> Result<DriverChoice, StartError> {
    match std::env::var("PORTICO_DRIVER") {
        Ok(v) => match v.as_str() {
            "io_uring" | "iouring" | "uring" => Ok(DriverChoice::IoUring),
            "epoll" | "legacy" => Ok(DriverChoice::Epoll),
            "auto" | "" => Ok(configured),
            _ => Err(StartError::BadDriverEnv(v)),
        },
        Err(_) => Ok(configured),
    }
}

async fn worker_main(
    id: usize,
    snapshot: Arc<Snapshot>,
    shared: Arc<crate::global::Shared>,
    addrs: Vec<SocketAddr>,
    driver: Driver,
    seed: u64,
    ready: mpsc::Sender<Result<(), StartError>>,
) {
    let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
    let mut listeners = Vec::new();
    for addr in &addrs {
        match TcpListener::bind_with_config(addr, &opts) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                let _ = ready.send(Err(StartError::Bind(*addr, e)));
                return;
            }
        }
    }
    let ctx = Rc::new(WorkerCtx {
        id,
        pools: Pools::new(&snapshot, seed ^ id as u64),
        traffic: crate::pipeline::Local::new(shared, &snapshot, id),
        snapshot,
        ids: RequestIds::new(seed, id),
        drain: Drain::default(),
        rng: RefCell::new(Rng::new(seed.rotate_left(id as u32 + 1))),
        active: Cell::new(0),
        driver,
    });
    for listener in listeners {
        monoio::spawn(accept_loop(ctx.clone(), listener));
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    debug!(worker = id, driver = driver.name(), "worker started");

    let mut last_sweep = Instant::now();
    while !stop_requested() {
        monoio::time::sleep(Duration::from_millis(50)).await;
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            ctx.pools.sweep();
            last_sweep = Instant::now();
        }
    }
    ctx.drain.begin();
    let deadline = Instant::now() + ctx.snapshot.server.limits.drain_timeout;
    while ctx.active.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if ctx.active.get() > 0 {
        warn!(
            worker = id,
            connections = ctx.active.get(),
            "drain timeout: closing connections"
        );
    }
}

async fn accept_loop(ctx: Rc<WorkerCtx>, listener: TcpListener) {
    loop {
        let accepted = monoio::select! {
            a = listener.accept() => a,
            _ = ctx.drain.wait() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                ctx.active.set(ctx.active.get() + 1);
                monoio::spawn(async move {
                    crate::http1::conn::serve(&ctx, stream, peer).await;
                    ctx.active.set(ctx.active.get() - 1);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the error.
                error!(worker = ctx.id, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
