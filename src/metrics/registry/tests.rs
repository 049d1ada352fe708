use super::*;
use crate::metrics::cells::bump;
use std::time::Duration;

/// Gauges of a removed target or cache leave the page; counters stay.
#[test]
fn gauges_go_with_what_they_measure() {
    let r = Registry::default();
    let up = r.target_up("users", "127.0.0.1:1");
    up.store(0, std::sync::atomic::Ordering::Relaxed);
    let cache = r.cache(0, "shop", "prod");
    cache
        .bytes
        .store(4096, std::sync::atomic::Ordering::Relaxed);
    bump(&cache.hits, 3);
    let text = r.render();
    assert!(
        text.contains("portico_upstream_target_up{upstream=\"users\",target=\"127.0.0.1:1\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("portico_cache_bytes{api=\"shop\",stage=\"prod\",worker=\"0\"} 4096"),
        "{text}"
    );
    drop((up, cache));
    let text = r.render();
    assert!(!text.contains("portico_upstream_target_up{"), "{text}");
    assert!(!text.contains("portico_cache_bytes{"), "{text}");
    assert!(
        text.contains("portico_cache_hits_total{api=\"shop\",stage=\"prod\"} 3"),
        "{text}"
    );
    // Checked again later: a fresh gauge, up until its checks say otherwise.
    let again = r.target_up("users", "127.0.0.1:1");
    assert_eq!(read(&again), 1);
}

#[test]
fn sums_workers_and_renders_prometheus_text() {
    let r = Registry::default();
    let labels = RouteLabels {
        api: "shop".into(),
        stage: "prod".into(),
        route: "GET /x".into(),
    };
    let a = r.route(0, labels.clone());
    let b = r.route(1, labels.clone());
    assert!(
        Arc::ptr_eq(&a, &r.route(0, labels)),
        "a worker gets its same cells back"
    );
    a.count(200);
    b.count(200);
    b.count(503);
    a.duration.observe(Duration::from_millis(3));
    bump(&r.upstream(0, "users").reused, 5);
    let text = r.render();
    assert!(
        text.contains(
            "portico_requests_total{api=\"shop\",stage=\"prod\",route=\"GET /x\",status=\"200\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("status=\"503\"} 1"));
    assert!(text.contains("portico_request_duration_seconds_bucket{api=\"shop\",stage=\"prod\",route=\"GET /x\",le=\"0.005\"} 1"));
    assert!(text.contains(
        "portico_request_duration_seconds_count{api=\"shop\",stage=\"prod\",route=\"GET /x\"} 1"
    ));
    assert!(
        text.contains("portico_upstream_requests_total{upstream=\"users\",outcome=\"reused\"} 5")
    );
}

#[test]
fn cache_counters_sum_workers_and_gauges_stay_per_worker() {
    let r = Registry::default();
    let (a, b) = (r.cache(0, "shop", "prod"), r.cache(1, "shop", "prod"));
    bump(&a.hits, 3);
    bump(&b.hits, 4);
    bump(&b.misses, 1);
    bump(&a.evictions, 2);
    a.bytes.store(1000, std::sync::atomic::Ordering::Relaxed);
    b.entries.store(5, std::sync::atomic::Ordering::Relaxed);
    let text = r.render();
    for line in [
        "portico_cache_hits_total{api=\"shop\",stage=\"prod\"} 7",
        "portico_cache_misses_total{api=\"shop\",stage=\"prod\"} 1",
        "portico_cache_evictions_total{api=\"shop\",stage=\"prod\"} 2",
        "portico_cache_bytes{api=\"shop\",stage=\"prod\",worker=\"0\"} 1000",
        "portico_cache_bytes{api=\"shop\",stage=\"prod\",worker=\"1\"} 0",
        "portico_cache_entries{api=\"shop\",stage=\"prod\",worker=\"1\"} 5",
    ] {
        assert!(text.contains(line), "{line}\nin\n{text}");
    }
}
