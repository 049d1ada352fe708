//! The config file: typed model, loading (YAML, env refs, durations), validation with key
//! paths, and compilation into the immutable runtime tables the workers read.

pub mod model;

pub use model::Config;
