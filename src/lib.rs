//! Portico: a self-hosted API gateway and edge proxy. See DESIGN.md for the shape.

pub mod config;
pub mod http1;
