//! Back-off for failed sign-ins, per key (an account, a client address). Pure: the
//! caller passes the time.

use std::collections::HashMap;

use time::{Duration, OffsetDateTime};

/// Failures allowed before back-off starts.
pub const FREE_FAILURES: u32 = 5;
/// Keys remembered at most (each a few dozen bytes).
pub const MAX_ENTRIES: usize = 100_000;
/// The longest wait.
pub const MAX_LOCKOUT: Duration = Duration::minutes(15);

#[derive(Debug, Default)]
pub struct Throttle {
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Option<OffsetDateTime>,
    last_failure: OffsetDateTime,
}

impl Throttle {
    /// `Err(seconds to wait)` while `key` is locked out.
    pub fn check(&self, key: &str, now: OffsetDateTime) -> Result<(), u64> {
        match self.entries.get(key).and_then(|e| e.locked_until) {
            Some(until) if now < until => Err((until - now).whole_seconds().max(1) as u64),
            _ => Ok(()),
        }
    }

    /// Records a failure; after [`FREE_FAILURES`] each one doubles the wait (1 s, 2 s,
    /// 4 s, ... up to [`MAX_LOCKOUT`]).
    pub fn fail(&mut self, key: &str, now: OffsetDateTime) {
        let e = self.entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            locked_until: None,
            last_failure: now,
        });
        // A day without failures forgives the past.
        if now - e.last_failure > Duration::days(1) {
            e.failures = 0;
        }
        e.failures += 1;
        e.last_failure = now;
        if e.failures >= FREE_FAILURES {
            let exp = (e.failures - FREE_FAILURES).min(20);
            let wait = Duration::seconds(1_i64 << exp).min(MAX_LOCKOUT);
            e.locked_until = Some(now + wait);
        }
    }

    pub fn succeed(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Takes back one counted failure (an attempt counted ahead that succeeded).
    pub fn forgive(&mut self, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.failures = e.failures.saturating_sub(1);
            if e.failures < FREE_FAILURES {
                e.locked_until = None;
            }
        }
    }

    /// Bounds memory: past [`MAX_ENTRIES`], entries idle for an hour go, then (under a
    /// flood of distinct keys) the oldest half.
    pub fn prune(&mut self, now: OffsetDateTime) {
        if self.entries.len() <= MAX_ENTRIES {
            return;
        }
        self.entries
            .retain(|_, e| now - e.last_failure <= Duration::hours(1));
        if self.entries.len() > MAX_ENTRIES {
            let mut ages: Vec<OffsetDateTime> =
                self.entries.values().map(|e| e.last_failure).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() - MAX_ENTRIES / 2];
            self.entries.retain(|_, e| e.last_failure >= cutoff);
        }
    }
}

/// At most a given number of events per key in each `window` (fixed windows): for
/// unauthenticated requests that write, such as starting a device sign-in. Pure: the
/// caller passes the time.
#[derive(Debug)]
pub struct RateLimit {
    window: Duration,
    entries: HashMap<String, (OffsetDateTime, u32)>,
}

impl RateLimit {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            entries: HashMap::new(),
        }
    }

    /// Counts an event for `key`, or `Err(seconds until the window ends)` past `limit`
    /// events in the window (not counted).
    pub fn hit(&mut self, key: &str, limit: u32, now: OffsetDateTime) -> Result<(), u64> {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(key) {
            self.prune(now);
        }
        let (start, count) = self.entries.entry(key.to_owned()).or_insert((now, 0));
        if now - *start >= self.window {
            (*start, *count) = (now, 0);
        }
        if *count >= limit {
            return Err((*start + self.window - now).whole_seconds().max(1) as u64);
        }
        *count += 1;
        Ok(())
    }

    /// Bounds memory: ended windows go, then (under a flood of distinct keys within one
    /// window) the older half; the keys counting most recently stay counted.
    fn prune(&mut self, now: OffsetDateTime) {
        let window = self.window;
        self.entries.retain(|_, (start, _)| now - *start < window);
        if self.entries.len() >= MAX_ENTRIES {
            let mut starts: Vec<OffsetDateTime> = self.entries.values().map(|e| e.0).collect();
            starts.sort_unstable();
            let cutoff = starts[starts.len() - MAX_ENTRIES / 2];
            self.entries.retain(|_, (start, _)| *start >= cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn backs_off_exponentially_after_five_failures() {
        let mut t = Throttle::default();
        let now = datetime!(2026-01-01 0:00 UTC);
        for _ in 0..4 {
            t.fail("a", now);
            assert!(t.check("a", now).is_ok());
        }
        t.fail("a", now);
        assert_eq!(t.check("a", now), Err(1));
        t.fail("a", now);
        assert_eq!(t.check("a", now), Err(2));
        t.fail("a", now);
        assert_eq!(t.check("a", now), Err(4));
        assert!(t.check("a", now + Duration::seconds(4)).is_ok());
        assert!(t.check("b", now).is_ok(), "keys are separate");
        for _ in 0..30 {
            t.fail("a", now);
        }
        assert_eq!(t.check("a", now), Err(900));
        t.succeed("a");
        assert!(t.check("a", now).is_ok());
    }

    #[test]
    fn rate_limit_counts_per_key_and_window() {
        let mut r = RateLimit::new(Duration::minutes(10));
        let now = datetime!(2026-01-01 0:00 UTC);
        for _ in 0..3 {
            assert!(r.hit("a", 3, now).is_ok());
        }
        assert_eq!(r.hit("a", 3, now + Duration::minutes(4)), Err(360));
        assert!(r.hit("b", 3, now).is_ok(), "keys are separate");
        assert!(
            r.hit("a", 3, now + Duration::minutes(10)).is_ok(),
            "a new window"
        );
        // A flood of distinct keys: memory stays bounded, and the keys counting most
        // recently keep their counts.
        let later = now + Duration::minutes(20);
        for i in 0..MAX_ENTRIES + 10 {
            let at = later + Duration::milliseconds(i as i64);
            let _ = r.hit(&format!("k{i}"), 1, at);
        }
        assert!(r.entries.len() <= MAX_ENTRIES);
        let last = format!("k{}", MAX_ENTRIES + 9);
        assert!(
            r.hit(&last, 1, later + Duration::seconds(200)).is_err(),
            "still counted"
        );
    }
}
