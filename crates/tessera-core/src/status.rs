//! The live status of an API token: which of its values are accepted now.
//!
//! A signature and an unexpired `exp` prove a value was issued; this says whether it
//! still counts: not rotated away (beyond its grace window), not deleted.

use time::OffsetDateTime;

use crate::error::Rejection;
use crate::ids::{Jti, OrganizationId};
use crate::model::{ApiToken, TokenScope};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    pub organization_id: OrganizationId,
    pub scope: TokenScope,
    pub current_jti: Jti,
    pub previous_jti: Option<Jti>,
    pub previous_valid_until: Option<OffsetDateTime>,
    pub end_at: Option<OffsetDateTime>,
    pub deleted: bool,
    pub version: i64,
}

impl From<&ApiToken> for TokenStatus {
    fn from(t: &ApiToken) -> Self {
        Self {
            organization_id: t.organization_id,
            scope: t.scope,
            current_jti: t.current_jti,
            previous_jti: t.previous_jti,
            previous_valid_until: t.previous_valid_until,
            end_at: t.end_at,
            deleted: t.deleted_at.is_some(),
            version: t.version,
        }
    }
}

impl TokenStatus {
    /// Is the value with this `jti` accepted at `now`? (Its own `exp` is checked with
    /// the other claims; this checks what only the server knows.)
    pub fn check(&self, jti: Jti, now: OffsetDateTime) -> Result<(), Rejection> {
        if self.deleted {
            return Err(Rejection::Deleted);
        }
        if jti == self.current_jti {
            return Ok(());
        }
        match (self.previous_jti, self.previous_valid_until) {
            (Some(prev), Some(until)) if prev == jti && now < until => Ok(()),
            _ => Err(Rejection::Rotated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    fn status() -> TokenStatus {
        TokenStatus {
            organization_id: OrganizationId::new(),
            scope: TokenScope::Organization,
            current_jti: Jti::new(),
            previous_jti: None,
            previous_valid_until: None,
            end_at: None,
            deleted: false,
            version: 1,
        }
    }

    #[test]
    fn current_value_accepted_others_rejected() {
        let s = status();
        let now = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(s.check(s.current_jti, now), Ok(()));
        assert_eq!(s.check(Jti::new(), now), Err(Rejection::Rotated));
    }

    #[test]
    fn previous_value_accepted_only_inside_grace() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let old = Jti::new();
        let s = TokenStatus {
            previous_jti: Some(old),
            previous_valid_until: Some(now + Duration::seconds(60)),
            ..status()
        };
        assert_eq!(s.check(old, now + Duration::seconds(59)), Ok(()));
        assert_eq!(
            s.check(old, now + Duration::seconds(60)),
            Err(Rejection::Rotated)
        );
    }

    #[test]
    fn deleted_rejects_every_value() {
        let s = TokenStatus {
            deleted: true,
            ..status()
        };
        assert_eq!(
            s.check(s.current_jti, datetime!(2026-01-01 0:00 UTC)),
            Err(Rejection::Deleted)
        );
    }
}
