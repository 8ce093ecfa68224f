//! `GET /v1/authz`: forward authentication for gateways (nginx `auth_request`, Traefik
//! ForwardAuth, Envoy ext_authz). 200 with identity headers, 401 with an RFC 6750
//! challenge, 403 when a required permission is missing, 503 when status can't be read.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_api::{AuthzParams, ErrorBody, headers};
use tessera_core::claims::Identity;
use tessera_core::ids::{OrganizationId, TokenId};
use tessera_core::policy::{Action, Decision, Resource, authorize};

use crate::auth::{Caller, authenticate, bearer};
use crate::error::ApiError;
use crate::state::AppState;

/// Check a bearer token, and optionally a permission on an entity.
#[utoipa::path(get, path = "/v1/authz", tag = "authz",
    params(AuthzParams),
    responses(
        (status = 200, description = "Accepted; identity in X-Tessera-* headers"),
        (status = 400, body = ErrorBody, description = "Unknown permission or missing entityId"),
        (status = 401, body = ErrorBody, description = "No token, or a token that is not accepted"),
        (status = 403, body = ErrorBody, description = "The permission is not held on the entity"),
        (status = 503, body = ErrorBody, description = "Status could not be confirmed")),
    security(("bearer" = [])))]
pub async fn authz(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let token = bearer(&parts)?;
    let verified = authenticate(&state, token).await?;
    // The query is read only once the token is accepted: without one, the answer is 401.
    let Query(params) = Query::<AuthzParams>::try_from_uri(&parts.uri)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;

    // Fail closed on a half-configured gateway: an empty permission, or an entity
    // without a permission, is an error, never "any valid token".
    let action = match params.permission.as_deref() {
        None if params.entity_id.is_some() => {
            return Err(ApiError::BadRequest(
                "entityId was given without permission".into(),
            ));
        }
        None => None,
        Some("") => return Err(ApiError::BadRequest("permission is empty".into())),
        Some(name) => Some(Action::from_name(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown permission {name:?}; known: {}",
                Action::ALL.map(Action::name).join(", ")
            ))
        })?),
    };

    let mut out = HeaderMap::new();
    let set = |map: &mut HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            map.insert(name, v);
        }
    };
    set(&mut out, headers::SUBJECT, verified.identity.subject());
    if let Some(org) = verified.identity.organization_id() {
        set(&mut out, headers::ORGANIZATION, org.to_string());
    }
    if let Identity::ApiToken {
        token_id, scope, ..
    } = &verified.identity
    {
        set(&mut out, headers::SCOPE, scope.as_str().to_owned());
        set(&mut out, headers::TOKEN_ID, token_id.to_string());
    }

    if let Some(action) = action {
        let caller = Caller::load(&state, verified).await?;
        let entity = params
            .entity_id
            .as_deref()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| ApiError::BadRequest("entityId is required with permission".into()))?;
        let resource = resolve(&state, caller.organization_id(), entity).await?;
        // Unknown and foreign entities are simply not permitted here: a gateway passes
        // 401 and 403 through and turns anything else into a 500.
        let decision = match resource {
            Some(r) => authorize(&caller.principal, action, &r),
            None => Decision::NotFound,
        };
        if decision != Decision::Allow {
            return Err(ApiError::Forbidden(format!(
                "permission {} is not held on {entity}",
                action.name()
            )));
        }
    }
    Ok((StatusCode::OK, out).into_response())
}

/// What an id names in the caller's organization.
async fn resolve(
    state: &AppState,
    org: OrganizationId,
    raw: &str,
) -> Result<Option<Resource>, ApiError> {
    let Ok(id) = raw.parse::<uuid::Uuid>() else {
        return Ok(None);
    };
    if id == *org.as_uuid() {
        return Ok(Some(Resource::Organization(org)));
    }
    if let Some(d) = state
        .store
        .deployment(org, tessera_core::ids::DeploymentId::from_uuid(id))
        .await?
    {
        return Ok(Some(Resource::Deployment(org, d.workspace_id, d.id)));
    }
    if let Some(w) = state
        .store
        .workspace(org, tessera_core::ids::WorkspaceId::from_uuid(id))
        .await?
    {
        return Ok(Some(Resource::Workspace(org, w.id)));
    }
    if let Some(t) = state.store.token(org, TokenId::from_uuid(id)).await?
        && t.deleted_at.is_none()
    {
        return Ok(Some(Resource::Token(org, t.scope)));
    }
    Ok(None)
}
