//! API tokens: create, list, get, update, rotate, delete, roles (Astro API v1 shapes).

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use tessera_api as wire;
use tessera_core::claims::{ApiTokenGrant, Claims};
use tessera_core::ids::{Jti, OrganizationId, TokenId};
use tessera_core::lifetime::{ExpiryPeriod, GracePeriod};
use tessera_core::model::{Actor, ApiToken, RoleBinding, Rotation, ScopeKind, TokenScope};
use tessera_core::policy::{Action, GrantTarget, Resource, authorize, may_grant};
use tessera_core::role::{DeploymentRole, EntityType, Role};
use tessera_core::secret::TokenValue;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

use super::{
    body_id, caller_org, grant_target, now_seconds, path_id, require, target_entity, to_completion,
    valid_description, valid_name,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Characters of the value shown as `shortToken`.
const SHORT_TOKEN_LEN: usize = 8;

fn short_token(value: &TokenValue) -> String {
    let v = value.expose();
    v[v.len().saturating_sub(SHORT_TOKEN_LEN)..].to_owned()
}

/// Signs the value that `token` describes: its id, current `jti`, scope, window, version.
fn sign(state: &AppState, token: &ApiToken) -> Result<TokenValue, ApiError> {
    let claims = Claims::api_token(&ApiTokenGrant {
        issuer: &state.issuer,
        audience: &state.config.audience,
        token_id: token.id,
        jti: token.current_jti,
        organization_id: token.organization_id,
        scope: token.scope,
        issued_at: token.start_at.unix_timestamp(),
        expires_at: token.end_at.map(OffsetDateTime::unix_timestamp),
        version: token.version,
    });
    state
        .keys
        .current()
        .signer
        .sign(&claims)
        .map_err(|e| ApiError::Internal(format!("signing failed: {e}")))
}

/// Whether `role` may be a token's home role for `scope`.
fn role_fits_scope(role: Role, scope: ScopeKind) -> Result<(), ApiError> {
    if role.entity_type() == scope.entity_type() {
        Ok(())
    } else {
        let hint = match scope {
            ScopeKind::Organization => "an ORGANIZATION_* role",
            ScopeKind::Workspace => "a WORKSPACE_* role",
            ScopeKind::Deployment => "DEPLOYMENT_ADMIN",
        };
        Err(ApiError::BadRequest(format!(
            "role {role} cannot be the role of a token of scope {}; use {hint}",
            scope.as_str()
        )))
    }
}

/// Creates a token with its home role and answers it with its value. Authorization is
/// the caller's business; this is also how dev mode and bootstrap make the first token.
#[allow(clippy::too_many_arguments)]
pub async fn create_api_token(
    state: &AppState,
    org: OrganizationId,
    name: String,
    description: String,
    scope: TokenScope,
    role: Role,
    expiry: ExpiryPeriod,
    by: Actor,
) -> Result<(ApiToken, TokenValue), ApiError> {
    role_fits_scope(role, scope.kind())?;
    let now = now_seconds(state);
    let mut token = ApiToken {
        id: TokenId::new(),
        organization_id: org,
        name,
        description,
        scope,
        short_token: String::new(),
        current_jti: Jti::new(),
        previous_jti: None,
        previous_valid_until: None,
        start_at: now,
        end_at: expiry.end_from(now),
        expiry_period_in_days: expiry.as_days(),
        version: 1,
        last_used_at: None,
        last_rotated_at: None,
        created_at: now,
        updated_at: now,
        created_by: by,
        updated_by: by,
        deleted_at: None,
    };
    let value = sign(state, &token)?;
    token.short_token = short_token(&value);
    let home = RoleBinding {
        role,
        entity_id: scope.entity_id(org),
    };
    state.store.create_token(&token, &[home]).await?;
    crate::feed::token_changed(state, &token);
    Ok((token, value))
}

/// Resolves `scope` + `entityId` of a create request to a home scope in `org`.
async fn home_scope(
    state: &AppState,
    org: OrganizationId,
    scope: ScopeKind,
    entity_id: Option<&str>,
) -> Result<TokenScope, ApiError> {
    match (scope, entity_id) {
        (ScopeKind::Organization, None) => Ok(TokenScope::Organization),
        (ScopeKind::Organization, Some(id)) => {
            match grant_target(state, org, EntityType::Organization, id).await? {
                GrantTarget::Organization(_) => Ok(TokenScope::Organization),
                _ => unreachable!("an organization target"),
            }
        }
        (ScopeKind::Workspace | ScopeKind::Deployment, None) => Err(ApiError::BadRequest(format!(
            "entityId is required for a {} token: the id of its {}",
            scope.as_str(),
            scope.as_str().to_lowercase()
        ))),
        (ScopeKind::Workspace, Some(id)) => {
            match grant_target(state, org, EntityType::Workspace, id).await? {
                GrantTarget::Workspace(_, ws) => Ok(TokenScope::Workspace(ws)),
                _ => unreachable!("a workspace target"),
            }
        }
        (ScopeKind::Deployment, Some(id)) => {
            match grant_target(state, org, EntityType::Deployment, id).await? {
                GrantTarget::Deployment(_, ws, d) => Ok(TokenScope::Deployment(ws, d)),
                _ => unreachable!("a deployment target"),
            }
        }
    }
}

pub(crate) fn grant_target_of_scope(org: OrganizationId, scope: TokenScope) -> GrantTarget {
    match scope {
        TokenScope::Organization => GrantTarget::Organization(org),
        TokenScope::Workspace(ws) => GrantTarget::Workspace(org, ws),
        TokenScope::Deployment(ws, d) => GrantTarget::Deployment(org, ws, d),
    }
}

/// Resolves `createdBy`/`updatedBy` to profiles, asking the store once per subject.
#[derive(Default)]
struct Profiles(HashMap<uuid::Uuid, wire::SubjectProfile>);

impl Profiles {
    async fn of(
        &mut self,
        state: &AppState,
        org: OrganizationId,
        actor: Actor,
    ) -> Result<wire::SubjectProfile, ApiError> {
        if let Some(p) = self.0.get(&actor.id()) {
            return Ok(p.clone());
        }
        let mut profile = wire::SubjectProfile {
            id: actor.id().to_string(),
            subject_type: actor.kind().to_owned(),
            api_token_name: None,
            username: None,
        };
        match actor {
            Actor::ApiToken(t) => {
                profile.api_token_name = state.store.token(org, t).await?.map(|t| t.name);
            }
            Actor::User(u) => {
                profile.username = state.store.user(u).await?.map(|u| u.email);
            }
        }
        self.0.insert(actor.id(), profile.clone());
        Ok(profile)
    }
}

async fn to_wire(
    state: &AppState,
    profiles: &mut Profiles,
    t: &ApiToken,
    roles: &[RoleBinding],
    value: Option<&TokenValue>,
) -> Result<wire::ApiToken, ApiError> {
    let last_used_at = t.last_used_at.max(state.usage.pending(t.id));
    Ok(wire::ApiToken {
        id: t.id.to_string(),
        name: t.name.clone(),
        description: t.description.clone(),
        short_token: t.short_token.clone(),
        scope: t.scope.kind(),
        kind: "STANDARD".into(),
        roles: roles
            .iter()
            .map(|b| wire::ApiTokenRole {
                entity_type: b.entity_type(),
                entity_id: b.entity_id.to_string(),
                role: b.role,
            })
            .collect(),
        start_at: t.start_at,
        end_at: t.end_at,
        expiry_period_in_days: t.expiry_period_in_days,
        last_used_at,
        last_rotated_at: t.last_rotated_at,
        created_at: t.created_at,
        updated_at: t.updated_at,
        created_by: profiles.of(state, t.organization_id, t.created_by).await?,
        updated_by: profiles.of(state, t.organization_id, t.updated_by).await?,
        token: value.map(|v| v.expose().to_owned()),
    })
}

async fn answer(
    state: &AppState,
    t: &ApiToken,
    value: Option<&TokenValue>,
) -> Result<Json<wire::ApiToken>, ApiError> {
    let roles = state
        .store
        .roles(t.organization_id, *t.id.as_uuid())
        .await?;
    Ok(Json(
        to_wire(state, &mut Profiles::default(), t, &roles, value).await?,
    ))
}

/// A live token of `org` that the caller manages.
async fn managed_token(
    state: &AppState,
    caller: &Caller,
    org: OrganizationId,
    raw_id: &str,
) -> Result<ApiToken, ApiError> {
    let id: TokenId = path_id(raw_id, "token")?;
    let token = state
        .store
        .token(org, id)
        .await?
        .filter(|t| t.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("token"))?;
    require(
        authorize(
            &caller.principal,
            Action::ManageToken,
            &Resource::Token(org, token.scope),
        ),
        "manage this token",
    )?;
    Ok(token)
}

/// Create an API token. The answer is the only time its value is shown.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/tokens", tag = "tokens",
    params(("organizationId" = String, Path)), request_body = wire::CreateApiTokenRequest,
    responses((status = 200, body = wire::ApiToken), (status = 400, body = wire::ErrorBody), (status = 401, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Json(req): Json<wire::CreateApiTokenRequest>,
) -> Result<Json<wire::ApiToken>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let name = valid_name(&req.name, "name")?;
    let description = valid_description(req.description.as_deref())?;
    let expiry = ExpiryPeriod::days(req.token_expiry_period_in_days)?;
    role_fits_scope(req.role, req.scope)?;
    let scope = home_scope(&state, org, req.scope, req.entity_id.as_deref()).await?;
    require(
        authorize(
            &caller.principal,
            Action::ManageToken,
            &Resource::Token(org, scope),
        ),
        &format!("create {} tokens here", req.scope.as_str()),
    )?;
    require(
        may_grant(
            &caller.principal,
            req.role,
            grant_target_of_scope(org, scope),
        ),
        &format!(
            "grant {} (no one may grant a role above their own)",
            req.role
        ),
    )?;
    let (token, value) = create_api_token(
        &state,
        org,
        name,
        description,
        scope,
        req.role,
        expiry,
        caller.actor,
    )
    .await?;
    tracing::info!(token_id = %token.id, scope = req.scope.as_str(), "API token created");
    answer(&state, &token, Some(&value)).await
}

/// Sort keys of `GET .../tokens`.
fn sort_tokens(
    tokens: &mut [(ApiToken, Vec<RoleBinding>)],
    sorts: Option<&str>,
) -> Result<(), ApiError> {
    let spec = sorts.unwrap_or("createdAt:asc");
    let mut keys = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, dir) = part.split_once(':').unwrap_or((part, "asc"));
        let desc = match dir {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "sort direction {other:?} is not asc or desc"
                )));
            }
        };
        if !["name", "createdAt", "updatedAt", "endAt", "lastUsedAt"].contains(&field) {
            return Err(ApiError::BadRequest(format!(
                "cannot sort by {field:?}; use name, createdAt, updatedAt, endAt or lastUsedAt"
            )));
        }
        keys.push((field.to_owned(), desc));
    }
    tokens.sort_by(|(a, _), (b, _)| {
        for (field, desc) in &keys {
            let ord = match field.as_str() {
                "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                "createdAt" => a.created_at.cmp(&b.created_at),
                "updatedAt" => a.updated_at.cmp(&b.updated_at),
                "endAt" => a.end_at.cmp(&b.end_at),
                _ => a.last_used_at.cmp(&b.last_used_at),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    Ok(())
}

/// List the API tokens the caller manages.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/tokens", tag = "tokens",
    params(("organizationId" = String, Path), wire::ListApiTokensParams),
    responses((status = 200, body = wire::ApiTokensPaginated), (status = 400, body = wire::ErrorBody), (status = 401, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Query(params): Query<wire::ListApiTokensParams>,
) -> Result<Json<wire::ApiTokensPaginated>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let offset = params.offset.unwrap_or(0);
    let limit = params.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let ws: Option<uuid::Uuid> = params
        .workspace_id
        .as_deref()
        .map(|w| body_id::<uuid::Uuid>(w, "workspaceId"))
        .transpose()?;
    let dep: Option<uuid::Uuid> = params
        .deployment_id
        .as_deref()
        .map(|d| body_id::<uuid::Uuid>(d, "deploymentId"))
        .transpose()?;
    let only_org = params.include_only_organization_tokens.unwrap_or(false);

    let mut roles: HashMap<uuid::Uuid, Vec<RoleBinding>> = HashMap::new();
    for (principal, binding) in state.store.all_roles(org).await? {
        roles.entry(principal).or_default().push(binding);
    }
    let mut tokens: Vec<(ApiToken, Vec<RoleBinding>)> = state
        .store
        .list_tokens(org)
        .await?
        .into_iter()
        .filter(|t| {
            authorize(
                &caller.principal,
                Action::ManageToken,
                &Resource::Token(org, t.scope),
            )
            .is_allowed()
        })
        .map(|t| {
            let r = roles.remove(t.id.as_uuid()).unwrap_or_default();
            (t, r)
        })
        .filter(|(t, r)| {
            let on = |entity: uuid::Uuid| r.iter().any(|b| b.entity_id == entity);
            (!only_org || t.scope == TokenScope::Organization)
                && ws.is_none_or(|w| on(w) || t.scope.workspace().map(|x| *x.as_uuid()) == Some(w))
                && dep.is_none_or(on)
        })
        .collect();
    sort_tokens(&mut tokens, params.sorts.as_deref())?;
    let total_count = tokens.len();
    let mut profiles = Profiles::default();
    let mut page = Vec::new();
    for (t, r) in tokens.iter().skip(offset).take(limit) {
        page.push(to_wire(&state, &mut profiles, t, r, None).await?);
    }
    Ok(Json(wire::ApiTokensPaginated {
        tokens: page,
        total_count,
        offset,
        limit,
    }))
}

/// Get an API token (never its value).
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/tokens/{tokenId}", tag = "tokens",
    params(("organizationId" = String, Path), ("tokenId" = String, Path)),
    responses((status = 200, body = wire::ApiToken), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<wire::ApiToken>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let token = managed_token(&state, &caller, org, &id).await?;
    answer(&state, &token, None).await
}

/// Update an API token's name or description.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/tokens/{tokenId}", tag = "tokens",
    params(("organizationId" = String, Path), ("tokenId" = String, Path)), request_body = wire::UpdateApiTokenRequest,
    responses((status = 200, body = wire::ApiToken), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    Json(req): Json<wire::UpdateApiTokenRequest>,
) -> Result<Json<wire::ApiToken>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let token = managed_token(&state, &caller, org, &id).await?;
    let name = match &req.name {
        Some(n) => valid_name(n, "name")?,
        None => token.name.clone(),
    };
    let description = match &req.description {
        Some(_) => valid_description(req.description.as_deref())?,
        None => token.description.clone(),
    };
    let now = now_seconds(&state);
    if !state
        .store
        .update_token(org, token.id, &name, &description, caller.actor, now)
        .await?
    {
        return Err(ApiError::not_found("token"));
    }
    let token = reload(&state, org, token.id).await?;
    answer(&state, &token, None).await
}

async fn reload(state: &AppState, org: OrganizationId, id: TokenId) -> Result<ApiToken, ApiError> {
    state
        .store
        .token(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("token"))
}

/// Rotate an API token: a new value; the previous one stops working at once, or at the
/// end of the grace window.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/tokens/{tokenId}/rotate", tag = "tokens",
    params(("organizationId" = String, Path), ("tokenId" = String, Path)), request_body(content = Option<wire::RotateApiTokenRequest>),
    responses((status = 200, body = wire::ApiToken), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody), (status = 409, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    body: Option<Json<wire::RotateApiTokenRequest>>,
) -> Result<Json<wire::ApiToken>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    rotate(&state, &caller, org, &id, req.grace_period_seconds, None).await
}

/// The rotation itself. With `expected_version` (the version a form was shown with),
/// the token must still be at it: a form sent twice rotates once.
pub(crate) async fn rotate(
    state: &AppState,
    caller: &Caller,
    org: OrganizationId,
    id: &str,
    grace_period_seconds: Option<i64>,
    expected_version: Option<i64>,
) -> Result<Json<wire::ApiToken>, ApiError> {
    let grace = GracePeriod::seconds(grace_period_seconds)?;
    if let Ok(sid) = id.parse::<tessera_core::ids::SessionId>()
        && state.store.session(sid).await?.is_some()
    {
        return Err(ApiError::BadRequest(
            "session tokens cannot be rotated: refresh them with the refresh token at /oauth/token, \
             or sign in again"
                .into(),
        ));
    }
    let token = managed_token(state, caller, org, id).await?;
    if expected_version.is_some_and(|v| v != token.version) {
        return Err(ApiError::Conflict(
            "the token changed after this form was shown; nothing was rotated".into(),
        ));
    }
    let now = now_seconds(state);
    let expiry = ExpiryPeriod::days(token.expiry_period_in_days.map(i64::from))?;
    let next = ApiToken {
        current_jti: Jti::new(),
        start_at: now,
        end_at: expiry.end_from(now),
        version: token.version + 1,
        ..token.clone()
    };
    let value = sign(state, &next)?;
    let rotation = Rotation {
        expected_version: token.version,
        new_jti: next.current_jti,
        short_token: short_token(&value),
        previous_valid_until: grace.until(now),
        start_at: next.start_at,
        end_at: next.end_at,
        rotated_at: now,
        by: caller.actor,
    };
    // What the store holds once the rotation commits, told to the status cache at once.
    let rotated = ApiToken {
        previous_jti: rotation.previous_valid_until.map(|_| token.current_jti),
        previous_valid_until: rotation.previous_valid_until,
        ..next
    };
    let committed = to_completion({
        let state = state.clone();
        async move {
            let ok = state.store.rotate_token(org, rotated.id, &rotation).await?;
            if ok {
                crate::feed::token_changed(&state, &rotated);
            }
            Ok::<_, StoreError>(ok)
        }
    })
    .await??;
    if !committed {
        return Err(ApiError::Conflict(
            "the token was rotated or deleted by another request at the same time; fetch it and retry".into(),
        ));
    }
    let token = reload(state, org, token.id).await?;
    tracing::info!(token_id = %token.id, grace_seconds = ?grace_period_seconds, "API token rotated");
    answer(state, &token, Some(&value)).await
}

/// Delete an API token for good: every value of it is rejected from now on.
#[utoipa::path(delete, path = "/v1/organizations/{organizationId}/tokens/{tokenId}", tag = "tokens",
    params(("organizationId" = String, Path), ("tokenId" = String, Path)),
    responses((status = 204), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = caller_org(&caller, &org)?;
    let token = managed_token(&state, &caller, org, &id).await?;
    let (id, by, at) = (token.id, caller.actor, now_seconds(&state));
    let deleted = to_completion({
        let state = state.clone();
        async move {
            let ok = state.store.delete_token(org, id, by, at).await?;
            if ok {
                crate::feed::token_deleted(&state, id);
                crate::feed::roles_changed(&state, Some(*id.as_uuid()));
            }
            Ok::<_, StoreError>(ok)
        }
    })
    .await??;
    if !deleted {
        return Err(ApiError::not_found("token"));
    }
    tracing::info!(token_id = %token.id, "API token deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a requested role set against the token's home, and answers the bindings.
async fn validate_token_roles(
    state: &AppState,
    org: OrganizationId,
    token: &ApiToken,
    requested: &[wire::ApiTokenRole],
) -> Result<Vec<(RoleBinding, GrantTarget)>, ApiError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let home_entity = token.scope.entity_id(org);
    let mut home_role = None;
    for r in requested {
        if r.role.entity_type() != r.entity_type {
            return Err(ApiError::BadRequest(format!(
                "role {} cannot be held on a {}",
                r.role, r.entity_type
            )));
        }
        let target = grant_target(state, org, r.entity_type, &r.entity_id).await?;
        let entity = target_entity(target);
        if !seen.insert(entity) {
            return Err(ApiError::BadRequest(format!(
                "entity {} appears more than once; a token holds one role per entity",
                r.entity_id
            )));
        }
        if entity == home_entity {
            home_role = Some(r.role);
        } else {
            // Where a token may be added besides its home.
            let allowed = match (token.scope, target) {
                (
                    TokenScope::Organization,
                    GrantTarget::Workspace(..) | GrantTarget::Deployment(..),
                ) => true,
                (TokenScope::Workspace(ws), GrantTarget::Deployment(_, dws, _)) => ws == dws,
                _ => false,
            };
            if !allowed {
                return Err(ApiError::BadRequest(format!(
                    "a {} token cannot hold a role on {} {}",
                    token.scope.kind().as_str(),
                    r.entity_type.as_str().to_lowercase(),
                    r.entity_id
                )));
            }
        }
        out.push((
            RoleBinding {
                role: r.role,
                entity_id: entity,
            },
            target,
        ));
    }
    match home_role {
        None => Err(ApiError::BadRequest(
            "roles must include the token's role on its home entity".into(),
        )),
        Some(role)
            if token.scope.kind() == ScopeKind::Deployment
                && role != Role::Deployment(DeploymentRole::Admin) =>
        {
            Err(ApiError::BadRequest(
                "a DEPLOYMENT token holds DEPLOYMENT_ADMIN".into(),
            ))
        }
        Some(_) => Ok(out),
    }
}

/// Set an API token's roles: its home role, and (for organization and workspace tokens)
/// roles in workspaces and deployments it is added to. Takes effect on the next request.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/tokens/{tokenId}/roles", tag = "tokens",
    params(("organizationId" = String, Path), ("tokenId" = String, Path)), request_body = wire::UpdateApiTokenRolesRequest,
    responses((status = 200, body = wire::ApiToken), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_token_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    Json(req): Json<wire::UpdateApiTokenRolesRequest>,
) -> Result<Json<wire::ApiToken>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let token = managed_token(&state, &caller, org, &id).await?;
    let wanted = validate_token_roles(&state, org, &token, &req.roles).await?;
    let current = state.store.roles(org, *token.id.as_uuid()).await?;
    // No escalation: every role given or changed must be one the caller could hold there.
    for (binding, target) in &wanted {
        if !current.contains(binding) {
            require(
                may_grant(&caller.principal, binding.role, *target),
                &format!(
                    "grant {} (no one may grant a role above their own)",
                    binding.role
                ),
            )?;
        }
    }
    let bindings: Vec<RoleBinding> = wanted.into_iter().map(|(b, _)| b).collect();
    super::replace_roles(&state, org, *token.id.as_uuid(), bindings, caller.actor).await?;
    let token = reload(&state, org, token.id).await?;
    answer(&state, &token, None).await
}
