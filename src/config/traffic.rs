//! Throttles, usage plans and API keys → the tables admission reads (part of the
//! snapshot). Every limit that applies somewhere gets an index and a global pool; each
//! route of each stage gets the list of limit indices it must pass, most specific first,
//! so a request never searches for its limits. Key values are reduced to SHA-256 digests.
//!
//! Plans are named by a 64-bit id (from the name) rather than an index, so that the key
//! table, which the admin API republishes on its own schedule, and the snapshot, which a
//! reload replaces, never have to agree on positions.

use std::path::PathBuf;
use std::sync::Arc;

use super::model::{self, Config, Quota, Throttle};
use crate::cluster::SharedLimit;
use crate::global::keys::digest;
use crate::global::lease::{GlobalPool, UNLIMITED_RATE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Account,
    Api,
    Stage,
    Route,
}

/// One limit with its own global pool.
#[derive(Debug, Clone)]
pub struct LimitRt {
    pub rate: f64,
    pub burst: u64,
    pub scope: Scope,
    /// "shop", "shop/prod", "shop/prod GET /x": for logs and metrics.
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct PlanRt {
    pub name: String,
    /// [`plan_id`] of the name.
    pub id: u64,
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
}

/// A plan's id: the first 8 bytes of the SHA-256 of its name.
pub fn plan_id(name: &str) -> u64 {
    u64::from_le_bytes(digest(name.as_bytes())[..8].try_into().unwrap())
}

#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: String,
    pub sha256: [u8; 32],
    pub plan: Option<String>,
}

#[derive(Debug)]
pub struct RouteTraffic {
    pub key_required: bool,
    /// Route, stage and API limits that apply, in that order (the plan × key and account
    /// limits follow them at run time).
    pub limits: Box<[u32]>,
}

#[derive(Debug)]
pub struct StageTraffic {
    /// Indexed by route id.
    pub routes: Vec<RouteTraffic>,
    /// Ids of the plans whose keys may call this stage.
    pub plans: Box<[u64]>,
}

impl StageTraffic {
    #[inline]
    pub fn accepts(&self, plan_id: u64) -> bool {
        self.plans.contains(&plan_id)
    }
}

#[derive(Debug)]
pub struct TrafficRt {
    pub limits: Vec<LimitRt>,
    /// One global pool per limit, shared by the workers of this config generation, and
    /// with the next one when the limit stays (`inherit`).
    pub pools: Box<[Arc<GlobalPool>]>,
    /// Workers the pools' lease sizes were chosen for.
    pub workers: usize,
    pub account: Option<u32>,
    /// Indexed [api][stage].
    pub stages: Vec<Vec<StageTraffic>>,
    pub plans: Vec<PlanRt>,
    pub config_keys: Vec<ConfigKey>,
    pub admin: Option<model::Admin>,
    pub state_dir: PathBuf,
    pub cluster: Option<model::Cluster>,
    /// In a cluster, one shared limit per limit (indexed like `limits`); else empty.
    pub shared: Box<[Arc<SharedLimit>]>,
}

impl TrafficRt {
    /// Whether anything needs the store: keys to remember, usage to count, or an admin
    /// API that can create keys. A config with none of these leaves `state_dir` alone.
    pub fn needs_store(&self) -> bool {
        self.cluster.is_some()
            || self.admin.is_some()
            || !self.plans.is_empty()
            || !self.config_keys.is_empty()
    }

    /// After a reload: limits that did not change keep their bucket, so a reload neither
    /// refills nor empties them. The very pool is shared, not its state copied: workers
    /// still on the old generation lease from it until they switch, and what they lease
    /// then (and carry over, `LimitBuckets::carried`) is not given out again.
    pub fn inherit(&mut self, prev: &TrafficRt) {
        let same = self.same_limits(prev);
        for (pool, same) in self.pools.iter_mut().zip(same) {
            match same {
                Some(i) if self.workers == prev.workers => *pool = prev.pools[i].clone(),
                Some(i) => pool.inherit(&prev.pools[i]),
                None => {}
            }
        }
    }

    /// For each limit, where the same limit (label, rate, burst and scope) is in `prev`:
    /// its pool's state, and the tokens each worker holds of it, carry over.
    pub fn same_limits(&self, prev: &TrafficRt) -> Vec<Option<usize>> {
        (self.limits.iter())
            .map(|l| {
                prev.limits.iter().position(|p| {
                    p.label == l.label
                        && p.rate == l.rate
                        && p.burst == l.burst
                        && p.scope == l.scope
                })
            })
            .collect()
    }
}

