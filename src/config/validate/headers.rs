//! Header names and values written in the config: what would go out otherwise than the
//! config shows it. Among them, keys of one map that name the same header in two
//! spellings: header names have no case (RFC 9110 §5.1), but map keys do:
//! `overwrite:header.X-P` beside `overwrite:header.x-p`, or a mock's `X-A` beside `x-a`,
//! passed as two keys, and both headers were sent.

use crate::config::decode::shown;
use crate::pipeline::params::{parse_key, Target};

/// Each key of `keys` (in order) that names the same header as an earlier one, with that
/// earlier one. `header` gives what a key sets (its header name, lower-cased, and
/// whatever else tells two keys apart, such as a mapping's action), None when no header.
pub(crate) fn same_header<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    header: impl Fn(&str) -> Option<String>,
) -> Vec<(&'k str, &'k str)> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut twice = Vec::new();
    for key in keys {
        let Some(h) = header(key) else { continue };
        match seen.iter().find(|(s, _)| *s == h) {
            Some((_, first)) => twice.push((key, *first)),
            None => seen.push((h, key)),
        }
    }
    twice
}

/// What a parameter mapping key sets, for [`same_header`]: `append:` and `overwrite:` of
/// one header are two mappings, as in API Gateway.
pub(crate) fn mapped(key: &str) -> Option<String> {
    match parse_key(key)? {
        (action, Target::Header(name)) => Some(format!("{action:?} {}", name.to_ascii_lowercase())),
        _ => None,
    }
}

/// A header name, for [`same_header`].
pub(crate) fn name(key: &str) -> Option<String> {
    Some(key.to_ascii_lowercase())
}

/// The error at the second key.
pub(crate) fn message(first: &str) -> String {
    format!(
        "names the same header as {} (header names have no case), so both would be sent; keep one",
        shown(first)
    )
}

/// Why a header value written in the config can't be sent as written: a control
/// character (CR, LF, NUL, …; a tab is fine) would go out as a space, and the value the
/// config shows is not the one clients get.
pub(crate) fn header_value_problem(value: &str) -> Option<String> {
    value
        .bytes()
        .find(|&b| (b.is_ascii_control() && b != b'\t') || b == 0x7f)
        .map(|b| {
            format!(
                "a header value can't hold the control character {:?}",
                b as char
            )
        })
}

/// Why a mapped or mock header can't be `name`: it is in `reserved` or hop-by-hop (the
/// relay's own list, `http1::hop::ALWAYS`: `HTTP2-Settings` as much as `TE`), or, among
/// the request headers, is one of those written with `_` for `-` (`x_forwarded_for`),
/// which CGI, WSGI, PHP and Rack backends read as the same `HTTP_X_FORWARDED_FOR`
/// (clients' such spellings are dropped for that reason). A response goes to clients,
/// which don't.
pub(crate) fn reserved_header(name: &str, reserved: &[&str]) -> Option<String> {
    // Why each is refused: what Portico writes itself, or a hop-by-hop field, which
    // describes one connection and which Portico drops rather than forward.
    let why = |r: &[u8]| match reserved
        .iter()
        .any(|x| x.as_bytes().eq_ignore_ascii_case(r))
    {
        true => "is reserved: Portico sets it itself",
        false => "is hop-by-hop (it describes one connection): Portico drops it",
    };
    let hop = crate::http1::hop::ALWAYS.iter().copied();
    let mut all = reserved.iter().map(|r| r.as_bytes()).chain(hop);
    if let Some(r) = all
        .clone()
        .find(|r| r.eq_ignore_ascii_case(name.as_bytes()))
    {
        return Some(format!("{name} {}", why(r)));
    }
    if reserved != crate::pipeline::params::RESERVED_REQUEST_HEADERS {
        return None;
    }
    let r = all.find(|r| crate::http1::same_cgi_name(r, name.as_bytes()))?;
    let why = why(r);
    let r = String::from_utf8_lossy(r);
    Some(format!(
        "{name} is {r} to CGI, WSGI, PHP and Rack backends (they read _ as -), and {r} {why}"
    ))
}

