//! `GET /authorize`: the authorization-code grant with PKCE S256 required (RFC 6749
//! §4.1.1, RFC 7636). A request whose client or redirect URI is not registered gets an
//! error page, never a redirect. For a loopback (native) client, the person confirms on a
//! consent page first (RFC 8252 §8.6): any local program can listen on a loopback port.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::secret::constant_time_eq;
use tessera_core::session::{
    AuthorizationCode, OAuthClient, Session, new_secret, secret_hash, valid_code_challenge,
};
use time::Duration;

use crate::error::ApiError;
use crate::login::{csrf_token, message, page, same_origin, signed_in};
use crate::state::AppState;

/// How long an authorization code lives.
pub const CODE_LIFETIME: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
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

impl AuthorizeQuery {
    /// The parameters to carry through the consent form.
    fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("state", &self.state),
            ("scope", &self.scope),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }
}

/// `redirect_uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

/// A request that names a registered client and one of its redirect URIs.
struct Valid {
    client: OAuthClient,
    redirect_uri: String,
    challenge: String,
    state: String,
}

impl Valid {
    /// Back to the client with an error (RFC 6749 §4.1.2.1), with its state.
    fn error(&self, error: &str, description: &str) -> Response {
        let mut params = vec![("error", error), ("error_description", description)];
        if !self.state.is_empty() {
            params.push(("state", self.state.as_str()));
        }
        Redirect::to(&with_query(&self.redirect_uri, &params)).into_response()
    }
}

/// Checks a request. `Err` is the answer to give: an error page while the client and
/// redirect URI are not established, a redirect with an error after.
async fn validate(
    state: &AppState,
    q: &AuthorizeQuery,
) -> Result<Result<Valid, Response>, ApiError> {
    let bad = |text: &str| {
        Ok(Err(message(
            StatusCode::BAD_REQUEST,
            "Sign-in request refused",
            text,
            false,
        )))
    };
    let Some(client_id) = q.client_id.as_deref() else {
        return bad("The request names no client (client_id).");
    };
    let Some(client) = state.store.client(client_id).await? else {
        return bad("The request names an unknown client.");
    };
    let Some(redirect_uri) = q.redirect_uri.clone() else {
        return bad("The request has no redirect_uri.");
    };
    if !client.allows_redirect(&redirect_uri) {
        tracing::warn!(%client_id, %redirect_uri, "authorization request with an unregistered redirect_uri");
        return bad("The redirect_uri is not registered for this client.");
    }
    let valid = Valid {
        client,
        redirect_uri,
        challenge: q.code_challenge.clone().unwrap_or_default(),
        state: q.state.clone().unwrap_or_default(),
    };
    if q.response_type.as_deref() != Some("code") {
        return Ok(Err(
            valid.error("unsupported_response_type", "response_type must be code")
        ));
    }
    match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256")) if valid_code_challenge(c) => Ok(Ok(valid)),
        (_, Some(m)) if m != "S256" => Ok(Err(valid.error(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        ))),
        _ => Ok(Err(valid.error(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ))),
    }
}

/// Issues a code to the client for the signed-in browser.
async fn issue(state: &AppState, valid: &Valid, browser: &Session) -> Result<Response, ApiError> {
    let now = crate::api::now_seconds(state);
    let code = new_secret("tsc_");
    state
        .store
        .insert_code(&AuthorizationCode {
            hash: secret_hash(&code),
            client_id: valid.client.id.clone(),
            redirect_uri: valid.redirect_uri.clone(),
            code_challenge: valid.challenge.clone(),
            user_id: browser.user_id,
            organization_id: browser.organization_id,
            signed_in_at: browser.signed_in_at,
            expires_at: now + CODE_LIFETIME,
            session_id: None,
            browser_session_id: Some(browser.id),
        })
        .await?;
    let mut params = vec![("code", code.as_str())];
    if !valid.state.is_empty() {
        params.push(("state", valid.state.as_str()));
    }
    Ok(Redirect::to(&with_query(&valid.redirect_uri, &params)).into_response())
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    email: &'a str,
    csrf: &'a str,
    fields: Vec<(&'static str, String)>,
}

/// Start a sign-in for a client; answers with a redirect carrying `code` and `state`.
#[utoipa::path(get, path = "/authorize", tag = "oauth", params(AuthorizeQuery),
    responses((status = 303, description = "To the client's redirect_uri with code and state, or to /login"),
        (status = 200, description = "A consent page, for loopback clients"),
        (status = 400, description = "Unknown client or redirect URI: an error page")))]
pub async fn authorize(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let q: AuthorizeQuery = serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
        .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
    let valid = match validate(&state, &q).await? {
        Ok(v) => v,
        Err(answer) => return Ok(answer),
    };
    let Some((browser, secret)) = signed_in(&state, &parts.headers).await? else {
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
    if !valid.client.loopback {
        return issue(&state, &valid, &browser).await;
    }
    let email = state
        .store
        .user(browser.user_id)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let html = ConsentPage {
        client_name: &valid.client.name,
        email: &email,
        csrf: &csrf_token(&secret),
        fields: q.fields(),
    }
    .render()
    .map_err(|e| ApiError::Internal(format!("template: {e}")))?;
    Ok(page(StatusCode::OK, html))
}

/// The consent page's own fields; the request's parameters travel beside them.
#[derive(Debug, Deserialize)]
struct ConsentForm {
    csrf: String,
    decision: String,
}

/// The consent page's answer (a form with the request's parameters, `csrf` and
/// `decision=allow|deny`). CSRF-protected like every form.
#[utoipa::path(post, path = "/authorize", tag = "oauth",
    responses((status = 303, description = "To the client's redirect_uri with code and state, or an error"),
        (status = 403, description = "A cross-site request")))]
pub async fn consent(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let Some((browser, secret)) = signed_in(&state, &parts.headers).await? else {
        return Ok(message(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Sign in again, then retry from your terminal.",
            false,
        ));
    };
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| ApiError::BadRequest("the form is too large".into()))?;
    let (Ok(form), Ok(query)) = (
        serde_urlencoded::from_bytes::<ConsentForm>(&bytes),
        serde_urlencoded::from_bytes::<AuthorizeQuery>(&bytes),
    ) else {
        return Ok(message(
            StatusCode::BAD_REQUEST,
            "Sign-in request refused",
            "The form was incomplete.",
            true,
        ));
    };
    if !same_origin(&parts.headers)
        || !constant_time_eq(form.csrf.as_bytes(), csrf_token(&secret).as_bytes())
    {
        tracing::warn!(user_id = %browser.user_id, "consent refused: cross-site request");
        return Ok(message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request did not come from Tessera's own page.",
            true,
        ));
    }
    let valid = match validate(&state, &query).await? {
        Ok(v) => v,
        Err(answer) => return Ok(answer),
    };
    match form.decision.as_str() {
        "allow" => issue(&state, &valid, &browser).await,
        _ => Ok(valid.error("access_denied", "the person denied the request")),
    }
}
