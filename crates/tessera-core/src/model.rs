//! The entities Tessera keeps.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{DeploymentId, Jti, OrganizationId, TokenId, UserId, WorkspaceId};
use crate::role::{EntityType, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: DeploymentId,
    pub organization_id: OrganizationId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub full_name: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A role held on one entity by a user or an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoleBinding {
    pub role: Role,
    /// The organization, workspace or deployment id, as `role.entity_type()` says.
    pub entity_id: uuid::Uuid,
}

impl RoleBinding {
    pub fn entity_type(&self) -> EntityType {
        self.role.entity_type()
    }
}

/// Where an API token lives: its home scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScope {
    Organization,
    Workspace(WorkspaceId),
    Deployment(WorkspaceId, DeploymentId),
}

impl TokenScope {
    pub fn kind(self) -> ScopeKind {
        match self {
            Self::Organization => ScopeKind::Organization,
            Self::Workspace(_) => ScopeKind::Workspace,
            Self::Deployment(..) => ScopeKind::Deployment,
        }
    }

    pub fn workspace(self) -> Option<WorkspaceId> {
        match self {
            Self::Organization => None,
            Self::Workspace(ws) | Self::Deployment(ws, _) => Some(ws),
        }
    }

    pub fn deployment(self) -> Option<DeploymentId> {
        match self {
            Self::Deployment(_, d) => Some(d),
            _ => None,
        }
    }

    /// The id of the home entity (`entityId` on the wire).
    pub fn entity_id(self, organization: OrganizationId) -> uuid::Uuid {
        match self {
            Self::Organization => *organization.as_uuid(),
            Self::Workspace(ws) => *ws.as_uuid(),
            Self::Deployment(_, d) => *d.as_uuid(),
        }
    }
}

/// The `scope` claim and field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScopeKind {
    Organization,
    Workspace,
    Deployment,
}

impl ScopeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Organization => "ORGANIZATION",
            Self::Workspace => "WORKSPACE",
            Self::Deployment => "DEPLOYMENT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ORGANIZATION" => Some(Self::Organization),
            "WORKSPACE" => Some(Self::Workspace),
            "DEPLOYMENT" => Some(Self::Deployment),
            _ => None,
        }
    }

    /// The level a token of this scope holds its home role at.
    pub const fn entity_type(self) -> EntityType {
        match self {
            Self::Organization => EntityType::Organization,
            Self::Workspace => EntityType::Workspace,
            Self::Deployment => EntityType::Deployment,
        }
    }
}

/// Who made or changed something: a user or an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    ApiToken(TokenId),
}

impl Actor {
    pub fn id(self) -> uuid::Uuid {
        match self {
            Self::User(u) => *u.as_uuid(),
            Self::ApiToken(t) => *t.as_uuid(),
        }
    }

    /// `USER` or `SERVICEKEY`, as Astro names subject types.
    pub fn kind(self) -> &'static str {
        match self {
            Self::User(_) => "USER",
            Self::ApiToken(_) => "SERVICEKEY",
        }
    }

    pub fn from_parts(kind: &str, id: uuid::Uuid) -> Option<Self> {
        match kind {
            "USER" => Some(Self::User(UserId::from_uuid(id))),
            "SERVICEKEY" => Some(Self::ApiToken(TokenId::from_uuid(id))),
            _ => None,
        }
    }
}

/// An API token as stored: metadata and the live state of its values. Never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub description: String,
    pub scope: TokenScope,
    /// The last characters of the current value, to recognise it by.
    pub short_token: String,
    /// The `jti` of the current value.
    pub current_jti: Jti,
    /// The `jti` of the previous value and the end of its grace window, after a rotation
    /// that asked for one.
    pub previous_jti: Option<Jti>,
    pub previous_valid_until: Option<OffsetDateTime>,
    /// When the current value was issued.
    pub start_at: OffsetDateTime,
    /// When the current value expires; `None` for a token that never expires.
    pub end_at: Option<OffsetDateTime>,
    pub expiry_period_in_days: Option<u32>,
    /// Counts issued values: 1 at creation, +1 per rotation.
    pub version: i64,
    pub last_used_at: Option<OffsetDateTime>,
    pub last_rotated_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_by: Actor,
    pub updated_by: Actor,
    pub deleted_at: Option<OffsetDateTime>,
}

/// The fields a rotation changes, applied only if the token is still at `expected_version`.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub expected_version: i64,
    pub new_jti: Jti,
    pub short_token: String,
    pub previous_valid_until: Option<OffsetDateTime>,
    pub start_at: OffsetDateTime,
    pub end_at: Option<OffsetDateTime>,
    pub rotated_at: OffsetDateTime,
    pub by: Actor,
}

/// A signing key as stored: the private half sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: crate::keys::KeyAlgorithm,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub active: bool,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}
