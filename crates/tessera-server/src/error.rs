//! One mapping from every error to an HTTP answer. Bodies are
//! `{"message","requestId","statusCode"}` and never carry internal error text: the cause
//! is logged, inside the request's span (which holds the request id).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_api::ErrorBody;
use tessera_core::Rejection;
use tessera_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No credentials at all (RFC 6750 §3.1: no error code in the challenge).
    #[error("{0}")]
    MissingCredentials(String),
    /// Credentials given but not accepted.
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The database (or another dependency) is down: fail closed.
    #[error("service unavailable")]
    Unavailable(String),
    #[error("internal server error")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::MissingCredentials(_) | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Invalid(m) => Self::BadRequest(m),
            StoreError::Corrupt(m) => Self::Internal(format!("corrupt row: {m}")),
        }
    }
}

impl From<tessera_core::Error> for ApiError {
    fn from(e: tessera_core::Error) -> Self {
        match e {
            tessera_core::Error::Invalid(m) => Self::BadRequest(m),
            tessera_core::Error::NotFound(what) => Self::not_found(what),
            tessera_core::Error::Conflict(m) => Self::Conflict(m),
            tessera_core::Error::Forbidden(m) => Self::Forbidden(m),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        Self::InvalidToken(r.to_string())
    }
}

/// Marks an error answer whose body is already right (OAuth errors per RFC 6749 §5.2,
/// HTML pages): [`error_bodies`] leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct OwnBody;

/// Carried from [`ApiError::into_response`] to [`error_bodies`], which adds the request id.
#[derive(Debug, Clone)]
struct ErrorMessage(String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Unavailable(cause) => {
                tracing::error!(%cause, "dependency unavailable");
                "service unavailable: try again shortly".to_owned()
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = status.into_response();
        match &self {
            Self::MissingCredentials(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tessera\""),
                );
            }
            Self::InvalidToken(description) => {
                let value = format!(
                    "Bearer realm=\"tessera\", error=\"invalid_token\", error_description=\"{}\"",
                    description.replace(['"', '\\'], "'")
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Self::Forbidden(_) => {
                // RFC 6750 §3.1: the token is fine but not enough.
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"tessera\", error=\"insufficient_scope\"",
                    ),
                );
            }
            Self::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response.extensions_mut().insert(ErrorMessage(message));
        response
    }
}

/// Gives every error answer the JSON error body with the request id, whatever produced
/// it: our handlers, axum's extractors (bad JSON, wrong content type, body too large),
/// the router (404, 405) or a caught panic. Under `/ui` the answer is a page instead.
pub async fn error_bodies(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ui = crate::ui::is_ui_path(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<OwnBody>().is_some()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let message = match parts.extensions.remove::<ErrorMessage>() {
        Some(ErrorMessage(m)) => m,
        None if status.is_server_error() => "internal server error".to_owned(),
        None => {
            // A rejection from axum: its text says what is wrong with the request.
            let bytes = axum::body::to_bytes(body, 16 * 1024)
                .await
                .unwrap_or_default();
            let text = tidy_rejection(String::from_utf8_lossy(&bytes).trim());
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text
            }
        }
    };
    if ui {
        // The page keeps what the answer said besides its body: `Allow` of a 405, and
        // the cookies of a refresh made before the request was refused.
        let signed_in = parts.extensions.remove::<crate::ui::Ui>();
        let mut page = crate::ui::error_status_page(status, &message, signed_in.as_ref());
        for (name, value) in &parts.headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                page.headers_mut().append(name, value.clone());
            }
        }
        return page;
    }
    let body = ErrorBody {
        message,
        request_id,
        status_code: status.as_u16(),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let json = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, Body::from(json))
}

/// axum's rejection texts name its internals ("Failed to deserialize the JSON body into
/// the target type: ... at line 1 column 106"); keep what the caller needs.
fn tidy_rejection(text: &str) -> String {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to deserialize query string: "))
        .or_else(|| text.strip_prefix("Failed to deserialize form body: "))
        .unwrap_or(text);
    let text = match text.rfind(" at line ") {
        Some(i) if text[i..].contains(" column ") => &text[..i],
        _ => text,
    };
    text.to_owned()
}

/// The fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}
