//! Which quota period a keyed request counts in. The calendar arithmetic (months!) runs
//! when the day or the plan's period changes; in between, a request reads the second the
//! worker's tick keeps (no clock read; a request in a day's last tick may count in that
//! day rather than the next).

use std::cell::Cell;

use crate::config::model::{Period, Quota};
use crate::global::usage::period_start;

/// One worker's memo of the last (day, period, offset) → first day of the period. Most
/// traffic on a worker shares a plan or two, so one entry hits nearly always.
#[derive(Default)]
pub struct Periods {
    last: Cell<(u32, Option<Period>, u64, u32)>,
}

impl Periods {
    /// (today, first day of `quota`'s current period; today without a quota).
    #[inline]
    pub fn current(&self, quota: Option<&Quota>) -> (u32, u32) {
        let day = (crate::http1::encode::unix_secs() / 86_400) as u32;
        let Some(q) = quota else {
            return (day, day);
        };
        let (d, p, o, start) = self.last.get();
        if d == day && p == Some(q.period) && o == q.offset {
            return (day, start);
        }
        let start = period_start(day, q.period, q.offset);
        self.last.set((day, Some(q.period), q.offset, start));
        (day, start)
    }
}
