//! Integrations: where a matched route's request goes. `http` proxies to an upstream;
//! mock responses are pre-encoded at compile time and written by the connection.

pub mod http;
pub mod relay;
