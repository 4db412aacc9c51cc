//! Token buckets, refilled at a configured rate: one per API key for its
//! requests (off unless configured), and one per client address for its
//! failed authentications (on by default). The buckets live in this
//! instance's memory: with several instances, each allows the full rate.
//!
//! Not governor's keyed limiter, though it is faster (benches/plumbing,
//! this machine: 49.3 against 69.2 ns a check on one thread, 62.4 against
//! 98.7 ns on two; either is about a thousandth of a request): it has no
//! check that takes nothing ([`RateLimiter::peek`], which refuses a client
//! that failed too often before its token is looked up, without counting a
//! success), whole-number bursts only, and a key store that grows until
//! swept (`retain_recent`), with no bound of its own. Its differential
//! test: `governor_allows_and_refuses_the_same_requests`.

use crate::config::RateLimit;
use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The most buckets a limiter keeps. Beyond, the buckets that have refilled
/// (and so carry no state) are dropped; if all are in use, the oldest
/// half, so a flood of new keys or addresses cannot take the memory.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug)]
pub struct RateLimiter<K = i64> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// Failed authentications are counted per client address: an IPv4
/// address, or the /64 network of an IPv6 one (what one host is usually
/// given).
pub type AuthFailureLimiter = RateLimiter<IpAddr>;

/// The bucket of a client address.
pub fn client_bucket(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
        v4 => v4,
    }
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for the key; when there is none, how long until there is.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        self.check_at(key, Instant::now(), true)
    }

    /// Whether the key has a token, without taking it; when it has none, how
    /// long until it has.
    pub fn peek(&self, key: K) -> Result<(), Duration> {
        self.check_at(key, Instant::now(), false)
    }

    fn check_at(&self, key: K, now: Instant, take: bool) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&key) {
            if !take {
                // No bucket is a full one.
                return Ok(());
            }
            if buckets.len() >= MAX_BUCKETS {
                self.prune(&mut buckets, now);
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.limit.burst,
            refilled_at: now,
        });
        bucket.refill(&self.limit, now);
        if bucket.tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(missing / self.limit.per_second))
        }
    }

    fn prune(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| {
            bucket.refill(&self.limit, now);
            bucket.tokens < self.limit.burst
        });
        if buckets.len() >= MAX_BUCKETS {
            let mut ages: Vec<Instant> = buckets.values().map(|b| b.refilled_at).collect();
            let (_, median, _) = ages.select_nth_unstable(buckets.len() / 2);
            let median = *median;
            buckets.retain(|_, bucket| bucket.refilled_at > median);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

impl Bucket {
    fn refill(&mut self, limit: &RateLimit, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst);
        self.refilled_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(1, start, true).is_ok());
        }
        // Peeking takes nothing, and sees the empty bucket.
        assert!(limiter.check_at(1, start, false).is_err());
        let wait = limiter.check_at(1, start, true).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Another key has its own bucket.
        assert!(limiter.check_at(2, start, true).is_ok());
        // Half a second later, one more token.
        let later = start + Duration::from_millis(500);
        assert!(limiter.check_at(1, later, false).is_ok());
        assert!(limiter.check_at(1, later, true).is_ok());
        assert!(limiter.check_at(1, later, true).is_err());
        // Never more than the burst, however long the pause.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.check_at(1, much_later, true).is_ok());
        }
        assert!(limiter.check_at(1, much_later, true).is_err());
    }

    #[test]
    fn buckets_are_bounded() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 1.0,
            burst: 2.0,
        });
        let start = Instant::now();
        for key in 0..(MAX_BUCKETS as i64 + 10) {
            let _ = limiter.check_at(key, start, true);
        }
        assert!(limiter.len() <= MAX_BUCKETS, "{}", limiter.len());
        // Peeking at unknown keys keeps nothing.
        let limiter = RateLimiter::<i64>::new(RateLimit {
            per_second: 1.0,
            burst: 2.0,
        });
        for key in 0..1000 {
            assert!(limiter.check_at(key, start, false).is_ok());
        }
        assert_eq!(limiter.len(), 0);
    }

    /// The same requests at the same moments, through governor's GCRA on a
    /// fake clock: the same answers, and the same waits.
    #[test]
    fn governor_allows_and_refuses_the_same_requests() {
        use governor::clock::FakeRelativeClock;
        use std::num::NonZeroU32;
        for (per_second, burst) in [(2u32, 3u32), (1, 1), (10, 50), (5, 1)] {
            let ours = RateLimiter::new(RateLimit {
                per_second: per_second.into(),
                burst: burst.into(),
            });
            let clock = FakeRelativeClock::default();
            let quota = governor::Quota::per_second(NonZeroU32::new(per_second).unwrap())
                .allow_burst(NonZeroU32::new(burst).unwrap());
            let theirs = governor::RateLimiter::dashmap_with_clock(quota, clock.clone());
            let start = Instant::now();
            let mut elapsed = Duration::ZERO;
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(per_second * 31 + burst);
            for _ in 0..2000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Steps of 0 to 300 ms, in whole milliseconds.
                let step = Duration::from_millis(state % 301);
                elapsed += step;
                clock.advance(step);
                let key = (state >> 20) % 3;
                let our_answer = ours.check_at(key, start + elapsed, true);
                let their_answer = theirs.check_key(&key).map(|_| ()).map_err(|not_until| {
                    not_until.wait_time_from(governor::clock::Clock::now(&clock))
                });
                match (our_answer, their_answer) {
                    (Ok(()), Ok(())) => {}
                    (Err(ours), Err(theirs)) => {
                        let diff = ours.as_secs_f64() - theirs.as_secs_f64();
                        assert!(diff.abs() < 1e-6, "{ours:?} against {theirs:?}");
                    }
                    (ours, theirs) => panic!(
                        "{per_second}/s, burst {burst}, at {elapsed:?}: {ours:?} against {theirs:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_bucket(a), client_bucket(b));
        assert_ne!(client_bucket(a), client_bucket(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            client_bucket(mapped),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }
}
