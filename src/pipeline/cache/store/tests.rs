use std::time::Duration;

use super::*;

fn entry(now: Instant, body: usize, ttl: Duration) -> Entry {
    Entry {
        status: 200,
        head: Bytes::from_static(b"HTTP/1.1 200 OK\r\n"),
        body: Bytes::from(vec![b'x'; body]),
        stored: now,
        expires: now + ttl,
        initial_age: 0,
        tag: 7,
    }
}

fn key(k: u64) -> Rc<[u8]> {
    Rc::from(format!("key-{k:06}").into_bytes())
}

const HOUR: Duration = Duration::from_secs(3600);
/// key (10) + head (17) + body (73): every test entry of `entry(now, 73, ..)` is 100 bytes.
const BODY_100: usize = 73;

#[test]
fn stores_and_finds_until_expiry_or_a_new_tag() {
    let now = Instant::now();
    let mut s = Store::new(10_000);
    assert!(s.get(&key(1), 7, now, &[]).is_none());
    assert_eq!(
        s.insert(key(1), entry(now, BODY_100, Duration::from_secs(1)), now),
        Inserted::Stored { evicted: 0 }
    );
    assert_eq!(s.used(), 100);
    let e = s.get(&key(1), 7, now, &[]).expect("a hit");
    assert_eq!(e.body.len(), BODY_100);
    assert_eq!(e.age(now + Duration::from_millis(2500)), 2);
    assert!(
        s.get(&key(1), 8, now, &[]).is_none(),
        "another route config"
    );
    assert!(s.is_empty(), "a stale entry is dropped when found");
    s.insert(key(1), entry(now, BODY_100, Duration::from_secs(1)), now);
    assert!(s
        .get(&key(1), 7, now + Duration::from_secs(1), &[])
        .is_none());
    assert_eq!(s.used(), 0);
}

#[test]
fn an_entry_of_another_live_route_is_a_miss_that_stays() {
    let now = Instant::now();
    let mut s = Store::new(10_000);
    s.insert(key(1), entry(now, BODY_100, HOUR), now);
    // A HEAD route (tag 8) reads the key its GET route (tag 7) keeps entries under.
    for _ in 0..3 {
        assert!(s.get(&key(1), 8, now, &[7, 8]).is_none());
    }
    assert!(s.get(&key(1), 7, now, &[7, 8]).is_some(), "still there");
    // Once its route is gone or changed (7 is no longer live), it is dropped.
    assert!(s.get(&key(1), 8, now, &[8]).is_none());
    assert!(s.is_empty());
    // An expired one is dropped whoever finds it.
    s.insert(key(1), entry(now, BODY_100, Duration::from_secs(1)), now);
    assert!(s.get(&key(1), 8, now + HOUR, &[7, 8]).is_none());
    assert!(s.is_empty());
}

#[test]
fn age_saturates() {
    let now = Instant::now();
    let mut e = entry(now, 1, HOUR);
    e.initial_age = u64::MAX - 1;
    assert_eq!(e.age(now + Duration::from_secs(1)), u64::MAX);
    assert_eq!(e.age(now + Duration::from_secs(5)), u64::MAX, "not wrapped");
    // A clock that went backwards counts as no time.
    assert_eq!(e.age(now - Duration::from_secs(1)), u64::MAX - 1);
}

#[test]
fn lru_order_without_admission() {
    let now = Instant::now();
    let mut s = Store::new(300).without_admission();
    for k in 0..3 {
        s.insert(key(k), entry(now, BODY_100, HOUR), now);
    }
    assert!(s.get(&key(0), 7, now, &[]).is_some()); // 0 is now the most recent; 1 the oldest
    assert_eq!(
        s.insert(key(3), entry(now, BODY_100, HOUR), now),
        Inserted::Stored { evicted: 1 }
    );
    assert!(s.get(&key(1), 7, now, &[]).is_none());
    for k in [0, 2, 3] {
        assert!(s.get(&key(k), 7, now, &[]).is_some(), "{k}");
    }
    assert_eq!(s.used(), 300);
}

#[test]
fn a_one_off_key_does_not_push_out_a_popular_one() {
    let now = Instant::now();
    let mut s = Store::new(200);
    for k in 0..2 {
        s.get(&key(k), 7, now, &[]);
        s.insert(key(k), entry(now, BODY_100, HOUR), now);
        for _ in 0..5 {
            assert!(s.get(&key(k), 7, now, &[]).is_some());
        }
    }
    s.get(&key(9), 7, now, &[]);
    assert_eq!(
        s.insert(key(9), entry(now, BODY_100, HOUR), now),
        Inserted::NotAdmitted
    );
    assert_eq!(s.len(), 2);
    // Once asked for more often than the least recent entry, it gets in.
    for _ in 0..10 {
        s.get(&key(9), 7, now, &[]);
    }
    assert_eq!(
        s.insert(key(9), entry(now, BODY_100, HOUR), now),
        Inserted::Stored { evicted: 1 }
    );
}

