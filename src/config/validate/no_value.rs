//! Keys that, written with no value (`throttle:` alone, `~`, `null`), read as absent, and
//! absent means "off": the decoder warns at each (`Decoder::fields`), as at a null
//! `admin:`. A null `authorizer:` is refused instead (`load::routes`): read as absent, it
//! would serve the route to anyone.

/// The warning for `key` written with no value in a map that has it as a field, or None
/// when a null there says nothing a reader could mistake.
pub(crate) fn no_value(key: &str) -> Option<&'static str> {
    Some(match key {
        // The levels are separate buckets: a null one limits nothing, whatever the others do.
        "throttle" => "written with no value: no throttle here (it is read as absent); give { rate: N, burst: N }, or write `off` or remove the key to say so",
        "quota" => "written with no value: no quota (it is read as absent); give { limit: N, period: day, week or month }, or remove the key",
        "cache" => "written with no value: no cache here (it is read as absent); give its settings (a stage's need a capacity; a route's `cache: {}` takes the defaults), or remove the key",
        "cors" => "written with no value: no CORS (it is read as absent: answers carry no CORS headers and preflights go to the routes); give its settings, or remove the key",
        _ => return None,
    })
}
