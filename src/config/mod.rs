//! The config file: typed model, loading (YAML, env refs, durations), validation with key
//! paths, and compilation into the immutable runtime tables the workers read.
//!
//! Loading and validation never stop at the first problem: `portico check` and
//! `POST /reload` show the user every error at once, each with the key path it belongs to.

pub mod auth;
pub mod compile;
mod decode;
pub mod definitions;
pub mod load;
pub mod model;
pub mod paths;
pub mod served;
pub mod traffic;
pub mod validate;
pub mod view;
pub mod warnings;
pub mod yaml;

#[cfg(test)]
mod check_api_tests;
#[cfg(test)]
mod check_mapping_tests;
#[cfg(test)]
mod check_probe_tests;
#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod check_tls_tests;
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
/// Relative file paths in it are resolved against the file's directory (`paths`).
pub fn load_and_validate(path: &Path) -> Result<Config, ConfigErrors> {
    load_and_validate_file_text(&read(path)?, path)
}

/// Largest config or OpenAPI file read. `-c /dev/zero` (or a config symlinked to it when
/// a reload reads it) would otherwise be read until memory runs out, and never answer.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a file the config names (the config itself, an OpenAPI file, a certificate, a
/// key, a CA bundle): a regular file of at most [`MAX_FILE_BYTES`]. A FIFO would block
/// `check`, and every reload after it, until something wrote to it; a device such as
/// `/dev/zero` would be read until memory ran out. Opened without blocking, so a FIFO
/// is refused, not waited on.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a device, FIFO or socket)",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// Reads a text file: [`read_file`], and UTF-8.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = read_file(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let good = &e.as_bytes()[..at];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: a bad byte on line {line}"),
        )
    })
}

/// Reads a config file; an unreadable file is one error.
pub fn read(path: &Path) -> Result<String, ConfigErrors> {
    read_text(path).map_err(|e| {
        ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
        .into()
    })
}

/// [`load_and_validate`] on text already read from the file at `path`.
pub fn load_and_validate_file_text(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    into_result(check_file_text(text, path))
}

/// [`load_and_validate`] on text that has no file: relative paths in it are relative to
/// the working directory.
pub fn load_and_validate_text(text: &str) -> Result<Config, ConfigErrors> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    into_result(check_text_in(text, &cwd))
}

fn into_result(report: Report) -> Result<Config, ConfigErrors> {
    match report.config {
        Some(cfg) => Ok(cfg),
        None => Err(ConfigErrors(report.errors)),
    }
}