/// The headers Amazon API Gateway reserves from HTTP APIs' parameter mappings, request and
/// response alike (a trailing `-` is a prefix), as AWS documents them ("Reserved
/// headers"): a mapping of one is refused there, so `check` refuses it here too. AWS
/// writes `Trailers`; the field is `Trailer` (RFC 9110 §6.6.2), and both are listed.
const API_GATEWAY_RESERVED: &[&str] = &[
    "access-control-",
    "apigw-",
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-location",
    "forwarded",
    "keep-alive",
    "origin",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "via",
    "x-amz-",
    "x-amzn-",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// Request fields defined with one value (RFC 9110, RFC 6265 §5.4's Cookie, Fetch's
/// Origin, the method overrides Portico guards): `append:` of one sends a second line
/// beside the client's own, of which backends read the first (a client's `Authorization:
/// Bearer forged` before the mapped credentials), the last, or refuse the request.
/// `overwrite:` drops the client's. Those no mapping may touch (content-length, host, …)
/// are refused for that first.
const ONE_VALUED_REQUEST: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "content-type",
    "content-length",
    "content-location",
    "content-range",
    "content-disposition",
    "cookie",
    "date",
    "from",
    "host",
    "if-modified-since",
    "if-range",
    "if-unmodified-since",
    "max-forwards",
    "origin",
    "range",
    "referer",
    "user-agent",
    "access-control-request-method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    // Portico writes the client's address; an appended one would be a second.
    "x-real-ip",
];

/// Why a request mapping can't `append:` `name`: it has one value (any case, and `_` for
/// `-`, as CGI, WSGI, PHP and Rack backends read names).
pub(crate) fn appended_one_valued(name: &str) -> Option<String> {
    ONE_VALUED_REQUEST
        .iter()
        .any(|h| crate::http1::same_cgi_name(h.as_bytes(), name.as_bytes()))
        .then(|| format!("{name} has one value: append: would send a second {name} beside the client's, and backends read either; use overwrite:"))
}

/// Why a request mapping that sets `name` to `value` hands the client a method override:
/// backends read X-HTTP-Method-Override (and X-HTTP-Method, X-Method-Override) as the
/// request's method, while Portico routes, authorizes and throttles by the request
/// line's, and its guard (server/method_override.rs) reads the client's own headers and
/// `_method` only. A `$request` value is the client's to choose. A warning: a mapping of
/// a trusted header (one an authorizer checked) may be meant.
pub(crate) fn client_method_override(name: &str, value: &str) -> Option<String> {
    if !crate::http1::parse::is_method_override(name.as_bytes()) {
        return None;
    }
    method_from_client(name, value)
}

/// [`client_method_override`] for what `what` names, known to be a method override (the
/// `_method` query parameter, as backends' parsers read its name).
pub(crate) fn method_from_client(what: &str, value: &str) -> Option<String> {
    use crate::pipeline::template::{parse, Ref};
    let name = what;
    let from = parse(value).ok()?.into_iter().find_map(|r| match r {
        Ref::Header(n) => Some(format!("$request.header.{n}")),
        Ref::Query(n) => Some(format!("$request.querystring.{n}")),
        Ref::Path => Some("$request.path".to_string()),
        Ref::PathParam(n) => Some(format!("$request.path.{n}")),
        _ => None,
    })?;
    Some(format!("{name} is set from {from}, which the client chooses: backends read it as the request's method, while routes, authorizers and throttles judged the request line's (the method-override guard reads only the client's own headers and _method); map a fixed method or leave it out"))
}

/// Why a response mapping can't set, append or remove `name` when it is `date`: every
/// answer carries one (Portico's current Date, or a proxied answer its backend's); a
/// mapped one went out even on mocks (`date: yesterday`). `check` and the OpenAPI import
/// both ask.
pub(crate) fn mapped_date(name: &str) -> Option<&'static str> {
    name.eq_ignore_ascii_case("date").then_some(
        "date can't be mapped: every answer carries Portico's current Date, or a proxied answer its backend's (a fixed one makes caches reckon the answer stale at once or fresh for ever)",
    )
}

