//! Per-worker upstream state: keep-alive pools per target and the balancer that picks one.

pub mod balance;
pub mod pool;

pub use pool::{Lease, Pools};
