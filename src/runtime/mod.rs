//! Pinned worker threads, each a monoio runtime with its own listeners; graceful stop.

pub mod buffers;
pub mod coarse_timer;
pub mod listen_socket;
pub(crate) mod listeners;
pub mod os_random;
pub mod reload;
pub mod removed_stages;
pub mod request_id;
pub mod shutdown;
pub(crate) mod socket_now;
pub mod workers;

pub use workers::{run, WorkerCtx};
