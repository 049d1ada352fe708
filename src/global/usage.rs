//! Usage and quota counters of one API key in a usage plan, shared by every worker, and
//! the calendar arithmetic of quota periods.
//!
//! Each counter is one `AtomicU64` holding a period (a day number: days since
//! 1970-01-01 UTC, 24 bits) and a count (40 bits), so "start a new period" and "count
//! one more" are the same compare-and-swap and no worker can count into a period that
//! another has already closed. The quota counter admits exactly `limit` requests per
//! period across workers. The day counter feeds `GET /usage` and the store: the store
//! keeps per-day counts, and a restart rebuilds the quota counter from them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam::utils::CachePadded;

use crate::config::model::Period;

const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

fn pack(period: u32, count: u64) -> u64 {
    (u64::from(period) << COUNT_BITS) | count.min(COUNT_MASK)
}

fn unpack(v: u64) -> (u32, u64) {
    ((v >> COUNT_BITS) as u32, v & COUNT_MASK)
}

/// Today's day number (UTC).
pub fn today() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs / 86_400) as u32
}

/// Day number of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month 1–12, day 1–31) of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of `YYYY-MM-DD`, if it is a real date.
pub fn parse_day(s: &str) -> Option<u32> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if s.len() != 10 || !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day as u32)
}

/// First day of the quota period that contains `day`. As in API Gateway (all UTC): a day
/// starts at 00:00; a week on Monday + `offset` days (0–6); a month on day 1 + `offset`
/// (0–27, so every month has that day).
pub fn period_start(day: u32, period: Period, offset: u64) -> u32 {
    match period {
        Period::Day => day,
        Period::Week => {
            // Day 0 (1970-01-01) was a Thursday: Monday-based weekday = (day + 3) % 7.
            let into = (u64::from(day) + 3 + 7 - offset % 7) % 7;
            // The first days of 1970 (admin `GET /usage?from=1970-01-01`) belong to a
            // period that began before day 0: it starts at day 0, not at a wrapped day.
            day.saturating_sub(into as u32)
        }
        Period::Month => {
            let (y, m, d) = civil_from_days(i64::from(day));
            let offset = offset.min(27) as u32;
            let this = days_from_civil(y, m, 1) + i64::from(offset);
            if d > offset {
                this as u32
            } else {
                let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
                (days_from_civil(py, pm, 1) + i64::from(offset)).max(0) as u32
            }
        }
    }
}

/// The counters of one key in one plan.
#[derive(Debug, Default)]
pub struct UsageCells {
    inner: CachePadded<Cells>,
}

#[derive(Debug, Default)]
struct Cells {
    /// (first day of the current quota period, requests admitted in it)
    quota: AtomicU64,
    /// (day, requests admitted that day)
    day: AtomicU64,
    /// The day before `day`'s, as it stood when the day rolled over: kept until the
    /// store has it.
    prev: AtomicU64,
}

impl UsageCells {
    /// Starts from what the store remembers.
    pub fn restored(period: u32, used: u64, today: u32, today_count: u64) -> Self {
        let c = UsageCells::default();
        c.inner.quota.store(pack(period, used), Ordering::Relaxed);
        c.inner
            .day
            .store(pack(today, today_count), Ordering::Relaxed);
        c
    }

    /// Starts the quota counter over in the period that begins on day `start` (a reload
    /// gave the plan a quota of another period or offset, or one it had not): `closed`
    /// requests admitted from `start` to yesterday (the store's count), plus today's as
    /// the day counter holds them now. The day counter, not the quota counter, because
    /// every admission counts there whatever the plan's quota was, and to the moment:
    /// the store's count of today missed those admitted since its last flush.
    pub fn requota(&self, start: u32, closed: u64, today: u32) {
        let today_count: u64 = (self.day_counts().iter())
            .filter(|(day, _)| *day >= today)
            .map(|(_, n)| n)
            .sum();
        self.inner
            .quota
            .store(pack(start, closed + today_count), Ordering::Release);
    }

    /// Whether the quota is used up, without taking anything (a cheap early refusal).
    #[inline]
    pub fn quota_exhausted(&self, period: u32, limit: u64) -> bool {
        let (p, used) = unpack(self.inner.quota.load(Ordering::Acquire));
        p >= period && used >= limit
    }

