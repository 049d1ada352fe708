//! Per-worker keep-alive pools, one per upstream. Nothing here is shared across threads:
//! each worker owns its pools, so checkout and checkin are a `RefCell` borrow and a `Vec`
//! push/pop. A pool is an `Rc` so that a config reload can hand an unchanged upstream's
//! pool, idle connections and all, to the next generation, while requests still running
//! on the old generation return their connections to the pool they took them from.
//!
//! Slots are per address (every address of every target, from `upstream::resolve`). When
//! the resolver publishes a new set, the next checkout rebuilds the slots, keeping the
//! idle connections, in-flight counts and connect failures of addresses still in it; a
//! lease taken before finds its slot again by address, or drops its connection if the
//! address went away.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tls::UpstreamIo;
use tracing::debug;

use super::balance::{self, Rng};
use super::resolve::Endpoints;
use crate::config::compile::{Snapshot, UpstreamRt};
use crate::metrics::{registry, UpstreamCells};

struct Target {
    addr: SocketAddr,
    /// The configured target this address belongs to.
    target: usize,
    /// Most recently returned last, so the warmest connection is reused first.
    idle: Vec<(UpstreamIo, Instant)>,
    /// When this worker last failed to connect here: the balancer passes over the
    /// address for `FAIL_TIMEOUT` after (nginx's `max_fails=1 fail_timeout=10s`).
    failed_at: Option<Instant>,
}

/// How long a worker passes over an address it could not connect to. After it, one
/// request tries the address again.
pub const FAIL_TIMEOUT: Duration = Duration::from_secs(10);

struct State {
    cursor: usize,
    in_flight: Vec<u32>,
    targets: Vec<Target>,
    rng: Rng,
    /// The address set `targets` was built from (`Addresses::version`).
    version: u64,
    endpoints: Arc<Endpoints>,
}

pub struct UpstreamPool {
    spec: UpstreamRt,
    state: RefCell<State>,
    /// The `Host` header value sent to each configured target.
    hosts: Vec<Box<[u8]>>,
    pub cells: Arc<UpstreamCells>,
}

/// A worker's pools for one config generation, indexed like `Snapshot::upstreams`.
pub struct Pools {
    ups: Vec<Rc<UpstreamPool>>,
}

/// A target chosen for one request; end it with [`Lease::release`].
pub struct Lease {
    pool: Rc<UpstreamPool>,
    /// The configured target (its TLS name and Host header).
    pub target: usize,
    /// The slot of `addr`, valid while the pool's `version` is this one.
    slot: usize,
    version: u64,
    pub addr: SocketAddr,
    pub connect_timeout: Duration,
    /// A pooled connection, if one was idle. `None`: the caller connects.
    pub pooled: Option<UpstreamIo>,
}

impl Pools {
    /// Builds this worker's pools for `snapshot`, keeping the pool of every upstream
    /// whose definition did not change since `previous`.
    pub fn build(snapshot: &Snapshot, worker: usize, seed: u64, previous: Option<&Pools>) -> Pools {
        let ups = snapshot
            .upstreams
            .iter()
            .map(|u| {
                let kept = previous.and_then(|p| p.ups.iter().find(|old| old.spec == *u));
                kept.cloned()
                    .unwrap_or_else(|| Rc::new(UpstreamPool::new(u, worker, seed)))
            })
            .collect();
        Pools { ups }
    }

    /// Picks a target and takes an idle connection to it if a fresh-enough one exists.
    pub fn checkout(&self, upstream: usize) -> Option<Lease> {
        let pool = self.ups.get(upstream)?;
        let mut st = pool.state.borrow_mut();
        pool.follow_addresses(&mut st);
        if st.targets.is_empty() {
            return None;
        }
        let State {
            cursor,
            in_flight,
            rng,
            endpoints,
            targets,
            ..
        } = &mut *st;
        // Health checks: pass over a target that is down (one relaxed load each; none
        // without checks), and one this worker could not connect to just now.
        let health = &endpoints.health;
        let now = crate::runtime::coarse_timer::coarse_now();
        let checked_up = |i: usize| health.get(i).is_none_or(|h| h.0.is_up());
        let up = |i: usize| {
            checked_up(i)
                && targets[i]
                    .failed_at
                    .is_none_or(|at| now.duration_since(at) >= FAIL_TIMEOUT)
        };
        // None up by both marks: a target the checks pass comes before one they hold
        // down, though this worker could not connect to it lately (else half the traffic
        // went to a target the checks had taken out).
        let t = balance::pick_preferring(pool.spec.balance, cursor, in_flight, rng, up, checked_up);
        drop(st);
        Some(pool.lease(t))
    }

