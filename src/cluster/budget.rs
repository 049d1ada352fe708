//! One shared limit as a node sees it: the tokens this node leased from Redis for the
//! current window, used by workers with one compare-and-swap, and the state of the
//! `local` fallback. No lock, no allocation; the side thread refills it.
//!
//! A rate limit is counted in Redis in fixed windows (`SharedLimit::rate`) of `limit`
//! tokens each; a quota in its period (keyed by the
//! period's first day) of `limit` requests. Redis hands out at most `limit` tokens per
//! window in total, and a node spends a leased token only inside the window it was
//! leased for, so a window never admits more than `limit` across the cluster.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::global::lease::now_ns;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rate,
    Quota,
}

#[derive(Debug)]
pub struct SharedLimit {
    /// Redis key stem: `rl:<label>` or `q:<plan>:<key>`.
    pub id: Arc<str>,
    pub kind: Kind,
    /// Tokens per window (rate) or per period (quota).
    pub limit: u64,
    /// Window length (rates only).
    pub window_ms: u64,
    /// Limits below the cluster's `exact_below` lease one token per request.
    pub exact: bool,
    /// (window << 32) | tokens this node holds for that window.
    budget: AtomicU64,
    /// Tokens the next lease asks for (set by the side thread from Redis's answers).
    chunk: AtomicU32,
    /// A refill is on its way: one at a time.
    pub(super) pending: AtomicBool,
    /// The last window Redis said was used up (+1; 0: none): refusals in it need no call.
    spent: AtomicU32,
    /// `local` fallback: GCRA theoretical arrival time (ns, `now_ns` clock).
    fallback_tat: AtomicU64,
    /// Quota requests admitted while Redis was away, added to Redis when it returns.
    pub(super) unsynced: AtomicU64,
    /// The period those unsynced admissions belong to.
    pub(super) unsynced_window: AtomicU32,
    /// (period << 32) | this node's count in it, for Redis's counter of that period
    /// before this limit leases from it (`set_seed`).
    seed: AtomicU64,
}

/// Some limit has a seed for Redis (`SharedLimit::set_seed`): the next sync sends it.
pub(crate) static SEEDS_PENDING: AtomicBool = AtomicBool::new(false);

fn pack(window: u32, tokens: u32) -> u64 {
    (u64::from(window) << 32) | u64::from(tokens)
}