    /// Counts one request against the quota; false when it is used up. A counter found
    /// in an older period starts the new one; one found in a *later* period (another
    /// worker's clock crossed midnight first) is counted in that period.
    #[inline]
    pub fn quota_take(&self, period: u32, limit: u64) -> bool {
        let q = &self.inner.quota;
        let mut cur = q.load(Ordering::Acquire);
        loop {
            let (p, used) = unpack(cur);
            let (p, used) = if p >= period { (p, used) } else { (period, 0) };
            if used >= limit {
                return false;
            }
            match q.compare_exchange_weak(
                cur,
                pack(p, used + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Counts one admitted request on `day`.
    #[inline]
    pub fn count_day(&self, day: u32) {
        let c = &self.inner.day;
        let mut cur = c.load(Ordering::Acquire);
        loop {
            let (d, n) = unpack(cur);
            let next = if d >= day {
                pack(d, n + 1)
            } else {
                pack(day, 1)
            };
            match c.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if d < day && n > 0 {
                        // This CAS closed day `d` at exactly `n`: keep it for the store.
                        self.inner.prev.store(cur, Ordering::Release);
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// (day, count) pairs the store should hold: the current day and the one closed
    /// last. Counts are absolute, so writing them twice is harmless.
    pub fn day_counts(&self) -> [(u32, u64); 2] {
        [
            unpack(self.inner.day.load(Ordering::Acquire)),
            unpack(self.inner.prev.load(Ordering::Acquire)),
        ]
    }

    /// (period, used) of the quota counter.
    pub fn quota_used(&self) -> (u32, u64) {
        unpack(self.inner.quota.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn day(s: &str) -> u32 {
        parse_day(s).unwrap()
    }

    #[test]
    fn a_period_that_began_before_1970_starts_at_day_0() {
        // Subtracted below day 0: a panic in the admin thread (debug builds), a wrapped
        // day far in the future otherwise.
        assert_eq!(period_start(0, Period::Week, 0), 0);
        assert_eq!(period_start(2, Period::Week, 3), 0);
        assert_eq!(period_start(3, Period::Month, 5), 0);
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(day("1970-01-01"), 0);
        assert_eq!(day("2000-03-01"), 11_017);
        assert_eq!(format_day(day("2024-02-29")), "2024-02-29");
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(parse_day("2023-13-01"), None);
        assert_eq!(parse_day("2023-1-01"), None);
        for d in 0..80_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn day_periods() {
        assert_eq!(
            period_start(day("2024-05-17"), Period::Day, 0),
            day("2024-05-17")
        );
    }

    #[test]
    fn week_periods_start_on_monday_plus_offset() {
        // 2024-05-13 was a Monday.
        for d in ["2024-05-13", "2024-05-15", "2024-05-19"] {
            assert_eq!(
                period_start(day(d), Period::Week, 0),
                day("2024-05-13"),
                "{d}"
            );
        }
        assert_eq!(
            period_start(day("2024-05-20"), Period::Week, 0),
            day("2024-05-20")
        );
        // Offset 2: weeks start on Wednesday.
        assert_eq!(
            period_start(day("2024-05-14"), Period::Week, 2),
            day("2024-05-08")
        );
        assert_eq!(
            period_start(day("2024-05-15"), Period::Week, 2),
            day("2024-05-15")
        );
        assert_eq!(
            period_start(day("2024-05-21"), Period::Week, 2),
            day("2024-05-15")
        );
        // Offset 6: Sunday.
        assert_eq!(
            period_start(day("2024-05-19"), Period::Week, 6),
            day("2024-05-19")
        );
        assert_eq!(
            period_start(day("2024-05-18"), Period::Week, 6),
            day("2024-05-12")
        );
    }

    #[test]
    fn month_periods_start_on_day_one_plus_offset() {
        assert_eq!(
            period_start(day("2024-03-01"), Period::Month, 0),
            day("2024-03-01")
        );
        assert_eq!(
            period_start(day("2024-03-31"), Period::Month, 0),
            day("2024-03-01")
        );
        assert_eq!(
            period_start(day("2024-02-29"), Period::Month, 0),
            day("2024-02-01")
        );
        // Offset 4: from the 5th to the 4th of the next month.
        assert_eq!(
            period_start(day("2024-03-04"), Period::Month, 4),
            day("2024-02-05")
        );
        assert_eq!(
            period_start(day("2024-03-05"), Period::Month, 4),
            day("2024-03-05")
        );
        // Across a year end, and the largest offset in February.
        assert_eq!(
            period_start(day("2025-01-10"), Period::Month, 14),
            day("2024-12-15")
        );
        assert_eq!(
            period_start(day("2023-02-28"), Period::Month, 27),
            day("2023-02-28")
        );
        assert_eq!(
            period_start(day("2023-03-27"), Period::Month, 27),
            day("2023-02-28")
        );
    }

    #[test]
    fn quota_is_exact_across_threads_and_resets_with_the_period() {
        let cells = Arc::new(UsageCells::default());
        let admitted: u64 = (0..4)
            .map(|_| {
                let c = cells.clone();
                std::thread::spawn(move || {
                    (0..1000).filter(|_| c.quota_take(10, 1234)).count() as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 1234);
        assert!(cells.quota_exhausted(10, 1234));
        assert!(!cells.quota_take(10, 1234));
        // An older period on the clock of a late worker counts in the newer one.
        assert!(!cells.quota_take(9, 1234));
        // The next period starts from zero.
        assert!(!cells.quota_exhausted(11, 1234));
        assert!(cells.quota_take(11, 1234));
        assert_eq!(cells.quota_used(), (11, 1));
    }

    #[test]
    fn day_rollover_keeps_the_closed_day() {
        let c = UsageCells::restored(100, 5, 100, 5);
        c.count_day(100);
        c.count_day(100);
        assert_eq!(c.day_counts(), [(100, 7), (0, 0)]);
        c.count_day(101);
        assert_eq!(c.day_counts(), [(101, 1), (100, 7)]);
        c.count_day(100); // a late clock: counted today
        assert_eq!(c.day_counts()[0], (101, 2));
    }
}
