//! The key registry's unit tests.

use super::*;
use crate::store::DayCount;

#[test]
fn only_names_a_delete_can_address_are_created() {
    for bad in [
        ".",
        "..",
        "a/b",
        "../../etc/passwd",
        "a\\b",
        "a\nb",
        "a\u{7f}",
        "admin\u{202e}nimda",
        "a\u{200b}b",
        "\u{feff}bob",
        "x\u{a0}y",
        "x\u{2028}y",
        "x\u{e0001}y",
        "a\u{fe0f}b",
        "a\u{2800}b",
        " t10 ",
        "t10 ",
    ] {
        assert!(!super::addressable(bad), "{bad:?}");
    }
    for good in ["bob", "bob smith", "a.b", "...", "ключ", "x@y", "名前"] {
        assert!(super::addressable(good), "{good:?}");
    }
}

#[test]
fn generated_values_look_like_api_gateway_keys() {
    let v = generate_value();
    assert_eq!(v.len(), 40);
    assert!(v.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(v, generate_value());
}

fn traffic(yaml: &str) -> TrafficRt {
    crate::config::traffic::compile(&crate::config::load::load_str(yaml).unwrap())
}

#[test]
fn reconfigure_keeps_usage_and_rebuilds_only_changed_plans() {
    let v1 = "usage_plans: { gold: { throttle: { rate: 10, burst: 10 } }, free: {} }\napi_keys: [{ name: k, value: value-of-k, plan: gold }, { name: j, value: value-of-j, plan: free }]\n";
    let keys = Keys::load(&traffic(v1), None, 2).unwrap();
    let find = |v: &[u8]| {
        keys.table()
            .load_full()
            .find(&digest(v))
            .map(|e| e.plan.clone().unwrap())
    };
    let k1 = find(b"value-of-k").unwrap();
    let j1 = find(b"value-of-j").unwrap();
    k1.usage.count_day(today());
    keys.reconfigure(&traffic(v1), None).unwrap();
    assert!(
        Arc::ptr_eq(&k1, &find(b"value-of-k").unwrap()),
        "unchanged plan: same bucket"
    );

    let v2 = v1.replace("rate: 10,", "rate: 20,");
    keys.reconfigure(&traffic(&v2), None).unwrap();
    let k2 = find(b"value-of-k").unwrap();
    assert!(!Arc::ptr_eq(&k1, &k2) && Arc::ptr_eq(&k1.usage, &k2.usage));
    assert_ne!(k1.slot, k2.slot);
    assert!(Arc::ptr_eq(&j1, &find(b"value-of-j").unwrap()));

    // A key that leaves the config is gone; its counters stay for the store.
    let v3 = "usage_plans: { gold: {} }\napi_keys: []\n";
    keys.reconfigure(&traffic(v3), None).unwrap();
    assert!(find(b"value-of-k").is_none());
    assert_eq!(keys.usage_cells().len(), 2);
}

#[test]
fn key_names_are_up_to_128_characters_not_bytes() {
    assert_eq!(name_problem(&"é".repeat(128)), None);
    assert_eq!(name_problem(&"鍵".repeat(128)), None);
    assert!(name_problem(&"é".repeat(129)).is_some());
    assert!(name_problem("").is_some());
}

/// A config key given the value of a key created through the admin API wins, as one
/// given its name does, and says so at its value's path: the table held both, so the
/// value found the created key (its plan) while `GET /api-keys` listed the config one,
/// and nothing warned.
#[test]
fn a_config_key_with_a_created_keys_value_wins_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("portico-key-clash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir).unwrap();
    let plans = "usage_plans: { gold: {}, free: {} }\n";
    let v1 = format!("{plans}api_keys: [{{ name: ops, value: ops-key-0123456789abcdefgh }}]\n");
    let v2 = v1.replace(
        "}]",
        "}, { name: customer, value: shared-0123456789abcdefgh, plan: gold }]",
    );
    let keys = Keys::load(&traffic(&v1), Some(&store), 1).unwrap();
    let shared = "shared-0123456789abcdefgh";
    (keys.create(&store, "trial", Some("free"), Some(shared.into()))).unwrap();
    let served = |keys: &Keys| {
        let e = keys.table().load_full();
        let e = e.find(&digest(shared.as_bytes())).unwrap();
        (
            e.name.to_string(),
            e.plan.as_ref().map(|p| p.plan_name.to_string()),
        )
    };
    let listed = |keys: &Keys| -> Vec<String> { keys.list().into_iter().map(|k| k.name).collect() };
    assert_eq!(served(&keys), ("trial".into(), Some("free".into())));

    let warnings = keys.reconfigure(&traffic(&v2), Some(&store)).unwrap();
    let want = r#"api_keys[1].value: the key "trial" created through the admin API has this value too; the config key wins and "trial" is not served while this key is in the config"#;
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings, [want]);
    assert_eq!(served(&keys), ("customer".into(), Some("gold".into())));
    assert_eq!(listed(&keys), ["ops", "customer"]);
    // A start decides alike.
    let restarted = Keys::load(&traffic(&v2), Some(&store), 1).unwrap();
    assert_eq!(served(&restarted), ("customer".into(), Some("gold".into())));
    assert_eq!(listed(&restarted), ["ops", "customer"]);
    drop(restarted);
    // The hidden key still holds its value, also once the config key is revoked: another
    // created key can't take it (two keys of one value after the next reload; revoking
    // one left the value live through the other).
    let other = Keys::load(&traffic(&v2), Some(&store), 1).unwrap();
    other.revoke(&store, "customer").unwrap();
    assert!(matches!(
        other.create(&store, "dan", None, Some(shared.into())),
        Err(KeyError::Invalid(_))
    ));
    drop(other);
    // The config key leaves: the created key is back.
    assert!(keys
        .reconfigure(&traffic(&v1), Some(&store))
        .unwrap()
        .is_empty());
    assert_eq!(served(&keys), ("trial".into(), Some("free".into())));
    assert_eq!(listed(&keys), ["ops", "trial"]);
    drop((keys, store));
    let _ = std::fs::remove_dir_all(&dir);
}

