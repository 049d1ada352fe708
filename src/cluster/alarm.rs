//! What a node says about its Redis in the log. An operator must learn from the log alone
//! that a node is cut off from Redis and why (refused, wrong password, NOAUTH, garbage on
//! the port), yet a dead Redis fails every 200 ms and a flapping one opens the breaker
//! as often: so one warning naming the cause when Redis cannot be reached at start and
//! when the breaker opens, at most one per [`WARN_EVERY_MS`] (the next says how many
//! openings went unsaid), a reminder every [`REMIND_EVERY_MS`] while it stays away, and
//! each single failure at debug only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// At most one warning about Redis per this many ms.
pub const WARN_EVERY_MS: u64 = 10_000;
/// While Redis stays unreachable, a reminder this often.
pub const REMIND_EVERY_MS: u64 = 60_000;
/// A cause is an error's text; a parse error quotes what Redis sent, so it is cut.
const CAUSE_MAX: usize = 200;

/// What to log about a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Say {
    Nothing,
    /// The breaker opened (or Redis was never reached): `quiet` openings since the last
    /// warning were not logged.
    Warn {
        quiet: u64,
    },
    /// Still unreachable, for this many ms.
    Remind {
        down_ms: u64,
    },
}

/// The decisions, kept apart from the logging so they can be tested with a clock.
#[derive(Debug, Default)]
pub struct Alarm {
    /// Unix ms of the last warning (0: none yet).
    last_warn: AtomicU64,
    /// Openings not logged since the last warning.
    quiet: AtomicU64,
    /// Unix ms the current outage began (0: Redis answers).
    down_since: AtomicU64,
    /// Whether the current outage has been warned about.
    warned: AtomicBool,
    /// Why Redis is unreachable, as last seen (for `/health`); None while it answers.
    pub cause: arc_swap::ArcSwapOption<String>,
}

impl Alarm {
    /// The breaker just opened (called once per opening, by whoever opened it).
    pub fn opened(&self, now: u64) -> Say {
        self.down_since.store(now.max(1), Ordering::Relaxed);
        self.warned.store(false, Ordering::Relaxed);
        let say = self.warn_if_due(now);
        if say == Say::Nothing {
            self.quiet.fetch_add(1, Ordering::Relaxed);
        }
        say
    }

    /// A failure while the breaker was already open (the side thread's tries): the
    /// first outage (the breaker starts open) and one whose opening was kept quiet are
    /// warned about once due; a long one is reminded of.
    pub fn still_down(&self, now: u64) -> Say {
        let since = match self.down_since.load(Ordering::Relaxed) {
            0 => {
                self.down_since.store(now.max(1), Ordering::Relaxed);
                now
            }
            s => s,
        };
        if !self.warned.load(Ordering::Relaxed) {
            return self.warn_if_due(now);
        }
        let last = self.last_warn.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= REMIND_EVERY_MS
            && self
                .last_warn
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Say::Remind {
                down_ms: now.saturating_sub(since),
            };
        }
        Say::Nothing
    }

    /// The breaker closed; true when the outage was warned about (so its end is worth an
    /// info line too; a quiet one ends quietly).
    pub fn closed(&self) -> bool {
        self.down_since.store(0, Ordering::Relaxed);
        self.warned.swap(false, Ordering::Relaxed)
    }

    fn warn_if_due(&self, now: u64) -> Say {
        let last = self.last_warn.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY_MS;
        if due
            && self
                .last_warn
                .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.warned.store(true, Ordering::Relaxed);
            return Say::Warn {
                quiet: self.quiet.swap(0, Ordering::Relaxed),
            };
        }
        Say::Nothing
    }
}

/// An error's text on one line, at most [`CAUSE_MAX`] bytes (a parse error quotes the
/// bytes it choked on, over several lines).
pub fn cause(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len().min(CAUSE_MAX));
    for word in text.split_whitespace() {
        if out.len() + word.len() + 1 > CAUSE_MAX {
            out.push_str(" …");
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The Redis address for a log line: a password in it is replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The last '@' anywhere: a password may hold an unencoded '/' (an address check
    // refuses, but this may log it), and hiding too much is harmless.
    match rest.rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_never_reached_is_warned_about_once_then_reminded_of() {
        let a = Alarm::default();
        assert_eq!(a.still_down(1_000), Say::Warn { quiet: 0 });
        for t in (1_200..61_000).step_by(200) {
            assert_eq!(a.still_down(t), Say::Nothing, "at {t}");
        }
        assert_eq!(a.still_down(61_000), Say::Remind { down_ms: 60_000 });
        assert_eq!(a.still_down(61_200), Say::Nothing);
        assert!(a.closed());
    }

    #[test]
    fn a_flapping_redis_gives_one_warning_per_window_counting_the_quiet_openings() {
        let a = Alarm::default();
        assert_eq!(a.opened(1_000), Say::Warn { quiet: 0 });
        assert!(a.closed());
        for t in [2_000, 3_000, 4_000] {
            assert_eq!(a.opened(t), Say::Nothing);
            // The side thread's next failures do not warn within the window either.
            assert_eq!(a.still_down(t + 200), Say::Nothing);
            assert!(!a.closed(), "a quiet outage ends quietly");
        }
        assert_eq!(a.opened(11_000), Say::Warn { quiet: 3 });
    }

    #[test]
    fn an_opening_kept_quiet_is_warned_about_once_the_window_passes_if_it_lasts() {
        let a = Alarm::default();
        assert_eq!(a.opened(1_000), Say::Warn { quiet: 0 });
        a.closed();
        assert_eq!(a.opened(2_000), Say::Nothing);
        assert_eq!(a.still_down(5_000), Say::Nothing);
        assert_eq!(a.still_down(11_000), Say::Warn { quiet: 1 });
        assert_eq!(a.still_down(11_200), Say::Nothing);
    }

    #[test]
    fn causes_are_one_short_line_and_passwords_stay_out_of_the_log() {
        let long = format!("parse error\n  Unexpected `72`\n{}", "x ".repeat(300));
        let c = cause(&long);
        assert!(!c.contains('\n') && c.len() <= CAUSE_MAX + 4, "{c}");
        assert!(c.starts_with("parse error Unexpected `72`"), "{c}");
        assert_eq!(redacted("redis://:pw@h:6379/2"), "redis://:***@h:6379/2");
        assert_eq!(redacted("redis://u:pw@h:6379"), "redis://u:***@h:6379");
        assert_eq!(redacted("redis://h:6379/2"), "redis://h:6379/2");
        assert_eq!(redacted("redis://:p/w@h:6379"), "redis://:***@h:6379");
    }
}
