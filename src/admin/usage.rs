//! `GET /usage?plan=&key=&from=&to=`: per-day usage of a plan's keys, in the shape of
//! API Gateway's GetUsage:
//! `{"usagePlanId", "startDate", "endDate", "items": {"KEY": [[used, remaining], …]}}`,
//! one pair per day from `from` to `to` (UTC dates, `YYYY-MM-DD`, default today).
//! `remaining` is what the quota had left at the end of that day (null: no quota).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::http::{Request, Response};
use super::routes::Params;
use super::AdminCtx;
use crate::config::traffic::PlanRt;
use crate::global::usage::{format_day, parse_day, period_start, today};
use crate::store::DayCount;

/// How many days after `from` one request's `to` may be: a leap year, from one New
/// Year's Day to the next (367 days of figures).
const MAX_DAYS: u32 = 366;

pub fn get(ctx: &AdminCtx, req: &Request, _: &Params) -> Response {
    let Some(plan_name) = req.query("plan").filter(|p| !p.is_empty()) else {
        return Response::message(400, "plan is required");
    };
    let plans = ctx.shared.keys.plans();
    let Some(plan) = plans.iter().find(|p| p.name == plan_name) else {
        return Response::message(404, &format!("no usage plan named {plan_name:?}"));
    };
    let day = |name: &str| match req.query(name) {
        None | Some("") => Ok(today()),
        Some(s) => day_param(name, s).map_err(|m| Response::message(400, &m)),
    };
    let (from, to) = match (day("from"), day("to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if to < from || to - from > MAX_DAYS {
        return Response::message(
            400,
            &format!("from must not be after to, and at most {MAX_DAYS} days apart"),
        );
    }
    let key = req.query("key").filter(|k| !k.is_empty());
    // The counts in memory go to the store first, so the answer is up to the request.
    if let Err(e) = ctx.shared.flush() {
        tracing::error!(error = %e, "admin: cannot flush usage");
        return Response::message(500, "cannot read usage");
    }
    let Some(store) = &ctx.shared.store else {
        return Response::message(503, "no state store");
    };
    // From the start of `from`'s quota period, for the remaining counts.
    let read_from = plan
        .quota
        .as_ref()
        .map_or(from, |q| period_start(from, q.period, q.offset));
    let rows = match crate::cluster::get() {
        // The cluster's figures: every node's counts, this node's up to the request.
        Some(c) => crate::cluster::admin::usage(c, &plan.name, key, read_from, to)
            .map_err(|e| crate::cluster::admin::Failure(&e).to_string()),
        None => store
            .usage(&plan.name, key, read_from, to)
            .map_err(|e| e.to_string()),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "admin: cannot read usage");
            return match crate::cluster::get() {
                Some(_) => Response::message(503, "the cluster's Redis is unavailable"),
                None => Response::message(500, "cannot read usage"),
            };
        }
    };
    // Every key of the plan shows, used or not; revoked keys show if they have usage.
    let in_plan = ctx
        .shared
        .keys
        .list()
        .into_iter()
        .filter(|k| k.plan.as_deref() == Some(&plan.name))
        .map(|k| k.name);
    let mut names: Vec<String> = match key {
        // A name that is not one of the plan's keys and has no usage in it (a typo, a
        // key of another plan) is not a key with no usage (API Gateway: 404 too).
        Some(k) if !rows.iter().any(|r| r.key == k) && !in_plan.clone().any(|n| n == k) => {
            return Response::message(
                404,
                &format!("no API key named {k:?} in usage plan {:?}", plan.name),
            );
        }
        Some(k) => vec![k.to_string()],
        None => in_plan.collect(),
    };
    for r in &rows {
        if !names.contains(&r.key) {
            names.push(r.key.clone());
        }
    }
    let items: serde_json::Map<String, Value> = names
        .into_iter()
        .map(|name| {
            let days = per_day(plan, &rows, &name, from, to);
            (name, Value::Array(days))
        })
        .collect();
    Response::json(
        200,
        &json!({
            "usagePlanId": plan.name,
            "startDate": format_day(from),
            "endDate": format_day(to),
            "items": items,
        }),
    )
}

/// The first and last day the store counts (`global::usage::parse_day`'s range).
const FIRST_DAY: &str = "1970-01-01";
const LAST_DAY: &str = "9999-12-31";

