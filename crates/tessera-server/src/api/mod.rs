//! The `/v1` management API.

pub mod me;
pub mod organizations;
pub mod tokens;
pub mod users;

use tessera_core::ids::OrganizationId;
use tessera_core::policy::Decision;
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::error::ApiError;

/// Runs `work` to its end even if the request that asked for it is dropped (a client
/// gone, the request timeout): a write that commits must also reach the caches that
/// the validation path reads, with no await between the two that could be cancelled.
pub(crate) async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(work)
        .await
        .map_err(|e| ApiError::Internal(format!("write task failed: {e}")))
}

/// Replaces the roles `principal` holds in `org` and forgets the cached ones, to the end
/// even if the request is dropped.
pub(crate) async fn replace_roles(
    state: &crate::state::AppState,
    org: OrganizationId,
    principal: uuid::Uuid,
    bindings: Vec<tessera_core::model::RoleBinding>,
    by: tessera_core::model::Actor,
) -> Result<(), ApiError> {
    let at = now_seconds(state);
    let state = state.clone();
    to_completion(async move {
        state
            .store
            .replace_roles(org, principal, &bindings, by, at)
            .await?;
        crate::feed::roles_changed(&state, Some(principal));
        Ok::<_, tessera_core::store::StoreError>(())
    })
    .await??;
    Ok(())
}

/// The organization of the path, which must be the caller's: any other answers 404.
pub(crate) fn caller_org(caller: &Caller, raw: &str) -> Result<OrganizationId, ApiError> {
    match raw.parse::<OrganizationId>() {
        Ok(id) if id == caller.organization_id() => Ok(id),
        _ => Err(ApiError::not_found("organization")),
    }
}

/// Turns a policy decision into a result. `what` completes "you may not ...".
pub(crate) fn require(decision: Decision, what: &str) -> Result<(), ApiError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny => Err(ApiError::Forbidden(format!(
            "permission denied: your role does not allow you to {what}"
        ))),
        Decision::NotFound => Err(ApiError::NotFound("not found".into())),
    }
}

/// A path id: malformed ids are simply ids that do not exist.
pub(crate) fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}

/// A body id: malformed ids are a bad request, named.
pub(crate) fn body_id<T: std::str::FromStr>(raw: &str, field: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("{field} {raw:?} is not a valid id")))
}

pub(crate) const MAX_NAME: usize = 256;
pub(crate) const MAX_DESCRIPTION: usize = 2048;

/// A required name: trimmed, not empty, at most 256 characters, no control characters.
pub(crate) fn valid_name(raw: &str, field: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be empty")));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::BadRequest(format!(
            "{field} is longer than {MAX_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(name.to_owned())
}

pub(crate) fn valid_description(raw: Option<&str>) -> Result<String, ApiError> {
    let d = raw.unwrap_or_default().trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::BadRequest(format!(
            "description is longer than {MAX_DESCRIPTION} characters"
        )));
    }
    // Line breaks and tabs are text; other control characters (NUL above all) are not.
    if d.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::BadRequest(
            "description must not contain control characters".into(),
        ));
    }
    Ok(d.to_owned())
}

/// Now, to the second: stored times and token claims have second precision.
pub(crate) fn now_seconds(state: &crate::state::AppState) -> OffsetDateTime {
    let now = state.clock.now();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// Resolves an entity named in a request body to where a role would be granted,
/// checking that it exists in `org`.
pub(crate) async fn grant_target(
    state: &crate::state::AppState,
    org: OrganizationId,
    entity_type: tessera_core::role::EntityType,
    entity_id: &str,
) -> Result<tessera_core::policy::GrantTarget, ApiError> {
    use tessera_core::policy::GrantTarget;
    use tessera_core::role::EntityType;
    match entity_type {
        EntityType::Organization => {
            let id: OrganizationId = body_id(entity_id, "entityId")?;
            if id != org {
                return Err(ApiError::NotFound(format!(
                    "organization {entity_id} not found"
                )));
            }
            Ok(GrantTarget::Organization(org))
        }
        EntityType::Workspace => {
            let id = body_id(entity_id, "entityId")?;
            let ws =
                state.store.workspace(org, id).await?.ok_or_else(|| {
                    ApiError::NotFound(format!("workspace {entity_id} not found"))
                })?;
            Ok(GrantTarget::Workspace(org, ws.id))
        }
        EntityType::Deployment => {
            let id = body_id(entity_id, "entityId")?;
            let d =
                state.store.deployment(org, id).await?.ok_or_else(|| {
                    ApiError::NotFound(format!("deployment {entity_id} not found"))
                })?;
            Ok(GrantTarget::Deployment(org, d.workspace_id, d.id))
        }
    }
}

/// The entity id a grant target names.
pub(crate) fn target_entity(target: tessera_core::policy::GrantTarget) -> uuid::Uuid {
    use tessera_core::policy::GrantTarget;
    match target {
        GrantTarget::Organization(o) => *o.as_uuid(),
        GrantTarget::Workspace(_, w) => *w.as_uuid(),
        GrantTarget::Deployment(_, _, d) => *d.as_uuid(),
    }
}