    /// After `failed` could not be connected to: a lease on the next address, in slot
    /// order after the one first picked (`first`), that this request has not tried and
    /// health checks do not hold down (unless they hold all down). `step` counts the
    /// slots passed so far (0 at the first pick); None once every other address was
    /// tried, or when the address set changed meanwhile (the request then fails as
    /// before). `failed` is released when another lease is returned; its address is
    /// passed over by this worker's balancer for `FAIL_TIMEOUT` either way. (Failover
    /// itself still tries such addresses: the request would otherwise fail.)
    pub fn failover(
        &self,
        upstream: usize,
        failed: &Lease,
        first: usize,
        step: &mut usize,
    ) -> Option<Lease> {
        let pool = self.ups.get(upstream)?;
        let mut st = pool.state.borrow_mut();
        let n = st.targets.len();
        if st.version != failed.version {
            return None;
        }
        st.targets[failed.slot].failed_at = Some(crate::runtime::coarse_timer::coarse_now());
        // Down targets are passed over, unless all are (then every one is tried, as the
        // balancer does).
        let health = &st.endpoints.health;
        let all_down = !health.iter().any(|h| h.0.is_up());
        while *step + 1 < n {
            *step += 1;
            let t = (first + *step) % n;
            if all_down || health[t].0.is_up() {
                drop(st);
                failed.release(None);
                return Some(pool.lease(t));
            }
        }
        None
    }

    /// After a new connection to `lease`'s address closed (or was reset) before any
    /// answer: this worker's balancer passes over the address for `FAIL_TIMEOUT`, as
    /// after a refused connection (nginx counts both toward `max_fails`). A backend that
    /// accepts and drops every connection got its whole share of requests, each a 502.
    pub fn mark_failed(&self, upstream: usize, lease: &Lease) {
        let Some(pool) = self.ups.get(upstream) else {
            return;
        };
        let mut st = pool.state.borrow_mut();
        if st.version == lease.version {
            st.targets[lease.slot].failed_at = Some(crate::runtime::coarse_timer::coarse_now());
        }
    }

    /// Idle connections in one upstream's pool.
    pub fn idle_count(&self, upstream: usize) -> usize {
        self.ups.get(upstream).map_or(0, |u| {
            u.state.borrow().targets.iter().map(|t| t.idle.len()).sum()
        })
    }

    /// Drops idle connections past their idle timeout, so backends are not left holding
    /// sockets we will never use, and those the backend closed (or sent bytes on), as
    /// nginx closes a cached connection when its upstream does: they held a descriptor in
    /// CLOSE_WAIT, and a place in the pool, until the idle timeout (one peek each).
    pub fn sweep(&self) {
        let now = crate::runtime::coarse_timer::coarse_now();
        for up in &self.ups {
            let limit = up.spec.pool.idle_timeout;
            for t in &mut up.state.borrow_mut().targets {
                t.idle.retain_mut(|(stream, since)| {
                    now.duration_since(*since) < limit && stream.is_quiet()
                });
            }
        }
    }
}

