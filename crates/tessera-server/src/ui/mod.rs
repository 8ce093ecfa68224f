//! The web UI under `/ui`: server-rendered pages for API tokens, members and sessions.
//!
//! The UI is an OAuth client of this server (`tessera-ui`): signing in goes through
//! `/authorize` with PKCE S256 and the token endpoint; the session's access and refresh
//! tokens live in `HttpOnly; SameSite=Lax` cookies (`Secure` when the issuer is HTTPS),
//! scoped to `/ui`. Every page validates the access token on the same path as the API,
//! refreshes it when it has expired, and sends the person back to sign in when the
//! session is over. Pages call the `/v1` handlers themselves, so the UI can never allow
//! what the API refuses.
//!
//! Every POST passes [`session_layer`]: same origin (`Sec-Fetch-Site` / `Origin`) and a
//! CSRF token bound to the session (an HMAC of the session id under a key derived from
//! the master key, so every replica agrees).

mod pages;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tessera_core::claims::Identity;
use tessera_core::ids::SessionId;
use tessera_core::secret::{constant_time_eq, random_bytes, sha256};
use tessera_core::session::secret_hash;
use time::OffsetDateTime;

use crate::auth::{AuthFailure, Caller};
use crate::error::{ApiError, OwnBody};
use crate::login::{UI_CLIENT, from_our_page};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::sessions::TokenResponse;
use crate::state::AppState;

/// The session's access token.
pub const ACCESS_COOKIE: &str = "tessera_ui_at";
/// The session's refresh token.
pub const REFRESH_COOKIE: &str = "tessera_ui_rt";
/// `state` and PKCE verifier of a sign-in in progress.
pub const FLOW_COOKIE: &str = "tessera_ui_flow";
/// How long a sign-in may take, from `/ui/login` to `/ui/callback`.
const FLOW_SECONDS: i64 = 600;
/// How long a refresh's answer is shared with parallel requests that present the same
/// (now used) refresh token: long enough for the requests of one page view, short
/// enough to leave a thief no useful window.
const SHARED_REFRESH: time::Duration = time::Duration::seconds(2);
/// Largest form a page posts.
const MAX_FORM: usize = 64 * 1024;

/// The UI's routes: sign-in, callback and script are public, every other page passes
/// [`session_layer`].
pub fn routes(state: &AppState) -> Router<AppState> {
    use pages as p;
    let pages = Router::new()
        .route("/ui", get(p::overview))
        .route("/ui/", get(p::overview))
        .route("/ui/tokens", get(p::organization_tokens))
        .route("/ui/workspaces/{id}/tokens", get(p::workspace_tokens))
        .route("/ui/deployments/{id}/tokens", get(p::deployment_tokens))
        .route("/ui/tokens/new", get(p::new_token).post(p::create_token))
        .route("/ui/tokens/{id}", get(p::token_detail))
        .route(
            "/ui/tokens/{id}/edit",
            get(p::edit_token).post(p::update_token),
        )
        .route(
            "/ui/tokens/{id}/rotate",
            get(p::confirm_rotate).post(p::rotate_token),
        )
        .route(
            "/ui/tokens/{id}/delete",
            get(p::confirm_delete).post(p::delete_token),
        )
        .route("/ui/tokens/{id}/roles", post(p::add_token_role))
        .route("/ui/tokens/{id}/roles/remove", post(p::remove_token_role))
        .route("/ui/members", get(p::members))
        .route(
            "/ui/members/{id}/end-sessions",
            post(p::end_member_sessions),
        )
        .route("/ui/sessions", get(p::sessions))
        .route("/ui/sessions/end-all", post(p::end_all_sessions))
        .route("/ui/sessions/{id}/end", post(p::end_session))
        .route("/ui/logout", post(p::sign_out))
        .route("/ui/{*rest}", get(p::not_found).post(p::not_found))
        .layer(middleware::from_fn_with_state(state.clone(), session_layer));
    Router::new()
        .route("/ui/login", get(start_sign_in))
        .route("/ui/callback", get(callback))
        .route("/ui/signed-out", get(p::signed_out))
        .route("/ui/assets/ui.js", get(script))
        .merge(pages)
}

/// Whether `path` is one of the web UI's: its errors are pages, not JSON.
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// A page for an error that no page handler answered: a rejected form or query, a
/// method the path does not take, a caught panic.
pub fn error_status_page(status: StatusCode, message: &str, ui: Option<&Ui>) -> Response {
    let (title, text) = match status {
        StatusCode::NOT_FOUND => ("Not found", "There is no such page."),
        StatusCode::METHOD_NOT_ALLOWED => ("Not found", "There is no such page."),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "Form too large",
            "The form sent was larger than any of Tessera's forms.",
        ),
        s if s.is_client_error() => ("That didn't work", message),
        _ => (
            "Something went wrong",
            "The request failed on our side. Try again; if it keeps failing, tell your operator.",
        ),
    };
    pages::problem(status, title, text, ui)
}

