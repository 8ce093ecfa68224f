//! Wire types of Tessera's HTTP API, shared by the server, the CLI and the SDK.
//!
//! JSON is camelCase (Astro API v1 shapes) except where an RFC fixes the names (OAuth).
//! Timestamps are RFC 3339 in UTC. Request types refuse unknown fields so that a typo
//! is an error, not a silently ignored setting.

use serde::{Deserialize, Serialize};
use tessera_core::model::ScopeKind;
use tessera_core::role::{EntityType, Role};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// Every error answer: `{"message", "requestId", "statusCode"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub message: String,
    /// The id of the request, also in the `x-request-id` header and the server's log.
    pub request_id: String,
    pub status_code: u16,
}

/// Who made or last changed something.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SubjectProfile {
    pub id: String,
    /// `USER` or `SERVICEKEY` (an API token).
    pub subject_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A role held on one entity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiTokenRole {
    #[schema(value_type = String, example = "WORKSPACE")]
    pub entity_type: EntityType,
    pub entity_id: String,
    #[schema(value_type = String, example = "WORKSPACE_OPERATOR")]
    pub role: Role,
}

/// An API token. `token` is present only in the answers to create and rotate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The last characters of the current value, to recognise it by.
    pub short_token: String,
    #[schema(value_type = String, example = "WORKSPACE")]
    pub scope: ScopeKind,
    /// Always `STANDARD`.
    pub kind: String,
    pub roles: Vec<ApiTokenRole>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_at: Option<OffsetDateTime>,
    pub expiry_period_in_days: Option<u32>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_rotated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    pub created_by: SubjectProfile,
    pub updated_by: SubjectProfile,
    /// The token value. Shown once: store it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiTokenRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[schema(value_type = String, example = "WORKSPACE")]
    pub scope: ScopeKind,
    /// The workspace or deployment id; required for those scopes.
    #[serde(default)]
    pub entity_id: Option<String>,
    #[schema(value_type = String, example = "WORKSPACE_OPERATOR")]
    pub role: Role,
    /// 1 to 3650; omitted for a token that never expires.
    #[serde(default)]
    pub token_expiry_period_in_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateApiTokenRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateApiTokenRequest {
    /// 0 to 86400: how long the previous value keeps working. Default 0 (stops at once).
    #[serde(default)]
    pub grace_period_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateApiTokenRolesRequest {
    /// The token's complete set of roles, its home role included.
    pub roles: Vec<ApiTokenRole>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokensPaginated {
    pub tokens: Vec<ApiToken>,
    pub total_count: usize,
    pub offset: usize,
    pub limit: usize,
}

/// Filters and paging for `GET .../tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListApiTokensParams {
    /// Tokens that hold a role in this workspace (workspace tokens, and organization
    /// tokens added to it).
    pub workspace_id: Option<String>,
    /// Tokens that hold a role on this deployment.
    pub deployment_id: Option<String>,
    /// Only organization tokens.
    pub include_only_organization_tokens: Option<bool>,
    /// Default 0.
    pub offset: Option<usize>,
    /// 1 to 1000, default 20.
    pub limit: Option<usize>,
    /// Comma-separated `field:asc|desc`; fields `name`, `createdAt`, `updatedAt`,
    /// `endAt`, `lastUsedAt`. Default `createdAt:asc`.
    pub sorts: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub organization_id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Create a workspace or deployment, or update an organization, workspace or deployment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameDescription {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDeploymentRequest {
    pub workspace_id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `?workspaceId=` filter for deployments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListDeploymentsParams {
    pub workspace_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceRoleAssignment {
    pub workspace_id: String,
    #[schema(value_type = String, example = "WORKSPACE_MEMBER")]
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentRoleAssignment {
    pub deployment_id: String,
    #[schema(value_type = String, example = "DEPLOYMENT_ADMIN")]
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub full_name: String,
    #[schema(value_type = Option<String>, example = "ORGANIZATION_MEMBER")]
    pub organization_role: Option<Role>,
    pub workspace_roles: Vec<WorkspaceRoleAssignment>,
    pub deployment_roles: Vec<DeploymentRoleAssignment>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The generated password, only in the answer to a create that did not set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    #[serde(default)]
    pub full_name: Option<String>,
    /// At least 12 characters. Omitted: one is generated and returned once.
    #[serde(default)]
    pub password: Option<String>,
    #[schema(value_type = String, example = "ORGANIZATION_MEMBER")]
    pub organization_role: Role,
    #[serde(default)]
    pub workspace_roles: Vec<WorkspaceRoleAssignment>,
    #[serde(default)]
    pub deployment_roles: Vec<DeploymentRoleAssignment>,
}

/// A user's complete set of roles in the organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUserRolesRequest {
    #[schema(value_type = String, example = "ORGANIZATION_MEMBER")]
    pub organization_role: Role,
    #[serde(default)]
    pub workspace_roles: Vec<WorkspaceRoleAssignment>,
    #[serde(default)]
    pub deployment_roles: Vec<DeploymentRoleAssignment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOf<T> {
    pub items: Vec<T>,
    pub total_count: usize,
}

/// RFC 7662 introspection answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `GET /v1/authz` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuthzParams {
    /// A permission name such as `deployment.deploy` or `workspace.view`.
    pub permission: Option<String>,
    /// The organization, workspace or deployment the permission is asked on.
    pub entity_id: Option<String>,
}

/// Identity headers set by `GET /v1/authz` on success.
pub mod headers {
    pub const SUBJECT: &str = "x-tessera-subject";
    pub const ORGANIZATION: &str = "x-tessera-organization";
    pub const SCOPE: &str = "x-tessera-scope";
    pub const TOKEN_ID: &str = "x-tessera-token-id";
}

/// A sign-in session, as its owner sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    /// The client that holds it: `tessera-cli`, `tessera-ui`, or `tessera-browser` (the
    /// browser's own sign-in).
    pub client_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub signed_in_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_refreshed_at: Option<OffsetDateTime>,
    /// No refresh goes past this.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The session of the token making this request.
    pub current: bool,
}

/// How many sessions were ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionsEnded {
    pub ended: usize,
}
