//! Route and stage caches that can never store or serve what they seem to (`warnings`).

use crate::config::decode::shown;
use crate::config::model::{Api, Config, Route};
use crate::config::{ConfigError, KeyPath};
use crate::router::key::{parse_route_key, RouteKey, Segment};

/// One of an API's `HEAD` routes, its path pattern parsed once.
pub(crate) struct HeadRoute<'a> {
    key: &'a str,
    segments: Vec<Segment>,
    /// Some GET or ANY route matches every path this one does: GETs of its paths never
    /// go to `$default`, so `$default`'s cache holds none of them.
    get_elsewhere: bool,
}

/// An API's `HEAD` routes, parsed once: HEAD routes are few, cached GET routes may be
/// many.
pub(crate) fn head_routes(api: &Api) -> Vec<HeadRoute<'_>> {
    let patterns = |method: &'static str| {
        (api.routes.iter()).filter_map(move |(k, _)| match parse_route_key(k) {
            Ok(RouteKey::Route {
                method: m,
                segments,
            }) if m == method => Some((k.as_str(), segments)),
            _ => None,
        })
    };
    let gets: Vec<Vec<Segment>> = (patterns("GET").chain(patterns("ANY")))
        .map(|(_, s)| s)
        .collect();
    patterns("HEAD")
        .map(|(key, segments)| HeadRoute {
            key,
            get_elsewhere: gets.iter().any(|g| covers(g, &segments)),
            segments,
        })
        .collect()
}

/// Below this many bytes per worker a stage cache holds a few tiny answers at most: an
/// entry counts its key, head and body (`pipeline::cache::store`), and a GET of
/// `/prod/items` answered `{"ok":true}` by Python's http.server (a Server and a Date
/// header, a content type) took 193 bytes (the `portico_cache_bytes` gauge).
const FEW_ENTRIES: u64 = 1024;

/// A stage cache with room for a few tiny answers at most, in an API whose routes cache:
/// each worker keeps `capacity / workers` bytes of it (`pipeline::cache::Caches::build`).
pub(crate) fn cache_capacity(cfg: &Config, api: &Api, p: &KeyPath) -> Vec<ConfigError> {
    let cached = |r: &Route| r.cache.as_ref().is_some_and(|c| !c.ttl.is_zero());
    if !api.routes.iter().any(|(_, r)| cached(r)) {
        return Vec::new();
    }
    let workers = cfg.server.workers.count().max(1) as u64;
    (api.stages.iter())
        .filter_map(|(name, s)| Some((name, s.cache.as_ref()?.capacity)))
        .filter(|(_, capacity)| capacity / workers < FEW_ENTRIES)
        .map(|(name, capacity)| {
            let at = p.key("stages").key(name).key("cache").key("capacity");
            let kept = match workers {
                1 => "all kept by the one worker (server.workers)".to_string(),
                n => format!(
                    "each of the {n} workers (server.workers) keeps {} of them",
                    capacity / n
                ),
            };
            at.error(format!(
                "{capacity} bytes, {kept}: room for a few tiny answers at most, or none: an entry counts its key, head and body, and an 11-byte JSON answer with a Server and a Date header takes about 190 bytes; give some MiB (as 64MiB)"
            ))
        })
        .collect()
}

/// Why a route `key` whose GET answers are cached (`methods`) has HEAD requests that never
/// read its entries, if some HEAD route among `heads` takes them: the router sends a HEAD
/// to a HEAD route that matches, however general (only without one is it answered from
/// the GET entries). `$default` gets the GETs no route matches: a HEAD route takes the
/// HEADs of its paths from it unless some GET route takes their GETs too.
pub(crate) fn head_route_over(
    heads: &[HeadRoute],
    key: &str,
    methods: &[String],
) -> Option<String> {
    let fills_get = methods.is_empty() || methods.iter().any(|m| m == "GET");
    if heads.is_empty() || !fills_get {
        return None;
    }
    let segments = match parse_route_key(key) {
        Ok(RouteKey::Route { method, segments }) if matches!(method.as_str(), "GET" | "ANY") => {
            segments
        }
        Ok(RouteKey::Default) => {
            let head = heads.iter().find(|h| !h.get_elsewhere)?;
            return Some(format!(
                "HEAD requests for the paths of route {} go to it (a HEAD route that matches is chosen, however general), and those this route answers GETs for are never answered from this cache; without that route they would be",
                shown(head.key)
            ));
        }
        _ => return None,
    };
    let head = heads.iter().find(|h| overlap(&segments, &h.segments))?;
    let which = match same_shape(&segments, &head.segments) {
        true => "this route's paths",
        false => "the paths it shares with this route",
    };
    Some(format!(
        "HEAD requests for {which} go to route {} (a HEAD route that matches is chosen, however general) and are never answered from this cache; without that route they would be",
        shown(head.key)
    ))
}

/// Whether pattern `a` matches every path `b` does (`{x+}`: one segment or more).
fn covers(a: &[Segment], b: &[Segment]) -> bool {
    match (a.first(), b.first()) {
        (None, None) => true,
        (Some(Segment::Greedy(_)), _) => !b.is_empty(),
        (_, Some(Segment::Greedy(_))) => false,
        (Some(Segment::Literal(x)), Some(Segment::Literal(y))) if x != y => false,
        (Some(Segment::Literal(_)), Some(Segment::Param(_))) => false,
        (Some(_), Some(_)) => covers(&a[1..], &b[1..]),
        _ => false,
    }
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
