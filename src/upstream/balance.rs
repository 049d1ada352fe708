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

/// Chooses the index of the target to use. `in_flight[i]` is target i's in-flight count.
pub fn pick(balance: Balance, cursor: &mut usize, in_flight: &[u32], rng: &mut Rng) -> usize {
    let n = in_flight.len();
    if n <= 1 {
        return 0;
    }
    match balance {
        Balance::RoundRobin => {
            let i = *cursor % n;
            *cursor = cursor.wrapping_add(1);
            i
        }
        Balance::Random => (rng.next_u64() % n as u64) as usize,
        Balance::LeastConn => {
            // Start from a rotating offset so ties spread instead of piling on target 0.
            let start = *cursor % n;
            *cursor = cursor.wrapping_add(1);
            (0..n)
                .map(|k| (start + k) % n)
                .min_by_key(|&i| in_flight[i])
                .unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles() {
        let mut c = 0;
        let mut rng = Rng::new(1);
        let picks: Vec<_> = (0..6)
            .map(|_| pick(Balance::RoundRobin, &mut c, &[0, 0, 0], &mut rng))
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_conn_prefers_idle_target() {
        let mut c = 0;
        let mut rng = Rng::new(1);
        for _ in 0..5 {
            assert_eq!(pick(Balance::LeastConn, &mut c, &[3, 0, 2], &mut rng), 1);
        }
    }

    #[test]
    fn random_covers_all_targets() {
        let mut c = 0;
        let mut rng = Rng::new(42);
        let mut seen = [0u32; 3];
        for _ in 0..300 {
            seen[pick(Balance::Random, &mut c, &[0, 0, 0], &mut rng)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
