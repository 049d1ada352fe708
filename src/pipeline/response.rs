//! Response edits: response parameter mapping (`overwrite:statuscode`,
//! `overwrite:/append:/remove:header.NAME`, chosen by the integration's status code, as
//! HTTP APIs' `responseParameters`) and the CORS headers of actual responses.
//!
//! Every integration writes its response head through the same three questions —
//! [`Edits::status`], [`Edits::drops`], [`Edits::write_headers`] — and [`Edits::find`]
//! answers `None` for routes with neither feature, so their responses are written exactly
//! as before.

use tracing::debug;

use super::context::{RequestState, RequestView};
use super::cors::{is_cors_header, vary_covers_origin, CorsMatch, CorsRt};
use super::params::{parse_key, write_header, Action, Target};
use super::template::{ResponseHeaders, Template};
use crate::config::compile::Snapshot;

/// Headers a response mapping (or a mock's, a gateway response's headers) may not touch:
/// framing, and the gateway's own; the hop-by-hop fields (`http1::hop::ALWAYS`) too.
pub const RESERVED_RESPONSE_HEADERS: &[&str] = &[
    "apigw-requestid",
    "content-length",
    "transfer-encoding",
    "x-amzn-requestid",
];

/// A mapped status as written (spaces around it aside): digits only. Rust's integer
/// parser takes a leading `+`, which makes `+201` (from a backend's header, say) a 201
/// where `check` and the README say a status is digits.
pub fn mapped_status(text: &[u8]) -> Option<u16> {
    let text = text.trim_ascii();
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[derive(Debug, Default)]
pub struct ResponseOps {
    status: Option<Template>,
    drop_headers: Vec<Box<[u8]>>,
    add_headers: Vec<(Box<[u8]>, Template)>,
}

/// One route's response mappings for one stage (or its canary), by status code.
#[derive(Debug, Default)]
pub struct ResponseMap {
    rules: Vec<(u16, ResponseOps)>,
}

impl ResponseMap {
    pub fn compile(
        by_status: &[(String, Vec<(String, String)>)],
        vars: &[(String, String)],
        path_params: &[String],
    ) -> Result<Option<Box<ResponseMap>>, String> {
        if by_status.is_empty() {
            return Ok(None);
        }
        let mut map = ResponseMap::default();
        for (code, params) in by_status {
            let status: u16 = code
                .parse()
                .map_err(|_| format!("{code:?} is not a status code"))?;
            let mut ops = ResponseOps::default();
            for (key, value) in params {
                let template = || {
                    Template::compile(value, vars, path_params).map_err(|e| format!("{key}: {e}"))
                };
                match parse_key(key) {
                    Some((Action::Overwrite, Target::StatusCode)) => {
                        ops.status = Some(template()?);
                    }
                    Some((action, Target::Header(name))) => {
                        let name = name.to_ascii_lowercase().into_bytes().into_boxed_slice();
                        if action != Action::Append {
                            ops.drop_headers.push(name.clone());
                        }
                        if action != Action::Remove {
                            ops.add_headers.push((name, template()?));
                        }
                    }
                    _ => return Err(format!("{key:?} is not a response mapping")),
                }
            }
            map.rules.push((status, ops));
        }
        Ok(Some(Box::new(map)))
    }

    fn for_status(&self, status: u16) -> Option<&ResponseOps> {
        self.rules
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, ops)| ops)
    }
}

/// What changes in one response.
pub struct Edits<'a> {
    ops: Option<&'a ResponseOps>,
    cors: Option<&'a CorsRt>,
    matched: CorsMatch,
}

fn response_map<'a>(snap: &'a Snapshot, state: &RequestState) -> Option<&'a ResponseMap> {
    let stage = &snap.apis[state.api as usize].stages[state.stage as usize];
    let maps = match &stage.canary {
        Some(c) if state.canary => &c.responses,
        _ => &stage.responses,
    };
    maps.get(state.route as usize)?.as_deref()
}