/// The signed-in person of a page.
#[derive(Debug, Clone)]
pub struct Ui {
    pub caller: Caller,
    pub session_id: SessionId,
    pub email: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

/// The CSRF token of a session.
fn csrf_for(state: &AppState, session: SessionId) -> String {
    URL_SAFE_NO_PAD.encode(
        state
            .master()
            .tag("tessera-ui csrf", session.as_uuid().as_bytes()),
    )
}

fn secure(state: &AppState) -> &'static str {
    if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// `name=value` for the UI's paths, HttpOnly and SameSite=Lax.
fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        secure(state)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The cookies that hold a session's tokens.
fn session_cookies(state: &AppState, tokens: &TokenResponse) -> Vec<HeaderValue> {
    let max_age = state.lifetimes.absolute.whole_seconds();
    vec![
        set_cookie(state, ACCESS_COOKIE, &tokens.access_token, "/ui", max_age),
        set_cookie(state, REFRESH_COOKIE, &tokens.refresh_token, "/ui", max_age),
    ]
}

/// Cookies that clear the session's tokens (and the browser's sign-in).
fn cleared_cookies(state: &AppState) -> Vec<HeaderValue> {
    vec![
        set_cookie(state, ACCESS_COOKIE, "", "/ui", 0),
        set_cookie(state, REFRESH_COOKIE, "", "/ui", 0),
        set_cookie(state, crate::login::COOKIE, "", "/", 0),
    ]
}

/// Why a page cannot be shown to this request.
enum Gate {
    /// No session, or it is over: sign in (again).
    SignIn,
    /// Something else went wrong; show it.
    Error(ApiError),
}

impl From<ApiError> for Gate {
    fn from(e: ApiError) -> Self {
        Self::Error(e)
    }
}

/// The only cookie of that name. A second one (set for a parent domain by a sibling
/// host, say) makes the name untrustworthy: the request counts as without it.
fn sole_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    if found.next().is_some() {
        tracing::warn!(cookie = name, "web UI cookie sent twice: ignored");
        return None;
    }
    Some(first).filter(|v| !v.is_empty())
}

/// The person behind the cookies, and the cookies to set whatever the outcome: new tokens
/// after a refresh (the refresh token used is spent: losing its successor would end
/// the session), or clearing them when the session is over.
async fn resolve(state: &AppState, headers: &HeaderMap) -> (Result<Ui, Gate>, Vec<HeaderValue>) {
    let access = sole_cookie(headers, ACCESS_COOKIE);
    if let Some(access) = access {
        match crate::auth::authenticate(state, access).await {
            Ok(verified) => return (load(state, verified).await, Vec::new()),
            // Expired, or ended: the refresh token decides.
            Err(AuthFailure::Rejected(_)) => {}
            Err(AuthFailure::Unavailable(m)) => {
                return (Err(Gate::Error(ApiError::Unavailable(m))), Vec::new());
            }
        }
    }
    let Some(refresh_token) = sole_cookie(headers, REFRESH_COOKIE) else {
        // A refused access cookie with nothing to refresh it: forget it too.
        let clear = if access.is_some() {
            vec![set_cookie(state, ACCESS_COOKIE, "", "/ui", 0)]
        } else {
            Vec::new()
        };
        return (Err(Gate::SignIn), clear);
    };
    let tokens = match refresh(state, refresh_token, access.unwrap_or_default()).await {
        Ok(tokens) => tokens,
        Err(e) => {
            let gate = match e.error {
                ErrorCode::TemporarilyUnavailable => {
                    return (
                        Err(Gate::Error(ApiError::Unavailable(e.error_description))),
                        Vec::new(),
                    );
                }
                ErrorCode::ServerError => Gate::Error(ApiError::Internal(e.error_description)),
                _ => {
                    tracing::info!(reason = %e.error_description, "web UI session over: sign in again");
                    Gate::SignIn
                }
            };
            return (Err(gate), cleared_cookies(state));
        }
    };
    let cookies = session_cookies(state, &tokens);
    let ui = match crate::auth::authenticate(state, &tokens.access_token).await {
        Ok(verified) => load(state, verified).await,
        Err(AuthFailure::Rejected(_)) => Err(Gate::SignIn),
        Err(AuthFailure::Unavailable(m)) => Err(Gate::Error(ApiError::Unavailable(m))),
    };
    (ui, cookies)
}

