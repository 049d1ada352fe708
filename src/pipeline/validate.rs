//! Request validation, as API Gateway's request validators: required parameters first
//! (present and not blank, reported in API Gateway's order: headers, path, query string,
//! each by name), then the body against the route's JSON Schema model for the request's
//! content type (no `Content-Type` counts as `application/json`, an empty body as `{}`).
//!
//! Models are compiled once when the config loads ([`BodyModel`]); a request's body is
//! first scanned against the model in one pass (`body_scan`, for models of the common
//! keywords; a yes ends it), else parsed onto a reused tape (`json_body`, no allocation)
//! and checked by the validator compiled for it; an invalid body's first error is the
//! detail (from the tape again, or a `Value` where the tape gave way). The body is read whole only on routes
//! that validate bodies, up to `max_body_bytes`, and stays in the connection buffer for
//! the integration, which then finds it already there.

use std::sync::Arc;

use super::body_scan::ModelScan;
use super::gateway_responses::{self, ResponseType};
use super::json_body::{BodyJson, Tape};
use super::media_type_syntax::{is_media_type, parameters_well_formed};
use super::model_cost;
use super::models::{self, compile_model, compile_model_for};
use crate::config::definitions::RouteValidation;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;
use serde_json::Value;

/// Where a required parameter is looked for; the order is API Gateway's report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Loc {
    Header,
    Path,
    Query,
}

/// `header.NAME`, `querystring.NAME` or `path.NAME`.
pub fn parse_param(s: &str) -> Option<(Loc, &str)> {
    let (loc, name) = s.split_once('.')?;
    let loc = match loc {
        "header" => Loc::Header,
        "querystring" => Loc::Query,
        "path" => Loc::Path,
        _ => return None,
    };
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some((loc, name))
}

/// A route's compiled checks.
#[derive(Debug)]
pub struct RouteCheck {
    /// Sorted in report order; empty when the validator does not check parameters.
    params: Box<[(Loc, Box<str>, usize)]>,
    /// Lower-case content type (`$default`: any) → model; empty: no body check.
    bodies: Box<[(Box<str>, Arc<BodyModel>)]>,
}

/// A model compiled up to three times: as a one-pass scanner of the body's bytes when it
/// uses only the keywords that reads (the quick yes most valid bodies get), for the body's
/// tape (the general path, no allocation) and for `serde_json::Value` (bodies the tape
/// leaves aside, and the detail of what is wrong with an invalid one).
#[derive(Debug)]
pub struct BodyModel {
    pub scan: Option<ModelScan>,
    pub tape: jsonschema::Validator<BodyJson>,
    pub value: jsonschema::Validator,
    /// What the search for an invalid body's error may cost (`model_cost`); None: about
    /// the body's size.
    pub search_cost: Option<super::model_cost::SearchCost>,
}

impl BodyModel {
    pub fn compile(name: &str, models: &[(String, Value)]) -> Result<BodyModel, String> {
        let value = compile_model(name, models)?;
        let scan = ModelScan::compile(name, models);
        Ok(BodyModel {
            scan,
            tape: compile_model_for::<BodyJson>(name, models)?,
            value,
            search_cost: super::model_cost::search_cost(name, models),
        })
    }

    /// A model no body passes (`{"not": {}}`).
    pub(crate) fn refusing() -> BodyModel {
        let none = [("refuse".to_string(), serde_json::json!({ "not": {} }))];
        BodyModel::compile("refuse", &none).expect("a schema of one keyword compiles")
    }

    /// Whether `body` is JSON the model accepts: an empty body is `{}`.
    pub fn accepts(&self, body: &[u8]) -> bool {
        let body = if json_blank(body) { b"{}" } else { body };
        if self.scan.as_ref().is_some_and(|scan| scan.accepts(body)) {
            return true;
        }
        // The scanner reads `-0` as the integer 0 itself; the validators need it written so.
        let zeros = integer_negative_zeros(body);
        let body = zeros.as_deref().unwrap_or(body);
        let valid = match Tape::parse(body) {
            Some(tape) => self.tape.is_valid(tape.root()),
            None => body_value(body).is_ok_and(|value| self.value.is_valid(&value)),
        };
        valid
    }
}

