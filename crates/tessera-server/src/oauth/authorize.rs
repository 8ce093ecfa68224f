//! `GET /authorize`: the authorization-code grant with PKCE S256 required (RFC 6749
//! §4.1.1, RFC 7636). A request whose client or redirect URI is not registered gets an
//! error page, never a redirect.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::session::{AuthorizationCode, new_secret, secret_hash, valid_code_challenge};
use time::Duration;

use crate::error::ApiError;
use crate::login::{message, signed_in};
use crate::state::AppState;

/// How long an authorization code lives.
pub const CODE_LIFETIME: Duration = Duration::seconds(60);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    /// Must be `S256`.
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
}

/// `redirect_uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

/// Start a sign-in for a client; answers with a redirect carrying `code` and `state`.
#[utoipa::path(get, path = "/authorize", tag = "oauth", params(AuthorizeQuery),
    responses((status = 303, description = "To the client's redirect_uri with code and state, or to /login"),
        (status = 400, description = "Unknown client or redirect URI: an error page")))]
pub async fn authorize(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let q: AuthorizeQuery = serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
        .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
    let bad = |text: &str| {
        Ok(message(
            StatusCode::BAD_REQUEST,
            "Sign-in request refused",
            text,
            false,
        ))
    };

    // Until the client and its redirect URI are known, errors are shown here.
    let Some(client_id) = q.client_id.as_deref() else {
        return bad("The request names no client (client_id).");
    };
    let Some(client) = state.store.client(client_id).await? else {
        return bad("The request names an unknown client.");
    };
    let Some(redirect_uri) = q.redirect_uri.as_deref() else {
        return bad("The request has no redirect_uri.");
    };
    if !client.allows_redirect(redirect_uri) {
        tracing::warn!(%client_id, %redirect_uri, "authorization request with an unregistered redirect_uri");
        return bad("The redirect_uri is not registered for this client.");
    }

    // From here, errors go back to the client (RFC 6749 §4.1.2.1), with its state.
    let client_state = q.state.as_deref().unwrap_or_default();
    let back = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !client_state.is_empty() {
            params.push(("state", client_state));
        }
        Ok(Redirect::to(&with_query(redirect_uri, &params)).into_response())
    };
    if q.response_type.as_deref() != Some("code") {
        return back("unsupported_response_type", "response_type must be code");
    }
    match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256")) if valid_code_challenge(c) => {}
        (_, Some(m)) if m != "S256" => {
            return back(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            );
        }
        _ => {
            return back(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            );
        }
    }

    let Some((browser, _)) = signed_in(&state, &parts.headers).await? else {
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/authorize");
        let login = format!(
            "/login?{}",
            serde_urlencoded::to_string([("return_to", here)]).unwrap_or_default()
        );
        return Ok(Redirect::to(&login).into_response());
    };
    let now = crate::api::now_seconds(&state);
    let code = new_secret("tsc_");
    state
        .store
        .insert_code(&AuthorizationCode {
            hash: secret_hash(&code),
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: q.code_challenge.unwrap_or_default(),
            user_id: browser.user_id,
            organization_id: browser.organization_id,
            signed_in_at: browser.signed_in_at,
            expires_at: now + CODE_LIFETIME,
            session_id: None,
        })
        .await?;
    let mut params = vec![("code", code.as_str())];
    if !client_state.is_empty() {
        params.push(("state", client_state));
    }
    Ok(Redirect::to(&with_query(redirect_uri, &params)).into_response())
}
