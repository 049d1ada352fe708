//! Route checks of parameter mappings, request (`parameters`) and response
//! (`response_parameters`): keys as API Gateway's HTTP APIs take them, headers no mapping
//! may touch or append a second value of, and every reference a value makes.

use super::super::super::KeyPath;
use super::super::Validator;
use super::stage_vars::{self, resolved, stage_only, usable_status};
use super::RouteCheck;
use crate::config::decode::shown;
use crate::config::validate::{api_gateway_reserved, appended_one_valued};
use crate::pipeline::context::Var;
use crate::pipeline::params::{parse_key, Action, Target, RESERVED_REQUEST_HEADERS};
use crate::pipeline::response::RESERVED_RESPONSE_HEADERS;
use crate::pipeline::template::{self, Ref};

impl Validator<'_> {
    /// Two mappings of one map that set the same header, spelt in two cases.
    pub(super) fn same_header_mapped(&mut self, mappings: &[(String, String)], p: &KeyPath) {
        let keys = mappings.iter().map(|(k, _)| k.as_str());
        for (key, first) in crate::config::validate::headers::same_header(
            keys,
            crate::config::validate::headers::mapped,
        ) {
            self.error(
                &p.key(key),
                crate::config::validate::headers::message(first),
            );
        }
    }

    /// Parameter mapping keys as in API Gateway HTTP APIs: `append|overwrite|remove:`
    /// followed by `header.NAME`, `querystring.NAME`, or `path` (overwrite only).
    pub(super) fn parameter(&mut self, key: &str, value: &str, rc: &RouteCheck, p: &KeyPath) {
        match parse_key(key) {
            Some((action, Target::Header(name))) => {
                let refused = self.mapped_header(rc, name, value, RESERVED_REQUEST_HEADERS, p);
                let reserved = api_gateway_reserved(name, false).filter(|_| !refused);
                let said = refused || reserved.is_some();
                if let Some(why) = reserved {
                    self.error(p, why);
                }
                // As in response mappings: a client's own value would go first.
                let one = (action == Action::Append && !said).then(|| appended_one_valued(name));
                if let Some(why) = one.flatten() {
                    self.error(p, why);
                }
            }
            Some((_, Target::Query(name))) => {
                if !crate::pipeline::params::query_name_ok(name) {
                    let chars = crate::pipeline::params::QUERY_NAME_CHARS;
                    self.error(p, format!("{} is not a query parameter name ({chars})", shown(name)));
                }
            }
            Some((Action::Overwrite, Target::Path)) => {
                for why in stage_vars::mapped_path_problems(rc.api, value) {
                    self.error(p, why);
                }
            }
            _ => self.error(p, "expected append:, overwrite: or remove: then header.NAME or querystring.NAME (or overwrite:path)"),
        }
        self.mapping_value(value, rc, p, false);
    }

    /// Response mapping keys: `overwrite:statuscode`, `append|overwrite|remove:header.NAME`.
    pub(super) fn response_parameter(
        &mut self,
        key: &str,
        value: &str,
        rc: &RouteCheck,
        p: &KeyPath,
    ) {
        match parse_key(key) {
            Some((action, Target::Header(name))) => {
                let refused = self.mapped_header(rc, name, value, RESERVED_RESPONSE_HEADERS, p);
                let date = crate::config::validate::mapped_date(name).filter(|_| !refused);
                if let Some(why) = date {
                    self.error(p, why);
                }
                let date = date.is_some();
                // A field of one value (content-type, location, …) appended beside the
                // integration's own went out twice: a browser joins two content-types
                // and renders the last.
                if action == Action::Append
                    && !date
                    && crate::integration::lambda_response::one_valued_field(name)
                {
                    self.error(p, format!("{name} has one value: append: would send a second {name} beside the integration's; use overwrite:"));
                }
                if action != Action::Remove {
                    if let Some(why) = crate::config::validate::content_type_problem(name, value) {
                        self.error(p, why);
                    }
                }
                // Compression is decided on the integration's answer, before mappings: a
                // mapped coding would label a body that is not (or twice) encoded.
                let encoding = name.eq_ignore_ascii_case("content-encoding");
                if encoding {
                    self.error(p, "content-encoding can't be mapped: Portico's compression decides it from the integration's answer");
                }
                // On a CORS API the `cors` block is the one source of the CORS headers
                // (the backend's are dropped too): a mapped `*` went out beside the echoed
                // origin, and to origins the list refuses.
                let cors =
                    rc.api.cors.is_some() && crate::pipeline::cors::is_cors_header(name.as_bytes());
                if cors {
                    self.error(
                        p,
                        format!("{name} is set by the API's cors block on a CORS API"),
                    );
                }
                // API Gateway's reserved headers, where no reason was given above.
                let said = refused || encoding || cors;
                if let Some(why) = api_gateway_reserved(name, true).filter(|_| !said) {
                    self.error(p, why);
                }
            }
            Some((Action::Overwrite, Target::StatusCode)) => {
                let fixed = !value.contains('$');
                let usable = usable_status(value);
                if fixed && !usable {
                    self.error(p, format!("must be a status 200–599 other than 204, 205 and 304 (the body is already framed), got {}", shown(value)));
                } else if let Some((braced, names)) = stage_only(value) {
                    // Made of stage variables only, the status is known per stage: one that
                    // can't be used was ignored at run time, without a word.
                    for (stage, status) in resolved(rc.api, &braced, &names) {
                        if !usable_status(&status) {
                            self.error(p, format!("must be a status 200–599 other than 204, 205 and 304 (the body is already framed), got {} in {stage}", shown(&status)));
                        }
                    }
                }
            }
            _ => self.error(
                p,
                "expected overwrite:statuscode, or append:, overwrite: or remove: then header.NAME",
            ),
        }
        self.mapping_value(value, rc, p, true);
    }

    /// Whether the name itself was refused (not a token, or in `reserved`).
    pub(super) fn mapped_header(
        &mut self,
        rc: &RouteCheck,
        name: &str,
        value: &str,
        reserved: &[&str],
        p: &KeyPath,
    ) -> bool {
        use crate::config::validate::header_value_problem;
        let refused = if !crate::http1::parse::is_token(name) {
            Some(format!("{} is not a header name", shown(name)))
        } else {
            crate::config::validate::reserved_header(name, reserved)
        };
        let said = refused.is_some();
        if let Some(why) = refused {
            self.error(p, why);
        }
        if let Some(why) = header_value_problem(value) {
            self.error(p, why);
        }
        // What the value's stage variables hold in each stage (and canary) goes into the
        // header too.
        for why in crate::config::validate::header_stage_value_problems(rc.api, value) {
            self.error(p, why);
        }
        said
    }

    /// Every reference in a mapping value must exist: path parameters in the route key,
    /// `$context` variables, stage variables in every stage; `$request` values only in
    /// request mappings, `$response` values only in response mappings.
    pub(super) fn mapping_value(
        &mut self,
        value: &str,
        rc: &RouteCheck,
        p: &KeyPath,
        response: bool,
    ) {
        let refs = match template::parse(value) {
            Ok(refs) => refs,
            Err(message) => {
                self.error(p, message);
                return;
            }
        };
        let mut stage_vars: Vec<String> = Vec::new();
        for r in refs {
            match r {
                Ref::Lit(_) => {}
                Ref::Stage(name) => {
                    if !stage_vars.iter().any(|n| n == name) {
                        stage_vars.push(name.to_string());
                    }
                }
                Ref::Context(name) if name.starts_with("authorizer.") => {
                    if rc.auth.authorizer.is_none() && !rc.auth.iam {
                        self.error(
                            p,
                            format!("$context.{name} needs an authorizer on the route"),
                        );
                    }
                }
                Ref::Context(name) if Var::parse(name).is_none() => {
                    let known: Vec<&str> = Var::NAMES.iter().map(|(n, _)| *n).collect();
                    self.error(
                        p,
                        format!(
                            "$context.{name} is not a variable (known: {})",
                            known.join(", ")
                        ),
                    );
                }
                Ref::Context(_) => {}
                Ref::Header(_) | Ref::Query(_) | Ref::Path | Ref::PathParam(_) if response => {
                    self.error(p, "$request values are not available in response mappings");
                }
                Ref::PathParam(name) => self.param_exists(name, rc, p),
                Ref::Header(name) if !crate::http1::parse::is_token(name) => {
                    self.error(p, format!("{} is not a header name", shown(name)));
                }
                Ref::Header(_) | Ref::Query(_) | Ref::Path => {}
                Ref::RespHeader(_) if !response => {
                    self.error(
                        p,
                        "$response values are only available in response_parameters",
                    );
                }
                Ref::RespHeader(_) => {}
            }
        }
        self.stage_names(rc, p, &stage_vars);
    }
}
