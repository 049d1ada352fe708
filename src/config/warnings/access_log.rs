//! `server.access_log`: a log file this user could not write, `$context` variables
//! logged as `-`, and a JSON format whose lines would not be JSON, with what to do about
//! it. The format itself is `metrics::log_format`'s; this only reads what it reports.

use super::super::model::{Config, LogPath, DEFAULT_ACCESS_LOG_FORMAT};
use super::super::{ConfigError, KeyPath};
use super::unappendable;
use crate::metrics::log_format::LogFormat;

/// The access log's warnings, in the order of its keys.
pub(super) fn warnings(cfg: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let log = KeyPath::root().key("server").key("access_log");
    if let LogPath::File(file) = &cfg.server.access_log.path {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            out.push(log.key("path").error(format!(
                "directory {} does not exist: access-log lines are dropped until it does",
                dir.display()
            )));
        } else if let Some(why) = unappendable(file, dir) {
            out.push(log.key("path").error(why));
        }
    }
    if cfg.server.access_log.path != LogPath::Off {
        let format = LogFormat::compile(&cfg.server.access_log.format);
        for name in format.unknown_variables() {
            out.push(
                log.key("format")
                    .error(format!("unknown variable {name}: it is logged as \"-\"")),
            );
        }
        for (name, word) in format.names_cut_at_colon() {
            out.push(log.key("format").error(format!(
                "$context.authorizer.{name}:{word} is read as $context.authorizer.{name} followed by the text \":{word}\" (a name ends at ':'); write ${{context.authorizer.{name}:{word}}} for a claim whose name holds ':'"
            )));
        }
        if let Some(why) = format.json_problem() {
            let hint = json_hint(&cfg.server.access_log.format);
            out.push(log.key("format").error(format!(
                "it starts with {{, so lines are meant to be JSON, but {why}: {hint}"
            )));
        }
    } else if cfg.server.access_log.format != DEFAULT_ACCESS_LOG_FORMAT {
        out.push(log.key("format").error(
            "not used: access logging is off (`path` is absent or off), so nothing is written in this format; add path: stdout or a file path",
        ));
    }
    out
}

/// What to do about a JSON access-log format whose lines are not JSON: put the variables
/// outside quotes in quotes (why depends on the first one's value), and say so when the
/// text around them is not JSON either, whatever the values; and
/// `$context.error.messageString`, which writes its own quotes, so inside a quoted value
/// (alone, `""-""`, or with other text) it breaks the string: it must be a JSON value of
/// its own. The quotes are only asked for where a variable is outside them: "put each
/// $context variable in quotes" was said of a template whose variables all were, and
/// that only lacked its closing `}`.
fn json_hint(format: &str) -> String {
    const OWN_QUOTES: [&str; 2] = [
        "$context.error.messageString",
        "${context.error.messageString}",
    ];
    // The format as it should be, to see whether anything else is wrong: each
    // messageString quoted alone without its quotes, one in longer quoted text left out.
    let mut rest = String::with_capacity(format.len());
    let (mut quoted, mut in_text, mut in_string, mut escaped) = (false, false, false, false);
    let mut at = 0;
    while let Some(c) = format[at..].chars().next() {
        let var = OWN_QUOTES.iter().find(|v| format[at..].starts_with(**v));
        match var {
            Some(var) if in_string => {
                let end = at + var.len();
                // `"$context.error.messageString"`: the string is this variable alone.
                if format[..at].ends_with('"') && format[end..].starts_with('"') {
                    quoted = true;
                    rest.pop();
                    rest.push_str(var);
                    in_string = false;
                    at = end + 1;
                } else {
                    in_text = true;
                    at = end;
                }
                continue;
            }
            _ => {}
        }
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ => {}
        }
        rest.push(c);
        at += c.len_utf8();
    }
    let own = match (in_text, quoted) {
        (true, _) => Some("$context.error.messageString writes its own quotes, so it must stand alone as a JSON value (\"err\":$context.error.messageString), not inside a quoted one"),
        (false, true) => Some("$context.error.messageString writes its own quotes: remove the ones around it"),
        (false, false) => None,
    };
    let (outside, json_once_quoted) = unquoted(&rest);
    // What the first variable outside quotes is, unquoted.
    let why = outside.first().map(|written| match value_kind(written) {
        None => "an empty value is logged as -".to_string(),
        Some(what) => format!("{written} is {what}, which is not JSON unquoted"),
    });
    let broken = "the text around the variables is not JSON, whatever their values: see its braces, commas and quotes";
    let others = match (&why, json_once_quoted) {
        (None, true) => None,
        (None, false) => Some(broken.to_string()),
        (Some(why), true) => Some(format!("{why}; put each $context variable in quotes")),
        (Some(why), false) => Some(format!(
            "{why}; put each $context variable in quotes, and even then {broken}"
        )),
    };
    match (own, others) {
        (Some(own), None) => own.to_string(),
        (None, Some(others)) => others,
        (None, None) => broken.to_string(),
        // The other problems, said after messageString's: the existing wording kept.
        (Some(own), Some(_)) => {
            let sep = if in_text { "; and" } else { ", and" };
            let rest = match (&why, json_once_quoted) {
                (None, _) => format!("{sep} {}", broken.replacen("the text", "also the text", 1)),
                (Some(why), true) => {
                    format!("{sep} put each other $context variable in quotes ({why})")
                }
                (Some(why), false) => format!(
                    "{sep} put each other $context variable in quotes ({why}); even then {broken}"
                ),
            };
            format!("{own}{rest}")
        }
    }
}

