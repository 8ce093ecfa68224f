//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5).

use tessera_core::session::{DeviceStatus, OAuthClient, secret_hash};
use time::Duration;

use crate::oauth::error::{ErrorCode, OAuthError};
use crate::sessions::{self, NewSession, Origin, TokenResponse};
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    client: &OAuthClient,
    device_code: &str,
    origin: Origin,
) -> Result<TokenResponse, OAuthError> {
    let now = crate::api::now_seconds(state);
    let hash = secret_hash(device_code);
    let grant = state
        .store
        .device_grant(&hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("unknown device_code"))?;
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the device_code was issued to another client",
        ));
    }
    if now >= grant.expires_at {
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device code has expired: start again",
        ));
    }
    match grant.status {
        DeviceStatus::Pending => {
            // Polling faster than the interval earns a longer one (§3.5, slow_down).
            let too_fast = grant
                .last_poll_at
                .is_some_and(|last| now - last < Duration::seconds(grant.interval_seconds));
            let interval = if too_fast {
                grant.interval_seconds + 5
            } else {
                grant.interval_seconds
            };
            state.store.record_device_poll(&hash, now, interval).await?;
            Err(if too_fast {
                OAuthError::new(
                    ErrorCode::SlowDown,
                    format!("poll at most every {interval} seconds"),
                )
            } else {
                OAuthError::new(
                    ErrorCode::AuthorizationPending,
                    "waiting for the user to approve",
                )
            })
        }
        DeviceStatus::Denied => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user denied the request",
        )),
        DeviceStatus::Redeemed => Err(OAuthError::invalid_grant(
            "the device code was already used",
        )),
        DeviceStatus::Approved => {
            if !state.store.redeem_device_grant(&hash).await? {
                return Err(OAuthError::invalid_grant(
                    "the device code was already used",
                ));
            }
            let (Some(user), Some(signed_in_at)) = (grant.user_id, grant.signed_in_at) else {
                return Err(OAuthError::invalid_grant("the approval is incomplete"));
            };
            if now >= signed_in_at + state.lifetimes.absolute {
                return Err(OAuthError::invalid_grant(
                    "the sign-in is too old; sign in again",
                ));
            }
            let session = sessions::start(
                state,
                NewSession {
                    id: None,
                    user,
                    organization: grant.organization_id,
                    client_id: &client.id,
                    signed_in_at,
                    origin,
                    cookie_hash: None,
                    browser_session: None,
                },
            )
            .await?;
            tracing::info!(client_id = %client.id, session_id = %session.id, "session started (device code)");
            Ok(sessions::first_tokens(state, &session).await?)
        }
    }
}
