//! How much a config compiles to. `run` builds every route once per stage and once
//! more per canary (stage variables substituted, mappings parsed, `compile.rs`), and each
//! worker keeps metric cells for each of those: 1,500 stages × 1,500 routes, a 258 KB
//! file that `check` passed in a second, took gigabytes and aborted a gateway on reload.
//! `check`, and so a reload (which keeps the running config on refusal), counts them
//! before anything is built. It also counts the text each route copies per stage: a mock
//! body that names a stage variable is written out once per stage (a 1 MB one in 1,500
//! stages took a reload past its memory); one that names none is shared by all stages,
//! and counts once.

use super::super::model::{Api, Integration, Route};
use super::super::KeyPath;
use super::Validator;

/// Route instances (a route in a stage, or in a stage's canary) a whole config may
/// compile to (README: `apis`, Size): about 1.75 KB each, plus 0.6 KB per worker.
pub(crate) const MAX_COMPILED_ROUTES: usize = 100_000;

/// Bytes of route text a whole config may compile to (README: `apis`, Size): text built
/// once per stage and canary counts that many times, a shared mock body once.
pub(crate) const MAX_COMPILED_BYTES: usize = 256 << 20;

/// The text a route's compiled form copies for each stage, and what it shares.
fn route_bytes(route: &Route) -> (usize, usize) {
    let pairs = |v: &[(String, String)]| v.iter().map(|(a, b)| a.len() + b.len()).sum::<usize>();
    let mut per_stage = pairs(&route.parameters);
    for (_, params) in &route.response_parameters {
        per_stage += pairs(params);
    }
    let mut shared = 0;
    match &route.integration {
        Integration::Mock { headers, body, .. } => {
            // Twice: the head repeats the headers.
            per_stage += 2 * pairs(headers);
            match body.contains("${stageVariables.") {
                true => per_stage += body.len(),
                false => shared += body.len(),
            }
        }
        Integration::Http { upstream, path, .. } => {
            per_stage += upstream.len() + path.as_ref().map_or(0, |p| p.len())
        }
        Integration::Lambda { url, .. } => per_stage += url.len(),
    }
    (per_stage, shared)
}

/// An API's compiled route text: per-stage text × (stages + canaries), plus shared text.
fn api_bytes(api: &Api, instances: usize) -> usize {
    (api.routes.iter()).fold(0usize, |t, (_, r)| {
        let (per_stage, shared) = route_bytes(r);
        t.saturating_add(per_stage.saturating_mul(instances))
            .saturating_add(shared)
    })
}

impl Validator<'_> {
    pub(super) fn compiled_size(&mut self) {
        // Name, stages, canaries, routes, compiled routes.
        let sizes: Vec<(&str, usize, usize, usize, usize)> = (self.cfg.apis.iter())
            .map(|(name, api)| {
                let canaries = api.stages.iter().filter(|(_, s)| s.canary.is_some());
                let (stages, canaries) = (api.stages.len(), canaries.count());
                let routes = api.routes.len();
                let compiled = routes.saturating_mul(stages + canaries);
                (name.as_str(), stages, canaries, routes, compiled)
            })
            .collect();
        let total = sizes.iter().fold(0usize, |t, s| t.saturating_add(s.4));
        if total <= MAX_COMPILED_ROUTES {
            self.compiled_bytes();
            return;
        }
        let apis = KeyPath::root().key("apis");
        let mut named = false;
        for &(name, stages, canaries, routes, compiled) in &sizes {
            if compiled > MAX_COMPILED_ROUTES {
                let canaries = match canaries {
                    0 => String::new(),
                    n => format!(" and {n} canaries"),
                };
                let message = format!(
                    "{stages} stages{canaries} × {routes} routes = {compiled} compiled routes \
                     (each route is built once per stage and canary), over the limit of \
                     {MAX_COMPILED_ROUTES}"
                );
                self.error(&apis.key(name), message);
                named = true;
            }
        }
        if !named {
            let (name, .., most) = sizes.iter().max_by_key(|s| s.4).copied().unwrap();
            let message = format!(
                "the APIs compile to {total} routes in all (each route once per stage and \
                 canary; apis.{name}: {most}), over the limit of {MAX_COMPILED_ROUTES}"
            );
            self.error(&apis, message);
        }
    }
}

impl Validator<'_> {
    fn compiled_bytes(&mut self) {
        let bytes: Vec<(&str, usize, usize)> = (self.cfg.apis.iter())
            .map(|(name, api)| {
                let canaries = api.stages.iter().filter(|(_, s)| s.canary.is_some());
                let instances = api.stages.len() + canaries.count();
                (name.as_str(), instances, api_bytes(api, instances))
            })
            .collect();
        let total = bytes.iter().fold(0usize, |t, b| t.saturating_add(b.2));
        if total <= MAX_COMPILED_BYTES {
            return;
        }
        let apis = KeyPath::root().key("apis");
        let mut named = false;
        for &(name, instances, size) in &bytes {
            if size > MAX_COMPILED_BYTES {
                let message = format!(
                    "its routes compile to {size} bytes of text in {instances} stages and \
                     canaries (text that names a stage variable is written out once per \
                     stage), over the limit of {MAX_COMPILED_BYTES}"
                );
                self.error(&apis.key(name), message);
                named = true;
            }
        }
        if !named {
            let (name, _, most) = bytes.iter().max_by_key(|b| b.2).copied().unwrap();
            let message = format!(
                "the APIs' routes compile to {total} bytes of text in all (apis.{name}: \
                 {most}), over the limit of {MAX_COMPILED_BYTES}"
            );
            self.error(&apis, message);
        }
    }
}