impl<'a> Edits<'a> {
    /// The edits for a response with this integration status; None when nothing changes.
    pub fn find(snap: &'a Snapshot, state: &RequestState, status: u16) -> Option<Edits<'a>> {
        let ops = response_map(snap, state).and_then(|m| m.for_status(status));
        let cors = snap.apis[state.api as usize].cors.as_deref();
        if ops.is_none() && cors.is_none() {
            return None;
        }
        Some(Edits {
            ops,
            cors,
            matched: state.cors,
        })
    }

    /// Whether a mapping sets the status (`overwrite:statuscode`).
    pub fn maps_status(&self) -> bool {
        self.ops.is_some_and(|o| o.status.is_some())
    }

    /// Whether the route maps responses at all, so the proxy must keep the request head
    /// for `$context` values until the response arrives.
    pub fn route_maps_responses(snap: &Snapshot, state: &RequestState) -> bool {
        response_map(snap, state).is_some()
    }

    /// The status to answer with. A mapped status that is not 200–599, or a change to or
    /// from a status without a body (204, 205, 304), is ignored: the body's framing is
    /// already decided by then.
    pub fn status(
        &self,
        status: u16,
        v: &RequestView,
        resp: ResponseHeaders,
        scratch: &mut Vec<u8>,
    ) -> u16 {
        let Some(t) = self.ops.and_then(|o| o.status.as_ref()) else {
            return status;
        };
        let mark = scratch.len();
        t.eval(v, Some(resp), scratch);
        let mapped = mapped_status(&scratch[mark..]);
        scratch.truncate(mark);
        let with_content = |s: u16| crate::http1::encode::status_with_content(s.into());
        match mapped {
            Some(s) if with_content(s) && with_content(status) => s,
            other => {
                debug!(
                    ?other,
                    status, "mapped status code not usable; kept the original"
                );
                status
            }
        }
    }

    /// Whether an integration response header is left out.
    pub fn drops(&self, name: &[u8]) -> bool {
        self.ops
            .is_some_and(|o| o.drop_headers.iter().any(|d| d.eq_ignore_ascii_case(name)))
            || (self.cors.is_some() && is_cors_header(name))
    }

    /// Writes the mapped headers and the CORS headers.
    pub fn write_headers(&self, v: &RequestView, resp: ResponseHeaders, out: &mut Vec<u8>) {
        let mapped = out.len();
        if let Some(ops) = self.ops {
            for (name, t) in &ops.add_headers {
                write_header(out, name, |out| t.eval(v, Some(resp), out));
            }
        }
        if let Some(cors) = self.cors {
            let varied = cors.varies()
                && (self.kept_vary_covers_origin(resp, out)
                    || written_vary_covers_origin(&out[mapped..]));
            cors.write_actual(self.matched, v.header(b"origin"), varied, out);
        }
    }

    /// Whether the integration's Vary, if it is passed on, already lists `origin`. Read
    /// into the tail of `out` and cut off again: no buffer of its own.
    fn kept_vary_covers_origin(&self, resp: ResponseHeaders, out: &mut Vec<u8>) -> bool {
        if self.drops(b"vary") {
            return false;
        }
        let mark = out.len();
        resp(b"vary", out);
        let covered = vary_covers_origin(&out[mark..]);
        out.truncate(mark);
        covered
    }
}

/// Whether header lines a response mapping wrote (`name: value\r\n`) include a Vary
/// that lists `origin`.
fn written_vary_covers_origin(lines: &[u8]) -> bool {
    lines.split(|&b| b == b'\n').any(|line| {
        line.iter().position(|&b| b == b':').is_some_and(|i| {
            line[..i].eq_ignore_ascii_case(b"vary") && vary_covers_origin(&line[i + 1..])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_by_status() {
        let rp = vec![(
            "200".to_string(),
            vec![
                ("overwrite:statuscode".to_string(), "201".to_string()),
                ("remove:header.server".to_string(), String::new()),
                ("append:header.x-a".to_string(), "1".to_string()),
            ],
        )];
        let map = ResponseMap::compile(&rp, &[], &[]).unwrap().unwrap();
        let ops = map.for_status(200).unwrap();
        assert_eq!(ops.status.as_ref().unwrap().as_static(), Some(&b"201"[..]));
        assert_eq!(ops.drop_headers.len(), 1);
        assert!(map.for_status(404).is_none());
        let bad = vec![(
            "200".to_string(),
            vec![("overwrite:path".to_string(), "/".to_string())],
        )];
        assert!(ResponseMap::compile(&bad, &[], &[]).is_err());
    }
}
