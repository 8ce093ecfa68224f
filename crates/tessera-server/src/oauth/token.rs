//! `POST /oauth/token`: the request as a type, tagged by `grant_type`; one file per grant.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::session::OAuthClient;

use super::error::{ErrorCode, OAuthError};
use super::grants;
use crate::sessions::{Origin, TokenResponse};
use crate::state::AppState;

pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 6749 §4.1.3, §6 and RFC 8628 §3.4, for public clients (`client_id`, no secret).
#[derive(Debug, Deserialize)]
#[serde(tag = "grant_type")]
pub enum TokenRequest {
    #[serde(rename = "authorization_code")]
    AuthorizationCode {
        code: String,
        redirect_uri: String,
        client_id: String,
        code_verifier: String,
    },
    #[serde(rename = "refresh_token")]
    RefreshToken {
        refresh_token: String,
        client_id: String,
        #[serde(default)]
        scope: Option<String>,
    },
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode {
        device_code: String,
        client_id: String,
    },
}

impl TokenRequest {
    fn client_id(&self) -> &str {
        match self {
            Self::AuthorizationCode { client_id, .. }
            | Self::RefreshToken { client_id, .. }
            | Self::DeviceCode { client_id, .. } => client_id,
        }
    }

    /// Parses the form: an unknown `grant_type` is `unsupported_grant_type`, anything
    /// else wrong is `invalid_request` naming the problem.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let fields: HashMap<String, String> = serde_urlencoded::from_bytes(body).map_err(|_| {
            OAuthError::invalid_request("the body must be application/x-www-form-urlencoded")
        })?;
        match fields.get("grant_type").map(String::as_str) {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some("authorization_code" | "refresh_token" | DEVICE_CODE_GRANT) => {}
            Some(other) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!(
                        "grant_type {other:?} is not supported; use authorization_code, refresh_token or {DEVICE_CODE_GRANT}"
                    ),
                ));
            }
        }
        serde_urlencoded::from_bytes(body).map_err(|e| OAuthError::invalid_request(e.to_string()))
    }
}

/// Parses an OAuth form; a malformed one is `invalid_request` naming the problem (in
/// the OAuth error format, not the API's).
pub fn form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, OAuthError> {
    serde_urlencoded::from_bytes(body).map_err(|e| OAuthError::invalid_request(e.to_string()))
}

/// The registered public client named by `client_id`.
pub async fn client(state: &AppState, client_id: &str) -> Result<OAuthClient, OAuthError> {
    state.store.client(client_id).await?.ok_or_else(|| {
        OAuthError::new(
            ErrorCode::InvalidClient,
            format!("unknown client_id {client_id:?}"),
        )
    })
}

/// Exchange a grant for tokens.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "grant_type=authorization_code (code, redirect_uri, client_id, code_verifier), \
            refresh_token (refresh_token, client_id) or urn:ietf:params:oauth:grant-type:device_code (device_code, client_id)"),
    responses((status = 200, body = TokenResponse), (status = 400, description = "RFC 6749 §5.2 error"), (status = 401, description = "invalid_client")))]
pub async fn token(State(state): State<AppState>, origin: Origin, body: Bytes) -> Response {
    match exchange(&state, &body, origin).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => {
            tracing::info!(error = ?e.error, description = %e.error_description, "token request refused");
            e.into_response()
        }
    }
}

/// The token endpoint itself, for a form body: what `POST /oauth/token` answers.
/// `origin` is where the client is: a session started here records it.
pub(crate) async fn exchange(
    state: &AppState,
    body: &[u8],
    origin: Origin,
) -> Result<TokenResponse, OAuthError> {
    let request = TokenRequest::parse(body)?;
    let client = client(state, request.client_id()).await?;
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
            ..
        } => {
            grants::authorization_code::exchange(
                state,
                &client,
                &code,
                &redirect_uri,
                &code_verifier,
                origin,
            )
            .await
        }
        TokenRequest::RefreshToken { refresh_token, .. } => {
            grants::refresh_token::exchange(state, &client, &refresh_token).await
        }
        TokenRequest::DeviceCode { device_code, .. } => {
            grants::device_code::exchange(state, &client, &device_code, origin).await
        }
    }
}
