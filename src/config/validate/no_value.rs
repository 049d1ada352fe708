//! Keys that, written with no value (`throttle:` alone, `~`, `null`), read as absent, and
//! absent means "off": the decoder warns at each (`Decoder::fields`), as at a null
//! `admin:`. A null `authorizer:` is refused instead (`load::routes`): read as absent, it
//! would serve the route to anyone.
//!
//! Not "remove the key" alone: under a `<<:` merge key (`{ <<: *cached, cache: ~ }`) the
//! null is what turns off the value the merge gives, and removing it brings that back.
//! Merges are applied before decoding (`load::parse`), so the decoder cannot tell.

/// The warning for `key` written with no value in a map that has it as a field, or None
/// when a null there says nothing a reader could mistake.
pub(crate) fn no_value(key: &str) -> Option<&'static str> {
    Some(match key {
        // The levels are separate buckets: a null one limits nothing, whatever the others do.
        "throttle" => "written with no value: no throttle here (it is read as absent); give { rate: N, burst: N }, or write `off` to say so",
        "quota" => "written with no value: no quota (it is read as absent); give { limit: N, period: day, week or month }, or remove the key, unless it is there to turn off the one a `<<:` merge gives",
        "cache" => "written with no value: no cache here (it is read as absent); give its settings (a stage's need a capacity; a route's `cache: {}` takes the defaults), or remove the key, unless it is there to turn off the one a `<<:` merge gives",
        "cors" => "written with no value: no CORS (it is read as absent: answers carry no CORS headers and preflights go to the routes); give its settings, or remove the key, unless it is there to turn off the one a `<<:` merge gives",
        _ => return None,
    })
}
