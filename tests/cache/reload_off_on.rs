//! A route whose cache a reload turns off and a later one turns back on as it was: the
//! entries stored before are not served again (they were, older than the answers the
//! backend gave while the route was not cached); so too for a route removed and restored.

use super::*;

/// Writes `yaml` over the running config and waits for the `n`th reload.
fn reload_to(p: &Portico, yaml: &str, n: usize) {
    std::fs::write(
        &p.config,
        yaml.replace("{PORT}", &p.addr.port().to_string()),
    )
    .unwrap();
    p.signal(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.log_text().matches("config reloaded").count() < n {
        assert!(Instant::now() < deadline, "no reload: {}", p.log_text());
        thread::sleep(Duration::from_millis(10));
    }
    // Every worker takes the new generation on its next turn or tick.
    thread::sleep(Duration::from_millis(150));
}

#[test]
fn entries_from_before_a_route_stopped_being_cached_are_not_served_again() {
    let cached = "        cache: { ttl: 60s, key: [path.id, querystring.lang, header.accept] }\n";
    for driver in DRIVERS {
        let origin = origin();
        let yaml = config(origin.addr, 1);
        assert!(yaml.contains(cached));
        let p = Portico::start(&yaml, driver);
        assert_eq!(get(&p, "/items/1").text(), "GET /items/1 #1");
        assert_eq!(get(&p, "/items/1").text(), "GET /items/1 #1", "a hit");

        reload_to(&p, &yaml.replace(cached, ""), 1);
        assert_eq!(get(&p, "/items/1").text(), "GET /items/1 #2", "{driver}");
        reload_to(&p, &yaml, 2);
        assert_eq!(
            get(&p, "/items/1").text(),
            "GET /items/1 #3",
            "{driver}: the entry from before the cache was off came back"
        );
        assert_eq!(get(&p, "/items/1").text(), "GET /items/1 #3", "cached anew");

        // The route removed, then restored as it was.
        let route = "      \"GET /items/{id}\":\n        integration: { type: http, upstream: origin, timeout: 2s }\n";
        let without = yaml.replace(&format!("{route}{cached}"), "");
        assert_ne!(without, yaml);
        reload_to(&p, &without, 3);
        reload_to(&p, &yaml, 4);
        assert_eq!(
            get(&p, "/items/1").text(),
            "GET /items/1 #4",
            "{driver}: the entry from before the route was removed came back"
        );
    }
}