pub fn compile(cfg: &Config) -> TrafficRt {
    let mut limits = Vec::new();
    let mut add = |t: &Option<Throttle>, scope: Scope, label: String| -> Option<u32> {
        let t = t.as_ref()?;
        if t.rate >= UNLIMITED_RATE {
            return None;
        }
        limits.push(LimitRt {
            rate: t.rate,
            burst: t.burst,
            scope,
            label,
        });
        Some(limits.len() as u32 - 1)
    };
    let account = add(&cfg.server.throttle, Scope::Account, "account".into());
    let plans: Vec<PlanRt> = cfg
        .usage_plans
        .iter()
        .map(|(name, p)| PlanRt {
            name: name.clone(),
            id: plan_id(name),
            throttle: p.throttle.filter(|t| t.rate < UNLIMITED_RATE),
            quota: p.quota.clone(),
        })
        .collect();
    let mut stages = Vec::new();
    for (api_name, api) in &cfg.apis {
        let api_limit = add(&api.throttle, Scope::Api, api_name.clone());
        let mut per_stage = Vec::new();
        for (stage_name, stage) in &api.stages {
            let stage_label = format!("{api_name}/{stage_name}");
            let stage_limit = add(&stage.throttle, Scope::Stage, stage_label.clone());
            let routes = api
                .routes
                .iter()
                .map(|(key, route)| {
                    let route_limit = add(
                        &route.throttle,
                        Scope::Route,
                        format!("{stage_label} {key}"),
                    );
                    let limits: Vec<u32> = [route_limit, stage_limit, api_limit]
                        .into_iter()
                        .flatten()
                        .collect();
                    RouteTraffic {
                        key_required: route.api_key_required,
                        limits: limits.into(),
                    }
                })
                .collect();
            let plans = cfg
                .usage_plans
                .iter()
                .filter(|(_, p)| p.stages.is_empty() || p.stages.contains(&stage_label))
                .map(|(name, _)| plan_id(name))
                .collect();
            per_stage.push(StageTraffic { routes, plans });
        }
        stages.push(per_stage);
    }
    let workers = cfg.server.workers.count();
    let pools = limits
        .iter()
        .map(|l| Arc::new(GlobalPool::new(l.rate, l.burst, workers)))
        .collect();
    let shared = match &cfg.cluster {
        Some(c) => limits
            .iter()
            .map(|l| {
                // The account limit's name in Redis must not be an API's: an API named
                // `account` shared its counter, each request taking two of its tokens
                // (3 of a burst of 5 admitted). API names cannot hold ':'.
                let id = match l.scope {
                    Scope::Account => ":account",
                    _ => l.label.as_str(),
                };
                Arc::new(SharedLimit::rate(id, l.rate, l.burst, c.exact_below))
            })
            .collect(),
        None => Box::default(),
    };
    TrafficRt {
        pools,
        workers,
        limits,
        account,
        stages,
        plans,
        config_keys: cfg
            .api_keys
            .iter()
            .map(|k| ConfigKey {
                name: k.name.clone(),
                sha256: digest(k.value.as_bytes()),
                plan: k.plan.clone(),
            })
            .collect(),
        admin: cfg.admin.clone(),
        state_dir: cfg.state_dir.clone(),
        shared,
        cluster: cfg.cluster.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::load_str;

    #[test]
    fn every_shared_limit_has_its_own_name_in_redis() {
        let cfg = load_str(
            r#"
server: { throttle: { rate: 1000, burst: 1000 } }
cluster: { redis: "redis://127.0.0.1:6379", node: a }
apis:
  account:
    throttle: { rate: 5, burst: 5 }
    stages: { prod: { throttle: { rate: 5, burst: 5 } } }
    routes:
      "GET /x": { integration: { type: mock }, throttle: { rate: 5, burst: 5 } }
"#,
        )
        .unwrap();
        let t = compile(&cfg);
        let mut ids: Vec<&str> = t.shared.iter().map(|l| &*l.id).collect();
        assert_eq!(ids.len(), 4);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4, "{ids:?}");
    }

    /// A reload shares an unchanged limit's very pool: workers still on the old
    /// generation lease from the bucket the new one uses, never a copy made before.
    #[test]
    fn a_reload_shares_the_pools_of_unchanged_limits() {
        let yaml = |route_rate: u32| {
            format!(
                "apis:\n  a:\n    throttle: {{ rate: 50, burst: 5 }}\n    stages: {{ prod: {{}} }}\n    routes:\n      \"GET /x\": {{ integration: {{ type: mock }}, throttle: {{ rate: {route_rate}, burst: 1 }} }}\n"
            )
        };
        let old = compile(&load_str(&yaml(1)).unwrap());
        let mut new = compile(&load_str(&yaml(2)).unwrap());
        new.inherit(&old);
        let pool = |t: &TrafficRt, label: &str| {
            let i = t.limits.iter().position(|l| l.label == label).unwrap();
            t.pools[i].clone()
        };
        assert!(Arc::ptr_eq(&pool(&old, "a"), &pool(&new, "a")));
        assert!(!Arc::ptr_eq(
            &pool(&old, "a/prod GET /x"),
            &pool(&new, "a/prod GET /x")
        ));
    }

    #[test]
    fn routes_get_their_limits_most_specific_first() {
        let cfg = load_str(
            r#"
server: { throttle: { rate: 100, burst: 10 } }
apis:
  a:
    throttle: { rate: 50, burst: 5 }
    stages:
      prod: { throttle: { rate: 20, burst: 2 } }
      dev: {}
    routes:
      "GET /x": { integration: { type: mock }, throttle: { rate: 1, burst: 1 }, api_key_required: true }
      "GET /y": { integration: { type: mock } }
  b:
    throttle: { rate: 1000000000, burst: 1 }
    stages: { $default: {} }
    routes:
      "GET /z": { integration: { type: mock } }
usage_plans:
  gold: { stages: [a/prod], throttle: { rate: 5, burst: 5 } }
  all: {}
api_keys:
  - { name: k, value: secret-value, plan: gold }
"#,
        )
        .unwrap();
        let t = compile(&cfg);
        let labels: Vec<&str> = t.limits.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            ["account", "a", "a/prod", "a/prod GET /x", "a/dev GET /x"]
        );
        assert_eq!(t.account, Some(0));
        let prod = &t.stages[0][0];
        assert_eq!(&*prod.routes[0].limits, &[3, 2, 1]);
        assert!(prod.routes[0].key_required);
        assert_eq!(&*prod.routes[1].limits, &[2, 1]);
        let dev = &t.stages[0][1];
        assert_eq!(&*dev.routes[0].limits, &[4, 1]);
        // A rate of 1e9 or more is no limit.
        assert!(t.stages[1][0].routes[0].limits.is_empty());
        let (gold, all) = (plan_id("gold"), plan_id("all"));
        assert!(prod.accepts(gold) && prod.accepts(all));
        assert!(!dev.accepts(gold) && dev.accepts(all));
        assert_eq!(t.pools.len(), t.limits.len());
        assert_eq!(t.config_keys[0].sha256, digest(b"secret-value"));
        assert!(t.needs_store());
    }

    #[test]
    fn admin_defaults_to_loopback_9901_and_the_store_only_when_needed() {
        let addr: std::net::SocketAddr = "127.0.0.1:9901".parse().unwrap();
        for yaml in ["admin: { token: t }\n", "admin: {}\n"] {
            let cfg = load_str(yaml).unwrap();
            assert_eq!(cfg.admin.as_ref().unwrap().listen, addr, "{yaml}");
            assert!(compile(&cfg).needs_store());
        }
        assert!(!compile(&load_str("apis: {}\n").unwrap()).needs_store());
    }

    #[test]
    fn no_account_limit_by_default_and_off_wherever_a_throttle_is_accepted() {
        let cfg = load_str("apis: {}\n").unwrap();
        assert_eq!(cfg.server.throttle, None);
        assert_eq!(compile(&cfg).account, None);
        let cfg = load_str(
            r#"
server: { throttle: off }
apis:
  a:
    throttle: off
    stages: { prod: { throttle: off } }
    routes:
      "GET /x": { integration: { type: mock }, throttle: false }
usage_plans:
  gold: { throttle: off }
"#,
        )
        .unwrap();
        let t = compile(&cfg);
        assert!(t.limits.is_empty(), "{:?}", t.limits);
        assert_eq!(t.account, None);
        assert!(t.stages[0][0].routes[0].limits.is_empty());
        assert_eq!(t.plans[0].throttle, None);
        // API Gateway's account default is a one-line opt-in.
        let t = compile(&load_str("server: { throttle: { rate: 10000, burst: 5000 } }\n").unwrap());
        assert_eq!(t.account, Some(0));
        assert_eq!((t.limits[0].rate, t.limits[0].burst), (10000.0, 5000));
    }

    #[test]
    fn a_throttle_is_off_or_a_rate_and_burst() {
        let errors = |yaml: &str| match load_str(yaml) {
            Ok(_) => panic!("expected errors for {yaml}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert_eq!(
            errors("server: { throttle: on }\n"),
            [r#"server.throttle: expected off or { rate: N, burst: N }, got "on""#]
        );
        assert_eq!(
            errors("usage_plans: { p: { throttle: [1] } }\n"),
            ["usage_plans.p.throttle: expected a map, got a list"]
        );
    }
}
