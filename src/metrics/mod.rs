//! Metrics: per-worker cells written only by their worker (plain loads and stores, no
//! read-modify-write contention, no lock) and summed by the scraper; a registry that
//! hands each worker its cells when a config generation is built and renders the
//! Prometheus text format.

pub mod access_log;
pub mod cells;
pub mod log_format;
pub mod log_limit;
pub mod log_writer;
pub mod names;
pub mod registry;

pub use cells::{CacheCells, Histogram, RouteCells, UpstreamCells, WorkerCells};
pub use registry::{registry, RouteLabels};
