//! Route and stage caches that can never store or serve what they seem to (`warnings`).

use crate::config::model::{Api, Config, Route};
use crate::config::{ConfigError, KeyPath};
use crate::router::key::{parse_route_key, RouteKey, Segment};

/// An API's `HEAD` routes with their path patterns, parsed once: HEAD routes are few,
/// cached GET routes may be many.
pub(crate) fn head_routes(api: &Api) -> Vec<(&str, Vec<Segment>)> {
    (api.routes.iter())
        .filter(|(k, _)| k.starts_with("HEAD "))
        .filter_map(|(k, _)| match parse_route_key(k) {
            Ok(RouteKey::Route { segments, .. }) => Some((k.as_str(), segments)),
            _ => None,
        })
        .collect()
}

/// The smallest entry a stage's cache can hold (`pipeline::cache::store` counts key, head
/// and body): a key of its fixed fields (method, scheme, an absent host, the path `/`,
/// the terminators of the headers and the `_method` query: 20 bytes) and a head of a
/// status line with no reason (15; a 204 has no `content-length`).
const SMALLEST_ENTRY: u64 = 35;

/// A stage cache too small for any entry, in an API whose routes cache: each worker keeps
/// `capacity / workers` bytes of it (`pipeline::cache::Caches::build`).
pub(crate) fn cache_capacity(cfg: &Config, api: &Api, p: &KeyPath) -> Vec<ConfigError> {
    let cached = |r: &Route| r.cache.as_ref().is_some_and(|c| !c.ttl.is_zero());
    if !api.routes.iter().any(|(_, r)| cached(r)) {
        return Vec::new();
    }
    let workers = cfg.server.workers.count().max(1) as u64;
    (api.stages.iter())
        .filter_map(|(name, s)| Some((name, s.cache.as_ref()?.capacity)))
        .filter(|(_, capacity)| capacity / workers < SMALLEST_ENTRY)
        .map(|(name, capacity)| {
            let at = p.key("stages").key(name).key("cache").key("capacity");
            at.error(format!(
                "{capacity} bytes: nothing will be stored: each of the {workers} workers (server.workers) keeps {} bytes of it, and the smallest entry takes {SMALLEST_ENTRY}",
                capacity / workers
            ))
        })
        .collect()
}

/// Why a route `key` whose GET answers are cached (`methods`) has HEAD requests that never
/// read its entries, if some HEAD route among `heads` takes them: the router sends a HEAD
/// to a HEAD route that matches, however general (only without one is it answered from
/// the GET entries).
pub(crate) fn head_route_over(
    heads: &[(&str, Vec<Segment>)],
    key: &str,
    methods: &[String],
) -> Option<String> {
    let fills_get = methods.is_empty() || methods.iter().any(|m| m == "GET");
    let Ok(RouteKey::Route { method, segments }) = parse_route_key(key) else {
        return None;
    };
    if heads.is_empty() || !fills_get || !matches!(method.as_str(), "GET" | "ANY") {
        return None;
    }
    let (head, of) = heads.iter().find(|(_, of)| overlap(&segments, of))?;
    let which = match same_shape(&segments, of) {
        true => "this route's paths",
        false => "the paths it shares with this route",
    };
    Some(format!(
        "HEAD requests for {which} go to route {head:?} (a HEAD route that matches is chosen, however general) and are never answered from this cache; without that route they would be"
    ))
}

/// Whether some path matches both route patterns (`{x+}`: one segment or more).
fn overlap(a: &[Segment], b: &[Segment]) -> bool {
    match (a.first(), b.first()) {
        (None, None) => true,
        (Some(Segment::Greedy(_)), _) => !b.is_empty(),
        (_, Some(Segment::Greedy(_))) => !a.is_empty(),
        (Some(Segment::Literal(x)), Some(Segment::Literal(y))) if x != y => false,
        (Some(_), Some(_)) => overlap(&a[1..], &b[1..]),
        _ => false,
    }
}

/// Whether two patterns match the same paths, whatever their parameters are called.
fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            (Segment::Param(_), Segment::Param(_)) | (Segment::Greedy(_), Segment::Greedy(_)) => {
                true
            }
            _ => false,
        })
}