/// Why a parameter mapping (a request's, or with `response` a response's) can't set,
/// append or remove `name`: API Gateway reserves it. Two request headers are Portico's
/// deliberate exceptions: `authorization`, as upstreams take no credentials and a mapping
/// is how a backend's are sent, and `forwarded`, which Portico drops from clients so that
/// an operator's mapping is the one the backend reads. Mocks and gateway responses are
/// not mappings: [`RESERVED_RESPONSE_HEADERS`](crate::pipeline::response) is theirs.
pub(crate) fn api_gateway_reserved(name: &str, response: bool) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if !response && matches!(lower.as_str(), "authorization" | "forwarded") {
        return None;
    }
    let entry = API_GATEWAY_RESERVED
        .iter()
        .find(|r| match r.strip_suffix('-') {
            Some(_) => lower.starts_with(*r),
            None => lower == **r,
        })?;
    let hint = match *entry {
        "access-control-" => "; the API's cors block writes the CORS headers",
        _ => "",
    };
    let entry = match entry.ends_with('-') {
        true => format!(" (as every {entry}* header)"),
        false => String::new(),
    };
    Some(format!(
        "{name} is reserved{entry}: API Gateway lets no mapping set or remove it{hint}"
    ))
}

/// Why a response header (a mock's, a gateway response's) named `name` can't follow the
/// `earlier` ones: one of them has its name in another case, and both would go out (two
/// content-types, say: a browser joins them and renders the last).
pub(crate) fn header_twin<'a>(
    name: &str,
    mut earlier: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let first = earlier.find(|n| n.eq_ignore_ascii_case(name))?;
    Some(format!(
        "the same header as {} (names are compared without case): both would be sent",
        shown(first)
    ))
}

/// Why a literal content-type value of a response is not one media type: a list is read
/// by browsers as its last valid type (`application/json, text/html` renders as a page),
/// and a value that names none makes them guess from the body. Values with a variable are
/// known only per request.
pub(crate) fn content_type_problem(name: &str, value: &str) -> Option<String> {
    use crate::http1::media_type::{browser_media_type, list_items};
    if !name.eq_ignore_ascii_case("content-type") || value.contains('$') {
        return None;
    }
    if list_items(value.as_bytes()).count() > 1 {
        let read = browser_media_type(value.as_bytes())
            .map(|(t, s)| {
                format!(
                    "{}/{}",
                    String::from_utf8_lossy(t),
                    String::from_utf8_lossy(s)
                )
            })
            .unwrap_or_else(|| "none".into());
        return Some(format!(
            "{} is a list: browsers take its last media type ({read}); give one",
            shown(value)
        ));
    }
    match browser_media_type(value.as_bytes()) {
        None => Some(format!(
            "{} is not a media type (type/subtype; */* names none)",
            shown(value)
        )),
        Some(_) => None,
    }
}

/// The same for what a header value's stage variables (either spelling) hold in each
/// stage and canary of `api`: one message per variable and stage.
pub(crate) fn header_stage_value_problems(
    api: &crate::config::model::Api,
    value: &str,
) -> Vec<String> {
    use crate::pipeline::template::{parse, Ref};
    let names: Vec<&str> = (parse(value).unwrap_or_default().into_iter())
        .filter_map(|r| match r {
            Ref::Stage(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (stage_name, stage) in &api.stages {
        // A canary's variable is named as the canary's: the stage's own may be fine.
        let own = stage.variables.iter().map(|v| (v, ""));
        let canary = stage.canary.iter().flat_map(|c| c.variables.iter());
        for ((var, held), whose) in own.chain(canary.map(|v| (v, "the canary of "))) {
            if let Some(why) = header_value_problem(held).filter(|_| names.contains(&var.as_str()))
            {
                out.push(format!(
                    "{why}, from stage variable {} in {whose}stage {}",
                    shown(var),
                    shown(stage_name)
                ));
            }
        }
    }
    out
}