/// The variables of JSON format `format` that are outside quotes, as written (in order),
/// and whether the format, with each of them quoted, is JSON whatever the values.
fn unquoted(format: &str) -> (Vec<String>, bool) {
    let mut fixed = format.to_string();
    let mut outside = Vec::new();
    // Each round quotes one variable: at most one round per variable, and one more.
    for _ in 0..=format.matches("context.").count() {
        let Some(why) = LogFormat::compile(&fixed).json_problem() else {
            return (outside, true);
        };
        let Some(written) = why.strip_suffix(" is outside quotes") else {
            return (outside, false);
        };
        let Some(at) = outside_quotes_at(&fixed, written) else {
            return (outside, false);
        };
        fixed.insert(at + written.len(), '"');
        fixed.insert(at, '"');
        outside.push(written.to_string());
    }
    (outside, false)
}

/// Where in `text` the variable `written` first stands outside a JSON string, as
/// `LogFormat` reads it: a plain `$context.NAME` there is not the start of a longer name
/// (dots at a name's end are text).
fn outside_quotes_at(text: &str, written: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    text.match_indices(written).map(|(i, _)| i).find(|&i| {
        let after = bytes[i + written.len()..].iter().find(|&&b| b != b'.');
        let ends = written.ends_with('}')
            || !after.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        // A cold path and a short text: each candidate's quotes counted from the start.
        ends && !crate::metrics::log_format::in_string(&bytes[..i])
    })
}

/// What the value of the variable written `written` is, when it is never JSON unquoted;
/// None for a number that may be empty (logged as `-`, which is not JSON) and for an
/// unknown variable (always `-`).
fn value_kind(written: &str) -> Option<&'static str> {
    let name = match written.strip_prefix("${context.") {
        Some(braced) => braced.strip_suffix('}').unwrap_or(braced),
        None => written.strip_prefix("$context.").unwrap_or(written),
    };
    let name = name.trim_end_matches('.');
    // metrics::log_format: the numbers a line may lack (`LogVar::is_number` less the
    // ones always there, which `json_problem` lets stand unquoted).
    const NUMBER_OR_EMPTY: [&str; 5] = [
        "integrationLatency",
        "integration.latency",
        "integrationStatus",
        "integration.integrationStatus",
        "integration.status",
    ];
    if NUMBER_OR_EMPTY.contains(&name) {
        return None;
    }
    use crate::pipeline::context::Var;
    Some(match Var::parse(name) {
        Some(Var::RequestTime) => "a date text (22/Nov/2026:02:49:38 +0000)",
        Some(Var::SourceIp) => "an address (192.0.2.1)",
        Some(_) => "text",
        None if name.starts_with("authorizer.") => "text",
        None if is_log_text(name) => "text",
        None => return None,
    })
}

/// The access log's own variables whose values are text (`metrics::log_format`'s
/// `LOG_NAMES`, less the numbers).
fn is_log_text(name: &str) -> bool {
    [
        "identity.apiKeyId",
        "integration.error",
        "integrationErrorMessage",
        "error.message",
        "error.responseType",
        "error.validationErrorString",
        "connectionId",
        "eventType",
        "messageId",
    ]
    .contains(&name)
}