impl RouteCheck {
    /// None when the route validates nothing. `models` are already known to compile.
    pub fn compile(
        v: &RouteValidation,
        param_names: &[String],
        models: &[(String, Value)],
    ) -> Option<Box<RouteCheck>> {
        let validator = v.validator?;
        let mut params: Vec<(Loc, Box<str>, usize)> = Vec::new();
        if validator.params() {
            for p in &v.required {
                if let Some((loc, name)) = parse_param(p) {
                    let idx = param_names.iter().position(|n| n == name).unwrap_or(0);
                    // Kept as declared: the 400 names it so (a header is matched in
                    // any case).
                    params.push((loc, name.into(), idx));
                }
            }
            let key = |(loc, name, _): &(Loc, Box<str>, usize)| match loc {
                Loc::Header => (*loc, name.to_ascii_lowercase()),
                _ => (*loc, name.to_string()),
            };
            params.sort_by_key(key);
            params.dedup_by(|a, b| key(a) == key(b));
        }
        let mut bodies = Vec::new();
        if validator.body() {
            for (ctype, model) in &v.models {
                // `check` compiled it already; should it fail here all the same, the
                // route refuses its bodies rather than checking nothing.
                let compiled = BodyModel::compile(model, models).unwrap_or_else(|e| {
                    tracing::error!(model = %model, error = %e, "a request model does not compile; its bodies are refused");
                    BodyModel::refusing()
                });
                {
                    // A request is matched by its media type alone, so a key written
                    // with parameters (`application/json; charset=utf-8`, as OpenAPI
                    // documents may have it) is its media type too; it matched nothing,
                    // and its requests went through unvalidated.
                    let media = ctype.split(';').next().unwrap_or_default().trim();
                    if !bodies
                        .iter()
                        .any(|(t, _): &(Box<str>, _)| t.eq_ignore_ascii_case(media))
                    {
                        bodies.push((media.to_ascii_lowercase().into(), Arc::new(compiled)));
                    }
                }
            }
        }
        if params.is_empty() && bodies.is_empty() {
            return None;
        }
        Some(Box::new(RouteCheck {
            params: params.into(),
            bodies: bodies.into(),
        }))
    }

    pub fn checks_body(&self) -> bool {
        !self.bodies.is_empty()
    }
}

/// At least one value, and none of them blank (each item: this value is filled).
fn all_filled(mut filled: impl Iterator<Item = bool>) -> bool {
    filled
        .next()
        .is_some_and(|first| first && filled.all(|f| f))
}

