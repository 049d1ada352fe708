//! The config file: typed model, loading (YAML, env refs, durations), validation with key
//! paths, and compilation into the immutable runtime tables the workers read.
//!
//! Loading and validation never stop at the first problem: `portico check` and
//! `POST /reload` show the user every error at once, each with the key path it belongs to.

pub mod auth;
pub mod compile;
mod decode;
pub mod load;
pub mod model;
pub mod traffic;
pub mod validate;
pub mod view;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

pub use model::Config;

/// One problem in the config file, at a key path such as
/// `apis.shop.routes."GET /x".integration.upstream`. An empty path means the whole file
/// (unreadable, not YAML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one config file, in file order as far as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// Loads the file and checks its cross-references, reporting every problem at once.
/// Values that failed to decode are left out of validation: a cross-reference error at
/// or under a path the decoder already reported would only repeat it.
pub fn load_and_validate(path: &Path) -> Result<Config, ConfigErrors> {
    load_and_validate_text(&read(path)?)
}

/// Reads a config file; an unreadable file is one error.
pub fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
        .into()
    })
}

/// [`load_and_validate`] on text already read.
pub fn load_and_validate_text(text: &str) -> Result<Config, ConfigErrors> {
    let (cfg, mut errors) = load::load_partial(text)?;
    let decoded_cleanly = errors.is_empty();
    for e in validate::validate(&cfg) {
        let overlaps = |d: &ConfigError| e.path.starts_with(&d.path) || d.path.starts_with(&e.path);
        if decoded_cleanly || !errors.iter().any(overlaps) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    // Files are read only once the text itself is sound.
    let mut cfg = cfg;
    cfg.tls = crate::tls::load(&cfg).map_err(ConfigErrors)?;
    Ok(cfg)
}

/// Settings that are valid but deserve a word in the log, at start and on every reload:
/// upstream certificates left unchecked, and keys accepted ahead of the features that
/// will serve them.
pub fn warn_risky(cfg: &Config) {
    for (name, u) in &cfg.upstreams {
        if u.https && !u.tls.verify {
            tracing::warn!(upstream = %name, "tls.verify: false — this upstream's certificate is not checked; for testing only");
        }
    }
    for (name, api) in &cfg.apis {
        let mapped = cfg.domains.iter().any(|(_, d)| {
            d.mappings
                .iter()
                .any(|(_, target)| target.split('/').next() == Some(name.as_str()))
        });
        if api.disable_default_endpoint && !mapped {
            tracing::warn!(api = %name, "disable_default_endpoint is on and no domain maps this API: nothing reaches it");
        }
        if api.protocol == model::Protocol::Websocket {
            tracing::warn!(api = %name, "protocol: websocket is not built yet; this API's routes answer 404");
        }
    }
}

/// A dotted key path as shown in errors: keys that are not plain words are double-quoted,
/// list items are `[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(String);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(String::new())
    }

    pub fn key(&self, key: &str) -> Self {
        let mut s = self.0.clone();
        if !s.is_empty() {
            s.push('.');
        }
        let plain = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-'));
        if plain {
            s.push_str(key);
        } else {
            s.push('"');
            for c in key.chars() {
                if matches!(c, '"' | '\\') {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push('"');
        }
        KeyPath(s)
    }

    pub fn index(&self, i: usize) -> Self {
        KeyPath(format!("{}[{i}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.0.clone(), message)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
