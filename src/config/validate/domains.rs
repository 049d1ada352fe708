//! `domains`: host names a Host header can match, one spelling each, certificates in
//! pairs and base path mappings to existing stages.

use super::super::KeyPath;
use super::Validator;
use crate::config::decode::shown;

/// A label that starts or ends with `-` (RFC 1123 host names don't), if `name` has one:
/// rustls refuses such a name in SNI, so a TLS client never reaches the domain (the
/// handshake ends with illegal_parameter).
fn hyphen_at_label_end(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let name = name.strip_prefix("*.").unwrap_or(name);
    name.split('.')
        .find(|label| label.starts_with('-') || label.ends_with('-'))
}

/// A domain key a Host header can match: labels of letters, digits, `-` and `_` (1–63
/// each, 253 in all; one trailing dot, as the router ignores it), or `*.` and such a
/// name for a wildcard domain. A port, `*` elsewhere or a non-ASCII name never matches.
fn host_name_ok(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Validator<'_> {
    pub(super) fn domains(&mut self) {
        for (i, (name, domain)) in self.cfg.domains.iter().enumerate() {
            let p = KeyPath::root().key("domains").key(name);
            // Host names match without case or a trailing dot, so two spellings are one
            // domain.
            let bare = |n: &str| n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase();
            if let Some((first, _)) = self.cfg.domains[..i]
                .iter()
                .find(|(n, _)| bare(n) == bare(name))
            {
                let first = KeyPath::root().key("domains").key(first);
                self.name_error(&p, format!("is the same host name as {first}"));
            }
            if !host_name_ok(name) {
                // A Host never equals it, so it would route nothing, silently.
                self.name_error(
                    &p,
                    "not a host name: dot-separated labels of letters, digits, - and _, \
                     optionally \"*.\" in front for one label, no port (non-ASCII names in \
                     their xn-- form)",
                );
            } else if let Some(label) = hyphen_at_label_end(name) {
                self.name_error(
                    &p,
                    format!(
                        "not a host name: the label {} starts or ends with - (RFC 1123 host names don't, and TLS clients refuse such a name in SNI)", shown(label)
                    ),
                );
            }
            match (&domain.cert, &domain.key) {
                (Some(_), None) => self.error(&p, "cert without key"),
                (None, Some(_)) => self.error(&p, "key without cert"),
                _ => {}
            }
            if domain.client_ca.is_some() && domain.cert.is_none() {
                self.error(&p.key("client_ca"), "mutual TLS needs cert and key too");
            }
            for (base, target) in &domain.mappings {
                let mp = p.key("mappings").key(base);
                let ok_base = base.is_empty()
                    || base.split('/').all(|s| {
                        // No request reaches a . or .. segment (a client's is a 400).
                        !s.is_empty()
                            && !matches!(s, "." | "..")
                            && s.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
                            })
                    });
                if !ok_base {
                    self.error(
                        &mp,
                        "base paths are \"\" (the root) or words separated by /, without leading /",
                    );
                }
                self.stage_ref(target, &mp);
            }
        }
    }
}
