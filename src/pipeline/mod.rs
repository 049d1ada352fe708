//! Per-request filters between the router and the integration, one file each.

pub mod cache;
pub mod trace;
