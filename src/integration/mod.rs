//! Integrations: where a matched route's request goes. `http` proxies to an upstream;
//! `lambda` posts the API Gateway proxy event to a function endpoint; mock responses are
//! pre-encoded at compile time and written by the connection (`mock` when edited);
//! `tunnel` carries an upgraded (101) `http` connection's bytes both ways.

mod body_error;
pub(crate) mod connect;
mod early;
#[cfg(test)]
pub(crate) use early::tcp_info;
pub mod http;
pub mod lambda;
pub mod lambda_event;
pub mod lambda_response;
pub mod mock;
pub mod own_headers;
pub mod relay;
pub mod request_body;
mod request_head;
pub mod tunnel;
