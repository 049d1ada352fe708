//! Per-worker upstream state: keep-alive pools per target and the balancer that picks one;
//! active health checks shared by all workers.

pub mod balance;
pub mod health;
pub mod pool;

pub use pool::{Lease, Pools};
