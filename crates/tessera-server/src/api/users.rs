//! Users of an organization and their roles.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_api as wire;
use tessera_core::ids::{OrganizationId, UserId};
use tessera_core::model::{RoleBinding, User};
use tessera_core::password::{self, PasswordCost};
use tessera_core::policy::{Action, GrantTarget, Resource, authorize, may_grant};
use tessera_core::role::{EntityType, OrganizationRole, Role};
use tessera_core::secret::{Password, random_string};

use super::{caller_org, grant_target, now_seconds, path_id, require, target_entity};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn user_wire(u: &User, roles: &[RoleBinding], password: Option<String>) -> wire::User {
    let mut out = wire::User {
        id: u.id.to_string(),
        email: u.email.clone(),
        full_name: u.full_name.clone(),
        organization_role: None,
        workspace_roles: Vec::new(),
        deployment_roles: Vec::new(),
        created_at: u.created_at,
        updated_at: u.updated_at,
        password,
    };
    for b in roles {
        match b.entity_type() {
            EntityType::Organization => out.organization_role = Some(b.role),
            EntityType::Workspace => out.workspace_roles.push(wire::WorkspaceRoleAssignment {
                workspace_id: b.entity_id.to_string(),
                role: b.role,
            }),
            EntityType::Deployment => out.deployment_roles.push(wire::DeploymentRoleAssignment {
                deployment_id: b.entity_id.to_string(),
                role: b.role,
            }),
        }
    }
    out
}

/// A plausible email address: one `@`, something on each side, no spaces, not too long.
pub(crate) fn valid_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok {
        Ok(email)
    } else {
        Err(ApiError::BadRequest(format!(
            "{raw:?} is not a valid email address"
        )))
    }
}

/// Resolves a complete role set from a request and checks its shape.
async fn requested_roles(
    state: &AppState,
    org: OrganizationId,
    organization_role: Role,
    workspace_roles: &[wire::WorkspaceRoleAssignment],
    deployment_roles: &[wire::DeploymentRoleAssignment],
) -> Result<Vec<(RoleBinding, GrantTarget)>, ApiError> {
    if organization_role.entity_type() != EntityType::Organization {
        return Err(ApiError::BadRequest(format!(
            "organizationRole must be an ORGANIZATION_* role, not {organization_role}"
        )));
    }
    let mut entries = vec![(EntityType::Organization, org.to_string(), organization_role)];
    entries.extend(
        workspace_roles
            .iter()
            .map(|w| (EntityType::Workspace, w.workspace_id.clone(), w.role)),
    );
    entries.extend(
        deployment_roles
            .iter()
            .map(|d| (EntityType::Deployment, d.deployment_id.clone(), d.role)),
    );
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (entity_type, id, role) in entries {
        if role.entity_type() != entity_type {
            return Err(ApiError::BadRequest(format!(
                "role {role} cannot be held on a {entity_type}"
            )));
        }
        let target = grant_target(state, org, entity_type, &id).await?;
        let entity = target_entity(target);
        if !seen.insert(entity) {
            return Err(ApiError::BadRequest(format!("{id} appears more than once")));
        }
        out.push((
            RoleBinding {
                role,
                entity_id: entity,
            },
            target,
        ));
    }
    Ok(out)
}

/// The user-management action needed to change roles on `target`.
fn managing(target: GrantTarget) -> (Action, Resource) {
    match target {
        GrantTarget::Organization(o) => (Action::ManageUsers, Resource::Organization(o)),
        GrantTarget::Workspace(o, w) | GrantTarget::Deployment(o, w, _) => {
            (Action::ManageWorkspaceUsers, Resource::Workspace(o, w))
        }
    }
}

/// Refuses a change that would leave the organization without an owner.
async fn keep_an_owner(
    state: &AppState,
    org: OrganizationId,
    user: UserId,
    new_roles: &[RoleBinding],
) -> Result<(), ApiError> {
    let owner = Role::Organization(OrganizationRole::Owner);
    if new_roles.iter().any(|b| b.role == owner) {
        return Ok(());
    }
    let users: HashSet<uuid::Uuid> = state
        .store
        .list_members(org)
        .await?
        .iter()
        .map(|u| *u.id.as_uuid())
        .collect();
    let other_owner = state
        .store
        .all_roles(org)
        .await?
        .iter()
        .any(|(p, b)| b.role == owner && *p != *user.as_uuid() && users.contains(p));
    if other_owner {
        Ok(())
    } else {
        Err(ApiError::Conflict(
            "an organization keeps at least one ORGANIZATION_OWNER user".into(),
        ))
    }
}

/// Create a user in the organization, with roles.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/users", tag = "users",
    params(("organizationId" = String, Path)), request_body = wire::CreateUserRequest,
    responses((status = 200, body = wire::User), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 409, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Json(req): Json<wire::CreateUserRequest>,
) -> Result<Json<wire::User>, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::ManageUsers,
            &Resource::Organization(org),
        ),
        "create users",
    )?;
    let email = valid_email(&req.email)?;
    let full_name = match req.full_name.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(name) => super::valid_name(name, "fullName")?,
    };
    let roles = requested_roles(
        &state,
        org,
        req.organization_role,
        &req.workspace_roles,
        &req.deployment_roles,
    )
    .await?;
    for (b, target) in &roles {
        require(
            may_grant(&caller.principal, b.role, *target),
            &format!("grant {}", b.role),
        )?;
    }
    let (password, generated) = match req.password {
        Some(p) => (Password::new(p), false),
        None => (Password::new(random_string(18)), true),
    };
    password::check_strength(&password)?;
    let now = now_seconds(&state);
    let user = User {
        id: UserId::new(),
        email,
        full_name,
        created_at: now,
        updated_at: now,
    };
    let bindings: Vec<RoleBinding> = roles.into_iter().map(|(b, _)| b).collect();
    let hash = hash_password(password.clone(), state.config.password_cost).await?;
    crate::api::to_completion({
        let (state, user, bindings) = (state.clone(), user.clone(), bindings.clone());
        async move {
            state
                .store
                .create_user(&user, &hash, org, &bindings)
                .await?;
            // The person may hold roles elsewhere already: those cached stand, these
            // are new.
            crate::feed::roles_changed(&state, Some(*user.id.as_uuid()));
            Ok::<_, tessera_core::store::StoreError>(())
        }
    })
    .await??;
    tracing::info!(user_id = %user.id, "user created");
    Ok(Json(user_wire(
        &user,
        &bindings,
        generated.then(|| password.expose().to_owned()),
    )))
}