/// Refreshes in flight or just done, by a hash of the refresh token and access cookie
/// they were asked with: the requests of one browser that present the same pair at
/// once (pages loaded in parallel with one expired access token) share one refresh
/// instead of tripping reuse detection. Requests with other tokens never wait on them.
#[derive(Default)]
pub struct RecentRefreshes(std::sync::Mutex<HashMap<String, (OffsetDateTime, SharedRefresh)>>);

type SharedRefresh = Arc<tokio::sync::OnceCell<Result<TokenResponse, OAuthError>>>;

/// How many refreshes are shared at most; beyond that, each request refreshes alone.
const MAX_SHARED_REFRESHES: usize = 10_000;

/// A refresh through the token endpoint, shared with requests that present the same
/// cookies within [`SHARED_REFRESH`].
async fn refresh(
    state: &AppState,
    refresh_token: &str,
    access: &str,
) -> Result<TokenResponse, OAuthError> {
    let exchange = || async {
        let body = serde_urlencoded::to_string([
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", UI_CLIENT),
        ])
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        // A refresh starts no session: there is no origin to record.
        crate::oauth::token::exchange(state, body.as_bytes(), Default::default()).await
    };
    let key = secret_hash(&format!("{refresh_token}\n{access}"));
    let shared = {
        let mut recent = state
            .ui_refreshes
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = state.clock.now();
        recent.retain(|_, (at, _)| now - *at < SHARED_REFRESH);
        if recent.len() < MAX_SHARED_REFRESHES || recent.contains_key(&key) {
            Some(
                recent
                    .entry(key)
                    .or_insert_with(|| (now, SharedRefresh::default()))
                    .1
                    .clone(),
            )
        } else {
            None
        }
    };
    match shared {
        Some(cell) => cell.get_or_init(exchange).await.clone(),
        None => exchange().await,
    }
}

async fn load(
    state: &AppState,
    verified: std::sync::Arc<tessera_core::verify::VerifiedToken>,
) -> Result<Ui, Gate> {
    let Identity::Session {
        user_id,
        session_id,
        client_id,
        ..
    } = &verified.identity
    else {
        return Err(Gate::SignIn);
    };
    if client_id != UI_CLIENT {
        return Err(Gate::SignIn);
    }
    let (user_id, session_id) = (*user_id, *session_id);
    let caller = Caller::load(state, verified).await?;
    let email = state
        .store
        .user(user_id)
        .await
        .map_err(ApiError::from)?
        .map(|u| u.email)
        .ok_or(Gate::SignIn)?;
    Ok(Ui {
        caller,
        session_id,
        email,
        csrf: csrf_for(state, session_id),
    })
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Resolves the session for every page; for a POST, also checks origin and CSRF token.
/// Whatever the answer, it carries the cookies [`resolve`] set.
async fn session_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (ui, cookies) = resolve(&state, &parts.headers).await;
    let mut response = gate(ui, parts, body, next).await;
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

async fn gate(
    ui: Result<Ui, Gate>,
    mut parts: axum::http::request::Parts,
    body: Body,
    next: Next,
) -> Response {
    let ui = match ui {
        Ok(ui) => ui,
        // Session cookies came, but their session is over (signed out, ended elsewhere,
        // or past its last day): say so, rather than a sign-in page out of the blue.
        Err(Gate::SignIn)
            if parts.method == Method::GET
                && [ACCESS_COOKIE, REFRESH_COOKIE]
                    .iter()
                    .any(|c| sole_cookie(&parts.headers, c).is_some_and(|v| !v.is_empty())) =>
        {
            return pages::problem(
                StatusCode::UNAUTHORIZED,
                "Your session has ended",
                "You were signed out, or your session reached its time limit. Sign in again \
                 to continue.",
                None,
            );
        }
        Err(Gate::SignIn) if parts.method == Method::GET => {
            let here = parts.uri.path_and_query().map_or("/ui", |p| p.as_str());
            let to = format!(
                "/ui/login?{}",
                serde_urlencoded::to_string([("next", here)]).unwrap_or_default()
            );
            return Redirect::to(&to).into_response();
        }
        Err(Gate::SignIn) => {
            return pages::problem(
                StatusCode::UNAUTHORIZED,
                "Your session has ended",
                "Sign in again, then repeat what you were doing.",
                None,
            );
        }
        Err(Gate::Error(e)) => return pages::error_page(&e, None),
    };
    let body = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return pages::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form sent was larger than any of Tessera's forms.",
                Some(&ui),
            );
        };
        let token = serde_urlencoded::from_bytes::<CsrfField>(&bytes)
            .map(|f| f.csrf)
            .unwrap_or_default();
        if !from_our_page(&parts.headers) || !constant_time_eq(token.as_bytes(), ui.csrf.as_bytes())
        {
            tracing::warn!(session_id = %ui.session_id, path = %parts.uri.path(), "web UI form refused: cross-site or without a valid CSRF token");
            return pages::problem(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form did not come from Tessera's own pages, so nothing was changed. \
                 Reload the page and try again.",
                Some(&ui),
            );
        }
        Body::from(bytes)
    } else {
        body
    };
    let frame = ui.clone();
    parts.extensions.insert(ui);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<OwnBody>().is_none()
    {
        // An error no page answered (a rejected form, a wrong method): its page, made
        // later from the status, still shows who is signed in and a way to sign out.
        response.extensions_mut().insert(frame);
    }
    response
}

