//! Authentication: the validation path of DESIGN.md, then the caller's roles.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tessera_core::claims::Identity;
use tessera_core::error::Rejection;
use tessera_core::model::Actor;
use tessera_core::policy::{Principal, Subject};
use tessera_core::secret::sha256;
use tessera_core::verify::{self, VerifiedToken};

use crate::error::ApiError;
use crate::state::AppState;

/// Why authentication failed: the token, or our ability to check it.
#[derive(Debug)]
pub enum AuthFailure {
    Rejected(Rejection),
    /// The live status could not be read: fail closed.
    Unavailable(String),
}

impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Rejected(r) => ApiError::from(r),
            AuthFailure::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

/// Validates `token` end to end: size, key, algorithm, (cache), signature, claims, time,
/// live status. Records the use of an API token for `lastUsedAt`.
pub async fn authenticate(
    state: &AppState,
    token: &str,
) -> Result<Arc<VerifiedToken>, AuthFailure> {
    validate(state, token, true).await
}

/// Like [`authenticate`], for a token presented by someone else (introspection): the
/// check is the same, but it is not a use of the token.
pub async fn inspect(state: &AppState, token: &str) -> Result<Arc<VerifiedToken>, AuthFailure> {
    validate(state, token, false).await
}

async fn validate(
    state: &AppState,
    token: &str,
    record_use: bool,
) -> Result<Arc<VerifiedToken>, AuthFailure> {
    let now = state.clock.now();
    let verified = verified_token(state, token, now).map_err(|r| {
        metrics::counter!("tessera_validations_total", "result" => "rejected").increment(1);
        AuthFailure::Rejected(r)
    })?;
    match &verified.identity {
        Identity::ApiToken {
            token_id,
            organization_id,
            ..
        } => {
            let status = state
                .status
                .get(*token_id, state.store.as_ref(), state.feed.caches_current())
                .await
                .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
                .ok_or(AuthFailure::Rejected(Rejection::UnknownToken))?;
            if status.organization_id != *organization_id {
                return Err(AuthFailure::Rejected(Rejection::UnknownToken));
            }
            status
                .check(verified.jti, now)
                .map_err(AuthFailure::Rejected)?;
            if record_use {
                state.usage.touch(*token_id, now);
            }
        }
        Identity::Session {
            user_id,
            session_id,
            client_id,
            ..
        } => {
            let session = state
                .sessions
                .get(
                    *session_id,
                    state.store.as_ref(),
                    state.feed.caches_current(),
                )
                .await
                .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
                .ok_or(AuthFailure::Rejected(Rejection::SessionEnded))?;
            if session.user_id != *user_id || session.client_id != *client_id {
                return Err(AuthFailure::Rejected(Rejection::SessionEnded));
            }
            session.check(now).map_err(AuthFailure::Rejected)?;
        }
    }
    metrics::counter!("tessera_validations_total", "result" => "accepted").increment(1);
    Ok(verified)
}

/// Steps 1 to 3: a cache hit skips the signature; time is checked on every use.
fn verified_token(
    state: &AppState,
    token: &str,
    now: time::OffsetDateTime,
) -> Result<Arc<VerifiedToken>, Rejection> {
    let keys = state.keys.current();
    let located = verify::locate(token, &keys.verifying)?;
    let cache_key = sha256(token.as_bytes());
    if let Some(hit) = state.verified.get(&cache_key) {
        hit.check_time(&state.verify_config, now)?;
        return Ok(hit);
    }
    let claims = verify::check_signature(token, &located)?;
    let verified = Arc::new(verify::check_claims(
        claims,
        &located.key.kid,
        &state.verify_config,
        now,
    )?);
    state.verified.insert(cache_key, verified.clone());
    Ok(verified)
}

/// The bearer token of a request (RFC 6750 §2.1).
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Err(ApiError::MissingCredentials(
            "missing Authorization header: send `Authorization: Bearer <token>`".into(),
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken("the Authorization header is not valid text".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // RFC 6750 §3.1: another scheme is no bearer credential at all, so the
        // challenge carries no error code.
        return Err(ApiError::MissingCredentials(format!(
            "unsupported authorization scheme {scheme:?}: use Bearer"
        )));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::InvalidToken("empty bearer token".into()));
    }
    Ok(token)
}

/// An authenticated caller with its roles, read from the store for this request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Arc<VerifiedToken>,
    pub principal: Principal,
    pub actor: Actor,
}

impl Caller {
    pub async fn load(state: &AppState, token: Arc<VerifiedToken>) -> Result<Self, ApiError> {
        let (subject, actor, org) = match &token.identity {
            Identity::ApiToken {
                token_id,
                organization_id,
                ..
            } => (
                Subject::ApiToken(*token_id),
                Actor::ApiToken(*token_id),
                *organization_id,
            ),
            Identity::Session {
                user_id,
                organization_id,
                ..
            } => (
                Subject::User(*user_id),
                Actor::User(*user_id),
                organization_id.ok_or_else(|| {
                    ApiError::Forbidden(
                        "this session has no organization: ask an owner to add you".into(),
                    )
                })?,
            ),
        };
        let principal_id = actor.id();
        let mut principal = Principal::new(subject, org);
        let roles = state
            .roles
            .get(
                state.store.as_ref(),
                org,
                principal_id,
                state.feed.caches_current(),
            )
            .await?;
        for binding in roles.iter() {
            principal.add_role(binding.role, binding.entity_id);
        }
        Ok(Self {
            token,
            principal,
            actor,
        })
    }

    pub fn organization_id(&self) -> tessera_core::ids::OrganizationId {
        self.principal.organization_id
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let verified = authenticate(state, token).await?;
        Caller::load(state, verified).await
    }
}