#[test]
fn expired_entries_make_room_whatever_their_popularity() {
    let now = Instant::now();
    let mut s = Store::new(100);
    s.insert(key(1), entry(now, BODY_100, Duration::from_secs(1)), now);
    for _ in 0..10 {
        s.get(&key(1), 7, now, &[]);
    }
    let later = now + Duration::from_secs(2);
    assert_eq!(
        s.insert(key(2), entry(later, BODY_100, HOUR), later),
        Inserted::Stored { evicted: 0 },
        "an expired victim is not an eviction"
    );
}

#[test]
fn too_large_and_replacing() {
    let now = Instant::now();
    let mut s = Store::new(150);
    assert_eq!(
        s.insert(key(1), entry(now, 200, HOUR), now),
        Inserted::TooLarge
    );
    s.insert(key(1), entry(now, BODY_100, HOUR), now);
    s.insert(key(1), entry(now, BODY_100 + 20, HOUR), now);
    assert_eq!((s.len(), s.used()), (1, 120));
    s.clear();
    assert_eq!((s.len(), s.used()), (0, 0));
}

#[test]
fn shrinking_the_budget_evicts_the_oldest() {
    let now = Instant::now();
    let mut s = Store::new(1000);
    for k in 0..10 {
        s.insert(key(k), entry(now, BODY_100, HOUR), now);
    }
    assert_eq!(s.set_budget(450), 6);
    assert_eq!(s.used(), 400);
    assert!(s.get(&key(9), 7, now, &[]).is_some());
    assert!(s.get(&key(5), 7, now, &[]).is_none());
}

/// xorshift64*: deterministic, so the figures below do not move between runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn the_byte_bound_holds_under_churn() {
    let now = Instant::now();
    let budget = 64 * 1024;
    for admission in [true, false] {
        let mut s = Store::new(budget);
        if !admission {
            s = s.without_admission();
        }
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let k = rng.next() % 2_000;
            let t = now + Duration::from_millis(rng.next() % 5_000);
            if s.get(&key(k), 7, t, &[]).is_none() {
                let size = (rng.next() % 8_000) as usize;
                let ttl = Duration::from_millis(rng.next() % 3_000);
                s.insert(key(k), entry(t, size, ttl), t);
            }
            assert!(s.used() <= budget, "{} over {budget}", s.used());
            let listed: usize = s.slots.iter().flatten().map(|x| x.size).sum();
            assert_eq!(listed, s.used(), "the count matches the entries");
            assert_eq!(s.map.len(), s.slots.iter().flatten().count());
        }
    }
}

/// Hit ratio of the store on a Zipf(s) distribution over `keys` keys, with room for
/// `fit` equal-sized entries.
fn zipf_hit_ratio(admission: bool, s_exp: f64, keys: usize, fit: usize) -> f64 {
    let weights: Vec<f64> = (1..=keys).map(|r| 1.0 / (r as f64).powf(s_exp)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(keys);
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    let now = Instant::now();
    let mut store = Store::new(fit * 100);
    if !admission {
        store = store.without_admission();
    }
    let mut rng = Rng(7);
    // Ranks are scattered over the key space so that popularity and key order differ.
    let scatter = |r: usize| (r as u64).wrapping_mul(0x9E37_79B9) % 1_000_003;
    let (mut hits, accesses) = (0usize, 200_000usize);
    for _ in 0..accesses {
        let u = rng.unit();
        let rank = cdf.partition_point(|&c| c < u).min(keys - 1);
        let k = key(scatter(rank));
        if store.get(&k, 7, now, &[]).is_some() {
            hits += 1;
        } else {
            store.insert(k, entry(now, BODY_100, HOUR), now);
        }
    }
    hits as f64 / accesses as f64
}

#[test]
fn tinylfu_beats_lru_on_zipf() {
    // Measured (200,000 accesses, Zipf over 20,000 keys, room for 500 of them):
    //   s = 0.8: LRU 0.262, TinyLFU 0.319;  s = 1.0: LRU 0.534, TinyLFU 0.591
    // (keeping exactly the 500 most popular keys would give 0.648 at s = 1.0).
    for (s_exp, margin) in [(0.8, 0.04), (1.0, 0.04)] {
        let lru = zipf_hit_ratio(false, s_exp, 20_000, 500);
        let tiny = zipf_hit_ratio(true, s_exp, 20_000, 500);
        eprintln!("zipf s={s_exp}: LRU {lru:.3}, TinyLFU {tiny:.3}");
        assert!(
            tiny >= lru + margin,
            "s={s_exp}: LRU {lru:.3}, TinyLFU {tiny:.3}"
        );
    }
}
