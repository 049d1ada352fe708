//! Per-request filters between the router and the integration, one file each.
//! `auth` runs the route's authorizer; `admission` is the traffic gate (API key,
//! throttles, quota).

pub mod admission;
mod admission_shared;
pub mod api_key;
pub mod auth;
pub(crate) mod auth_iam;
mod auth_lambda;
pub mod body_scan;
pub mod cache;
pub mod compress;
pub mod context;
pub mod cors;
pub mod gateway_responses;
pub mod json_body;
pub mod json_unique;
mod media_type_syntax;
pub mod model_cost;
pub mod models;
pub mod params;
pub mod query_names;
pub mod response;
pub mod template;
pub mod throttle;
pub mod trace;
pub mod usage;
pub mod validate;

pub use admission::{admit, Deny, Local};