/// Where to go after signing in: a UI path, never anything else.
fn safe_next(raw: Option<&str>) -> &str {
    match raw {
        Some(p)
            if (p == "/ui" || p.starts_with("/ui/"))
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            p
        }
        _ => "/ui",
    }
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

/// `GET /ui/login`: starts an authorization-code sign-in with PKCE S256, unless this
/// browser's UI session is still alive (a link to this page must not pile up sessions).
async fn start_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    if let (Ok(_), cookies) = resolve(&state, &headers).await {
        let mut response = Redirect::to(safe_next(q.next.as_deref())).into_response();
        for c in cookies {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        return response;
    }
    let flow_state = URL_SAFE_NO_PAD.encode(random_bytes(32));
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes(32));
    let challenge = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    let next = URL_SAFE_NO_PAD.encode(safe_next(q.next.as_deref()));
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", UI_CLIENT),
        ("redirect_uri", &redirect_uri(&state)),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", &flow_state),
    ])
    .unwrap_or_default();
    let mut response = Redirect::to(&format!("/authorize?{query}")).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            FLOW_COOKIE,
            &format!("{flow_state}.{verifier}.{next}"),
            "/ui/callback",
            FLOW_SECONDS,
        ),
    );
    response
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/ui/callback", state.issuer)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /ui/callback`: checks `state` against the flow cookie and exchanges the code
/// with its verifier at the token endpoint.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: crate::sessions::Origin,
    request: Request,
) -> Response {
    let q: CallbackQuery = match serde_urlencoded::from_str(request.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(_) => return sign_in_failed("The sign-in answer was malformed."),
    };
    let flow = sole_cookie(&headers, FLOW_COOKIE).unwrap_or_default();
    let mut parts = flow.splitn(3, '.');
    let (Some(expected_state), Some(verifier), Some(next)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return sign_in_failed("This sign-in was not started here, or took too long.");
    };
    let given_state = q.state.unwrap_or_default();
    if given_state.is_empty()
        || !constant_time_eq(given_state.as_bytes(), expected_state.as_bytes())
    {
        tracing::warn!("web UI sign-in refused: state does not match");
        return sign_in_failed("This sign-in was not started here, or took too long.");
    }
    if let Some(error) = q.error {
        let text = q.error_description.unwrap_or(error);
        return sign_in_failed(&format!("Sign-in did not complete: {text}."));
    }
    let Some(code) = q.code else {
        return sign_in_failed("The sign-in answer had no code.");
    };
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &redirect_uri(&state)),
        ("client_id", UI_CLIENT),
        ("code_verifier", verifier),
    ])
    .unwrap_or_default();
    let tokens = match crate::oauth::token::exchange(&state, body.as_bytes(), origin).await {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(error = ?e.error, description = %e.error_description, "web UI code exchange refused");
            return sign_in_failed("The sign-in could not be completed. Start again.");
        }
    };
    let next = URL_SAFE_NO_PAD
        .decode(next)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let mut response = Redirect::to(safe_next(Some(&next))).into_response();
    let h = response.headers_mut();
    for c in session_cookies(&state, &tokens) {
        h.append(header::SET_COOKIE, c);
    }
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, FLOW_COOKIE, "", "/ui/callback", 0),
    );
    response
}

fn sign_in_failed(text: &str) -> Response {
    pages::problem(StatusCode::BAD_REQUEST, "Sign-in failed", text, None)
}

/// The one script: the copy-to-clipboard button.
async fn script() -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/ui.js"),
    )
        .into_response();
    response.extensions_mut().insert(OwnBody);
    response
}
