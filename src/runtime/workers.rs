//! Thread per core. Each worker is pinned to a core, runs its own monoio runtime (io_uring,
//! or epoll where io_uring is unavailable or forced) and its own SO_REUSEPORT listener per
//! configured address, so the kernel spreads connections and no task ever crosses threads.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use super::listeners::Listeners;
use super::reload;
use super::shutdown::{stop_now_requested, stop_requested, Drain};
use crate::config::compile::Snapshot;
use crate::config::model::DriverChoice;
use crate::metrics::cells::bump;
use crate::metrics::{registry, RouteCells, RouteLabels, WorkerCells};
use crate::pipeline::cache::Caches;
use crate::upstream::balance::Rng;
use crate::upstream::Pools;

/// Everything one worker owns. Shared by its tasks through `Rc`, never across threads.
pub struct WorkerCtx {
    pub id: usize,
    pub drain: Drain,
    pub rng: RefCell<Rng>,
    pub driver: Driver,
    pub cells: Arc<WorkerCells>,
    /// Access-log lines not yet handed to the writer, and how many there are.
    pub log_buf: RefCell<Vec<u8>>,
    pub log_lines: std::cell::Cell<u64>,
    seed: u64,
    current: RefCell<Rc<Generation>>,
    /// API keys, quotas, plan throttles: this worker's side (pipeline::admission).
    pub traffic: crate::pipeline::Local,
    /// Buffers of connections that are idle, for the next request to take.
    pub spares: RefCell<super::buffers::Spares>,
    /// Idle keep-alive connections waiting with a buffer (server::conn caps them).
    pub idle_with_buffers: std::cell::Cell<usize>,
    /// Deadlines of connections between requests (idle, header timeout, parking).
    pub timers: super::coarse_timer::CoarseTimers,
    /// WebSocket stages a reload removed under open connections, with the last
    /// generation that had each.
    pub removed_ws: super::removed_stages::RemovedStages,
}

/// One config generation as a worker sees it: the shared snapshot plus the worker's own
/// state built for it (pools, metric cells). A request holds the `Rc` of the generation
/// it started on, so a reload never changes the tables under a request in flight.
pub struct Generation {
    pub number: u64,
    pub snap: Arc<Snapshot>,
    pub pools: Pools,
    /// Indexed by `StageRt::metric_base + route`.
    pub route_cells: Vec<Arc<RouteCells>>,
    /// Requests that matched no route (or never got that far).
    pub unrouted: Arc<RouteCells>,
    /// Response cache shards, carried over from the previous generation per stage.
    pub caches: Caches,
    /// Local token buckets, indexed like `snap.traffic.pools`.
    pub limits: crate::pipeline::throttle::LimitBuckets,
    /// `[api][stage]`: this worker's open connections of a WebSocket API's stage (empty
    /// for HTTP APIs); `portico_websocket_connections{api,stage}`.
    pub ws_open: Vec<Vec<Arc<std::sync::atomic::AtomicU64>>>,
    /// What TLS connections are accepted with: the config's, or, when a reload turned
    /// TLS off, the last generation's that had it, for the connections its closing
    /// listeners still take (their clients' TCP handshakes were done; cut, they saw a
    /// connection accepted and then closed).
    pub tls: Option<Arc<crate::tls::ServerTls>>,
}

impl Generation {
    fn build(
        id: usize,
        seed: u64,
        number: u64,
        snap: Arc<Snapshot>,
        previous: Option<&Generation>,
    ) -> Self {
        let reg = registry();
        let route_cells = snap
            .metric_labels
            .iter()
            .map(|l| reg.route(id, l.clone()))
            .collect();
        let unrouted = reg.route(
            id,
            RouteLabels {
                api: String::new(),
                stage: String::new(),
                route: String::new(),
            },
        );
        let pools = Pools::build(&snap, id, seed, previous.map(|p| &p.pools));
        let caches = Caches::build(&snap, id, worker_count(), previous.map(|p| &p.caches));
        let ws_open = snap
            .apis
            .iter()
            .map(|api| match api.websocket {
                Some(_) => api
                    .stages
                    .iter()
                    .map(|st| reg.ws_stage(id, &api.name, &st.name))
                    .collect(),
                None => Vec::new(),
            })
            .collect();
        Generation {
            ws_open,
            tls: snap
                .tls
                .clone()
                .or_else(|| previous.and_then(|p| p.tls.clone())),
            number,
            limits: match previous {
                Some(p) => crate::pipeline::throttle::LimitBuckets::carried(
                    &p.limits,
                    &snap.traffic.same_limits(&p.snap.traffic),
                ),
                None => crate::pipeline::throttle::LimitBuckets::new(snap.traffic.pools.len()),
            },
            snap,
            pools,
            route_cells,
            unrouted,
            caches,
        }
    }
}

