//! The `Any`-driver implementation of every store trait.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use tessera_core::ids::{DeploymentId, Jti, OrganizationId, TokenId, UserId, WorkspaceId};
use tessera_core::keys::KeyAlgorithm;
use tessera_core::model::{
    Actor, ApiToken, Deployment, Organization, RoleBinding, Rotation, StoredKey, TokenScope, User,
    Workspace,
};
use tessera_core::role::Role;
use tessera_core::store::{
    DeploymentStore, KeyStore, OrganizationStore, RoleStore, Store, StoreError, StoreResult,
    TokenStore, UserStore, WorkspaceStore,
};

use crate::Backend;

/// A store over one connection pool, SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("a record with that key already exists".into())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Conflict("a referenced record does not exist".into())
        }
        // SQLSTATE class 22: data exceptions (bad encoding, NUL in text, out of range).
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
            StoreError::Invalid("a value was refused by the database".into())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("23")) => {
            StoreError::Conflict("the change conflicts with stored data".into())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(secs: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| corrupt("timestamp"))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn get_uuid(row: &AnyRow, col: &str) -> StoreResult<Uuid> {
    let s: String = get(row, col)?;
    Uuid::parse_str(&s).map_err(|_| corrupt(col))
}

pub(crate) fn get_opt_uuid(row: &AnyRow, col: &str) -> StoreResult<Option<Uuid>> {
    let s: Option<String> = get(row, col)?;
    s.map(|s| Uuid::parse_str(&s).map_err(|_| corrupt(col)))
        .transpose()
}

pub(crate) fn get_time(row: &AnyRow, col: &str) -> StoreResult<OffsetDateTime> {
    from_ts(get(row, col)?)
}

pub(crate) fn get_opt_time(row: &AnyRow, col: &str) -> StoreResult<Option<OffsetDateTime>> {
    let v: Option<i64> = get(row, col)?;
    v.map(from_ts).transpose()
}

fn organization(row: &AnyRow) -> StoreResult<Organization> {
    Ok(Organization {
        id: OrganizationId::from_uuid(get_uuid(row, "id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn workspace(row: &AnyRow) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: WorkspaceId::from_uuid(get_uuid(row, "id")?),
        organization_id: OrganizationId::from_uuid(get_uuid(row, "organization_id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn deployment(row: &AnyRow) -> StoreResult<Deployment> {
    Ok(Deployment {
        id: DeploymentId::from_uuid(get_uuid(row, "id")?),
        organization_id: OrganizationId::from_uuid(get_uuid(row, "organization_id")?),
        workspace_id: WorkspaceId::from_uuid(get_uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn user(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: UserId::from_uuid(get_uuid(row, "id")?),
        email: get(row, "email")?,
        full_name: get(row, "full_name")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn role_binding(row: &AnyRow) -> StoreResult<RoleBinding> {
    let role: String = get(row, "role")?;
    Ok(RoleBinding {
        role: Role::from_str(&role).map_err(|_| corrupt("role"))?,
        entity_id: get_uuid(row, "entity_id")?,
    })
}

fn actor(row: &AnyRow, kind_col: &str, id_col: &str) -> StoreResult<Actor> {
    let kind: String = get(row, kind_col)?;
    Actor::from_parts(&kind, get_uuid(row, id_col)?).ok_or_else(|| corrupt(kind_col))
}

fn api_token(row: &AnyRow) -> StoreResult<ApiToken> {
    let scope: String = get(row, "scope")?;
    let ws = get_opt_uuid(row, "workspace_id")?.map(WorkspaceId::from_uuid);
    let dep = get_opt_uuid(row, "deployment_id")?.map(DeploymentId::from_uuid);
    let scope = match (scope.as_str(), ws, dep) {
        ("ORGANIZATION", None, None) => TokenScope::Organization,
        ("WORKSPACE", Some(ws), None) => TokenScope::Workspace(ws),
        ("DEPLOYMENT", Some(ws), Some(d)) => TokenScope::Deployment(ws, d),
        _ => return Err(corrupt("token scope")),
    };
    let expiry: Option<i64> = get(row, "expiry_period_days")?;
    Ok(ApiToken {
        id: TokenId::from_uuid(get_uuid(row, "id")?),
        organization_id: OrganizationId::from_uuid(get_uuid(row, "organization_id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        scope,
        short_token: get(row, "short_token")?,
        current_jti: Jti::from_uuid(get_uuid(row, "current_jti")?),
        previous_jti: get_opt_uuid(row, "previous_jti")?.map(Jti::from_uuid),
        previous_valid_until: get_opt_time(row, "previous_valid_until")?,
        start_at: get_time(row, "start_at")?,
        end_at: get_opt_time(row, "end_at")?,
        expiry_period_in_days: expiry
            .map(|d| u32::try_from(d).map_err(|_| corrupt("expiry_period_days")))
            .transpose()?,
        version: get(row, "version")?,
        last_used_at: get_opt_time(row, "last_used_at")?,
        last_rotated_at: get_opt_time(row, "last_rotated_at")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
        created_by: actor(row, "created_by_kind", "created_by_id")?,
        updated_by: actor(row, "updated_by_kind", "updated_by_id")?,
        deleted_at: get_opt_time(row, "deleted_at")?,
    })
}

fn stored_key(row: &AnyRow) -> StoreResult<StoredKey> {
    let alg: String = get(row, "algorithm")?;
    let active: i64 = get(row, "active")?;
    Ok(StoredKey {
        kid: get(row, "kid")?,
        algorithm: alg
            .parse::<KeyAlgorithm>()
            .map_err(|_| corrupt("algorithm"))?,
        sealed_private_key: get(row, "sealed_private_key")?,
        public_jwk: get(row, "public_jwk")?,
        active: active != 0,
        created_at: get_time(row, "created_at")?,
        retired_at: get_opt_time(row, "retired_at")?,
    })
}

const TOKEN_COLUMNS: &str = "id, organization_id, name, description, scope, workspace_id, \
    deployment_id, short_token, current_jti, previous_jti, previous_valid_until, start_at, \
    end_at, expiry_period_days, version, last_used_at, last_rotated_at, created_at, updated_at, \
    created_by_kind, created_by_id, updated_by_kind, updated_by_id, deleted_at";

impl SqlStore {
    /// Connects to `url`, prepares the database (WAL for SQLite) and migrates it.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let max = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open the database: {e}")))?;
        if backend == Backend::Sqlite {
            // Persistent for the file: readers never wait for the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(db_err)?;
        }
        crate::migrations::migrator(crate::migrations::migration_list(backend))
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(Self { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl OrganizationStore for SqlStore {
    async fn create_organization(&self, o: &Organization) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO organizations (id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(o.id.to_string())
        .bind(&o.name)
        .bind(&o.description)
        .bind(ts(o.created_at))
        .bind(ts(o.updated_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn organization(&self, id: OrganizationId) -> StoreResult<Option<Organization>> {
        sqlx::query("SELECT * FROM organizations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(organization)
            .transpose()
    }

    async fn list_organizations(&self) -> StoreResult<Vec<Organization>> {
        sqlx::query("SELECT * FROM organizations ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(organization)
            .collect()
    }

    async fn update_organization(&self, o: &Organization) -> StoreResult<()> {
        sqlx::query(
            "UPDATE organizations SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&o.name)
        .bind(&o.description)
        .bind(ts(o.updated_at))
        .bind(o.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl WorkspaceStore for SqlStore {
    async fn create_workspace(&self, w: &Workspace) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO workspaces (id, organization_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(w.id.to_string())
        .bind(w.organization_id.to_string())
        .bind(&w.name)
        .bind(&w.description)
        .bind(ts(w.created_at))
        .bind(ts(w.updated_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn workspace(
        &self,
        org: OrganizationId,
        id: WorkspaceId,
    ) -> StoreResult<Option<Workspace>> {
        sqlx::query("SELECT * FROM workspaces WHERE id = $1 AND organization_id = $2")
            .bind(id.to_string())
            .bind(org.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(workspace)
            .transpose()
    }

    async fn list_workspaces(&self, org: OrganizationId) -> StoreResult<Vec<Workspace>> {
        sqlx::query("SELECT * FROM workspaces WHERE organization_id = $1 ORDER BY created_at, id")
            .bind(org.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(workspace)
            .collect()
    }

    async fn update_workspace(&self, w: &Workspace) -> StoreResult<()> {
        sqlx::query(
            "UPDATE workspaces SET name = $1, description = $2, updated_at = $3 \
             WHERE id = $4 AND organization_id = $5",
        )
        .bind(&w.name)
        .bind(&w.description)
        .bind(ts(w.updated_at))
        .bind(w.id.to_string())
        .bind(w.organization_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_workspace(
        &self,
        org: OrganizationId,
        id: WorkspaceId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<TokenId>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let deleted = sqlx::query(
            "DELETE FROM workspaces WHERE id = $1 AND organization_id = $2 \
             AND NOT EXISTS (SELECT 1 FROM deployments WHERE workspace_id = $1)",
        )
        .bind(id.to_string())
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if deleted == 0 {
            tx.rollback().await.map_err(db_err)?;
            let exists = self.workspace(org, id).await?.is_some();
            return if exists {
                Err(StoreError::Conflict(
                    "the workspace still has deployments; delete them first".into(),
                ))
            } else {
                Ok(Vec::new())
            };
        }
        let tokens = tombstone_tokens(&mut tx, "workspace_id", id.as_uuid(), at).await?;
        sqlx::query("DELETE FROM role_bindings WHERE entity_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(tokens)
    }
}

/// Deletes the tokens whose home is the entity in `column` (and their roles); answers them.
async fn tombstone_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    column: &'static str,
    entity: &Uuid,
    at: OffsetDateTime,
) -> StoreResult<Vec<TokenId>> {
    let sql = match column {
        "workspace_id" => {
            "UPDATE api_tokens SET deleted_at = $1, updated_at = $1 \
             WHERE workspace_id = $2 AND deleted_at IS NULL RETURNING id"
        }
        _ => {
            "UPDATE api_tokens SET deleted_at = $1, updated_at = $1 \
             WHERE deployment_id = $2 AND deleted_at IS NULL RETURNING id"
        }
    };
    let rows = sqlx::query(sql)
        .bind(ts(at))
        .bind(entity.to_string())
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        let id = get_uuid(row, "id")?;
        sqlx::query("DELETE FROM role_bindings WHERE principal_id = $1")
            .bind(id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        ids.push(TokenId::from_uuid(id));
    }
    Ok(ids)
}

#[async_trait]
impl DeploymentStore for SqlStore {
    async fn create_deployment(&self, d: &Deployment) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO deployments (id, organization_id, workspace_id, name, description, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(d.id.to_string())
        .bind(d.organization_id.to_string())
        .bind(d.workspace_id.to_string())
        .bind(&d.name)
        .bind(&d.description)
        .bind(ts(d.created_at))
        .bind(ts(d.updated_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn deployment(
        &self,
        org: OrganizationId,
        id: DeploymentId,
    ) -> StoreResult<Option<Deployment>> {
        sqlx::query("SELECT * FROM deployments WHERE id = $1 AND organization_id = $2")
            .bind(id.to_string())
            .bind(org.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(deployment)
            .transpose()
    }

    async fn list_deployments(
        &self,
        org: OrganizationId,
        ws: Option<WorkspaceId>,
    ) -> StoreResult<Vec<Deployment>> {
        sqlx::query(
            "SELECT * FROM deployments WHERE organization_id = $1 \
             AND ($2 = '' OR workspace_id = $2) ORDER BY created_at, id",
        )
        .bind(org.to_string())
        .bind(ws.map(|w| w.to_string()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(deployment)
        .collect()
    }

    async fn update_deployment(&self, d: &Deployment) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deployments SET name = $1, description = $2, updated_at = $3 \
             WHERE id = $4 AND organization_id = $5",
        )
        .bind(&d.name)
        .bind(&d.description)
        .bind(ts(d.updated_at))
        .bind(d.id.to_string())
        .bind(d.organization_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_deployment(
        &self,
        org: OrganizationId,
        id: DeploymentId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<TokenId>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let deleted = sqlx::query("DELETE FROM deployments WHERE id = $1 AND organization_id = $2")
            .bind(id.to_string())
            .bind(org.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await.map_err(db_err)?;
            return Ok(Vec::new());
        }
        let tokens = tombstone_tokens(&mut tx, "deployment_id", id.as_uuid(), at).await?;
        sqlx::query("DELETE FROM role_bindings WHERE entity_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(tokens)
    }
}

async fn insert_roles(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org: OrganizationId,
    principal: Uuid,
    roles: &[RoleBinding],
) -> StoreResult<()> {
    for b in roles {
        sqlx::query(
            "INSERT INTO role_bindings (organization_id, principal_id, entity_type, entity_id, role) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(org.to_string())
        .bind(principal.to_string())
        .bind(b.entity_type().as_str())
        .bind(b.entity_id.to_string())
        .bind(b.role.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(
        &self,
        u: &User,
        password_hash: &str,
        org: OrganizationId,
        roles: &[RoleBinding],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO users (id, email, full_name, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(u.id.to_string())
        .bind(u.email.to_lowercase())
        .bind(&u.full_name)
        .bind(password_hash)
        .bind(ts(u.created_at))
        .bind(ts(u.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("a user with that email already exists".into())
            }
            other => other,
        })?;
        insert_roles(&mut tx, org, *u.id.as_uuid(), roles).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        sqlx::query("SELECT id, email, full_name, created_at, updated_at FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(user)
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<(User, String)>> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1")
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(|r| Ok((user(r)?, get(r, "password_hash")?)))
            .transpose()
    }

    async fn list_members(&self, org: OrganizationId) -> StoreResult<Vec<User>> {
        sqlx::query(
            "SELECT id, email, full_name, created_at, updated_at FROM users WHERE id IN \
             (SELECT principal_id FROM role_bindings WHERE organization_id = $1) \
             ORDER BY email",
        )
        .bind(org.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(user)
        .collect()
    }
}

#[async_trait]
impl RoleStore for SqlStore {
    async fn roles(&self, org: OrganizationId, principal: Uuid) -> StoreResult<Vec<RoleBinding>> {
        sqlx::query(
            "SELECT role, entity_id FROM role_bindings WHERE organization_id = $1 AND principal_id = $2 \
             ORDER BY entity_type, entity_id",
        )
        .bind(org.to_string())
        .bind(principal.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(role_binding)
        .collect()
    }

    async fn all_roles(&self, org: OrganizationId) -> StoreResult<Vec<(Uuid, RoleBinding)>> {
        sqlx::query(
            "SELECT principal_id, role, entity_id FROM role_bindings WHERE organization_id = $1 \
             ORDER BY principal_id, entity_type, entity_id",
        )
        .bind(org.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| Ok((get_uuid(row, "principal_id")?, role_binding(row)?)))
        .collect()
    }

    async fn replace_roles(
        &self,
        org: OrganizationId,
        principal: Uuid,
        roles: &[RoleBinding],
        by: Actor,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "UPDATE api_tokens SET updated_at = $1, updated_by_kind = $2, updated_by_id = $3 \
             WHERE id = $4 AND organization_id = $5 AND deleted_at IS NULL",
        )
        .bind(ts(at))
        .bind(by.kind())
        .bind(by.id().to_string())
        .bind(principal.to_string())
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM role_bindings WHERE organization_id = $1 AND principal_id = $2")
            .bind(org.to_string())
            .bind(principal.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_roles(&mut tx, org, principal, roles).await?;
        // A deleted token gets no roles back, whatever raced with its deletion.
        let deleted_token =
            sqlx::query("SELECT 1 FROM api_tokens WHERE id = $1 AND deleted_at IS NOT NULL")
                .bind(principal.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if deleted_token.is_some() {
            tx.rollback().await.map_err(db_err)?;
            return Err(StoreError::Conflict("the token has been deleted".into()));
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn create_token(&self, t: &ApiToken, roles: &[RoleBinding]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO api_tokens (id, organization_id, name, description, scope, workspace_id, \
             deployment_id, short_token, current_jti, previous_jti, previous_valid_until, start_at, \
             end_at, expiry_period_days, version, last_used_at, last_rotated_at, created_at, \
             updated_at, created_by_kind, created_by_id, updated_by_kind, updated_by_id, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24)",
        )
        .bind(t.id.to_string())
        .bind(t.organization_id.to_string())
        .bind(&t.name)
        .bind(&t.description)
        .bind(t.scope.kind().as_str())
        .bind(t.scope.workspace().map(|w| w.to_string()))
        .bind(t.scope.deployment().map(|d| d.to_string()))
        .bind(&t.short_token)
        .bind(t.current_jti.to_string())
        .bind(t.previous_jti.map(|j| j.to_string()))
        .bind(t.previous_valid_until.map(ts))
        .bind(ts(t.start_at))
        .bind(t.end_at.map(ts))
        .bind(t.expiry_period_in_days.map(i64::from))
        .bind(t.version)
        .bind(t.last_used_at.map(ts))
        .bind(t.last_rotated_at.map(ts))
        .bind(ts(t.created_at))
        .bind(ts(t.updated_at))
        .bind(t.created_by.kind())
        .bind(t.created_by.id().to_string())
        .bind(t.updated_by.kind())
        .bind(t.updated_by.id().to_string())
        .bind(t.deleted_at.map(ts))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_roles(&mut tx, t.organization_id, *t.id.as_uuid(), roles).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn token(&self, org: OrganizationId, id: TokenId) -> StoreResult<Option<ApiToken>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1 AND organization_id = $2"
        )))
        .bind(id.to_string())
        .bind(org.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(api_token)
        .transpose()
    }

    async fn token_by_id(&self, id: TokenId) -> StoreResult<Option<ApiToken>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(api_token)
        .transpose()
    }

    async fn list_tokens(&self, org: OrganizationId) -> StoreResult<Vec<ApiToken>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE organization_id = $1 \
             AND deleted_at IS NULL ORDER BY created_at, id"
        )))
        .bind(org.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(api_token)
        .collect()
    }

    async fn all_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(api_token)
        .collect()
    }

    async fn update_token(
        &self,
        org: OrganizationId,
        id: TokenId,
        name: &str,
        description: &str,
        by: Actor,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE api_tokens SET name = $1, description = $2, updated_at = $3, \
             updated_by_kind = $4, updated_by_id = $5 \
             WHERE id = $6 AND organization_id = $7 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(description)
        .bind(ts(at))
        .bind(by.kind())
        .bind(by.id().to_string())
        .bind(id.to_string())
        .bind(org.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn rotate_token(
        &self,
        org: OrganizationId,
        id: TokenId,
        r: &Rotation,
    ) -> StoreResult<bool> {
        // One statement, guarded by the version: of two racing rotations exactly one
        // matches, and there is never a moment with no current value or two.
        let n = sqlx::query(
            "UPDATE api_tokens SET \
               previous_jti = CASE WHEN $1 IS NULL THEN NULL ELSE current_jti END, \
               previous_valid_until = $1, \
               current_jti = $2, short_token = $3, start_at = $4, end_at = $5, \
               version = version + 1, last_rotated_at = $6, updated_at = $6, \
               updated_by_kind = $7, updated_by_id = $8 \
             WHERE id = $9 AND organization_id = $10 AND version = $11 AND deleted_at IS NULL",
        )
        .bind(r.previous_valid_until.map(ts))
        .bind(r.new_jti.to_string())
        .bind(&r.short_token)
        .bind(ts(r.start_at))
        .bind(r.end_at.map(ts))
        .bind(ts(r.rotated_at))
        .bind(r.by.kind())
        .bind(r.by.id().to_string())
        .bind(id.to_string())
        .bind(org.to_string())
        .bind(r.expected_version)
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn delete_token(
        &self,
        org: OrganizationId,
        id: TokenId,
        by: Actor,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let n = sqlx::query(
            "UPDATE api_tokens SET deleted_at = $1, updated_at = $1, updated_by_kind = $2, \
             updated_by_id = $3 WHERE id = $4 AND organization_id = $5 AND deleted_at IS NULL",
        )
        .bind(ts(at))
        .bind(by.kind())
        .bind(by.id().to_string())
        .bind(id.to_string())
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if n == 1 {
            sqlx::query("DELETE FROM role_bindings WHERE principal_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(n == 1)
    }

    async fn record_last_used(&self, uses: &[(TokenId, OffsetDateTime)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (id, at) in uses {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(ts(*at))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(stored_key)
            .collect()
    }

    async fn insert_signing_key(&self, k: &StoredKey) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        if k.active {
            sqlx::query("UPDATE signing_keys SET active = 0 WHERE active = 1")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, sealed_private_key, public_jwk, active, \
             created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.kid)
        .bind(k.algorithm.as_str())
        .bind(k.sealed_private_key.clone())
        .bind(&k.public_jwk)
        .bind(i64::from(k.active))
        .bind(ts(k.created_at))
        .bind(k.retired_at.map(ts))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn retire_signing_key(&self, kid: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND active = 0 AND retired_at IS NULL",
        )
        .bind(ts(at))
        .bind(kid)
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n == 1)
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
