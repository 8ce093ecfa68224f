//! OAuth clients, sessions, refresh tokens, authorization codes and device grants.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use tessera_core::ids::{OrganizationId, SessionId, UserId};
use tessera_core::session::{
    AuthorizationCode, DeviceGrant, DeviceStatus, OAuthClient, Redemption, Session,
};
use tessera_core::store::{ClientStore, SessionStore, StoreError, StoreResult};

use crate::sql::{
    SqlStore, corrupt, db_err, get, get_opt_time, get_opt_uuid, get_time, get_uuid, ts,
};

fn session(row: &AnyRow) -> StoreResult<Session> {
    Ok(Session {
        id: SessionId::from_uuid(get_uuid(row, "id")?),
        user_id: UserId::from_uuid(get_uuid(row, "user_id")?),
        organization_id: get_opt_uuid(row, "organization_id")?.map(OrganizationId::from_uuid),
        client_id: get(row, "client_id")?,
        signed_in_at: get_time(row, "signed_in_at")?,
        absolute_expiry: get_time(row, "absolute_expiry")?,
        created_at: get_time(row, "created_at")?,
        last_refreshed_at: get_opt_time(row, "last_refreshed_at")?,
        ended_at: get_opt_time(row, "ended_at")?,
        ip: get(row, "ip")?,
        user_agent: get(row, "user_agent")?,
        browser_session_id: get_opt_uuid(row, "browser_session_id")?.map(SessionId::from_uuid),
    })
}

fn code(row: &AnyRow) -> StoreResult<AuthorizationCode> {
    Ok(AuthorizationCode {
        hash: get(row, "hash")?,
        client_id: get(row, "client_id")?,
        redirect_uri: get(row, "redirect_uri")?,
        code_challenge: get(row, "code_challenge")?,
        user_id: UserId::from_uuid(get_uuid(row, "user_id")?),
        organization_id: get_opt_uuid(row, "organization_id")?.map(OrganizationId::from_uuid),
        signed_in_at: get_time(row, "signed_in_at")?,
        expires_at: get_time(row, "expires_at")?,
        session_id: get_opt_uuid(row, "session_id")?.map(SessionId::from_uuid),
        browser_session_id: get_opt_uuid(row, "browser_session_id")?.map(SessionId::from_uuid),
    })
}

