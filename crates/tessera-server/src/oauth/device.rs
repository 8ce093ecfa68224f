//! The device authorization grant (RFC 8628): `POST /oauth/device/code` for the device,
//! `GET|POST /device` where a signed-in person enters the user code.

use askama::Template;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tessera_core::secret::constant_time_eq;
use tessera_core::session::{
    DeviceGrant, DeviceStatus, new_secret, new_user_code, normalize_user_code, secret_hash,
};
use time::Duration;

use super::error::OAuthError;
use super::token::client;
use crate::error::ApiError;
use crate::login::{csrf_token, message, page, same_origin, signed_in};
use crate::sessions::Origin;
use crate::state::AppState;
use tessera_core::throttle::RateLimit;

pub const DEVICE_CODE_LIFETIME: Duration = Duration::minutes(10);
pub const POLL_INTERVAL_SECONDS: i64 = 5;
/// Device sign-ins one client address (an IPv6 /64) may start per [`STARTS_WINDOW`].
pub const STARTS_PER_ADDRESS: u32 = 20;
/// Device sign-ins one IPv6 /48 may start per [`STARTS_WINDOW`].
pub const STARTS_PER_SITE: u32 = 100;
/// Device sign-ins all clients together may start per [`STARTS_WINDOW`], on one server:
/// the backstop that bounds the rows anyone, from however many addresses, can make.
pub const STARTS_IN_ALL: u32 = 10_000;

/// Device sign-ins started: per address, per IPv6 site, and in all (the total kept
/// apart, so that no flood of addresses can push it out).
#[derive(Debug)]
pub struct DeviceStarts {
    scoped: RateLimit,
    in_all: RateLimit,
}

impl Default for DeviceStarts {
    fn default() -> Self {
        Self {
            scoped: RateLimit::new(STARTS_WINDOW),
            in_all: RateLimit::new(STARTS_WINDOW),
        }
    }
}

impl DeviceStarts {
    /// Counts a start from `origin`, or `Err(seconds to wait)`.
    pub fn hit(&mut self, origin: &Origin, now: time::OffsetDateTime) -> Result<(), u64> {
        self.scoped
            .hit(&origin.throttle_scope(), STARTS_PER_ADDRESS, now)?;
        if let Some(site) = origin.site_scope() {
            self.scoped.hit(&site, STARTS_PER_SITE, now)?;
        }
        let total = self.in_all.hit("*", STARTS_IN_ALL, now);
        if total.is_err() {
            tracing::warn!(
                "device sign-ins refused for everyone: {STARTS_IN_ALL} started in {STARTS_WINDOW}"
            );
        }
        total
    }
}
pub const STARTS_WINDOW: Duration = Duration::minutes(10);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DeviceCodeRequest {
    pub client_id: String,
    #[serde(default)]
    pub scope: Option<String>,
}

/// RFC 8628 §3.2.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceCodeResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Start a device sign-in.
#[utoipa::path(post, path = "/oauth/device/code", tag = "oauth",
    request_body(content = DeviceCodeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = DeviceCodeResponse), (status = 401, description = "invalid_client")))]
