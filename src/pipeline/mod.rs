//! Per-request filters between the router and the integration, one file each.

pub mod context;
pub mod cors;
pub mod params;
pub mod response;
pub mod template;
pub mod trace;
