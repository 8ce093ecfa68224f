//! Organizations, workspaces and deployments.

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use tessera_api as wire;
use tessera_core::ids::{DeploymentId, OrganizationId, TokenId, WorkspaceId};
use tessera_core::model::{Deployment, Organization, Workspace};
use tessera_core::policy::{Action, Resource, authorize};
use tessera_core::store::{Store, StoreError, StoreResult};

use super::{
    caller_org, now_seconds, path_id, require, to_completion, valid_description, valid_name,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn org_wire(o: &Organization) -> wire::Organization {
    wire::Organization {
        id: o.id.to_string(),
        name: o.name.clone(),
        description: o.description.clone(),
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

pub(crate) fn workspace_wire(w: &Workspace) -> wire::Workspace {
    wire::Workspace {
        id: w.id.to_string(),
        organization_id: w.organization_id.to_string(),
        name: w.name.clone(),
        description: w.description.clone(),
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

pub(crate) fn deployment_wire(d: &Deployment) -> wire::Deployment {
    wire::Deployment {
        id: d.id.to_string(),
        organization_id: d.organization_id.to_string(),
        workspace_id: d.workspace_id.to_string(),
        name: d.name.clone(),
        description: d.description.clone(),
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

async fn load_org(state: &AppState, id: OrganizationId) -> Result<Organization, ApiError> {
    state
        .store
        .organization(id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

/// List the organizations the caller belongs to.
#[utoipa::path(get, path = "/v1/organizations", tag = "organizations",
    responses((status = 200, body = wire::ListOf<wire::Organization>), (status = 401, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_organizations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<wire::ListOf<wire::Organization>>, ApiError> {
    let org = load_org(&state, caller.organization_id()).await?;
    Ok(Json(wire::ListOf {
        items: vec![org_wire(&org)],
        total_count: 1,
    }))
}

/// Create an organization. API tokens live inside one organization and cannot create
/// another: operators create organizations with `tessera admin bootstrap`.
#[utoipa::path(post, path = "/v1/organizations", tag = "organizations", request_body = wire::NameDescription,
    responses((status = 403, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_organization(
    _caller: Caller,
    Json(_req): Json<wire::NameDescription>,
) -> Result<Json<wire::Organization>, ApiError> {
    Err(ApiError::Forbidden(
        "an API token cannot create organizations; an operator creates one with \
         `tessera admin bootstrap --organization NAME --email EMAIL`"
            .into(),
    ))
}

/// Get an organization.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}", tag = "organizations",
    params(("organizationId" = String, Path)),
    responses((status = 200, body = wire::Organization), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_organization(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<wire::Organization>, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::ViewOrganization,
            &Resource::Organization(org),
        ),
        "view this organization",
    )?;
    Ok(Json(org_wire(&load_org(&state, org).await?)))
}

/// Update an organization's name or description.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}", tag = "organizations",
    params(("organizationId" = String, Path)), request_body = wire::NameDescription,
    responses((status = 200, body = wire::Organization), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_organization(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Json(req): Json<wire::NameDescription>,
) -> Result<Json<wire::Organization>, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::UpdateOrganization,
            &Resource::Organization(org),
        ),
        "update this organization",
    )?;
    let mut o = load_org(&state, org).await?;
    if let Some(name) = &req.name {
        o.name = valid_name(name, "name")?;
    }
    if req.description.is_some() {
        o.description = valid_description(req.description.as_deref())?;
    }
    o.updated_at = now_seconds(&state);
    state.store.update_organization(&o).await?;
    Ok(Json(org_wire(&o)))
}

pub(crate) async fn load_workspace(
    state: &AppState,
    org: OrganizationId,
    id: WorkspaceId,
) -> Result<Workspace, ApiError> {
    state
        .store
        .workspace(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))
}

pub(crate) async fn load_deployment(
    state: &AppState,
    org: OrganizationId,
    id: DeploymentId,
) -> Result<Deployment, ApiError> {
    state
        .store
        .deployment(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))
}

/// List the workspaces the caller can see.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/workspaces", tag = "workspaces",
    params(("organizationId" = String, Path)),
    responses((status = 200, body = wire::ListOf<wire::Workspace>), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<wire::ListOf<wire::Workspace>>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let items: Vec<_> = state
        .store
        .list_workspaces(org)
        .await?
        .iter()
        .filter(|w| {
            authorize(
                &caller.principal,
                Action::ViewWorkspace,
                &Resource::Workspace(org, w.id),
            )
            .is_allowed()
        })
        .map(workspace_wire)
        .collect();
    Ok(Json(wire::ListOf {
        total_count: items.len(),
        items,
    }))
}

/// Create a workspace.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/workspaces", tag = "workspaces",
    params(("organizationId" = String, Path)), request_body = wire::NameDescription,
    responses((status = 200, body = wire::Workspace), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Json(req): Json<wire::NameDescription>,
) -> Result<Json<wire::Workspace>, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::CreateWorkspace,
            &Resource::Organization(org),
        ),
        "create workspaces",
    )?;
    let now = now_seconds(&state);
    let ws = Workspace {
        id: WorkspaceId::new(),
        organization_id: org,
        name: valid_name(req.name.as_deref().unwrap_or_default(), "name")?,
        description: valid_description(req.description.as_deref())?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_workspace(&ws).await?;
    Ok(Json(workspace_wire(&ws)))
}

/// Get a workspace.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/workspaces/{workspaceId}", tag = "workspaces",
    params(("organizationId" = String, Path), ("workspaceId" = String, Path)),
    responses((status = 200, body = wire::Workspace), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, ws)): Path<(String, String)>,
) -> Result<Json<wire::Workspace>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let ws = load_workspace(&state, org, path_id(&ws, "workspace")?).await?;
    require(
        authorize(
            &caller.principal,
            Action::ViewWorkspace,
            &Resource::Workspace(org, ws.id),
        ),
        "view this workspace",
    )?;
    Ok(Json(workspace_wire(&ws)))
}

/// Update a workspace's name or description.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/workspaces/{workspaceId}", tag = "workspaces",
    params(("organizationId" = String, Path), ("workspaceId" = String, Path)), request_body = wire::NameDescription,
    responses((status = 200, body = wire::Workspace), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, ws)): Path<(String, String)>,
    Json(req): Json<wire::NameDescription>,
) -> Result<Json<wire::Workspace>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let mut ws = load_workspace(&state, org, path_id(&ws, "workspace")?).await?;
    require(
        authorize(
            &caller.principal,
            Action::UpdateWorkspace,
            &Resource::Workspace(org, ws.id),
        ),
        "update this workspace",
    )?;
    if let Some(name) = &req.name {
        ws.name = valid_name(name, "name")?;
    }
    if req.description.is_some() {
        ws.description = valid_description(req.description.as_deref())?;
    }
    ws.updated_at = now_seconds(&state);
    state.store.update_workspace(&ws).await?;
    Ok(Json(workspace_wire(&ws)))
}