/// Runs the route's checks. `Some(keep)` when the gateway answered (400).
pub async fn check(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    rc: &RouteCheck,
) -> Option<bool> {
    if !rc.params.is_empty() {
        let mut missing: Vec<&str> = Vec::new();
        for (loc, name, idx) in rc.params.iter() {
            // Present and not blank, judged as the backend will read it: a query
            // parameter's name and value decoded; a repeated header or parameter only
            // when every one of its values is not blank, since backends differ in which
            // they take (PHP and Lambda's `queryStringParameters` the last, Flask the
            // first): `?q=1&q=` must not pass as `q=1` to one that reads `q=`.
            let buf = &c.rbuf[..];
            let present = match loc {
                // Its `_` spelling too (`x_tenant`: the same HTTP_X_TENANT to CGI-style
                // backends), which must not be blank either; present, it is the header's
                // own name that counts.
                Loc::Header => {
                    let name = name.as_bytes();
                    let mut named = false;
                    let filled = all_filled(
                        c.head
                            .headers
                            .iter()
                            .filter(|h| crate::http1::same_cgi_name(h.name.get(buf), name))
                            .map(|h| {
                                named |= h.name.get(buf).eq_ignore_ascii_case(name);
                                !blank(h.value.get(buf))
                            }),
                    );
                    filled && named
                }
                Loc::Query => c.head.query.is_some_and(|q| {
                    use super::template::{query_decoded, query_pairs};
                    all_filled(
                        query_pairs(q.get(buf))
                            .filter(|(k, _)| query_decoded(k).eq(name.bytes()))
                            .map(|(_, v)| !query_decoded(v).all(|b| b.is_ascii_whitespace())),
                    )
                }),
                // Decoded as the backend reads it: `/o/%20` is blank.
                Loc::Path => c.params.get(*idx).is_some_and(|s| {
                    let raw = s.get(buf);
                    if !raw.contains(&b'%') {
                        return !blank(raw);
                    }
                    let mut decoded = Vec::new();
                    crate::http1::percent_decode(raw, false, &mut decoded);
                    !blank(&decoded)
                }),
            };
            if !present {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            let message = format!(
                "Missing required request parameters: [{}]",
                missing.join(", ")
            );
            return Some(
                gateway_responses::answer(
                    ctx,
                    gen,
                    c,
                    ResponseType::BadRequestParameters,
                    &message,
                    "",
                )
                .await,
            );
        }
    }
    if rc.bodies.is_empty() {
        return None;
    }
    // Two Content-Types: the model would be chosen by one while the backend may parse
    // the body as the other.
    let buf = &c.rbuf[..];
    if c.head
        .headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"content-type"))
        .count()
        > 1
    {
        return Some(
            gateway_responses::answer(
                ctx,
                gen,
                c,
                ResponseType::BadRequestBody,
                "Invalid request body",
                "[more than one Content-Type header]",
            )
            .await,
        );
    }
    let header = c.head.header(&c.rbuf, "content-type");
    let ctype = header
        .map(|v| {
            v.split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii()
        })
        // A blank media type (`Content-Type:`, `; charset=utf-8`) is no content type,
        // as backends read it: application/json, not a type without a model that
        // let the body through unchecked.
        .filter(|t| !t.is_empty())
        .unwrap_or(b"application/json");
    // One `type/subtype`, or the model is chosen by a type no backend reads:
    // `application/json, text/plain` or `application/json x` found no model and passed
    // unchecked, while a backend matching a prefix parsed the body as JSON.
    let parameters = header.map_or(&[][..], |v| {
        let at = v.iter().position(|&b| b == b';').unwrap_or(v.len());
        &v[at..]
    });
    if !is_media_type(ctype) || !parameters_well_formed(parameters) {
        return Some(
            gateway_responses::answer(
                ctx,
                gen,
                c,
                ResponseType::BadRequestBody,
                "Invalid request body",
                "[Content-Type is not one media type]",
            )
            .await,
        );
    }
    let validator = model_for(&rc.bodies, ctype);
    // No model for this content type: the body passes unchecked, as in API Gateway.
    let validator = validator?;
    let end = match c.read_whole_body(gen).await {
        Ok(end) => end,
        Err((status, message)) => {
            c.head.keep_alive = false;
            return Some(c.answer(ctx, gen, status, message, &[]).await);
        }
    };
    // Read whole, a chunked body was decoded in place.
    let body = &c.rbuf[c.head.head_len..end];
    // Decoded, up to `max_body_bytes` and 64 times what was sent (and 64 KiB more): a
    // 10 KB gzip of a 10 MB array held the worker for half a second of validation, every
    // other request on it waiting (a plain 10 MB body costs its sender 10 MB).
    let inflation_cap = (body.len() as u64).saturating_mul(MAX_INFLATION) + (64 << 10);
    let limit = gen.snap.server.limits.max_body_bytes.min(inflation_cap);
    let inflated = match content_coding(c) {
        Coding::Identity => None,
        Coding::Known(coding) => match inflate(coding, body, limit) {
            Ok(inflated) => Some(inflated),
            Err(why) => {
                let (status, message) = match why {
                    Inflate::TooLarge => (413, "Request Entity Too Large"),
                    Inflate::Broken => (415, "Unsupported Media Type"),
                };
                // The body was read whole: the connection goes on, as after a 400.
                return Some(c.answer(ctx, gen, status, message, &[]).await);
            }
        },
        Coding::Other => {
            return Some(c.answer(ctx, gen, 415, "Unsupported Media Type", &[]).await);
        }
    };
    // The body is checked as the backend will read it; it is sent on as it came.
    let body = inflated.as_deref().unwrap_or(body);
    // Each pass over the body has its own budget of backtracking-pattern work.
    models::pattern_budget_reset();
    if validator.accepts(body) {
        return None;
    }
    // The first error only, from the tape where it parses: all of them cost a
    // `pattern`'s work on every item (minutes for a crafted body), and a `Value` of a
    // large body many times its size. A body that spent its budget is not checked again.
    let spent = models::pattern_budget_spent();
    models::pattern_budget_reset();
    let zeros = integer_negative_zeros(body);
    let body = zeros.as_deref().unwrap_or(body);
    // Asked once the body is known to be JSON of a depth the validators read.
    let costly = || (validator.search_cost).is_some_and(|c| model_cost::search_too_costly(body, c));
    let not_searched = || format!("[{}]", model_cost::NOT_SEARCHED);
    let problem = match Tape::parse(body) {
        _ if spent => format!("[{}]", models::BUDGET_SPENT),
        Some(_) if costly() => not_searched(),
        Some(tape) => detail(validator.tape.validate(tape.root()).err()),
        None => match body_value(body) {
            Ok(_) if costly() => not_searched(),
            Ok(value) => detail(validator.value.validate(&value).err()),
            Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
                format!("[body nests {MAX_DEPTH} levels or deeper]")
            }
            Err(e) if e.to_string().starts_with(super::json_unique::REPEATED) => format!("[{e}]"),
            Err(e) => format!("[body is not JSON: {e}]"),
        },
    };
    Some(
        gateway_responses::answer(
            ctx,
            gen,
            c,
            ResponseType::BadRequestBody,
            "Invalid request body",
            &problem,
        )
        .await,
    )
}

