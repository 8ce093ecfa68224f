//! The storage traits, split by capability. Backends live in `tessera-store`.
//!
//! A lookup answers `Ok(None)` for "not there" and `Err` for "could not ask": an outage
//! is never mistaken for absence.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ids::{DeploymentId, OrganizationId, SessionId, TokenId, UserId, WorkspaceId};
use crate::model::{
    Actor, ApiToken, Deployment, Organization, RoleBinding, Rotation, StoredKey, User, Workspace,
};
use crate::session::{AuthorizationCode, DeviceGrant, OAuthClient, Redemption, Session};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or failed; the caller fails closed (503).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule or a concurrent change refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refused a value (for example a NUL byte in text).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// A row could not be read back into the domain: a bug or tampering.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait OrganizationStore: Send + Sync {
    async fn create_organization(&self, org: &Organization) -> StoreResult<()>;
    async fn organization(&self, id: OrganizationId) -> StoreResult<Option<Organization>>;
    async fn list_organizations(&self) -> StoreResult<Vec<Organization>>;
    async fn update_organization(&self, org: &Organization) -> StoreResult<()>;
}

#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    async fn create_workspace(&self, ws: &Workspace) -> StoreResult<()>;
    async fn workspace(
        &self,
        org: OrganizationId,
        id: WorkspaceId,
    ) -> StoreResult<Option<Workspace>>;
    async fn list_workspaces(&self, org: OrganizationId) -> StoreResult<Vec<Workspace>>;
    async fn update_workspace(&self, ws: &Workspace) -> StoreResult<()>;
    /// Deletes an empty workspace (`Conflict` while it has deployments), deletes the
    /// tokens whose home it is and every role held on it. Answers the deleted tokens.
    async fn delete_workspace(
        &self,
        org: OrganizationId,
        id: WorkspaceId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<TokenId>>;
}

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    async fn create_deployment(&self, d: &Deployment) -> StoreResult<()>;
    async fn deployment(
        &self,
        org: OrganizationId,
        id: DeploymentId,
    ) -> StoreResult<Option<Deployment>>;
    async fn list_deployments(
        &self,
        org: OrganizationId,
        workspace: Option<WorkspaceId>,
    ) -> StoreResult<Vec<Deployment>>;
    async fn update_deployment(&self, d: &Deployment) -> StoreResult<()>;
    /// Deletes the deployment, the tokens whose home it is and every role held on it.
    async fn delete_deployment(
        &self,
        org: OrganizationId,
        id: DeploymentId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<TokenId>>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user and makes it a member of `org` with `roles` (one of them the
    /// organization role). `Conflict` when the email is taken.
    async fn create_user(
        &self,
        user: &User,
        password_hash: &str,
        org: OrganizationId,
        roles: &[RoleBinding],
    ) -> StoreResult<()>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The user and its password hash, by email (case-insensitive).
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<(User, String)>>;
    /// Users holding any role in `org`.
    async fn list_members(&self, org: OrganizationId) -> StoreResult<Vec<User>>;
}

#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Every role `principal` (a user or token id) holds in `org`.
    async fn roles(
        &self,
        org: OrganizationId,
        principal: uuid::Uuid,
    ) -> StoreResult<Vec<RoleBinding>>;
    /// Every role held in `org`, by principal id.
    async fn all_roles(&self, org: OrganizationId) -> StoreResult<Vec<(uuid::Uuid, RoleBinding)>>;
    /// Replaces every role `principal` holds in `org`, in one transaction that also
    /// records who changed a token's roles and when (`updatedAt`, `updatedBy`). A
    /// deleted token gets no roles back: `Conflict`.
    async fn replace_roles(
        &self,
        org: OrganizationId,
        principal: uuid::Uuid,
        roles: &[RoleBinding],
        by: Actor,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Creates the token and its roles in one transaction.
    async fn create_token(&self, token: &ApiToken, roles: &[RoleBinding]) -> StoreResult<()>;
    /// A token of `org`, deleted ones included (the caller decides what they mean).
    async fn token(&self, org: OrganizationId, id: TokenId) -> StoreResult<Option<ApiToken>>;
    /// Any token by id, for the status cache.
    async fn token_by_id(&self, id: TokenId) -> StoreResult<Option<ApiToken>>;
    /// The live (not deleted) tokens of `org`.
    async fn list_tokens(&self, org: OrganizationId) -> StoreResult<Vec<ApiToken>>;
    /// Every token, deleted ones included, to load the status cache.
    async fn all_tokens(&self) -> StoreResult<Vec<ApiToken>>;
    /// Updates name and description of a live token; `false` if there is none.
    async fn update_token(
        &self,
        org: OrganizationId,
        id: TokenId,
        name: &str,
        description: &str,
        by: Actor,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Applies a rotation if the token is live and still at `rotation.expected_version`;
    /// `false` otherwise (someone else rotated or deleted it first).
    async fn rotate_token(
        &self,
        org: OrganizationId,
        id: TokenId,
        rotation: &Rotation,
    ) -> StoreResult<bool>;
    /// Tombstones a live token and drops its roles; `false` if there is none.
    async fn delete_token(
        &self,
        org: OrganizationId,
        id: TokenId,
        by: Actor,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Records `lastUsedAt` for many tokens at once; never moves a time backwards.
    async fn record_last_used(&self, uses: &[(TokenId, OffsetDateTime)]) -> StoreResult<()>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Adds a key; when `key.active`, it becomes the only active one.
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Retires a key that is not the active one; `false` if there is no such key.
    async fn retire_signing_key(&self, kid: &str, at: OffsetDateTime) -> StoreResult<bool>;
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Creates or updates a client.
    async fn upsert_client(&self, client: &OAuthClient, at: OffsetDateTime) -> StoreResult<()>;
    async fn client(&self, id: &str) -> StoreResult<Option<OAuthClient>>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session; `cookie_hash` for a browser sign-in.
    async fn create_session(&self, session: &Session, cookie_hash: Option<&str>)
    -> StoreResult<()>;
    async fn session(&self, id: SessionId) -> StoreResult<Option<Session>>;
    /// The browser sign-in session whose cookie hashes to `cookie_hash`.
    async fn session_by_cookie(&self, cookie_hash: &str) -> StoreResult<Option<Session>>;
    /// A user's sessions that have not ended (expired ones included until they are pruned).
    async fn user_sessions(&self, user: UserId) -> StoreResult<Vec<Session>>;
    /// Sessions neither ended nor past their absolute expiry at `now`, to load the cache.
    async fn live_sessions(&self, now: OffsetDateTime) -> StoreResult<Vec<Session>>;
    /// Ends a session; `false` if it had already ended or does not exist.
    async fn end_session(&self, id: SessionId, at: OffsetDateTime) -> StoreResult<bool>;
    /// Ends every live session of a user; answers them.
    async fn end_user_sessions(
        &self,
        user: UserId,
        org: Option<OrganizationId>,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<SessionId>>;

    async fn insert_refresh_token(
        &self,
        hash: &str,
        session: SessionId,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Uses the refresh token `old_hash` once and, on first use, stores `new_hash` for the
    /// same session and records the refresh, in one transaction.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        at: OffsetDateTime,
    ) -> StoreResult<Redemption<SessionId>>;
    /// The session of a refresh token, used or not.
    async fn refresh_token_session(&self, hash: &str) -> StoreResult<Option<SessionId>>;

    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    /// Marks the code used and names the session its redemption will create, in one
    /// statement; a second presentation is `Reused` (with that session).
    async fn redeem_code(
        &self,
        hash: &str,
        at: OffsetDateTime,
        session: SessionId,
    ) -> StoreResult<Redemption<AuthorizationCode>>;

    async fn insert_device_grant(&self, grant: &DeviceGrant) -> StoreResult<()>;
    async fn device_grant(&self, hash: &str) -> StoreResult<Option<DeviceGrant>>;
    async fn device_grant_by_user_code(&self, user_code: &str) -> StoreResult<Option<DeviceGrant>>;
    async fn record_device_poll(
        &self,
        hash: &str,
        at: OffsetDateTime,
        interval_seconds: i64,
    ) -> StoreResult<()>;
    /// Approves (with who) or denies a pending, unexpired grant; `false` otherwise.
    async fn decide_device_grant(
        &self,
        user_code: &str,
        approval: Option<(UserId, Option<OrganizationId>, OffsetDateTime)>,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Moves an approved grant to redeemed; `false` if it was not approved (a race lost).
    async fn redeem_device_grant(&self, hash: &str) -> StoreResult<bool>;
    /// Deletes what ended or expired before `before`: authorization codes, device
    /// grants, sessions and their refresh tokens. Answers how many rows went.
    async fn purge_expired(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// Everything a Tessera server needs from its database.
#[async_trait]
pub trait Store:
    OrganizationStore
    + WorkspaceStore
    + DeploymentStore
    + UserStore
    + RoleStore
    + TokenStore
    + KeyStore
    + ClientStore
    + SessionStore
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
}

/// What changed, for other servers' caches, as the store announces it (on PostgreSQL,
/// from triggers in the writing transaction). The receiver reads the row itself: a
/// change carries no state, so a stale or duplicated one does no harm. `version` is
/// the row's version when written (a token's `version`, a session's end time), for
/// the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A token's status: created, rotated, deleted.
    Token {
        id: TokenId,
        #[serde(default)]
        version: i64,
    },
    /// A session's status: ended.
    Session {
        id: SessionId,
        #[serde(default)]
        version: i64,
    },
    /// The roles a principal (a user or an API token) holds: granted, changed,
    /// removed; a membership is a user's organization role.
    Roles {
        id: uuid::Uuid,
        #[serde(default)]
        version: i64,
    },
    /// The signing keys: rotated, imported, retired.
    Keys,
}
