//! Which quota period a keyed request counts in. The calendar arithmetic (months!) runs
//! once per plan per day per worker; in between, a request costs one clock read.

use std::cell::{Cell, RefCell};

use crate::config::traffic::PlanRt;
use crate::global::usage::{period_start, today};

pub struct Periods {
    day: Cell<u32>,
    /// Indexed by plan: first day of its current quota period.
    starts: RefCell<Vec<u32>>,
}

impl Periods {
    pub fn new(plans: &[PlanRt]) -> Self {
        let p = Periods {
            day: Cell::new(0),
            starts: RefCell::new(vec![0; plans.len()]),
        };
        p.refresh(plans, today());
        p
    }

    fn refresh(&self, plans: &[PlanRt], day: u32) {
        let mut starts = self.starts.borrow_mut();
        for (s, plan) in starts.iter_mut().zip(plans) {
            *s = plan
                .quota
                .as_ref()
                .map_or(day, |q| period_start(day, q.period, q.offset));
        }
        self.day.set(day);
    }

    /// (today, first day of `plan`'s current period).
    #[inline]
    pub fn current(&self, plans: &[PlanRt], plan: u32) -> (u32, u32) {
        let day = today();
        if day != self.day.get() {
            self.refresh(plans, day);
        }
        (day, self.starts.borrow()[plan as usize])
    }
}
