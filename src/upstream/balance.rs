//! Picking a target within an upstream. State is per worker (no atomics): round robin
//! keeps its own cursor, least-conn counts this worker's in-flight requests per target.

use crate::config::model::Balance;

/// A small xorshift generator; each worker seeds its own.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Chooses the index of the target to use. `in_flight[i]` is target i's in-flight count;
/// `up(i)` is false for a target health checks hold down. Down targets are passed over
/// inside the policy, so the others share their traffic as the policy says (passing over
/// them after the pick sent all of a down target's share to the one after it, and with
/// least-conn, where the down target's idle count always won, nearly everything). When
/// every target is down, the policy picks among them all (a check can be wrong).
pub fn pick(
    balance: Balance,
    cursor: &mut usize,
    in_flight: &[u32],
    rng: &mut Rng,
    up: impl Fn(usize) -> bool,
) -> usize {
    let n = in_flight.len();
    if n <= 1 {
        return 0;
    }
    match balance {
        Balance::RoundRobin => {
            let first = *cursor % n;
            for _ in 0..n {
                let i = *cursor % n;
                *cursor = cursor.wrapping_add(1);
                if up(i) {
                    return i;
                }
            }
            // All down: plain round robin (the loop went round once).
            *cursor = cursor.wrapping_sub(n - 1);
            first
        }
        Balance::Random => {
            // Draws again rather than taking the next one up, which would give a target
            // after a down one twice the share.
            let mut i = 0;
            for _ in 0..2 * n {
                i = (rng.next_u64() % n as u64) as usize;
                if up(i) {
                    return i;
                }
            }
            (0..n).map(|k| (i + k) % n).find(|&j| up(j)).unwrap_or(i)
        }
        Balance::LeastConn => {
            // Start from a rotating offset so ties spread instead of piling on target 0.
            let start = *cursor % n;
            *cursor = cursor.wrapping_add(1);
            let order = (0..n).map(|k| (start + k) % n);
            order
                .clone()
                .filter(|&i| up(i))
                .min_by_key(|&i| in_flight[i])
                .or_else(|| order.min_by_key(|&i| in_flight[i]))
                .unwrap_or(0)
        }
    }
}

/// [`pick`] among the targets `up` passes, else among those `fallback` passes (else all),
/// moving the cursor once per pick: a second pick from where the first left it moved it
/// on twice, and with an even number of targets every other one was never chosen (all
/// held down by health checks: half the targets took all the traffic).
pub fn pick_preferring(
    balance: Balance,
    cursor: &mut usize,
    in_flight: &[u32],
    rng: &mut Rng,
    up: impl Fn(usize) -> bool,
    fallback: impl Fn(usize) -> bool,
) -> usize {
    let start = *cursor;
    let t = pick(balance, cursor, in_flight, rng, &up);
    if up(t) {
        return t;
    }
    *cursor = start;
    pick(balance, cursor, in_flight, rng, fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles() {
        let mut c = 0;
        let mut rng = Rng::new(1);
        let picks: Vec<_> = (0..6)
            .map(|_| pick(Balance::RoundRobin, &mut c, &[0, 0, 0], &mut rng, |_| true))
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_conn_prefers_idle_target() {
        let mut c = 0;
        let mut rng = Rng::new(1);
        for _ in 0..5 {
            assert_eq!(
                pick(Balance::LeastConn, &mut c, &[3, 0, 2], &mut rng, |_| true),
                1
            );
        }
    }

    #[test]
    fn random_covers_all_targets() {
        let mut c = 0;
        let mut rng = Rng::new(42);
        let mut seen = [0u32; 3];
        for _ in 0..300 {
            seen[pick(Balance::Random, &mut c, &[0, 0, 0], &mut rng, |_| true)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn down_targets_share_out_evenly() {
        let mut rng = Rng::new(7);
        let up = |i: usize| i != 0;
        for balance in [Balance::RoundRobin, Balance::Random] {
            let mut c = 0;
            let mut seen = [0u32; 3];
            for _ in 0..600 {
                seen[pick(balance, &mut c, &[0, 0, 0], &mut rng, up)] += 1;
            }
            assert_eq!(seen[0], 0, "{balance:?}: {seen:?}");
            assert!(seen[1].abs_diff(seen[2]) < 100, "{balance:?}: {seen:?}");
        }
        // The down target's idle count does not make it the least loaded one.
        let mut c = 0;
        assert_eq!(
            pick(Balance::LeastConn, &mut c, &[0, 5, 3], &mut rng, up),
            2
        );
        // Every target down: the policy still picks among them all.
        let mut c = 0;
        let none = |_| false;
        assert_eq!(
            pick(Balance::LeastConn, &mut c, &[4, 1, 3], &mut rng, none),
            1
        );
        let picks: Vec<_> = (0..4)
            .map(|_| pick(Balance::RoundRobin, &mut c, &[0, 0, 0], &mut rng, none))
            .collect();
        assert_eq!(picks, vec![1, 2, 0, 1]);
    }

    #[test]
    fn a_fallback_pick_moves_the_cursor_once() {
        let mut rng = Rng::new(3);
        let none = |_| false;
        for (balance, n) in [(Balance::RoundRobin, 4), (Balance::LeastConn, 2)] {
            let in_flight = vec![0; n];
            let mut c = 0;
            let picks: Vec<_> = (0..2 * n)
                .map(|_| pick_preferring(balance, &mut c, &in_flight, &mut rng, none, none))
                .collect();
            let all: Vec<_> = (0..n).chain(0..n).collect();
            assert_eq!(picks, all, "{balance:?}");
        }
        // Preferred when some pass, the fallback's when only it does.
        let mut c = 0;
        let t = pick_preferring(
            Balance::RoundRobin,
            &mut c,
            &[0; 4],
            &mut rng,
            |i| i == 2,
            none,
        );
        assert_eq!(t, 2);
        let t = pick_preferring(Balance::RoundRobin, &mut c, &[0; 4], &mut rng, none, |i| {
            i == 1
        });
        assert_eq!(t, 1);
    }
}
