//! Signing in with a browser: `/login`, `/logout`, the sign-in cookie, the built-in OAuth
//! clients, and the pages.

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::model::User;
use tessera_core::password;
use tessera_core::secret::{Password, sha256};
use tessera_core::session::{OAuthClient, Session, new_secret, secret_hash};
use tessera_core::store::{Store, StoreResult};
use time::OffsetDateTime;

use crate::error::{ApiError, OwnBody};
use crate::sessions::{self, Origin};
use crate::state::AppState;

/// The browser's sign-in cookie. Its value is a 256-bit secret; the store keeps its hash.
pub const COOKIE: &str = "tessera_signin";
/// The browser's own sign-in session, as a client id.
pub const BROWSER_CLIENT: &str = "tessera-browser";
pub const UI_CLIENT: &str = "tessera-ui";
pub const CLI_CLIENT: &str = "tessera-cli";

/// The built-in public clients, registered (or updated) at every start.
pub async fn register_clients(
    store: &dyn Store,
    issuer: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    store
        .upsert_client(
            &OAuthClient {
                id: UI_CLIENT.into(),
                name: "Tessera web UI".into(),
                redirect_uris: vec![format!("{issuer}/ui/callback")],
                loopback: false,
            },
            now,
        )
        .await?;
    store
        .upsert_client(
            &OAuthClient {
                id: CLI_CLIENT.into(),
                name: "Tessera CLI".into(),
                redirect_uris: vec![
                    "http://127.0.0.1/callback".into(),
                    "http://[::1]/callback".into(),
                ],
                loopback: true,
            },
            now,
        )
        .await
}

/// An HTML answer with the page security headers; error statuses keep their body.
pub fn page(status: StatusCode, html: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response.extensions_mut().insert(OwnBody);
    response
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    error: Option<&'a str>,
    email: &'a str,
    return_to: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub signed_in: bool,
}

/// A page with a title and a sentence.
pub fn message(status: StatusCode, title: &str, text: &str, signed_in: bool) -> Response {
    let html = MessagePage {
        title,
        message: text,
        signed_in,
    }
    .render()
    .unwrap_or_else(|_| text.to_owned());
    page(status, html)
}

fn render<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => page(status, html),
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../assets/tessera.css"),
    )
        .into_response()
}

/// Where to go after signing in: a path on this server, never another site.
fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        // Printable ASCII only (no tab, no backslash): browsers drop tabs and read
        // backslashes as slashes, which would turn "/\t/evil" into "//evil".
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            p.to_owned()
        }
        _ => String::new(),
    }
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The browser's live sign-in session and its cookie secret, if any.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Session, String)>, ApiError> {
    let Some(secret) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    let Some(session) = state.store.session_by_cookie(&secret_hash(secret)).await? else {
        return Ok(None);
    };
    let live = state
        .sessions
        .get(
            session.id,
            state.store.as_ref(),
            state.feed.caches_current(),
        )
        .await?
        .is_some_and(|s| s.check(state.clock.now()).is_ok());
    Ok(live.then(|| (session, secret.to_owned())))
}

/// A CSRF token for forms of a signed-in browser: derived from the cookie secret, so
/// another site can neither read nor forge it.
pub fn csrf_token(cookie_secret: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha256(format!("csrf:{cookie_secret}").as_bytes()))
}

/// A state-changing browser request must come from our own pages. `Sec-Fetch-Site`,
/// which browsers set and pages cannot forge, decides when sent: `same-origin` (or
/// `none`, typed by the person). Without it (older browsers), `Origin`, when sent, must
/// name the host the request went to. `Origin` alone is not enough for current browsers:
/// under our `Referrer-Policy: no-referrer` Chromium sends `Origin: null` even for a
/// same-origin form.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or_default();
            !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
        }
    }
}

/// [`same_origin`], and the request says where it comes from (`Sec-Fetch-Site` or
/// `Origin`, which every current browser sends with a form): for forms that only a
/// browser on our own pages posts.
pub fn from_our_page(headers: &HeaderMap) -> bool {
    (headers.contains_key("sec-fetch-site") || headers.contains_key(header::ORIGIN))
        && same_origin(headers)
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub return_to: Option<String>,
}