impl UpstreamPool {
    /// Leases slot `t`, with its warmest idle connection that is still fresh and quiet.
    fn lease(self: &Rc<Self>, t: usize) -> Lease {
        let pool = self;
        let mut st = pool.state.borrow_mut();
        st.in_flight[t] += 1;
        let now = crate::runtime::coarse_timer::coarse_now();
        let limit = pool.spec.pool.idle_timeout;
        let target = &mut st.targets[t];
        let mut pooled = None;
        while let Some((mut stream, since)) = target.idle.pop() {
            if now.duration_since(since) >= limit {
                continue;
            }
            if !stream.is_quiet() {
                debug!(upstream = %pool.spec.name, target = %target.addr, "idle connection received bytes or was closed; discarded");
                continue;
            }
            pooled = Some(stream);
            break;
        }
        let (addr, configured, version) = (target.addr, target.target, st.version);
        drop(st);
        Lease {
            pool: pool.clone(),
            target: configured,
            slot: t,
            version,
            addr,
            connect_timeout: pool.spec.connect_timeout,
            pooled,
        }
    }

    fn new(spec: &UpstreamRt, worker: usize, seed: u64) -> Self {
        UpstreamPool {
            spec: spec.clone(),
            // Slots are built by the first checkout (version 0 is never published).
            state: RefCell::new(State {
                cursor: seed as usize,
                in_flight: Vec::new(),
                targets: Vec::new(),
                rng: Rng::new(seed ^ worker as u64),
                version: 0,
                endpoints: Arc::default(),
            }),
            hosts: (0..spec.targets.len())
                .map(|i| spec.host_header(i).into_bytes().into())
                .collect(),
            cells: registry().upstream(worker, &spec.name),
        }
    }

    /// Rebuilds the slots when the resolver published a new address set (one atomic load
    /// when it did not).
    fn follow_addresses(&self, st: &mut State) {
        let version = self.spec.addrs.version();
        if version == st.version {
            return;
        }
        let endpoints = self.spec.addrs.load();
        let mut old = std::mem::take(&mut st.targets);
        let old_in_flight = std::mem::take(&mut st.in_flight);
        for e in &endpoints.list {
            let kept = old
                .iter()
                .position(|t| t.addr == e.addr && t.target == e.target);
            let (idle, in_flight, failed_at) = match kept {
                Some(i) => (
                    std::mem::take(&mut old[i].idle),
                    old_in_flight[i],
                    old[i].failed_at,
                ),
                None => (Vec::new(), 0, None),
            };
            st.targets.push(Target {
                addr: e.addr,
                target: e.target,
                idle,
                failed_at,
            });
            st.in_flight.push(in_flight);
        }
        st.endpoints = endpoints;
        st.version = version;
    }
}

impl Lease {
    /// The address slot this lease took (a starting point for [`Pools::failover`]).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Appends the Host header value for this lease's target.
    pub fn host(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.pool.hosts[self.target]);
    }

    /// TLS settings when the upstream's targets are `https://`.
    pub fn tls(&self) -> Option<&crate::tls::ClientTls> {
        self.pool.spec.tls.as_deref()
    }

    pub fn cells(&self) -> &UpstreamCells {
        &self.pool.cells
    }

    /// Counts a request this lease's target failed: `timeout` or `error` in
    /// `portico_upstream_requests_total`.
    pub fn count_failure(&self, timed_out: bool) {
        let cells = &self.pool.cells;
        let cell = if timed_out {
            &cells.timeout
        } else {
            &cells.error
        };
        crate::metrics::cells::bump(cell, 1);
    }

    /// Ends a request; `keep` is the connection if it can carry another request.
    pub fn release(&self, keep: Option<UpstreamIo>) {
        let mut st = self.pool.state.borrow_mut();
        let slot = if st.version == self.version {
            Some(self.slot)
        } else {
            // The address set changed while this request ran.
            st.targets
                .iter()
                .position(|t| t.addr == self.addr && t.target == self.target)
        };
        // An address that went away takes its connection with it.
        let Some(slot) = slot else { return };
        st.in_flight[slot] = st.in_flight[slot].saturating_sub(1);
        if let Some(stream) = keep {
            let max = self.pool.spec.pool.max_idle_per_worker;
            let target = &mut st.targets[slot];
            if target.idle.len() < max {
                target
                    .idle
                    .push((stream, crate::runtime::coarse_timer::coarse_now()));
            }
        }
    }
}