/// `[what is wrong at /where]`, the text cut at `DETAIL_MAX` bytes: jsonschema's messages
/// quote the value, and a 2 MB array that is not an object was answered (and logged)
/// whole.
fn detail(error: Option<jsonschema::ValidationError<'_>>) -> String {
    use std::fmt::Write;
    let Some(e) = error else {
        return "[]".into();
    };
    let mut what = Capped(String::from("["), DETAIL_MAX);
    if write!(what, "{e}").is_err() {
        what.0.push('…');
    }
    // The path has a budget of its own: a cut message still says where.
    let mut at = Capped(what.0 + " at ", DETAIL_MAX);
    let path = e.instance_path();
    let _ = match path.as_str().is_empty() {
        true => at.write_str("/"),
        false => write!(at, "{path}"),
    };
    at.0 + "]"
}

const DETAIL_MAX: usize = 400;

/// A `fmt::Write` into a string that refuses what would take it past its budget
/// (formatting stops there).
struct Capped(String, usize);

impl std::fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if s.len() <= self.1 {
            self.1 -= s.len();
            self.0.push_str(s);
            return Ok(());
        }
        let cut = (0..=self.1)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        self.0.push_str(&s[..cut]);
        self.1 = 0;
        Err(std::fmt::Error)
    }
}

/// serde_json's nesting limit for a body read whole: a body this deep (127 levels pass)
/// is refused.
const MAX_DEPTH: usize = 128;

/// A request body's `Content-Encoding`.
enum Coding {
    Identity,
    Known(&'static str),
    /// One Portico can't read (br, zstd, several codings): the body can't be checked.
    Other,
}

fn content_coding(c: &Conn) -> Coding {
    let mut found = Coding::Identity;
    for h in &c.head.headers {
        if !h
            .name
            .get(&c.rbuf)
            .eq_ignore_ascii_case(b"content-encoding")
        {
            continue;
        }
        for coding in h.value.get(&c.rbuf).split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            let this = if coding.is_empty() || coding.eq_ignore_ascii_case(b"identity") {
                continue;
            } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")
            {
                "gzip"
            } else if coding.eq_ignore_ascii_case(b"deflate") {
                "deflate"
            } else {
                return Coding::Other;
            };
            if !matches!(found, Coding::Identity) {
                return Coding::Other;
            }
            found = Coding::Known(this);
        }
    }
    found
}

/// How many times its size a compressed request body may grow when decoded.
const MAX_INFLATION: u64 = 64;

enum Inflate {
    TooLarge,
    Broken,
}

/// A gzip or deflate body decoded, up to `limit` bytes (a small body may inflate to
/// gigabytes). `deflate` is zlib-wrapped (RFC 9110 §8.4.1.2), or raw as some clients
/// send it.
fn inflate(coding: &str, body: &[u8], limit: u64) -> Result<Vec<u8>, Inflate> {
    use std::io::Read;
    fn read_all(r: impl Read, limit: u64) -> Result<Vec<u8>, Inflate> {
        let mut out = Vec::new();
        r.take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|_| Inflate::Broken)?;
        if out.len() as u64 > limit {
            return Err(Inflate::TooLarge);
        }
        Ok(out)
    }
    match coding {
        "gzip" => read_all(flate2::read::MultiGzDecoder::new(body), limit),
        _ => match read_all(flate2::read::ZlibDecoder::new(body), limit) {
            Err(Inflate::Broken) => read_all(flate2::read::DeflateDecoder::new(body), limit),
            done => done,
        },
    }
}