/// Everything `check` says about a file.
#[derive(Debug)]
pub struct Report {
    /// The config, when there is no error.
    pub config: Option<Config>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

/// [`check_text_in`] for text read from the file at `path`: relative paths in it are
/// relative to the file's directory.
pub fn check_file_text(text: &str, path: &Path) -> Report {
    check_text_in(text, &paths::base_dir(path))
}

/// [`check_file_text`] with more warnings, found by `more` in whatever decoded (as
/// `check`'s look-up of upstream host names), numbered and left out as the others are.
pub fn check_file_text_with(text: &str, path: &Path, more: Extra) -> Report {
    check_text_with(text, &paths::base_dir(path), more)
}

/// Warnings about a config beyond what it says (what the system resolver makes of it).
pub type Extra<'a> = &'a dyn Fn(&Config) -> Vec<ConfigError>;

/// Decodes, validates, reads the certificate files and collects the warnings, each
/// stage on whatever the decoder could make of the file: one mistake does not hide
/// another. A cross-reference problem at, above or under a path the decoder reported
/// is left out (it would only repeat it), but for one about an entry's own name, which
/// is left out only at or under such a path. Certificate files and warnings are about
/// values that decoded (a value that did not takes its harmless default), so only those
/// at a path already reported, or above one, or under a value that did not decode, are
/// left out: an unknown key in `server`
/// does not hide a warning about `server.access_log`. Relative file paths are resolved
/// against `base` first.
pub fn check_text_in(text: &str, base: &Path) -> Report {
    check_text_with(text, base, &|_| Vec::new())
}

fn check_text_with(text: &str, base: &Path, more: Extra) -> Report {
    let load::Partial {
        mut cfg,
        mut errors,
        lies_at,
        renumbered,
    } = match load::load_partial(text, base) {
        Ok(partial) => partial,
        Err(fatal) => {
            return Report {
                config: None,
                errors: fatal.0,
                warnings: Vec::new(),
            }
        }
    };
    paths::resolve(&mut cfg, base);
    // Where the errors reported so far lie (an unknown key's at that key, not at the map
    // it is shown at, so it hides nothing about its siblings).
    let mut known = lies_at;
    let overlaps = |known: &[String], e: &ConfigError| {
        known.iter().any(|d| under(&e.path, d) || under(d, &e.path))
    };
    let within = |known: &[String], e: &ConfigError| known.iter().any(|d| under(&e.path, d));
    let repeats = |known: &[String], e: &ConfigError| known.iter().any(|d| under(d, &e.path));
    let decoded_cleanly = errors.is_empty();
    let decoded = known.len();
    // A list item that failed to decode is left out of the decoded list, so later checks
    // count the items after it as decoded; the file's numbering is what the user can
    // find. Only what lies at, above or under the bad item depends on it (`listen` as a
    // whole, not `listen[2]`): `overlaps` leaves that out. An error about an entry's
    // name (an API's, a route's key) does not depend on what the entry holds: only a
    // decode error at or above the entry leaves it out (`within`). Nor do the entry's
    // other fields: a route's authorizer is checked when its integration failed.
    let as_in_file = |mut e: ConfigError| {
        for (list, kept) in &renumbered {
            e.path = renumber(&e.path, list, kept);
            e.message = renumber(&e.message, list, kept);
        }
        e
    };
    let (found, about_names) = validate::validate_names_apart(&cfg);
    for (i, e) in found.into_iter().map(as_in_file).enumerate() {
        let follows = match about_names.binary_search(&i).is_ok() {
            true => within(&known[..decoded], &e),
            false => overlaps(&known[..decoded], &e),
        };
        if decoded_cleanly || !follows {
            known.push(e.path.clone());
            errors.push(e);
        }
    }
    // Certificate files are read whatever else is wrong: they depend only on their paths.
    match crate::tls::load(&cfg) {
        Ok(tls) => cfg.tls = tls,
        Err((tls_errors, tls_warnings)) => {
            cfg.tls.warnings = tls_warnings;
            for e in tls_errors.into_iter().map(as_in_file) {
                if !repeats(&known, &e) {
                    known.push(e.path.clone());
                    errors.push(e);
                }
            }
        }
    }
    // A state_dir that is a file (or under one) stops `run` whoever runs it.
    if let Some(e) = warnings::state_dir_error(&cfg).map(as_in_file) {
        if !repeats(&known, &e) {
            known.push(e.path.clone());
            errors.push(e);
        }
    }
    let mut warnings = warnings::warnings(&cfg);
    warnings.extend(more(&cfg));
    // A warning at or under a value that did not decode is about the default that took
    // its place (`admin: [x]` has no token): left out too. A file that is not a map
    // decoded to nothing but defaults ("no APIs are configured").
    let root_failed = known[..decoded].iter().any(String::is_empty);
    let warnings = (warnings.into_iter())
        .map(as_in_file)
        .filter(|w| !root_failed && !repeats(&known, w) && !within(&known[..decoded], w))
        .collect();
    Report {
        config: errors.is_empty().then_some(cfg),
        errors,
        warnings,
    }
}

/// `text` with each `LIST[i]`, where `LIST` is the key path `list` and `i` counts the
/// list's items that decoded, numbered as in the file: `LIST[kept[i]]`.
fn renumber(text: &str, list: &str, kept: &[usize]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(list) {
        out.push_str(&rest[..at]);
        let after = &rest[at + list.len()..];
        out.push_str(list);
        rest = after;
        // Not the tail of a longer path (`x.server.listen`).
        let starts_path = !out[..out.len() - list.len()]
            .ends_with(|c: char| c.is_ascii_alphanumeric() || "_$-.".contains(c));
        let item = after.strip_prefix('[').and_then(|a| {
            let end = a.find(']')?;
            Some((a[..end].parse::<usize>().ok()?, end))
        });
        if let (true, Some((i, end))) = (starts_path, item) {
            if let Some(at_in_file) = kept.get(i) {
                out.push_str(&format!("[{at_in_file}]"));
                rest = &after[end + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether key path `path` is `parent` or below it (the root, "", is nobody's parent:
/// an unknown top-level key says nothing about the keys that are there).
fn under(path: &str, parent: &str) -> bool {
    !parent.is_empty()
        && path
            .strip_prefix(parent)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// Characters that show as nothing, as a space, or change how the text around them
/// shows (format characters such as U+200B or U+202E, line and paragraph separators,
/// fillers, tags, spaces other than ASCII's): names that differ by one look alike, and
/// U+202E shows the rest of a line reversed.
pub fn invisible(c: char) -> bool {
    matches!(c,
        '\u{a0}' | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{1680}'
        | '\u{17b4}' | '\u{17b5}' | '\u{180e}' | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}'
        | '\u{205f}'..='\u{206f}' | '\u{3000}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
        | '\u{2800}' | '\u{fe00}'..='\u{fe0f}' | '\u{fff9}'..='\u{fffb}' | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e007f}' | '\u{e0100}'..='\u{e01ef}')
}

/// A dotted key path as shown in errors: keys that are not plain words are double-quoted
/// (control characters escaped, `\n`), list items are `[i]`.
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
                    s.push(c);
                } else if c.is_control() || invisible(c) {
                    // A line break in a key must not break `check`'s one line per error,
                    // nor U+202E turn the rest of it around.
                    s.extend(c.escape_default());
                } else {
                    s.push(c);
                }
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
