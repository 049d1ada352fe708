//! Domains the TLS handshake never picks as written (tls::server: SNI chooses the site,
//! `named_site`, else the default one): valid, and unreachable or served another
//! domain's certificate. Read from the config alone, as `run` would choose.

use super::super::model::{Config, Domain};
use super::super::{ConfigError, KeyPath};
use crate::config::decode::shown;
use crate::router::bare_host;

/// Warnings about domains that SNI never leads to, in file order.
pub(super) fn warnings(cfg: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    // Without a TLS listener no certificate is served at all (said in `warnings`).
    if cfg.server.tls_listen.is_empty() {
        return out;
    }
    let served = |d: &Domain| d.cert.is_some() && d.key.is_some();
    // tls::load::server: `server.default_domain`, else the first domain with a
    // certificate, is what clients without SNI (or with an unknown name) get.
    let default = match &cfg.server.default_domain {
        Some(name) => cfg
            .domains
            .iter()
            .find(|(n, d)| bare_host(n) == bare_host(name) && served(d)),
        None => cfg.domains.iter().find(|(_, d)| served(d)),
    };
    let Some((default, default_domain)) = default else {
        return out;
    };
    let default_is = match cfg.server.default_domain {
        Some(_) => format!("{} (server.default_domain)", shown(default)),
        None => format!(
            "{} (the first domain with a cert; no server.default_domain)",
            shown(default)
        ),
    };
    for (name, domain) in &cfg.domains {
        let p = KeyPath::root().key("domains").key(name);
        let bare = name.strip_suffix('.').unwrap_or(name);
        let is_address = bare.parse::<std::net::Ipv4Addr>().is_ok();
        if is_address && served(domain) && bare_host(name) != bare_host(default) {
            // RFC 6066 §3: no IP address in SNI; clients send none, and rustls drops one.
            let reached = match domain.client_ca {
                None => "",
                Some(_) => ", and with client_ca the domain is never reached: its requests come on connections made for that domain and get 421 Misdirected Request",
            };
            out.push(p.key("cert").error(format!(
                "{} is an IP address, which clients do not send in SNI, so this certificate is never chosen: a connection to the address gets the certificate of {default_is}{reached}; make this domain server.default_domain to serve its certificate there", shown(name)
            )));
        }
        if domain.cert.is_none() {
            // The SNI a client asking for this domain sends: none for an address (RFC
            // 6066 §3), some one label for a wildcard one (which then is no site's name).
            let sni = match (is_address, bare.strip_prefix("*.")) {
                (true, _) => None,
                (false, Some(parent)) => Some(format!("any-label.{parent}")),
                (false, None) => Some(bare.to_string()),
            };
            let (site, site_domain) =
                handshake_for(cfg, sni.as_deref()).unwrap_or((default.as_str(), default_domain));
            if site_domain.client_ca.is_some() {
                let site = match site == default.as_str() {
                    true => default_is.clone(),
                    false => shown(site),
                };
                let asking = match sni {
                    None => "and clients send no SNI for an address, so a TLS client",
                    Some(_) => "so a TLS client asking for it (SNI)",
                };
                out.push(p.error(format!(
                    "has no cert, {asking} gets the handshake of {site}, which requires a client certificate (its client_ca): clients without one never reach this domain over TLS; give it a cert and key of its own"
                )));
            }
        }
    }
    out
}

/// The domain with a certificate whose handshake a client sending `sni` gets, as
/// `tls::server::ServerTls::named_site` picks it: the name exactly, else a wildcard one
/// label up; None for the default site.
fn handshake_for<'c>(cfg: &'c Config, sni: Option<&str>) -> Option<(&'c str, &'c Domain)> {
    let name = bare_host(sni?);
    let served = cfg
        .domains
        .iter()
        .filter(|(_, d)| d.cert.is_some() && d.key.is_some());
    let exact = served.clone().find(|(n, _)| bare_host(n) == name);
    let site = exact.or_else(|| {
        let (label, parent) = name.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        served
            .clone()
            .find(|(n, _)| bare_host(n).strip_prefix("*.") == Some(parent))
    });
    site.map(|(n, d)| (n.as_str(), d))
}
