//! Filters a routed request passes before its integration runs. `admission` is the
//! traffic gate (API key, throttles, quota); one file per concern.

pub mod admission;
pub mod api_key;
pub mod throttle;
pub mod usage;

pub use admission::{admit, Deny, Local};