/// argon2id off the async executor.
pub async fn hash_password(password: Password, cost: PasswordCost) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&password, cost))
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing task failed: {e}")))
}

/// List the organization's users with their roles.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/users", tag = "users",
    params(("organizationId" = String, Path)),
    responses((status = 200, body = wire::ListOf<wire::User>), (status = 403, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<wire::ListOf<wire::User>>, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::ViewOrganization,
            &Resource::Organization(org),
        ),
        "view this organization's users",
    )?;
    let mut roles: HashMap<uuid::Uuid, Vec<RoleBinding>> = HashMap::new();
    for (p, b) in state.store.all_roles(org).await? {
        roles.entry(p).or_default().push(b);
    }
    let items: Vec<_> = state
        .store
        .list_members(org)
        .await?
        .iter()
        .map(|u| {
            user_wire(
                u,
                roles
                    .get(u.id.as_uuid())
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                None,
            )
        })
        .collect();
    Ok(Json(wire::ListOf {
        total_count: items.len(),
        items,
    }))
}

async fn member(
    state: &AppState,
    org: OrganizationId,
    raw: &str,
) -> Result<(User, Vec<RoleBinding>), ApiError> {
    let id: UserId = path_id(raw, "user")?;
    let roles = state.store.roles(org, *id.as_uuid()).await?;
    let user = state
        .store
        .user(id)
        .await?
        .filter(|_| !roles.is_empty())
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok((user, roles))
}

/// Get a user of the organization.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/users/{userId}", tag = "users",
    params(("organizationId" = String, Path), ("userId" = String, Path)),
    responses((status = 200, body = wire::User), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<Json<wire::User>, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::ViewOrganization,
            &Resource::Organization(org),
        ),
        "view this organization's users",
    )?;
    let (user, roles) = member(&state, org, &user).await?;
    Ok(Json(user_wire(&user, &roles, None)))
}

/// Set a user's complete set of roles in the organization.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/users/{userId}/roles", tag = "users",
    params(("organizationId" = String, Path), ("userId" = String, Path)), request_body = wire::UpdateUserRolesRequest,
    responses((status = 200, body = wire::User), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody), (status = 409, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_user_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    Json(req): Json<wire::UpdateUserRolesRequest>,
) -> Result<Json<wire::User>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let (user, current) = member(&state, org, &user).await?;
    let wanted = requested_roles(
        &state,
        org,
        req.organization_role,
        &req.workspace_roles,
        &req.deployment_roles,
    )
    .await?;
    // Every entity whose role changes needs its manager's permission; every role given
    // must be one the caller could hold there.
    for (b, target) in &wanted {
        if !current.contains(b) {
            let (action, resource) = managing(*target);
            require(
                authorize(&caller.principal, action, &resource),
                "change these roles",
            )?;
            require(
                may_grant(&caller.principal, b.role, *target),
                &format!("grant {}", b.role),
            )?;
        }
    }
    for b in &current {
        if !wanted.iter().any(|(w, _)| w.entity_id == b.entity_id) {
            match grant_target(&state, org, b.entity_type(), &b.entity_id.to_string()).await {
                Ok(target) => {
                    let (action, resource) = managing(target);
                    require(
                        authorize(&caller.principal, action, &resource),
                        "remove these roles",
                    )?;
                }
                // A role on an entity that no longer exists: only user managers drop it.
                Err(ApiError::NotFound(_)) => require(
                    authorize(
                        &caller.principal,
                        Action::ManageUsers,
                        &Resource::Organization(org),
                    ),
                    "remove these roles",
                )?,
                Err(e) => return Err(e),
            }
        }
    }
    let bindings: Vec<RoleBinding> = wanted.into_iter().map(|(b, _)| b).collect();
    keep_an_owner(&state, org, user.id, &bindings).await?;
    crate::api::replace_roles(
        &state,
        org,
        *user.id.as_uuid(),
        bindings.clone(),
        caller.actor,
    )
    .await?;
    Ok(Json(user_wire(&user, &bindings, None)))
}

/// Remove a user from the organization (every role in it).
#[utoipa::path(delete, path = "/v1/organizations/{organizationId}/users/{userId}", tag = "users",
    params(("organizationId" = String, Path), ("userId" = String, Path)),
    responses((status = 204), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody), (status = 409, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::ManageUsers,
            &Resource::Organization(org),
        ),
        "remove users",
    )?;
    let (user, _) = member(&state, org, &user).await?;
    keep_an_owner(&state, org, user.id, &[]).await?;
    crate::api::replace_roles(&state, org, *user.id.as_uuid(), Vec::new(), caller.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
