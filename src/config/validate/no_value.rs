//! Keys that, written with no value (`throttle:` alone, `~`, `null`), read as absent, and
//! absent means "off": the decoder warns at each (`Decoder::fields`), as at a null
//! `admin:`. A null `authorizer:` is refused instead (`load::routes`): read as absent, it
//! would serve the route to anyone.
//!
//! Not "remove the key" alone: under a `<<:` merge key (`{ <<: *cached, cache: ~ }`) the
//! null is what turns off the value the merge gives, and removing it brings that back.
//! Merges are applied before decoding (`load::parse`), so the decoder cannot tell.

/// The warning for `key` written with no value in the map at key path `at` that has it
/// as a field, or None when a null there says nothing a reader could mistake.
pub(crate) fn no_value(at: &str, key: &str) -> Option<&'static str> {
    if let Some(why) = section_key(at, key) {
        return Some(why);
    }
    Some(match key {
        // The levels are separate buckets: a null one limits nothing, whatever the others do.
        "throttle" => "written with no value: no throttle here (it is read as absent); give { rate: N, burst: N }, or write `off` to say so",
        "quota" => "written with no value: no quota (it is read as absent); give { limit: N, period: day, week or month }, or remove the key, unless it is there to turn off the one a `<<:` merge gives",
        "cache" => "written with no value: no cache here (it is read as absent); give its settings (a stage's need a capacity; a route's `cache: {}` takes the defaults), or remove the key, unless it is there to turn off the one a `<<:` merge gives",
        "health" => "written with no value: no health checks (it is read as absent); give their settings (`{}` takes the defaults), or remove the key",
        "methods" | "statuses" if at.ends_with(".cache") => "written with no value: the default is used (GET; 200; it is read as absent), while an empty list is an error; give a list, or remove the key",
        "cors" => "written with no value: no CORS (it is read as absent: answers carry no CORS headers and preflights go to the routes); give its settings, or remove the key, unless it is there to turn off the one a `<<:` merge gives",
        _ => return None,
    })
}

/// Keys of one place in the file (the top level, `admin`, `server`, `iam`) that, null,
/// read as their default or as absent, with nothing said: `cluster: ~` ran a cluster's
/// node alone, `state_dir: ~` and `admin.listen: ~` took the defaults, while an empty
/// `state_dir: ""` is an error and `admin:` alone a warning.
fn section_key(at: &str, key: &str) -> Option<&'static str> {
    Some(match (at, key) {
        ("", "cluster") => "written with no value: no cluster (it is read as absent): this node runs alone (its own throttle, quota and usage counts, its own API keys); give { redis: URL }, or remove the key",
        ("", "state_dir") => "written with no value: the default is used (it is read as absent: `state` beside the config file, or systemd's $STATE_DIRECTORY); give a directory, or remove the key",
        ("", "iam") => "written with no value: no IAM principals (it is read as absent), so no SigV4-signed request is accepted; give region and principals, or remove the key",
        ("", "watch") => "written with no value: the config file is not watched (it is read as absent, false); write true or false",
        ("admin", "listen") => "written with no value: the default address 127.0.0.1:9901 is used (it is read as absent); give an address, or remove the key",
        ("server", "listen") => "written with no value: the default address 127.0.0.1:8080 is used (it is read as absent); give a list of addresses, or remove the key",
        ("server", "tls_listen") => "written with no value: no TLS listener (it is read as absent); give a list of addresses, or remove the key",
        ("server", "access_log") => "written with no value: no access log (it is read as absent); give { path: stdout } or a file path, or remove the key",
        ("server", "compression") => "written with no value: no compression (it is read as absent); give its settings (`{}` takes the defaults), or write `off` to say so",
        ("server.access_log", "path") => "written with no value: no access log (it is read as absent); give stdout or a file path, or write `off` to say so",
        ("server.access_log", "format") => "written with no value: the default format is used (it is read as absent); give a format, or remove the key",
        ("iam", "region") => "written with no value: the default region us-east-1 is used (it is read as absent); give the region clients sign for, or remove the key",
        _ => return None,
    })
}