const VALUE_K: &str = "value-of-k-0123456789";

/// `name`'s plan key as workers find it in the published table.
fn plan_key_of(keys: &Keys, value: &str) -> Arc<PlanKey> {
    let table = keys.table().load_full();
    table
        .find(&digest(value.as_bytes()))
        .unwrap()
        .plan
        .clone()
        .unwrap()
}

/// What admission does with a key's counters (`pipeline::admission`): the quota, then
/// the day. False when the quota is used up.
fn admit(pk: &PlanKey) -> bool {
    let day = today();
    if let Some(q) = &pk.quota {
        let period = crate::global::usage::period_start(day, q.period, q.offset);
        if !pk.usage.quota_take(period, q.limit) {
            return false;
        }
    }
    pk.usage.count_day(day);
    true
}

/// The process's shared state over a store in a fresh directory, without its flusher
/// thread: the test flushes when it wants to.
fn shared_at(tag: &str, yaml: &str) -> (crate::global::Shared, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("portico-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir).unwrap();
    let shared = crate::global::Shared {
        workers: 1,
        keys: Keys::load(&traffic(yaml), Some(&store), 1).unwrap(),
        store: Some(store),
        flushed: Mutex::new(HashMap::new()),
        stop: std::sync::atomic::AtomicBool::new(false),
        flusher: Mutex::new(None),
    };
    (shared, dir)
}

/// A reload flushes usage, then recounts quotas: a request admitted in between counts
/// too. Recounting set the counter to the store's count, which lacked it, so a reload
/// that only changed the limit under load let some 30 requests past a 30,000 quota.
#[test]
fn a_reload_of_the_limit_loses_no_request_admitted_after_its_flush() {
    let v1 = format!("usage_plans: {{ p: {{ quota: {{ limit: 10, period: day }} }} }}\napi_keys: [{{ name: k, value: {VALUE_K}, plan: p }}]\n");
    let (shared, dir) = shared_at("requota-limit", &v1);
    for _ in 0..3 {
        assert!(admit(&plan_key_of(&shared.keys, VALUE_K)));
    }
    shared.flush().unwrap();
    // Admitted between the reload's flush and its recount (`Shared::reconfigure`).
    assert!(admit(&plan_key_of(&shared.keys, VALUE_K)));
    let v2 = v1.replace("limit: 10", "limit: 11");
    (shared
        .keys
        .reconfigure(&traffic(&v2), shared.store.as_ref()))
    .unwrap();
    let pk = plan_key_of(&shared.keys, VALUE_K);
    assert_eq!(pk.usage.quota_used(), (today(), 4));
    let more = (0..20).filter(|_| admit(&pk)).count();
    assert_eq!(more, 7, "11 in all, 4 of them before");
    drop(shared);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A quota that counts other days from a reload on (a new period, or a plan that had
/// none) recounts from the store's past days and today's count as it stands, with the
/// requests admitted after the reload's flush.
#[test]
fn a_quota_recounted_on_reload_keeps_the_requests_admitted_after_the_flush() {
    let v1 = format!("usage_plans: {{ p: {{ quota: {{ limit: 100, period: day }} }}, q: {{}} }}\napi_keys: [{{ name: k, value: {VALUE_K}, plan: p }}, {{ name: j, value: value-of-j-0123456789, plan: q }}]\n");
    let (shared, dir) = shared_at("requota-period", &v1);
    let day = today();
    // Yesterday's count is in this week's quota unless the week starts today.
    let yesterday = DayCount {
        plan: "p".into(),
        key: "k".into(),
        day: day - 1,
        count: 5,
    };
    shared
        .store
        .as_ref()
        .unwrap()
        .write_usage(&[yesterday])
        .unwrap();
    let keys = &shared.keys;
    for value in [VALUE_K, "value-of-j-0123456789"] {
        for _ in 0..3 {
            assert!(admit(&plan_key_of(keys, value)));
        }
    }
    shared.flush().unwrap();
    for value in [VALUE_K, "value-of-j-0123456789"] {
        assert!(admit(&plan_key_of(keys, value)));
    }
    let v2 = v1
        .replace("period: day", "period: week")
        .replace("q: {}", "q: { quota: { limit: 100, period: day } }");
    (keys.reconfigure(&traffic(&v2), shared.store.as_ref())).unwrap();
    let week = crate::global::usage::period_start(day, crate::config::model::Period::Week, 0);
    let before = if week < day { 5 } else { 0 };
    let k = plan_key_of(keys, VALUE_K);
    assert_eq!(k.usage.quota_used(), (week, 4 + before), "a new period");
    let j = plan_key_of(keys, "value-of-j-0123456789");
    assert_eq!(j.usage.quota_used(), (day, 4), "a new quota");
    drop(shared);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Changing only a plan's quota keeps its keys' throttle buckets as they were (README,
/// Hot reload): the plan key was rebuilt with a full bucket, so raising a quota by one
/// gave every key its whole burst again.
#[test]
fn a_reload_that_changes_only_the_quota_keeps_the_throttle_bucket() {
    use crate::global::lease::{now_ns, Lease};
    let v1 = format!("usage_plans: {{ p: {{ throttle: {{ rate: 0.001, burst: 2 }}, quota: {{ limit: 100, period: day }} }} }}\napi_keys: [{{ name: k, value: {VALUE_K}, plan: p }}]\n");
    let keys = Keys::load(&traffic(&v1), None, 1).unwrap();
    // One token a time, as a worker's first lease at this rate and burst takes.
    let take = |pk: &PlanKey| pk.pool.as_ref().unwrap().lease(1, now_ns());
    let k1 = plan_key_of(&keys, VALUE_K);
    assert_eq!(take(&k1), Lease::Granted(1));
    assert_eq!(take(&k1), Lease::Granted(1));
    assert!(matches!(take(&k1), Lease::Denied { .. }));

    let v2 = v1.replace("limit: 100", "limit: 101");
    keys.reconfigure(&traffic(&v2), None).unwrap();
    let k2 = plan_key_of(&keys, VALUE_K);
    assert_eq!(k2.quota.as_ref().map(|q| q.limit), Some(101));
    assert!(
        matches!(take(&k2), Lease::Denied { .. }),
        "the reload refilled the bucket"
    );
    assert_eq!(
        k2.slot, k1.slot,
        "tokens workers leased are this bucket's still"
    );

    // A throttle that changes is a new bucket (in a new slot), full.
    let v3 = v2.replace("burst: 2", "burst: 3");
    keys.reconfigure(&traffic(&v3), None).unwrap();
    let k3 = plan_key_of(&keys, VALUE_K);
    assert_ne!(k3.slot, k2.slot);
    assert_eq!(take(&k3), Lease::Granted(1));
}

/// A created key whose plan a reload removes (or renames) is refused until the plan is
/// back, and the reload says so in its warnings, as a start logs it: it answered none.
#[test]
fn a_reload_warns_about_a_created_key_whose_plan_it_removes() {
    let (store, dir) = fresh_store("plan-gone");
    let v1 = "usage_plans: { gold: {}, free: {} }\napi_keys: []\n";
    let keys = Keys::load(&traffic(v1), Some(&store), 1).unwrap();
    let value = keys.create(&store, "cust", Some("gold"), None).unwrap();
    let served = |keys: &Keys| {
        keys.table()
            .load_full()
            .find(&digest(value.as_bytes()))
            .is_some()
    };
    assert!(served(&keys));

    let v2 = "usage_plans: { free: {} }\napi_keys: []\n";
    let warnings = keys.reconfigure(&traffic(v2), Some(&store)).unwrap();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    let want = r#"usage_plans: the API key "cust" is in usage plan "gold", which the config does not have; it is refused until the config has that plan"#;
    assert_eq!(warnings, [want]);
    assert!(!served(&keys));
    // A start says the same (it logs what `publish` returns).
    let mut reg = keys.reg.lock().unwrap();
    let at_start = keys.publish(&mut reg, Some(&store)).unwrap();
    drop(reg);
    assert_eq!(
        at_start.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [want]
    );

    // The plan is back: so is the key, without a word.
    assert!(keys
        .reconfigure(&traffic(v1), Some(&store))
        .unwrap()
        .is_empty());
    assert!(served(&keys));
    drop((keys, store));
    let _ = std::fs::remove_dir_all(&dir);
}

/// In a cluster, a reload that changes only a quota's `limit` hands the tokens this node
/// leased from Redis to the new limit (same period, same Redis key): left with the old
/// one, they counted as used in Redis and were never spent. Another period starts with
/// none (they belong to the old period's key).
#[test]
fn a_cluster_quota_limit_reload_keeps_the_tokens_leased() {
    let v1 = format!("cluster: {{ redis: \"redis://127.0.0.1:1\", node: n1 }}\nusage_plans: {{ p: {{ quota: {{ limit: 1000, period: month }} }} }}\napi_keys: [{{ name: k, value: {VALUE_K}, plan: p }}]\n");
    let keys = Keys::load(&traffic(&v1), None, 1).unwrap();
    let k1 = plan_key_of(&keys, VALUE_K);
    let old = k1
        .shared_quota
        .clone()
        .expect("a shared quota in a cluster");
    let window = 20_000;
    old.deposit(window, 50);
    assert_eq!(old.take(window), Some(49));

    keys.reconfigure(&traffic(&v1.replace("limit: 1000", "limit: 1001")), None)
        .unwrap();
    let k2 = plan_key_of(&keys, VALUE_K);
    let new = k2.shared_quota.clone().unwrap();
    assert_eq!(new.limit, 1001);
    assert_eq!((new.held(window), old.held(window)), (49, 0));

    keys.reconfigure(&traffic(&v1.replace("period: month", "period: week")), None)
        .unwrap();
    let k3 = plan_key_of(&keys, VALUE_K);
    assert_eq!(k3.shared_quota.as_ref().unwrap().held(window), 0);
}

/// A store in a fresh directory (its path, for the test to remove).
fn fresh_store(tag: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("portico-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Store::open(&dir).unwrap(), dir)
}

/// Keys created and revoked under fresh names leave nothing behind (each kept its plan
/// key and counters for the run: 1.3 KB a key); a revoked key that counted keeps its
/// counters for the store, and its name created again counts on in them.
#[test]
fn revoked_keys_leave_no_plan_key_and_no_unused_counters() {
    let (store, dir) = fresh_store("key-churn");
    let yaml = "usage_plans: { gold: { throttle: { rate: 5, burst: 5 } } }\n";
    let keys = Keys::load(&traffic(yaml), Some(&store), 1).unwrap();
    for i in 0..100 {
        let name = format!("churn{i}");
        keys.create(&store, &name, Some("gold"), None).unwrap();
        keys.revoke(&store, &name).unwrap();
    }
    let sizes = |keys: &Keys| {
        let reg = keys.reg.lock().unwrap();
        (reg.plan_keys.len(), reg.usage.len())
    };
    assert_eq!(sizes(&keys), (0, 0));
    let value = "used-value-0123456789abcdefgh";
    keys.create(&store, "used", Some("gold"), Some(value.into()))
        .unwrap();
    let table = keys.table().load_full();
    let counted = table.find(&digest(value.as_bytes())).unwrap();
    counted.plan.as_ref().unwrap().usage.count_day(today());
    drop(table);
    keys.revoke(&store, "used").unwrap();
    assert_eq!(sizes(&keys), (0, 1));
    keys.create(&store, "used", Some("gold"), None).unwrap();
    let cells = keys.usage_cells();
    assert_eq!(cells.len(), 1);
    assert_eq!(
        cells[0].2.day_counts().iter().map(|(_, n)| n).sum::<u64>(),
        1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A read of the cluster's keys made while an admin create was on its way to Redis
/// lacks the key: applied, it took the key away from the node that had just answered
/// 201 for it (403 for the key, 404 for its DELETE) until the next sync.
#[test]
fn a_cluster_read_that_raced_an_admin_create_is_not_applied() {
    let (store, dir) = fresh_store("key-race");
    let keys = Keys::load(&traffic("usage_plans: {}\n"), Some(&store), 1).unwrap();
    let value = "raced-value-0123456789abcdefgh";
    let read_at = keys.changes.mark();
    let changing = keys.changes.begin();
    keys.create(&store, "raced", None, Some(value.into()))
        .unwrap();
    let live = |keys: &Keys| {
        keys.table()
            .load()
            .find(&digest(value.as_bytes()))
            .is_some()
    };
    // Redis, read before the create landed there, has no such key.
    assert!(!keys
        .apply_cluster(Vec::new(), Vec::new(), Some(&store), read_at)
        .unwrap());
    assert!(
        live(&keys),
        "the read that raced the create took the key away"
    );
    assert_eq!(store.keys().unwrap().len(), 1, "and out of the store");
    drop(changing);
    // Read again after the create's write: Redis has the key, and it stays.
    let read_at = keys.changes.mark();
    let stored = store.keys().unwrap();
    assert!(keys
        .apply_cluster(stored, Vec::new(), Some(&store), read_at)
        .unwrap());
    assert!(live(&keys));
    // A read that lacks the key with no admin change about: Redis is the truth.
    let read_at = keys.changes.mark();
    assert!(keys
        .apply_cluster(Vec::new(), Vec::new(), Some(&store), read_at)
        .unwrap());
    assert!(!live(&keys));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A revoked config key's value was accepted by `POST /api-keys` under another name
/// (201, served again), though a leaked value must never return: refused, whether this
/// node revoked it or Redis told it of a revocation made through another node; nor by
/// a config key of another name.
#[test]
fn a_revoked_config_keys_value_is_not_created_again() {
    let (store, dir) = fresh_store("key-revoked-value");
    let leaked = "leaked-value-0123456789abcdef";
    let other = "other-leaked-0123456789abcdef";
    let yaml =
        format!("api_keys: [{{ name: ops, value: {leaked} }}, {{ name: ci, value: {other} }}]\n");
    let keys = Keys::load(&traffic(&yaml), Some(&store), 1).unwrap();
    keys.revoke(&store, "ops").unwrap();
    let refused = |name: &str, value: &str| {
        matches!(
            keys.create(&store, name, None, Some(value.into())),
            Err(KeyError::Invalid(REVOKED_VALUE))
        )
    };
    assert!(refused("ops2", leaked), "this node's revocation");
    assert!(refused("ops", leaked), "under its own name too");
    // `ci` revoked through another node: Redis's revocation reaches the store.
    let read_at = keys.changes.mark();
    let revoked = vec![("ci".to_string(), digest(other.as_bytes()))];
    assert!(keys
        .apply_cluster(Vec::new(), revoked, Some(&store), read_at)
        .unwrap());
    assert!(refused("ci2", other), "another node's revocation");
    // Any other value is created as ever.
    keys.create(
        &store,
        "fresh",
        None,
        Some("fresh-value-0123456789abc".into()),
    )
    .unwrap();
    // Renaming the config key does not bring its revoked value back (it did: revocations
    // matched name and value); the reload says why the key is not served.
    let served = |value: &str| {
        keys.table()
            .load()
            .find(&digest(value.as_bytes()))
            .is_some()
    };
    let renamed = format!("api_keys: [{{ name: ops-renamed, value: {leaked} }}]\n");
    let warnings = keys.reconfigure(&traffic(&renamed), Some(&store)).unwrap();
    assert!(
        !served(leaked),
        "renamed config key: its revoked value stays refused"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.to_string().contains("api_keys[0].value")),
        "{warnings:?}"
    );
    let renewed = "renewed-value-0123456789abc";
    let renamed = format!("api_keys: [{{ name: ops, value: {renewed} }}]\n");
    keys.reconfigure(&traffic(&renamed), Some(&store)).unwrap();
    assert!(served(renewed), "a new value in the config serves again");
    drop((keys, store));
    let _ = std::fs::remove_dir_all(&dir);
}
