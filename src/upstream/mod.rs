//! Per-worker upstream state: keep-alive pools per address and the balancer that picks
//! one; active health checks and host-name resolution shared by all workers.

pub mod balance;
pub mod health;
pub mod pool;
pub mod resolve;

pub use pool::{Lease, Pools};