fn blank(v: &[u8]) -> bool {
    v.iter().all(u8::is_ascii_whitespace)
}

/// A copy of `body` with each `-0` number (no fraction, no exponent) written ` 0`, when
/// it has one. serde_json reads `-0` as the float -0.0, which a draft-4 model's `integer`
/// refuses, where API Gateway's validator reads the integer 0: `{"qty": -0}` got a 400.
/// The same length, so every string and offset stays where it was; `-0.0` stays a float.
pub(crate) fn integer_negative_zeros(body: &[u8]) -> Option<Vec<u8>> {
    // Most bodies have no `-0` but in strings such as dates ("2026-12-01"), where a digit
    // follows: the byte-by-byte walk that tells strings apart runs only for a body with
    // a `-0` that could be the number (it was about a tenth of the CPU of compare's
    // validated 1 KiB request). memchr for `-`: memmem for `-0` built its searcher on
    // every call.
    // Not an exponent's sign: `1e-0` is the float 1, and blanked it was `1e 0`, not JSON.
    let bare_zero = |&i: &usize| {
        body.get(i + 1) == Some(&b'0')
            && !matches!(body.get(i + 2), Some(b'0'..=b'9' | b'.' | b'e' | b'E'))
            && !matches!(i.checked_sub(1).map(|p| body[p]), Some(b'e' | b'E'))
    };
    memchr::memchr_iter(b'-', body).find(bare_zero)?;
    let mut out: Option<Vec<u8>> = None;
    for (i, b) in model_cost::outside_strings(body) {
        if b == b'-' && bare_zero(&i) {
            out.get_or_insert_with(|| body.to_vec())[i] = b' ';
        }
    }
    out
}

/// The body as a `Value` (bodies the tape leaves aside, invalid ones); an empty body is
/// `{}` (so a model's `required` still applies); an object that repeats a member name is
/// an error (`json_unique`).
fn body_value(body: &[u8]) -> Result<Value, serde_json::Error> {
    if json_blank(body) {
        return Ok(Value::Object(Default::default()));
    }
    super::json_unique::from_slice(body)
}

/// Nothing but JSON's whitespace (RFC 8259 §2: space, tab, LF, CR), as an empty body is
/// taken: a form feed, which `is_ascii_whitespace` counts, is not JSON, and such a
/// body passed as `{}`.
fn json_blank(body: &[u8]) -> bool {
    body.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// The model for media type `ctype`: its own, else its type's range (`application/*`),
/// else `*/*`, else `$default` (OpenAPI's ranges cover every type they name: imported as
/// written, `*/*` matched no request and nothing was checked).
fn model_for<'m>(bodies: &'m [(Box<str>, Arc<BodyModel>)], ctype: &[u8]) -> Option<&'m BodyModel> {
    let slash = ctype.iter().position(|&b| b == b'/').unwrap_or(ctype.len());
    let range = |t: &str| {
        t.strip_suffix("/*")
            .is_some_and(|ty| ty.as_bytes().eq_ignore_ascii_case(&ctype[..slash]))
    };
    let find = |f: &dyn Fn(&str) -> bool| bodies.iter().find(|(t, _)| f(t)).map(|(_, v)| &**v);
    find(&|t| t.as_bytes().eq_ignore_ascii_case(ctype))
        .or_else(|| find(&|t| t != "*/*" && range(t)))
        .or_else(|| find(&|t| t == "*/*"))
        .or_else(|| find(&|t| t == "$default"))
}

#[cfg(test)]
mod tests {
    use super::integer_negative_zeros as zeros;

    #[test]
    fn only_a_bare_minus_zero_outside_strings_is_blanked() {
        assert_eq!(
            zeros(br#"{"d":"2026-12-01","n":-0.5,"e":-0e1,"m":-07}"#),
            None
        );
        assert_eq!(zeros(br#"{"s":"a -0 b","t":"\"-0"}"#), None);
        assert_eq!(zeros(br#"{"p":1e-0,"q":2.5E-0,"r":[1e-0]}"#), None);
        let blanked = zeros(br#"{"q":-0,"s":"-0","r":[-0]}"#);
        assert_eq!(
            blanked.as_deref(),
            Some(&br#"{"q": 0,"s":"-0","r":[ 0]}"#[..])
        );
    }
}
