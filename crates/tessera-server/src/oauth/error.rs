//! OAuth error answers (RFC 6749 §5.2, RFC 8628 §3.5): `{"error","error_description"}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, OwnBody};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    AuthorizationPending,
    SlowDown,
    AccessDenied,
    ExpiredToken,
    ServerError,
    TemporarilyUnavailable,
}

#[derive(Debug, Clone, Serialize)]
pub struct OAuthError {
    pub error: ErrorCode,
    pub error_description: String,
    /// Set for a 429: the seconds to wait, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: description.into(),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`: too many requests from one client address.
    pub fn too_many_requests(wait: u64) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(
                ErrorCode::SlowDown,
                format!("too many requests from this address; try again in {wait} seconds"),
            )
        }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "dependency unavailable");
                Self::new(ErrorCode::TemporarilyUnavailable, "try again shortly")
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::new(ErrorCode::ServerError, "internal server error")
            }
            other => Self::invalid_request(other.to_string()),
        }
    }
}

impl From<tessera_core::store::StoreError> for OAuthError {
    fn from(e: tessera_core::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.error {
            _ if self.retry_after.is_some() => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, Json(&self)).into_response();
        let h = response.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(wait) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        if self.error == ErrorCode::InvalidClient {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            );
        }
        response.extensions_mut().insert(OwnBody);
        response
    }
}