/// `GET /login`: the form.
pub async fn login_form(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let return_to = safe_return_to(q.return_to.as_deref());
    if let Some((session, _)) = signed_in(&state, &headers).await? {
        if !return_to.is_empty() {
            return Ok(Redirect::to(&return_to).into_response());
        }
        let email = state
            .store
            .user(session.user_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        return Ok(message(
            StatusCode::OK,
            "Signed in",
            &format!("You are signed in as {email}."),
            true,
        ));
    }
    Ok(render(
        StatusCode::OK,
        &LoginPage {
            error: None,
            email: "",
            return_to: &return_to,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub return_to: Option<String>,
}

/// Checks a password: argon2id off the executor, at most one hash per core at a time.
/// An unknown email is checked against a decoy hash, so it costs the same.
pub async fn check_password(
    state: &AppState,
    email: &str,
    password: Password,
) -> Result<Option<User>, ApiError> {
    let found = state.store.user_by_email(email.trim()).await?;
    let hash = found
        .as_ref()
        .map_or_else(|| state.decoy_hash.clone(), |(_, h)| h.clone());
    let _permit = state
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("hashing semaphore: {e}")))?;
    let ok = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?;
    Ok(found.filter(|_| ok).map(|(u, _)| u))
}

/// The throttle keys of a sign-in attempt: the account and the address. The account is
/// a keyed hash (HMAC under the master key) of what was typed: bounded, and safe to log,
/// since without the key it can be neither reversed nor matched against address lists
/// (and what is typed as an email is sometimes a password).
fn throttle_keys(state: &AppState, email: &str, origin: &Origin) -> [String; 2] {
    use base64::Engine as _;
    let account = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        &state
            .master()
            .tag("tessera sign-in account", email.as_bytes())[..16],
    );
    [
        format!("account:{account}"),
        format!("ip:{}", origin.throttle_scope()),
    ]
}

/// Starts an attempt: `Err(seconds)` while the account or the address backs off;
/// otherwise the attempt is counted as a failure now, before any hashing, so that
/// parallel guesses cannot outrun the count.
fn begin_attempt(state: &AppState, keys: &[String; 2]) -> Result<(), u64> {
    let now = state.clock.now();
    let mut t = state.throttle.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(wait) = keys.iter().filter_map(|k| t.check(k, now).err()).max() {
        return Err(wait);
    }
    for k in keys {
        t.fail(k, now);
    }
    t.prune(now);
    Ok(())
}

/// A successful sign-in clears its account's failures and takes back the address's
/// count for this attempt (earlier failures from the address stand).
fn attempt_succeeded(state: &AppState, keys: &[String; 2]) {
    let mut t = state.throttle.lock().unwrap_or_else(|e| e.into_inner());
    t.succeed(&keys[0]);
    t.forgive(&keys[1]);
}

/// `POST /login`: checks the password, starts the browser's sign-in session, sets the
/// cookie, and goes back where the person came from.
pub async fn login(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    if !same_origin(&parts.headers) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This sign-in did not come from Tessera's own page.",
            false,
        ));
    }
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| ApiError::BadRequest("the form is too large".into()))?;
    let form = match serde_urlencoded::from_bytes::<LoginForm>(&bytes) {
        Ok(f) if f.email.len() <= 254 && f.password.len() <= 1024 => f,
        _ => {
            return Ok(message(
                StatusCode::BAD_REQUEST,
                "Sign in",
                "Enter your email and password.",
                false,
            ));
        }
    };
    let return_to = safe_return_to(form.return_to.as_deref());
    let origin = Origin::of(&state, &parts);
    let email = form.email.trim().to_lowercase();
    let keys = throttle_keys(&state, &email, &origin);
    // The account is logged as its throttle key (a keyed hash): attempts at one account
    // can be followed without writing what was typed.
    let account = keys[0].as_str();
    if let Err(wait) = begin_attempt(&state, &keys) {
        tracing::warn!(ip = ?origin.ip, account, outcome = "throttled", "sign-in attempt");
        let mut r = render(
            StatusCode::TOO_MANY_REQUESTS,
            &LoginPage {
                error: Some(&format!(
                    "Too many failed attempts. Try again in {wait} seconds."
                )),
                email: &email,
                return_to: &return_to,
            },
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(r);
    }
    let Some(user) = check_password(&state, &email, Password::new(form.password)).await? else {
        tracing::warn!(ip = ?origin.ip, account, outcome = "failed", "sign-in attempt");
        return Ok(render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                error: Some("Wrong email or password."),
                email: &email,
                return_to: &return_to,
            },
        ));
    };
    attempt_succeeded(&state, &keys);
    tracing::info!(user_id = %user.id, ip = ?origin.ip, account, outcome = "ok", "sign-in attempt");
    let secret = new_secret("tsl_");
    let org = sessions::home_organization(&state, user.id).await?;
    let now = crate::api::now_seconds(&state);
    let cookie_hash = secret_hash(&secret);
    let session = sessions::start(
        &state,
        sessions::NewSession {
            id: None,
            user: user.id,
            organization: org,
            client_id: BROWSER_CLIENT,
            signed_in_at: now,
            origin,
            cookie_hash: Some(&cookie_hash),
            browser_session: None,
        },
    )
    .await?;
    let mut response = if return_to.is_empty() {
        message(
            StatusCode::OK,
            "Signed in",
            &format!("You are signed in as {}.", user.email),
            true,
        )
    } else {
        Redirect::to(&return_to).into_response()
    };
    let max_age = (session.absolute_expiry - now).whole_seconds();
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let value =
        format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&value).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// `POST /logout`: ends the session of the bearer access token (204), or the browser's
