//! WebSocket APIs (API Gateway's second API type): the IO-free frame codec (`frame`), the
//! handshake's accept key (`sha1`), route selection on messages (`select`), one session
//! per client connection (`session`, lifecycle written there), and the `@connections`
//! management API with the per-worker connection registry (`connections`).

pub mod frame;
pub mod sha1;