impl WorkerCtx {
    /// The generation a new request runs on; switches first if a reload happened (one
    /// relaxed atomic load when nothing changed).
    pub fn generation(&self) -> Rc<Generation> {
        if reload::generation() != self.current.borrow().number {
            self.switch();
        }
        self.current.borrow().clone()
    }

    fn switch(&self) {
        let Some((number, snap)) = reload::current() else {
            return;
        };
        let next = Rc::new(Generation::build(
            self.id,
            self.seed,
            number,
            snap,
            Some(&self.current.borrow()),
        ));
        let prev = std::mem::replace(&mut *self.current.borrow_mut(), next.clone());
        self.removed_ws.switched(&prev, &next);
        debug!(
            worker = self.id,
            generation = number,
            "switched to a new config generation"
        );
    }

    /// Hands buffered access-log lines to the writer (on the tick, so a quiet worker's
    /// lines appear within 50 ms).
    fn flush_log(&self) {
        let mut buf = self.log_buf.borrow_mut();
        if !buf.is_empty() {
            let dropped = crate::metrics::access_log::hand_off(&mut buf, self.log_lines.replace(0));
            bump(&self.cells.access_log_dropped, dropped);
        }
    }

    pub(super) fn connection_opened(&self) {
        bump(&self.cells.connections_active, 1);
    }

    pub(super) fn connection_closed(&self) {
        let c = &self.cells.connections_active;
        c.store(
            c.load(Ordering::Relaxed).saturating_sub(1),
            Ordering::Relaxed,
        );
    }

    fn active(&self) -> u64 {
        self.cells.connections_active.load(Ordering::Relaxed)
    }
}

/// How many workers `run` started (1 before it does); per-worker shares of a capacity
/// divide by it.
static WORKER_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

pub fn worker_count() -> usize {
    WORKER_COUNT.load(Ordering::Relaxed)
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
    /// The key path of the address (`server.listen[0]`), the address.
    #[error("{0}: {1} is in use (another process listens on it, or a connection holds it as its own local port); stop that process or change the address")]
    AddressInUse(String, SocketAddr),
    #[error("{0}: cannot listen on {1}: {2}")]
    Bind(String, SocketAddr, std::io::Error),
    #[error("PORTICO_DRIVER={0:?} is not one of io_uring, epoll, auto")]
    BadDriverEnv(String),
    #[error("io_uring was requested but cannot start on this host: {0}")]
    NoIoUring(std::io::Error),
    #[error("worker {0} stopped before it started")]
    WorkerDied(usize),
    #[error("worker {0} panicked (a bug: the panic message is above); Portico stopped so that it can be restarted whole")]
    WorkerPanicked(usize),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("admin.listen: cannot listen on {0}: {1}")]
    AdminBind(SocketAddr, std::io::Error),
}

/// Where `addr` is in the config (`server.listen[0]`, `server.tls_listen[1]`), for errors
/// that name it as `check` and reloads do.
fn listen_key(server: &crate::config::model::Server, addr: SocketAddr) -> String {
    let lists = [
        ("listen", &server.listen),
        ("tls_listen", &server.tls_listen),
    ];
    for (list, addrs) in lists {
        if let Some(i) = addrs.iter().position(|a| *a == addr) {
            return format!("server.{list}[{i}]");
        }
    }
    "server.listen".to_string()
}

