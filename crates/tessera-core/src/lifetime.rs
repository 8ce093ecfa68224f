//! Lifetimes of token values.

use time::{Duration, OffsetDateTime};

use crate::error::Error;

/// `tokenExpiryPeriodInDays` bounds (Astro's): 1 to 3650 days, or none.
pub const MIN_EXPIRY_DAYS: u32 = 1;
pub const MAX_EXPIRY_DAYS: u32 = 3650;
/// `gracePeriodSeconds` bounds on rotation: 0 to 24 hours.
pub const MAX_GRACE_SECONDS: u32 = 86_400;
/// Largest clock-skew leeway accepted for `exp`/`nbf`.
pub const MAX_LEEWAY_SECONDS: u32 = 60;

/// A validated expiry period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPeriod(Option<u32>);

impl ExpiryPeriod {
    pub const NEVER: Self = Self(None);

    pub fn days(days: Option<i64>) -> Result<Self, Error> {
        match days {
            None => Ok(Self(None)),
            Some(d) if (i64::from(MIN_EXPIRY_DAYS)..=i64::from(MAX_EXPIRY_DAYS)).contains(&d) => {
                Ok(Self(Some(d as u32)))
            }
            Some(d) => Err(Error::invalid(format!(
                "tokenExpiryPeriodInDays must be between {MIN_EXPIRY_DAYS} and {MAX_EXPIRY_DAYS} \
                 (or omitted for a token that never expires); got {d}"
            ))),
        }
    }

    pub fn as_days(self) -> Option<u32> {
        self.0
    }

    /// The end of a value issued at `start`.
    pub fn end_from(self, start: OffsetDateTime) -> Option<OffsetDateTime> {
        self.0.map(|d| start + Duration::days(i64::from(d)))
    }
}

/// A validated grace window for the previous value on rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePeriod(u32);

impl GracePeriod {
    pub fn seconds(secs: Option<i64>) -> Result<Self, Error> {
        match secs.unwrap_or(0) {
            s if (0..=i64::from(MAX_GRACE_SECONDS)).contains(&s) => Ok(Self(s as u32)),
            s => Err(Error::invalid(format!(
                "gracePeriodSeconds must be between 0 and {MAX_GRACE_SECONDS}; got {s}"
            ))),
        }
    }

    /// When the previous value stops working; `None` when it stops at once.
    pub fn until(self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        (self.0 > 0).then(|| now + Duration::seconds(i64::from(self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn expiry_bounds() {
        assert!(ExpiryPeriod::days(Some(0)).is_err());
        assert!(ExpiryPeriod::days(Some(3651)).is_err());
        assert!(ExpiryPeriod::days(Some(-1)).is_err());
        assert_eq!(ExpiryPeriod::days(Some(1)).unwrap().as_days(), Some(1));
        assert_eq!(
            ExpiryPeriod::days(Some(3650)).unwrap().as_days(),
            Some(3650)
        );
        assert_eq!(ExpiryPeriod::days(None).unwrap(), ExpiryPeriod::NEVER);
        let start = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            ExpiryPeriod::days(Some(30)).unwrap().end_from(start),
            Some(datetime!(2026-01-31 0:00 UTC))
        );
        assert_eq!(ExpiryPeriod::NEVER.end_from(start), None);
    }

    #[test]
    fn grace_bounds() {
        let now = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(GracePeriod::seconds(None).unwrap().until(now), None);
        assert_eq!(GracePeriod::seconds(Some(0)).unwrap().until(now), None);
        assert_eq!(
            GracePeriod::seconds(Some(60)).unwrap().until(now),
            Some(datetime!(2026-01-01 0:01 UTC))
        );
        assert!(GracePeriod::seconds(Some(86_401)).is_err());
        assert!(GracePeriod::seconds(Some(-5)).is_err());
    }
}