/// Delete an empty workspace; its workspace tokens are deleted with it.
#[utoipa::path(delete, path = "/v1/organizations/{organizationId}/workspaces/{workspaceId}", tag = "workspaces",
    params(("organizationId" = String, Path), ("workspaceId" = String, Path)),
    responses((status = 204), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody), (status = 409, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, ws)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = caller_org(&caller, &org)?;
    let ws = load_workspace(&state, org, path_id(&ws, "workspace")?).await?;
    require(
        authorize(
            &caller.principal,
            Action::DeleteWorkspace,
            &Resource::Workspace(org, ws.id),
        ),
        "delete this workspace",
    )?;
    let (id, at) = (ws.id, now_seconds(&state));
    delete_entity(&state, move |store| async move {
        store.delete_workspace(org, id, at).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a workspace or deployment (`delete` answers the tokens that went with it) to
/// the end, and tells the caches: those tokens are deleted, and the roles held on the
/// entity are gone, whoever held them.
async fn delete_entity<F, Fut>(state: &AppState, delete: F) -> Result<(), ApiError>
where
    F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: Future<Output = StoreResult<Vec<TokenId>>> + Send,
{
    let state = state.clone();
    to_completion(async move {
        let tokens = delete(state.store.clone()).await?;
        for t in tokens {
            crate::feed::token_deleted(&state, t);
        }
        crate::feed::roles_changed(&state, None);
        Ok::<_, StoreError>(())
    })
    .await??;
    Ok(())
}

/// List the deployments the caller can see, optionally of one workspace.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/deployments", tag = "deployments",
    params(("organizationId" = String, Path), wire::ListDeploymentsParams),
    responses((status = 200, body = wire::ListOf<wire::Deployment>), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_deployments(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Query(params): Query<wire::ListDeploymentsParams>,
) -> Result<Json<wire::ListOf<wire::Deployment>>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let ws = params
        .workspace_id
        .as_deref()
        .map(|w| super::body_id::<WorkspaceId>(w, "workspaceId"))
        .transpose()?;
    let items: Vec<_> = state
        .store
        .list_deployments(org, ws)
        .await?
        .iter()
        .filter(|d| {
            authorize(
                &caller.principal,
                Action::ViewDeployment,
                &Resource::Deployment(org, d.workspace_id, d.id),
            )
            .is_allowed()
        })
        .map(deployment_wire)
        .collect();
    Ok(Json(wire::ListOf {
        total_count: items.len(),
        items,
    }))
}

/// Create a deployment in a workspace.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/deployments", tag = "deployments",
    params(("organizationId" = String, Path)), request_body = wire::CreateDeploymentRequest,
    responses((status = 200, body = wire::Deployment), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_deployment(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Json(req): Json<wire::CreateDeploymentRequest>,
) -> Result<Json<wire::Deployment>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let ws_id: WorkspaceId = super::body_id(&req.workspace_id, "workspaceId")?;
    let ws = load_workspace(&state, org, ws_id).await?;
    require(
        authorize(
            &caller.principal,
            Action::CreateDeployment,
            &Resource::Workspace(org, ws.id),
        ),
        "create deployments in this workspace",
    )?;
    let now = now_seconds(&state);
    let d = Deployment {
        id: DeploymentId::new(),
        organization_id: org,
        workspace_id: ws.id,
        name: valid_name(&req.name, "name")?,
        description: valid_description(req.description.as_deref())?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_deployment(&d).await?;
    Ok(Json(deployment_wire(&d)))
}

/// Get a deployment.
#[utoipa::path(get, path = "/v1/organizations/{organizationId}/deployments/{deploymentId}", tag = "deployments",
    params(("organizationId" = String, Path), ("deploymentId" = String, Path)),
    responses((status = 200, body = wire::Deployment), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_deployment(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, dep)): Path<(String, String)>,
) -> Result<Json<wire::Deployment>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let d = load_deployment(&state, org, path_id(&dep, "deployment")?).await?;
    require(
        authorize(
            &caller.principal,
            Action::ViewDeployment,
            &Resource::Deployment(org, d.workspace_id, d.id),
        ),
        "view this deployment",
    )?;
    Ok(Json(deployment_wire(&d)))
}

/// Update a deployment's name or description.
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/deployments/{deploymentId}", tag = "deployments",
    params(("organizationId" = String, Path), ("deploymentId" = String, Path)), request_body = wire::NameDescription,
    responses((status = 200, body = wire::Deployment), (status = 400, body = wire::ErrorBody), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_deployment(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, dep)): Path<(String, String)>,
    Json(req): Json<wire::NameDescription>,
) -> Result<Json<wire::Deployment>, ApiError> {
    let org = caller_org(&caller, &org)?;
    let mut d = load_deployment(&state, org, path_id(&dep, "deployment")?).await?;
    require(
        authorize(
            &caller.principal,
            Action::UpdateDeployment,
            &Resource::Deployment(org, d.workspace_id, d.id),
        ),
        "update this deployment",
    )?;
    if let Some(name) = &req.name {
        d.name = valid_name(name, "name")?;
    }
    if req.description.is_some() {
        d.description = valid_description(req.description.as_deref())?;
    }
    d.updated_at = now_seconds(&state);
    state.store.update_deployment(&d).await?;
    Ok(Json(deployment_wire(&d)))
}

/// Delete a deployment; its deployment tokens are deleted with it.
#[utoipa::path(delete, path = "/v1/organizations/{organizationId}/deployments/{deploymentId}", tag = "deployments",
    params(("organizationId" = String, Path), ("deploymentId" = String, Path)),
    responses((status = 204), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_deployment(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, dep)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = caller_org(&caller, &org)?;
    let d = load_deployment(&state, org, path_id(&dep, "deployment")?).await?;
    require(
        authorize(
            &caller.principal,
            Action::DeleteDeployment,
            &Resource::Deployment(org, d.workspace_id, d.id),
        ),
        "delete this deployment",
    )?;
    let (id, at) = (d.id, now_seconds(&state));
    delete_entity(&state, move |store| async move {
        store.delete_deployment(org, id, at).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
