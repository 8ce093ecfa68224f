//! Core errors. [`Rejection`] says why a presented token is not accepted; [`Error`] is what
//! a domain rule refuses. Both carry context; the server maps each variant to a status.

use time::OffsetDateTime;

/// Why a token was not accepted. The server answers 401 for every variant (503 for none:
/// outages are a store error, not a rejection), and logs the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("token is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token is signed with an unknown key")]
    UnknownKey,
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token claims are malformed")]
    MalformedClaims,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token expired at {}", rfc3339(*exp))]
    Expired {
        exp: OffsetDateTime,
        now: OffsetDateTime,
    },
    #[error("token is not valid before {}", rfc3339(*nbf))]
    NotYetValid {
        nbf: OffsetDateTime,
        now: OffsetDateTime,
    },
    #[error("token is missing the claim {0}")]
    MissingClaim(&'static str),
    #[error("token is neither an API token nor a session token")]
    AmbiguousKind,
    #[error("token has been rotated")]
    Rotated,
    #[error("token has been deleted")]
    Deleted,
    #[error("token is unknown")]
    UnknownToken,
    #[error("session has ended")]
    SessionEnded,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// A domain rule refused the request. The server maps these to 4xx answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
}