/// The day number of query parameter `name`'s `s`, or the 400's message: a real date
/// outside the range days are counted in is said to be out of range, not malformed
/// (`from=1969-12-31` was told to be "a date like 2024-01-31").
fn day_param(name: &str, s: &str) -> Result<u32, String> {
    if let Some(day) = parse_day(s) {
        return Ok(day);
    }
    // Shown as sent up to a length, so a long value does not fill the answer.
    let shown: String = s.chars().take(40).collect();
    let cut = if shown.len() < s.len() { "…" } else { "" };
    Err(match is_calendar_date(s) {
        true => format!("{name} is out of range: give a date from {FIRST_DAY} to {LAST_DAY}, got {shown:?}{cut}"),
        false => format!("{name} must be a date like 2024-01-31, got {shown:?}{cut}"),
    })
}

/// Whether `s` is `YYYY-MM-DD` (a year of 4 digits or more) naming a real day of the
/// proleptic Gregorian calendar, whatever the year.
fn is_calendar_date(s: &str) -> bool {
    let mut it = s.split('-');
    let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return false;
    };
    let digits = |t: &str, n: usize| t.len() >= n && t.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && m.len() == 2 && digits(d, 2) && d.len() == 2) {
        return false;
    }
    // Leap years repeat every 400 years, and 10,000 is a multiple of 400: the last four
    // digits tell, however long the year.
    let y: u32 = y[y.len() - 4..].parse().unwrap_or(1);
    let (m, d): (u32, u32) = (m.parse().unwrap_or(0), d.parse().unwrap_or(0));
    let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// `[[used, remaining], …]` for each day of `from..=to`.
fn per_day(plan: &PlanRt, rows: &[DayCount], key: &str, from: u32, to: u32) -> Vec<Value> {
    let counts: BTreeMap<u32, u64> = rows
        .iter()
        .filter(|r| r.key == key)
        .map(|r| (r.day, r.count))
        .collect();
    (from..=to)
        .map(|d| {
            let used = counts.get(&d).copied().unwrap_or(0);
            let remaining = plan.quota.as_ref().map(|q| {
                let start = period_start(d, q.period, q.offset);
                let so_far: u64 = counts.range(start..=d).map(|(_, c)| c).sum();
                q.limit.saturating_sub(so_far)
            });
            json!([used, remaining])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Period, Quota};

    /// A real date outside the counted range was told to be "a date like 2024-01-31".
    #[test]
    fn a_date_out_of_range_is_said_to_be_out_of_range() {
        let range = "give a date from 1970-01-01 to 9999-12-31";
        for s in ["1969-12-31", "0001-01-01", "10000-01-01", "1600-02-29"] {
            assert_eq!(
                day_param("from", s),
                Err(format!("from is out of range: {range}, got {s:?}")),
            );
        }
        for s in [
            "1969-13-01",
            "1969-02-29",
            "2023-02-29",
            "1970-1-01",
            "x",
            "2024-01-31-",
        ] {
            assert_eq!(
                day_param("to", s),
                Err(format!("to must be a date like 2024-01-31, got {s:?}")),
            );
        }
        assert_eq!(day_param("from", "1970-01-01"), Ok(0));
        assert_eq!(
            day_param("to", LAST_DAY),
            parse_day(LAST_DAY).ok_or_else(String::new)
        );
        let long = "9".repeat(100);
        let got = day_param("from", &long).unwrap_err();
        assert!(got.ends_with(&format!("{:?}…", &long[..40])), "{got}");
    }

    #[test]
    fn remaining_counts_down_within_a_period() {
        let plan = PlanRt {
            name: "gold".into(),
            id: 1,
            throttle: None,
            quota: Some(Quota {
                limit: 100,
                period: Period::Week,
                offset: 0,
            }),
        };
        let monday = parse_day("2024-05-13").unwrap();
        let row = |day, count| DayCount {
            plan: "gold".into(),
            key: "k".into(),
            day,
            count,
        };
        let rows = vec![row(monday - 1, 50), row(monday, 10), row(monday + 2, 5)];
        let got = per_day(&plan, &rows, "k", monday - 1, monday + 2);
        assert_eq!(
            got,
            vec![
                json!([50, 50]),
                json!([10, 90]),
                json!([0, 90]),
                json!([5, 85])
            ]
        );
        let none = PlanRt {
            quota: None,
            ..plan
        };
        assert_eq!(
            per_day(&none, &rows, "k", monday, monday),
            vec![json!([10, null])]
        );
    }
}
