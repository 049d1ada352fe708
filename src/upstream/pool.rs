//! Per-worker keep-alive pools, one per upstream target. Nothing here is shared across
//! threads: each worker owns its pools, so checkout and checkin are a `RefCell` borrow
//! and a `Vec` push/pop.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::balance::{self, Rng};
use crate::config::compile::Snapshot;
use crate::config::model::Balance;

struct Target {
    addr: SocketAddr,
    /// The `Host` header value sent to this target.
    host: Box<[u8]>,
    /// Most recently returned last, so the warmest connection is reused first.
    idle: Vec<(TcpStream, Instant)>,
}

struct Upstream {
    balance: Balance,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    cursor: usize,
    in_flight: Vec<u32>,
    targets: Vec<Target>,
}

pub struct Pools {
    ups: RefCell<Vec<Upstream>>,
    rng: RefCell<Rng>,
}

/// A target chosen for one request; hand it back with [`Pools::release`].
#[derive(Debug)]
pub struct Lease {
    pub upstream: usize,
    pub target: usize,
    pub addr: SocketAddr,
    pub connect_timeout: Duration,
    /// A pooled connection, if one was idle. `None`: the caller connects.
    pub pooled: Option<TcpStream>,
}

impl Pools {
    pub fn new(snapshot: &Snapshot, seed: u64) -> Self {
        let ups = snapshot
            .upstreams
            .iter()
            .map(|u| Upstream {
                balance: u.balance,
                max_idle: u.pool.max_idle_per_worker,
                idle_timeout: u.pool.idle_timeout,
                connect_timeout: u.connect_timeout,
                cursor: seed as usize,
                in_flight: vec![0; u.targets.len()],
                targets: u
                    .targets
                    .iter()
                    .map(|a| Target {
                        addr: *a,
                        host: a.to_string().into_bytes().into(),
                        idle: Vec::new(),
                    })
                    .collect(),
            })
            .collect();
        Pools {
            ups: RefCell::new(ups),
            rng: RefCell::new(Rng::new(seed)),
        }
    }

    /// Picks a target and takes an idle connection to it if a fresh-enough one exists.
    pub fn checkout(&self, upstream: usize) -> Option<Lease> {
        let mut ups = self.ups.borrow_mut();
        let up = ups.get_mut(upstream)?;
        if up.targets.is_empty() {
            return None;
        }
        let t = balance::pick(
            up.balance,
            &mut up.cursor,
            &up.in_flight,
            &mut self.rng.borrow_mut(),
        );
        up.in_flight[t] += 1;
        let idle_timeout = up.idle_timeout;
        let target = &mut up.targets[t];
        let now = Instant::now();
        let mut pooled = None;
        while let Some((stream, since)) = target.idle.pop() {
            if now.duration_since(since) < idle_timeout {
                pooled = Some(stream);
                break;
            }
        }
        Some(Lease {
            upstream,
            target: t,
            addr: target.addr,
            connect_timeout: up.connect_timeout,
            pooled,
        })
    }

    /// The Host header value for a lease's target.
    pub fn host_of(&self, lease: &Lease, out: &mut Vec<u8>) {
        let ups = self.ups.borrow();
        out.extend_from_slice(&ups[lease.upstream].targets[lease.target].host);
    }

    /// Ends a request on a lease; `keep` is the connection if it can carry another request.
    pub fn release(&self, lease: &Lease, keep: Option<TcpStream>) {
        let mut ups = self.ups.borrow_mut();
        let up = &mut ups[lease.upstream];
        up.in_flight[lease.target] = up.in_flight[lease.target].saturating_sub(1);
        if let Some(stream) = keep {
            let target = &mut up.targets[lease.target];
            if target.idle.len() < up.max_idle {
                target.idle.push((stream, Instant::now()));
            }
        }
    }

    /// Idle connections per target, for tests and metrics.
    pub fn idle_count(&self, upstream: usize) -> usize {
        self.ups
            .borrow()
            .get(upstream)
            .map_or(0, |u| u.targets.iter().map(|t| t.idle.len()).sum())
    }

    /// Drops idle connections past their idle timeout (called from a worker timer so
    /// backends are not left holding sockets we will never use).
    pub fn sweep(&self) {
        let now = Instant::now();
        for up in self.ups.borrow_mut().iter_mut() {
            let limit = up.idle_timeout;
            for t in &mut up.targets {
                t.idle
                    .retain(|(_, since)| now.duration_since(*since) < limit);
            }
        }
    }
}