/// sign-in session (the cookie is cleared).
pub async fn logout(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    if parts.headers.contains_key(header::AUTHORIZATION) {
        let token = crate::auth::bearer(&parts)?;
        let verified = crate::auth::authenticate(&state, token).await?;
        let tessera_core::claims::Identity::Session { session_id, .. } = verified.identity else {
            return Err(ApiError::BadRequest(
                "an API token has no session to end: delete the token instead".into(),
            ));
        };
        // Signing out of the web UI signs the browser out too: otherwise the next
        // "Sign in" would pass without a password.
        let session = state
            .sessions
            .get(
                session_id,
                state.store.as_ref(),
                state.feed.caches_current(),
            )
            .await?;
        sessions::end(&state, session_id).await?;
        if let Some(s) = session
            && s.client_id == UI_CLIENT
            && let Some(browser) = s.browser_session_id
        {
            sessions::end(&state, browser).await?;
        }
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // Signing a browser out is a browser's form from our own page: another site must
    // not be able to post it (it carries no token of its own to check).
    if !from_our_page(&parts.headers) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This sign-out did not come from Tessera's own page.",
            false,
        ));
    }
    if let Some((session, _)) = signed_in(&state, &parts.headers).await? {
        sessions::end(&state, session.id).await?;
    }
    let mut response = message(StatusCode::OK, "Signed out", "You are signed out.", false);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tessera_signin=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn sec_fetch_site_decides_when_the_browser_sends_it() {
        let host = ("host", "tessera.test");
        for ok in ["same-origin", "none"] {
            assert!(same_origin(&headers(&[host, ("sec-fetch-site", ok)])));
            // Chromium under `Referrer-Policy: no-referrer`: Origin is "null".
            assert!(same_origin(&headers(&[
                host,
                ("sec-fetch-site", ok),
                ("origin", "null")
            ])));
        }
        for bad in ["same-site", "cross-site", "bogus"] {
            assert!(!same_origin(&headers(&[
                host,
                ("sec-fetch-site", bad),
                ("origin", "http://tessera.test")
            ])));
        }
    }

    #[test]
    fn without_sec_fetch_site_the_origin_must_be_ours() {
        let host = ("host", "tessera.test");
        assert!(same_origin(&headers(&[host])), "not a browser form");
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://tessera.test")
        ])));
        for bad in ["http://evil.test", "null", "http://tessera.test.evil.test"] {
            assert!(!same_origin(&headers(&[host, ("origin", bad)])), "{bad}");
        }
        assert!(!same_origin(&headers(&[("origin", "http://tessera.test")])));
    }

    #[test]
    fn a_form_from_our_page_says_where_it_comes_from() {
        let host = ("host", "tessera.test");
        assert!(!from_our_page(&headers(&[host])), "neither header");
        assert!(from_our_page(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(from_our_page(&headers(&[
            host,
            ("origin", "http://tessera.test")
        ])));
        assert!(!from_our_page(&headers(&[
            host,
            ("origin", "http://evil.test")
        ])));
    }
}