pub async fn device_code(
    State(state): State<AppState>,
    origin: Origin,
    body: axum::body::Bytes,
) -> Result<Json<DeviceCodeResponse>, OAuthError> {
    let req: DeviceCodeRequest = super::token::form(&body)?;
    let client = client(&state, &req.client_id).await?;
    let now = crate::api::now_seconds(&state);
    // Anyone may start a device sign-in, and each start stores a grant: bounded per
    // client address.
    let limited = state
        .device_starts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .hit(&origin, now);
    if let Err(wait) = limited {
        tracing::warn!(ip = ?origin.ip, "device sign-in refused: too many started");
        return Err(OAuthError::too_many_requests(wait));
    }
    let device_code = new_secret("tsd_");
    // User codes are unique among stored grants; a collision just draws again.
    for _ in 0..5 {
        let user_code = new_user_code();
        let grant = DeviceGrant {
            hash: secret_hash(&device_code),
            user_code: user_code.clone(),
            client_id: client.id.clone(),
            expires_at: now + DEVICE_CODE_LIFETIME,
            interval_seconds: POLL_INTERVAL_SECONDS,
            last_poll_at: None,
            status: DeviceStatus::Pending,
            user_id: None,
            organization_id: None,
            signed_in_at: None,
        };
        match state.store.insert_device_grant(&grant).await {
            Ok(()) => {
                let verification_uri = format!("{}/device", state.issuer);
                return Ok(Json(DeviceCodeResponse {
                    verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
                    verification_uri,
                    device_code,
                    user_code,
                    expires_in: DEVICE_CODE_LIFETIME.whole_seconds(),
                    interval: POLL_INTERVAL_SECONDS,
                }));
            }
            Err(tessera_core::store::StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::new(
        super::error::ErrorCode::ServerError,
        "could not allocate a user code",
    ))
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    email: &'a str,
    csrf: &'a str,
    user_code: &'a str,
    error: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    pub user_code: Option<String>,
}

/// `GET /device`: the code form, for a signed-in person.
pub async fn device_page(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let q: DeviceQuery = serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
        .unwrap_or(DeviceQuery { user_code: None });
    let Some((session, secret)) = signed_in(&state, &parts.headers).await? else {
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/device");
        let login = format!(
            "/login?{}",
            serde_urlencoded::to_string([("return_to", here)]).unwrap_or_default()
        );
        return Ok(Redirect::to(&login).into_response());
    };
    let email = state
        .store
        .user(session.user_id)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let user_code = q
        .user_code
        .as_deref()
        .and_then(normalize_user_code)
        .unwrap_or_default();
    render(
        StatusCode::OK,
        &DevicePage {
            email: &email,
            csrf: &csrf_token(&secret),
            user_code: &user_code,
            error: None,
        },
    )
}

fn render<T: Template>(status: StatusCode, t: &T) -> Result<Response, ApiError> {
    t.render()
        .map(|html| page(status, html))
        .map_err(|e| ApiError::Internal(format!("template: {e}")))
}

#[derive(Debug, Deserialize)]
pub struct DeviceDecision {
    pub user_code: String,
    pub action: String,
    pub csrf: String,
}

/// `POST /device`: approve or deny a code. CSRF-protected: the form's token is bound to
/// the sign-in cookie, and the request must come from our own page.
pub async fn device_decide(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let Some((session, secret)) = signed_in(&state, &parts.headers).await? else {
        return Ok(message(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Sign in again, then enter the code.",
            false,
        ));
    };
    let bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| ApiError::BadRequest("the form is too large".into()))?;
    let Ok(form) = serde_urlencoded::from_bytes::<DeviceDecision>(&bytes) else {
        return Ok(message(
            StatusCode::BAD_REQUEST,
            "Connect a device",
            "The form was incomplete.",
            true,
        ));
    };
    let expected = csrf_token(&secret);
    let csrf_ok = constant_time_eq(form.csrf.as_bytes(), expected.as_bytes());
    if !same_origin(&parts.headers) || !csrf_ok {
        tracing::warn!(user_id = %session.user_id, "device decision refused: cross-site request");
        return Ok(message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request did not come from Tessera's own page.",
            true,
        ));
    }
    // Wrong codes back off per person (RFC 8628 §5.1): nobody signed in can sweep the
    // code space to approve someone else's device. Each attempt is counted before the
    // lookup (parallel guesses cannot outrun the count) and forgiven when it succeeds.
    let guesses = format!("device:{}", session.user_id);
    let now = crate::api::now_seconds(&state);
    let begun = {
        let mut t = state.throttle.lock().unwrap_or_else(|e| e.into_inner());
        let checked = t.check(&guesses, now);
        if checked.is_ok() {
            t.fail(&guesses, now);
        }
        checked
    };
    if let Err(wait) = begun {
        tracing::warn!(user_id = %session.user_id, "device decision refused: too many wrong codes");
        let mut r = message(
            StatusCode::TOO_MANY_REQUESTS,
            "Connect a device",
            &format!("Too many wrong codes. Try again in {wait} seconds."),
            true,
        );
        r.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, wait.into());
        return Ok(r);
    }
    let email = state
        .store
        .user(session.user_id)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let Some(code) = normalize_user_code(&form.user_code) else {
        return render(
            StatusCode::BAD_REQUEST,
            &DevicePage {
                email: &email,
                csrf: &expected,
                user_code: "",
                error: Some("That is not a valid code: it looks like XXXX-XXXX."),
            },
        );
    };
    let approve = match form.action.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return Err(ApiError::BadRequest(
                "action must be approve or deny".into(),
            ));
        }
    };
    let approval = approve.then_some((
        session.user_id,
        session.organization_id,
        session.signed_in_at,
    ));
    if !state
        .store
        .decide_device_grant(&code, approval, now)
        .await?
    {
        return render(
            StatusCode::BAD_REQUEST,
            &DevicePage {
                email: &email,
                csrf: &expected,
                user_code: &code,
                error: Some("This code is unknown, expired or already used."),
            },
        );
    }
    state
        .throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .forgive(&guesses);
    tracing::info!(user_id = %session.user_id, approved = approve, "device authorization decided");
    Ok(if approve {
        message(
            StatusCode::OK,
            "Device connected",
            "You can close this page and return to your device.",
            true,
        )
    } else {
        message(
            StatusCode::OK,
            "Request denied",
            "The device was not connected.",
            true,
        )
    })
}
