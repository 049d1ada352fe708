//! Metric cells written by one worker and read by the scraper (DESIGN.md §1). Each
//! worker owns a block of counters aligned to whole cache lines, so a worker's writes
//! never invalidate another worker's lines; a write is a relaxed load and store (no
//! locked instruction) because each cell has exactly one writer. Readers sum a cell
//! over the workers.

use std::sync::atomic::{AtomicU64, Ordering};

const PER_LINE: usize = 16; // 16 × 8 bytes = 128 bytes: two lines, the prefetch pair

#[repr(align(128))]
#[derive(Default)]
struct Line([AtomicU64; PER_LINE]);

/// `len` counters per worker, for `workers` workers.
pub struct Counters {
    blocks: Box<[Box<[Line]>]>,
    len: usize,
}

impl Counters {
    pub fn new(workers: usize, len: usize) -> Self {
        let lines = len.div_ceil(PER_LINE).max(1);
        let blocks = (0..workers.max(1))
            .map(|_| (0..lines).map(|_| Line::default()).collect())
            .collect();
        Counters { blocks, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn cell(&self, worker: usize, idx: usize) -> &AtomicU64 {
        &self.blocks[worker].as_ref()[idx / PER_LINE].0[idx % PER_LINE]
    }

    /// Adds one to a counter of `worker`. Only that worker may call this.
    #[inline]
    pub fn incr(&self, worker: usize, idx: usize) {
        let c = self.cell(worker, idx);
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// One counter summed over the workers (a moment's view; each cell is exact).
    pub fn sum(&self, idx: usize) -> u64 {
        (0..self.blocks.len())
            .map(|w| self.cell(w, idx).load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn workers_count_apart_and_sum() {
        let c = Arc::new(Counters::new(3, 40));
        let threads: Vec<_> = (0..3)
            .map(|w| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.incr(w, 37);
                    }
                    c.incr(w, w);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.sum(37), 30_000);
        assert_eq!((c.sum(0), c.sum(1), c.sum(2), c.sum(3)), (1, 1, 1, 0));
        assert_eq!(std::mem::align_of::<Line>(), 128);
    }
}