fn device(row: &AnyRow) -> StoreResult<DeviceGrant> {
    let status: String = get(row, "status")?;
    Ok(DeviceGrant {
        hash: get(row, "hash")?,
        user_code: get(row, "user_code")?,
        client_id: get(row, "client_id")?,
        expires_at: get_time(row, "expires_at")?,
        interval_seconds: get(row, "interval_secs")?,
        last_poll_at: get_opt_time(row, "last_poll_at")?,
        status: DeviceStatus::parse(&status).ok_or_else(|| corrupt("device status"))?,
        user_id: get_opt_uuid(row, "user_id")?.map(UserId::from_uuid),
        organization_id: get_opt_uuid(row, "organization_id")?.map(OrganizationId::from_uuid),
        signed_in_at: get_opt_time(row, "signed_in_at")?,
    })
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn upsert_client(&self, c: &OAuthClient, at: OffsetDateTime) -> StoreResult<()> {
        let uris = serde_json::to_string(&c.redirect_uris)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO oauth_clients (id, name, redirect_uris, loopback, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = $2, \
             redirect_uris = $3, loopback = $4, updated_at = $5",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(uris)
        .bind(i64::from(c.loopback))
        .bind(ts(at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
        let row = sqlx::query("SELECT * FROM oauth_clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            let uris: String = get(&r, "redirect_uris")?;
            let loopback: i64 = get(&r, "loopback")?;
            Ok(OAuthClient {
                id: get(&r, "id")?,
                name: get(&r, "name")?,
                redirect_uris: serde_json::from_str(&uris).map_err(|_| corrupt("redirect_uris"))?,
                loopback: loopback != 0,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, s: &Session, cookie_hash: Option<&str>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, organization_id, client_id, signed_in_at, \
             absolute_expiry, created_at, last_refreshed_at, ended_at, ip, user_agent, cookie_hash, \
             browser_session_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.organization_id.map(|o| o.to_string()))
        .bind(&s.client_id)
        .bind(ts(s.signed_in_at))
        .bind(ts(s.absolute_expiry))
        .bind(ts(s.created_at))
        .bind(s.last_refreshed_at.map(ts))
        .bind(s.ended_at.map(ts))
        .bind(s.ip.clone())
        .bind(s.user_agent.clone())
        .bind(cookie_hash.map(str::to_owned))
        .bind(s.browser_session_id.map(|b| b.to_string()))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, id: SessionId) -> StoreResult<Option<Session>> {
        sqlx::query("SELECT * FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(session)
            .transpose()
    }

    async fn session_by_cookie(&self, cookie_hash: &str) -> StoreResult<Option<Session>> {
        sqlx::query("SELECT * FROM sessions WHERE cookie_hash = $1")
            .bind(cookie_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(session)
            .transpose()
    }

    async fn user_sessions(&self, user: UserId) -> StoreResult<Vec<Session>> {
        sqlx::query("SELECT * FROM sessions WHERE user_id = $1 AND ended_at IS NULL ORDER BY created_at, id")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(session)
            .collect()
    }

    async fn live_sessions(&self, now: OffsetDateTime) -> StoreResult<Vec<Session>> {
        sqlx::query("SELECT * FROM sessions WHERE ended_at IS NULL AND absolute_expiry > $1")
            .bind(ts(now))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(session)
            .collect()
    }

    async fn end_session(&self, id: SessionId, at: OffsetDateTime) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(ts(at))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(n == 1)
    }

    async fn end_user_sessions(
        &self,
        user: UserId,
        org: Option<OrganizationId>,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<SessionId>> {
        sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL \
             AND ($3 = '' OR organization_id = $3) RETURNING id",
        )
        .bind(ts(at))
        .bind(user.to_string())
        .bind(org.map(|o| o.to_string()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| Ok(SessionId::from_uuid(get_uuid(r, "id")?)))
        .collect()
    }

    async fn insert_refresh_token(
        &self,
        hash: &str,
        session: SessionId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(session.to_string())
            .bind(ts(at))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        at: OffsetDateTime,
    ) -> StoreResult<Redemption<SessionId>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let used = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL RETURNING session_id",
        )
        .bind(ts(at))
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = used else {
            tx.rollback().await.map_err(db_err)?;
            return Ok(match self.refresh_token_session(old_hash).await? {
                Some(s) => Redemption::Reused(s),
                None => Redemption::Unknown,
            });
        };
        let session = SessionId::from_uuid(get_uuid(&row, "session_id")?);
        sqlx::query("INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES ($1, $2, $3)")
            .bind(new_hash)
            .bind(session.to_string())
            .bind(ts(at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("UPDATE sessions SET last_refreshed_at = $1 WHERE id = $2")
            .bind(ts(at))
            .bind(session.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Redemption::Fresh(session))
    }

    async fn refresh_token_session(&self, hash: &str) -> StoreResult<Option<SessionId>> {
        sqlx::query("SELECT session_id FROM refresh_tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| Ok(SessionId::from_uuid(get_uuid(&r, "session_id")?)))
            .transpose()
    }

    async fn insert_code(&self, c: &AuthorizationCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (hash, client_id, redirect_uri, code_challenge, user_id, \
             organization_id, signed_in_at, expires_at, browser_session_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.hash)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(c.user_id.to_string())
        .bind(c.organization_id.map(|o| o.to_string()))
        .bind(ts(c.signed_in_at))
        .bind(ts(c.expires_at))
        .bind(c.browser_session_id.map(|b| b.to_string()))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        hash: &str,
        at: OffsetDateTime,
        session: SessionId,
    ) -> StoreResult<Redemption<AuthorizationCode>> {
        let first = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1, session_id = $3 \
             WHERE hash = $2 AND used_at IS NULL RETURNING *",
        )
        .bind(ts(at))
        .bind(hash)
        .bind(session.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if let Some(row) = first {
            return Ok(Redemption::Fresh(code(&row)?));
        }
        let again = sqlx::query("SELECT * FROM authorization_codes WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(match again {
            Some(row) => Redemption::Reused(code(&row)?),
            None => Redemption::Unknown,
        })
    }

    async fn insert_device_grant(&self, g: &DeviceGrant) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_grants (hash, user_code, client_id, expires_at, interval_secs, status) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&g.hash)
        .bind(&g.user_code)
        .bind(&g.client_id)
        .bind(ts(g.expires_at))
        .bind(g.interval_seconds)
        .bind(g.status.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn device_grant(&self, hash: &str) -> StoreResult<Option<DeviceGrant>> {
        sqlx::query("SELECT * FROM device_grants WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(device)
            .transpose()
    }

    async fn device_grant_by_user_code(&self, user_code: &str) -> StoreResult<Option<DeviceGrant>> {
        sqlx::query("SELECT * FROM device_grants WHERE user_code = $1")
            .bind(user_code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(device)
            .transpose()
    }

    async fn record_device_poll(
        &self,
        hash: &str,
        at: OffsetDateTime,
        interval: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE device_grants SET last_poll_at = $1, interval_secs = $2 WHERE hash = $3",
        )
        .bind(ts(at))
        .bind(interval)
        .bind(hash)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn decide_device_grant(
        &self,
        user_code: &str,
        approval: Option<(UserId, Option<OrganizationId>, OffsetDateTime)>,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (status, user, org, signed_in) = match approval {
            Some((u, o, s)) => (
                DeviceStatus::Approved,
                Some(u.to_string()),
                o.map(|o| o.to_string()),
                Some(ts(s)),
            ),
            None => (DeviceStatus::Denied, None, None, None),
        };
        let n = sqlx::query(
            "UPDATE device_grants SET status = $1, user_id = $2, organization_id = $3, signed_in_at = $4 \
             WHERE user_code = $5 AND status = 'pending' AND expires_at > $6",
        )
        .bind(status.as_str())
        .bind(user)
        .bind(org)
        .bind(signed_in)
        .bind(user_code)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn redeem_device_grant(&self, hash: &str) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE device_grants SET status = 'redeemed' WHERE hash = $1 AND status = 'approved'",
        )
        .bind(hash)
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn purge_expired(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let before = ts(before);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let mut purged = 0;
        for statement in [
            "DELETE FROM authorization_codes WHERE expires_at < $1",
            "DELETE FROM device_grants WHERE expires_at < $1",
            "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions \
             WHERE ended_at < $1 OR absolute_expiry < $1)",
            "DELETE FROM sessions WHERE ended_at < $1 OR absolute_expiry < $1",
        ] {
            purged += sqlx::query(statement)
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(db_err)?;
        Ok(purged)
    }
}
