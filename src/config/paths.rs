//! File paths in the config are relative to the config file's directory, not to the
//! working directory: `portico run -c /etc/portico/portico.yaml` reads `certs/api.pem` as
//! `/etc/portico/certs/api.pem` whether it was started from `/`, a shell or systemd.
//!
//! Every key that names a file or directory is resolved here, once, right after decoding,
//! so validation, certificate loading, the store and the access-log writer all see
//! absolute paths and a reload resolves them the same way. A key added later that names
//! a file belongs in [`resolve`].

use std::path::{Path, PathBuf};

use super::model::{Config, LogPath};

/// The environment variable systemd sets to the unit's `StateDirectory=`
/// (e.g. `/var/lib/portico`): where `state_dir` goes when the file does not say.
pub const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";

/// The directory relative paths in the config file at `config` are resolved against: the
/// file's own directory, made absolute and without `..` (a bare `portico.yaml` is in the
/// working directory), so errors and logs name a file the user can find.
pub fn base_dir(config: &Path) -> PathBuf {
    let dir = match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::canonicalize(&dir)
        .or_else(|_| std::path::absolute(&dir))
        .unwrap_or(dir)
}

/// Makes every relative file path in `cfg` relative to `base` (absolute ones are kept).
/// When the file does not write `state_dir`, systemd's `$STATE_DIRECTORY` (if set) is
/// the default, else `state` beside the config file.
pub fn resolve(cfg: &mut Config, base: &Path) {
    let join = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    if !cfg.state_dir_set {
        if let Some(dir) = std::env::var_os(STATE_DIRECTORY_ENV).filter(|d| !d.is_empty()) {
            // StateDirectory= may list several directories, separated by ':'; the first
            // is this unit's own.
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned();
            cfg.state_dir = PathBuf::from(first);
        }
    }
    join(&mut cfg.state_dir);
    if let LogPath::File(p) = &mut cfg.server.access_log.path {
        join(p);
    }
    for (_, u) in &mut cfg.upstreams {
        if let Some(ca) = &mut u.tls.ca {
            join(ca);
        }
    }
    for (_, d) in &mut cfg.domains {
        for p in [&mut d.cert, &mut d.key, &mut d.client_ca]
            .into_iter()
            .flatten()
        {
            join(p);
        }
    }
}