/// Starts the workers on the installed config (`reload::install`) and blocks until they
/// have drained after a stop request.
pub fn run() -> Result<(), StartError> {
    let (_, snapshot) = reload::current().expect("a config is installed before the workers start");
    let server = &snapshot.server;
    let addrs: Vec<SocketAddr> = server
        .listen
        .iter()
        .chain(&server.tls_listen)
        .copied()
        .collect();
    // SO_REUSEPORT would let us silently share a port with a stale process; a plain bind
    // first proves the address is free.
    for addr in &addrs {
        if let Err(e) = super::listen_socket::free_soon(*addr) {
            let key = listen_key(server, *addr);
            return Err(match e.kind() {
                std::io::ErrorKind::AddrInUse => StartError::AddressInUse(key, *addr),
                _ => StartError::Bind(key, *addr, e),
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
    let count = server.workers.count();
    registry().set_driver(driver.name());
    // Keys, usage and the store, shared by the workers; then the admin listener.
    let shared = crate::global::Shared::start(&snapshot, count)?;
    // Several nodes: the Redis side thread (Redis need not be up yet).
    let cluster = snapshot.traffic.cluster.as_ref().map(|c| {
        crate::cluster::set_flush_hook(crate::pipeline::cache::flush);
        crate::cluster::connections::set_connections_hook(
            crate::websocket::across_nodes::cluster_hook,
        );
        let port = server.listen.first().map_or(0, |a| a.port());
        crate::cluster::start(c, shared.clone(), port)
    });
    let admin = crate::admin::start(&snapshot, &shared, count, driver.name())
        .map_err(|e| StartError::AdminBind(snapshot.traffic.admin.as_ref().unwrap().listen, e))?;
    WORKER_COUNT.store(count, Ordering::Relaxed);
    reload::register_workers(count);
    crate::upstream::health::spawn_checker();
    crate::upstream::resolve::spawn();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    // Where the workers' balancers start: differs between processes and restarts.
    let seed = getrandom::u64().expect("the OS random source");
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut threads = Vec::new();
    for id in 0..count {
        let core = cores.get(id % cores.len().max(1)).copied();
        let ready = ready_tx.clone();
        let shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("portico-w{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let work = worker_main(id, driver, seed, shared, ready.clone());
                // A panic outside any one connection's task (those are contained) ends
                // this worker's runtime: the process then stops, every worker draining,
                // and exits non-zero for its supervisor to restart it, rather than run
                // on with a worker whose listener takes connections no one serves.
                let built =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match driver {
                        // DEFER_TASKRUN: the kernel finishes this worker's completions when
                        // it parks (io_uring_enter), not as interrupts of whatever syscall it
                        // is in; one issuer per ring, as thread-per-core is anyway. Measured on
                        // one core: 10-25% more WebSocket passthrough messages/s, less CPU per
                        // message. Kernels before 6.1 refuse it: plain io_uring then.
                        Driver::IoUring => {
                            let mut urb = io_uring::IoUring::builder();
                            urb.setup_single_issuer().setup_defer_taskrun();
                            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                                .uring_builder(urb)
                                .enable_timer()
                                .build()
                                .or_else(|_| {
                                    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                                        .enable_timer()
                                        .build()
                                })
                                .map(|mut rt| rt.block_on(work))
                        }
                        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                            .enable_timer()
                            .build()
                            .map(|mut rt| rt.block_on(work)),
                    }));
                match built {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        let _ = ready.send(Err(StartError::NoIoUring(e)));
                    }
                    Err(_) => {
                        error!(worker = id, "worker panicked: stopping");
                        WORKER_PANICKED.store(id + 1, Ordering::SeqCst);
                        super::shutdown::request_stop();
                    }
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
                let _ = super::shutdown::request_stop();
                return Err(e);
            }
            Err(_) => return Err(StartError::WorkerDied(id)),
        }
    }
    info!(workers = count, driver = driver.name(), listen = ?server.listen, tls_listen = ?server.tls_listen, "portico is serving");
    for s in &snapshot.served {
        let urls: Vec<&str> = s.entries.iter().map(|e| e.url.as_str()).collect();
        info!(api = %s.api, stage = %s.stage, urls = %urls.join(" "), routes = s.routes.len(), "serving API stage");
    }
    for (api, stage, urls, routes) in &snapshot.served_websocket {
        info!(api = %api, stage = %stage, urls = %urls.join(" "), routes, "serving WebSocket API stage");
    }
    for t in threads {
        let _ = t.join();
    }
    // Drained: the last access-log lines and usage counts are written before the
    // process exits.
    crate::metrics::access_log::finish(Duration::from_secs(2));
    if let Some(c) = cluster {
        c.shutdown();
    }
    shared.shutdown();
    if let Some(admin) = admin {
        admin.stop();
    }
    match WORKER_PANICKED.load(Ordering::SeqCst) {
        0 => Ok(()),
        n => Err(StartError::WorkerPanicked(n - 1)),
    }
}

/// 1 + the id of a worker whose runtime panicked; 0: none.
static WORKER_PANICKED: AtomicUsize = AtomicUsize::new(0);

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
    driver: Driver,
    seed: u64,
    shared: Arc<crate::global::Shared>,
    ready: mpsc::Sender<Result<(), StartError>>,
) {
    let Some((number, snap)) = reload::current() else {
        return;
    };
    let mut listeners = match Listeners::bind_all(&snap) {
        Ok(l) => l,
        Err((addr, e)) => {
            let key = listen_key(&snap.server, addr);
            let _ = ready.send(Err(StartError::Bind(key, addr, e)));
            return;
        }
    };
    let ctx = Rc::new(WorkerCtx {
        id,
        drain: Drain::default(),
        // Its own draw: the balancers' seed is shared by the workers.
        rng: RefCell::new(Rng::new(
            getrandom::u64().unwrap_or(seed.rotate_left(id as u32 + 1)),
        )),
        driver,
        cells: registry().worker(id),
        log_buf: RefCell::new(Vec::new()),
        log_lines: std::cell::Cell::new(0),
        seed,
        current: RefCell::new(Rc::new(Generation::build(id, seed, number, snap, None))),
        traffic: crate::pipeline::Local::new(shared, id),
        spares: RefCell::default(),
        idle_with_buffers: std::cell::Cell::new(0),
        removed_ws: Default::default(),
        timers: Default::default(),
    });
    listeners.spawn_pending(&ctx);
    reload::applied(id, number);
    let _ = ready.send(Ok(()));
    drop(ready);
    debug!(worker = id, driver = driver.name(), "worker started");

    let mut last_sweep = Instant::now();
    let mut seen = number;
    let mut applied = number;
    while !stop_requested() {
        monoio::time::sleep(super::coarse_timer::TICK).await;
        ctx.timers.fire_due();
        // Reloads reach idle workers here (busy ones switch on their next request).
        let gen = ctx.generation();
        if gen.number != seen {
            seen = gen.number;
            listeners.reconcile(&ctx, &gen.snap);
        }
        // Applied once the listeners it removed are closed, not while they finish their
        // handshakes: the reload is answered then, and a client connecting to a removed
        // address was not refused but had its SYN dropped (a second's retry), and the
        // next reload could not add the address back (this process still held it).
        if applied != seen && listeners.none_closing() {
            applied = seen;
            reload::applied(id, seen);
        }
        ctx.flush_log();
        gen.caches.tick();
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            gen.pools.sweep();
            last_sweep = Instant::now();
        }
    }
    // Queued connections are served as fresh ones in a drain (`FRESH_GRACE`). Every
    // listener closes before the drain begins: idle connections wait on their
    // listener's close alone (`server::idle`).
    listeners.close_all(&ctx).await;
    ctx.drain.begin();
    let drain_timeout = ctx.generation().snap.server.limits.drain_timeout;
    let deadline = Instant::now() + drain_timeout;
    while ctx.active() > 0 && Instant::now() < deadline && !stop_now_requested() {
        monoio::time::sleep(Duration::from_millis(10)).await;
        // Requests still in flight may wait on a coarse deadline (a head's timeout).
        ctx.timers.fire_due();
    }
    if ctx.active() > 0 {
        let why = match stop_now_requested() {
            true => "second stop signal: closing connections",
            false => "drain timeout: closing connections",
        };
        warn!(worker = id, connections = ctx.active(), "{why}");
    }
    ctx.flush_log();
}
