//! The client side of a connection: the per-connection loop that reads requests with the
//! `http1` codec, routes them, runs the pipeline and the integration, and writes the
//! answers (`conn`; the gateway's own in `answer`), the wait between requests on a
//! keep-alive connection (`idle`), reading a request head (`head`), the request bodies it reads itself (`body`), a proxied
//! response's head and first body bytes in one gathered write (`gather`), a closing
//! connection's last response sent with its FIN (`last_response`), and the
//! access-log record each request leaves (`access`); a WebSocket API's connection, once its handshake is answered, continues in
//! `websocket::open`. Accept loops live with the workers in `runtime`, which spawn one
//! `conn::serve` task per accepted connection.
//!
//! Lifecycle of a connection: see `conn`'s module comment.

pub mod access;
mod answer;
mod answer_send;
mod body;
mod body_budget;
pub mod conn;
pub mod conn_io;
mod encoded_slash;
mod gather;
mod head;
mod idle;
mod last_response;
mod method_override;
mod peer_ip;

pub(crate) use idle::IDLE_WITH_BUFFERS;