fn unpack(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

/// Leases never ask for more than this: bounds what one node can strand in a window.
pub const MAX_CHUNK: u32 = 1000;

impl SharedLimit {
    /// A rate limit of `rate` tokens per second with `burst`; `exact_below` from the
    /// cluster config. The window is `burst ÷ rate` seconds, kept within 100 ms – 1 s,
    /// and holds `rate × window` tokens: a full window is the burst, and the most the
    /// cluster can admit beyond the rate, over any interval, is one window's tokens.
    pub fn rate(label: &str, rate: f64, burst: u64, exact_below: u64) -> SharedLimit {
        let (limit, window_ms) = rate_window(rate, burst);
        SharedLimit::new(
            format!("rl:{label}"),
            Kind::Rate,
            limit,
            window_ms,
            exact_below,
        )
    }

    /// A usage plan's throttle for one of its keys.
    pub fn plan_rate(plan: &str, key: &str, rate: f64, burst: u64, exact_below: u64) -> Self {
        let label = format!("k:{}:{}", id_part(plan), id_part(key));
        SharedLimit::rate(&label, rate, burst, exact_below)
    }

    pub fn quota(plan: &str, key: &str, limit: u64, exact_below: u64) -> SharedLimit {
        SharedLimit::new(
            format!("q:{}:{}", id_part(plan), id_part(key)),
            Kind::Quota,
            limit,
            0,
            exact_below,
        )
    }

    fn new(id: String, kind: Kind, limit: u64, window_ms: u64, exact_below: u64) -> Self {
        let exact = limit < exact_below;
        SharedLimit {
            id: id.into(),
            kind,
            limit,
            window_ms,
            exact,
            budget: AtomicU64::new(0),
            chunk: AtomicU32::new(initial_chunk(limit, exact)),
            pending: AtomicBool::new(false),
            spent: AtomicU32::new(0),
            fallback_tat: AtomicU64::new(0),
            unsynced: AtomicU64::new(0),
            unsynced_window: AtomicU32::new(0),
            seed: AtomicU64::new(0),
        }
    }

    /// The rate window containing `unix_ms`.
    #[inline]
    pub fn window(&self, unix_ms: u64) -> u32 {
        (unix_ms / self.window_ms.max(1)) as u32
    }

    /// Milliseconds until the window after `window` starts.
    pub fn ms_until_next(&self, window: u32, unix_ms: u64) -> u64 {
        ((u64::from(window) + 1) * self.window_ms).saturating_sub(unix_ms)
    }

    pub fn chunk(&self) -> u32 {
        if self.exact {
            1
        } else {
            self.chunk.load(Ordering::Relaxed).max(1)
        }
    }

    /// Adapts the next lease to what Redis says is left: a quarter of the remaining
    /// tokens split across the nodes, so near the limit leases shrink to one token and
    /// few tokens sit stranded on nodes that do not need them.
    pub fn adapt(&self, used: u64, nodes: u32) {
        let left = self.limit.saturating_sub(used);
        let share = left / (4 * u64::from(nodes.max(1)));
        let c = share.clamp(1, u64::from(initial_chunk(self.limit, self.exact)));
        self.chunk.store(c as u32, Ordering::Relaxed);
    }

    /// Takes one token leased for `window`. Returns the tokens left, or None when the
    /// node holds none for that window.
    #[inline]
    pub fn take(&self, window: u32) -> Option<u32> {
        let mut cur = self.budget.load(Ordering::Acquire);
        loop {
            let (w, t) = unpack(cur);
            if w != window || t == 0 {
                return None;
            }
            match self.budget.compare_exchange_weak(
                cur,
                pack(w, t - 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(t - 1),
                Err(a) => cur = a,
            }
        }
    }

    /// Adds leased tokens for `window`; tokens of an older window are dropped (they can
    /// no longer be spent), tokens for an older window than the one held are ignored.
    pub fn deposit(&self, window: u32, n: u32) {
        if n == 0 {
            return;
        }
        let mut cur = self.budget.load(Ordering::Acquire);
        loop {
            let (w, t) = unpack(cur);
            let next = match w.cmp(&window) {
                std::cmp::Ordering::Equal => pack(w, t.saturating_add(n)),
                std::cmp::Ordering::Less => pack(window, n),
                std::cmp::Ordering::Greater => return,
            };
            match self
                .budget
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(a) => cur = a,
            }
        }
    }

    /// Remembers that Redis has nothing left for `window`.
    pub fn set_spent(&self, window: u32) {
        self.spent
            .fetch_max(window.saturating_add(1), Ordering::AcqRel);
    }

    /// Whether Redis said `window` is used up (and this node holds nothing for it).
    #[inline]
    pub fn is_spent(&self, window: u32) -> bool {
        self.spent.load(Ordering::Acquire) == window.saturating_add(1)
    }

    /// Takes every token held for `window` (a stop gives them back to Redis).
    pub fn take_all(&self, window: u32) -> u32 {
        let (w, t) = unpack(self.budget.swap(pack(window, 0), Ordering::AcqRel));
        if w == window {
            t
        } else {
            0
        }
    }

    /// Takes over what `old` holds, whatever its window: a reload that changes only a
    /// quota's `limit` builds a new limit of the same period, and the tokens the old one
    /// leased are Redis's count already; left behind, they were counted as used and never
    /// spent, so the key was refused with quota left.
    pub fn take_over(&self, old: &SharedLimit) {
        let (w, t) = unpack(old.budget.swap(0, Ordering::AcqRel));
        self.deposit(w, t);
    }

    /// This node's count in quota period `window`, to add to Redis's counter of it before
    /// this limit leases: a reload that moves a quota to another period (or offset)
    /// counts under that period's counter in Redis, which lacks what the nodes admitted
    /// in its days under the old period; each node gives it its own count, as after Redis
    /// lost its data. Sent by the first lease or the next sync, whichever comes first.
    pub fn set_seed(&self, window: u32, count: u64) {
        if count > 0 {
            let count = count.min(u64::from(u32::MAX)) as u32;
            self.seed.store(pack(window, count), Ordering::Release);
            SEEDS_PENDING.store(true, Ordering::Release);
        }
    }

    /// The seed for `window`, taken (0: none, or one for another period).
    pub(super) fn take_seed(&self, window: u32) -> u64 {
        let (w, n) = unpack(self.seed.swap(0, Ordering::AcqRel));
        if w == window {
            u64::from(n)
        } else {
            0
        }
    }

    /// Tokens held for `window` (metrics, tests).
    pub fn held(&self, window: u32) -> u32 {
        let (w, t) = unpack(self.budget.load(Ordering::Acquire));
        if w == window {
            t
        } else {
            0
        }
    }

    /// `on_failure: local` for a rate: a GCRA bucket of `limit ÷ nodes` per window,
    /// with a burst of one window's share.
    pub fn fallback_rate(&self, nodes: u32) -> bool {
        let share = (self.limit as f64 / f64::from(nodes.max(1))).max(0.0);
        if share <= 0.0 {
            return false;
        }
        let interval = (self.window_ms as f64 * 1e6 / share) as u64;
        let tolerance = (share.ceil() as u64).saturating_mul(interval);
        let now = now_ns();
        let mut cur = self.fallback_tat.load(Ordering::Acquire);
        loop {
            let base = cur.max(now);
            let next = base + interval;
            if next > now + tolerance {
                return false;
            }
            match self.fallback_tat.compare_exchange_weak(
                cur,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(a) => cur = a,
            }
        }
    }

    /// Counts a quota request admitted without Redis; true when this was the first,
    /// so the caller queues the limit for reconciliation once.
    pub fn count_unsynced(&self, window: u32) -> bool {
        self.unsynced_window.store(window, Ordering::Release);
        self.unsynced.fetch_add(1, Ordering::AcqRel) == 0
    }
}

/// (tokens per window, window ms) of a rate limit (see [`SharedLimit::rate`]).
pub fn rate_window(rate: f64, burst: u64) -> (u64, u64) {
    if rate <= 0.0 {
        return (0, 1000);
    }
    let window_ms = (burst as f64 / rate * 1000.0).clamp(100.0, 1000.0);
    let tokens = rate * window_ms / 1000.0;
    if tokens < 1.0 {
        // Slower than one per window: one token per 1/rate seconds.
        return (1, (1000.0 / rate).ceil() as u64);
    }
    (tokens.floor() as u64, window_ms.round() as u64)
}

fn initial_chunk(limit: u64, exact: bool) -> u32 {
    if exact {
        1
    } else {
        (limit / 20).clamp(1, u64::from(MAX_CHUNK)) as u32
    }
}

/// A plan or key name as one part of a Redis key name. Both may hold ':', the separator:
/// plan `gold:x` with key `y` and plan `gold` with key `x:y` shared one quota counter
/// (and one throttle) across the cluster. ':' and '%' are escaped; names without them
/// stay as they are, and so do their counters.
fn id_part(name: &str) -> Cow<'_, str> {
    if name.contains([':', '%']) {
        Cow::Owned(name.replace('%', "%25").replace(':', "%3A"))
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_and_key_names_with_colons_have_counters_of_their_own() {
        let q = |p, k| SharedLimit::quota(p, k, 10, 50).id;
        assert_ne!(q("gold", "x:y"), q("gold:x", "y"));
        assert_ne!(q("gold", "x%3Ay"), q("gold", "x:y"));
        assert_eq!(
            &*q("gold", "alice"),
            "q:gold:alice",
            "plain names keep their counter"
        );
        let k = |p, k| SharedLimit::plan_rate(p, k, 5.0, 5, 50).id;
        assert_ne!(k("gold", "x:y"), k("gold:x", "y"));
        assert_eq!(&*k("gold", "alice"), "rl:k:gold:alice");
    }

    #[test]
    fn a_new_limit_takes_over_the_tokens_the_old_one_leased() {
        let old = SharedLimit::quota("p", "k", 1000, 0);
        old.deposit(20_500, 50);
        assert_eq!(old.take(20_500), Some(49));
        let new = SharedLimit::quota("p", "k", 1001, 0);
        new.take_over(&old);
        assert_eq!((new.held(20_500), old.held(20_500)), (49, 0));
        assert_eq!(old.take(20_500), None, "no token is spent twice");
    }

    #[test]
    fn tokens_belong_to_their_window() {
        let l = SharedLimit::rate("a", 200.0, 400, 50);
        assert_eq!(
            (l.limit, l.window_ms, l.exact, l.chunk()),
            (200, 1000, false, 10)
        );
        assert_eq!(l.take(5), None);
        l.deposit(5, 3);
        assert_eq!(l.take(5), Some(2));
        assert_eq!(l.take(6), None, "a later window cannot spend older tokens");
        l.deposit(4, 9);
        assert_eq!(l.held(5), 2, "a late lease for an old window is dropped");
        l.deposit(6, 1);
        assert_eq!((l.held(5), l.held(6)), (0, 1));
        l.adapt(190, 2);
        assert_eq!(l.chunk(), 1);
        l.adapt(0, 2);
        assert_eq!(l.chunk(), 10);
        let slow = SharedLimit::rate("b", 0.5, 1, 50);
        assert_eq!((slow.limit, slow.window_ms, slow.exact), (1, 2000, true));
        assert_eq!(
            rate_window(200.0, 100),
            (100, 500),
            "the burst is one window"
        );
        assert_eq!(rate_window(1000.0, 10), (100, 100), "at least 100 ms");
        assert_eq!(rate_window(5.0, 1), (1, 200));
        assert_eq!(rate_window(2.0, 0), (1, 500));
        let q = SharedLimit::quota("p", "k", 50, 50);
        assert!(!q.exact);
        assert!(SharedLimit::quota("p", "k", 49, 50).exact);
    }

    #[test]
    fn local_fallback_is_the_node_share() {
        let l = SharedLimit::rate("a", 100.0, 100, 50);
        let admitted = (0..1000).filter(|_| l.fallback_rate(4)).count();
        assert_eq!(admitted, 25, "a burst of one window's share of 100 ÷ 4");
    }
}
