//! One contract, every backend: the same tests run on SQLite and, when
//! `TESSERA_TEST_DATABASE_URL` is set, on PostgreSQL (each test in a fresh database).

use std::sync::Arc;

use tessera_core::ids::{DeploymentId, Jti, OrganizationId, TokenId, UserId, WorkspaceId};
use tessera_core::keys::KeyAlgorithm;
use tessera_core::model::{
    Actor, ApiToken, Deployment, Organization, RoleBinding, Rotation, StoredKey, TokenScope, User,
    Workspace,
};
use tessera_core::role::{OrganizationRole, Role, WorkspaceRole};
use tessera_core::store::{Store, StoreError};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

/// Fresh stores to run a test against: SQLite always, PostgreSQL when configured.
async fn stores() -> Vec<Arc<dyn Store>> {
    let dir = std::env::temp_dir().join(format!("tessera-contract-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = vec![
        tessera_store::connect(&tessera_store::sqlite_url(&dir))
            .await
            .unwrap(),
    ];
    if let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") {
        all.push(
            tessera_store::connect(&fresh_postgres(&base).await)
                .await
                .unwrap(),
        );
    }
    all
}

/// Creates a new database next to the one `base` names and answers its URL.
async fn fresh_postgres(base: &str) -> String {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let name = format!("tessera_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::AnyConnection::connect(base)
        .await
        .expect("TESSERA_TEST_DATABASE_URL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
    let query = base
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{prefix}/{name}{query}")
}

async fn seed(store: &dyn Store) -> (OrganizationId, WorkspaceId, DeploymentId) {
    let org = Organization {
        id: OrganizationId::new(),
        name: "Acme".into(),
        description: String::new(),
        created_at: T0,
        updated_at: T0,
    };
    store.create_organization(&org).await.unwrap();
    let ws = Workspace {
        id: WorkspaceId::new(),
        organization_id: org.id,
        name: "data".into(),
        description: "d".into(),
        created_at: T0,
        updated_at: T0,
    };
    store.create_workspace(&ws).await.unwrap();
    let dep = Deployment {
        id: DeploymentId::new(),
        organization_id: org.id,
        workspace_id: ws.id,
        name: "prod".into(),
        description: String::new(),
        created_at: T0,
        updated_at: T0,
    };
    store.create_deployment(&dep).await.unwrap();
    (org.id, ws.id, dep.id)
}

fn token(org: OrganizationId, scope: TokenScope) -> ApiToken {
    let by = Actor::User(UserId::new());
    ApiToken {
        id: TokenId::new(),
        organization_id: org,
        name: "ci".into(),
        description: String::new(),
        scope,
        short_token: "abcd1234".into(),
        current_jti: Jti::new(),
        previous_jti: None,
        previous_valid_until: None,
        start_at: T0,
        end_at: Some(T0 + Duration::days(30)),
        expiry_period_in_days: Some(30),
        version: 1,
        last_used_at: None,
        last_rotated_at: None,
        created_at: T0,
        updated_at: T0,
        created_by: by,
        updated_by: by,
        deleted_at: None,
    }
}

#[tokio::test]
async fn entities_round_trip_and_stay_in_their_organization() {
    for store in stores().await {
        let (org, ws, dep) = seed(store.as_ref()).await;
        let other = OrganizationId::new();
        assert_eq!(
            store.workspace(org, ws).await.unwrap().unwrap().name,
            "data"
        );
        assert!(
            store.workspace(other, ws).await.unwrap().is_none(),
            "{}",
            store.backend()
        );
        assert!(store.deployment(other, dep).await.unwrap().is_none());
        assert_eq!(
            store.list_deployments(org, Some(ws)).await.unwrap().len(),
            1
        );
        assert_eq!(
            store
                .list_deployments(org, Some(WorkspaceId::new()))
                .await
                .unwrap()
                .len(),
            0
        );
        assert_eq!(store.list_deployments(org, None).await.unwrap().len(), 1);
        // A workspace with deployments is not deleted.
        let err = store.delete_workspace(org, ws, T0).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
        assert!(store.workspace(org, ws).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn users_are_unique_by_email_and_carry_roles() {
    for store in stores().await {
        let (org, ws, _) = seed(store.as_ref()).await;
        let u = User {
            id: UserId::new(),
            email: "Ada@Example.com".into(),
            full_name: "Ada".into(),
            created_at: T0,
            updated_at: T0,
        };
        let roles = [
            RoleBinding {
                role: Role::Organization(OrganizationRole::Member),
                entity_id: *org.as_uuid(),
            },
            RoleBinding {
                role: Role::Workspace(WorkspaceRole::Author),
                entity_id: *ws.as_uuid(),
            },
        ];
        store
            .create_user(&u, "$argon2id$x", org, &roles)
            .await
            .unwrap();
        let again = User {
            id: UserId::new(),
            email: "ada@example.com".into(),
            ..u.clone()
        };
        assert!(matches!(
            store.create_user(&again, "h", org, &roles).await,
            Err(StoreError::Conflict(_))
        ));
        let (found, hash) = store
            .user_by_email("ADA@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, u.id);
        assert_eq!(hash, "$argon2id$x");
        assert_eq!(store.roles(org, *u.id.as_uuid()).await.unwrap().len(), 2);
        assert_eq!(store.list_members(org).await.unwrap().len(), 1);
        store
            .replace_roles(org, *u.id.as_uuid(), &roles[..1], Actor::User(u.id), T0)
            .await
            .unwrap();
        assert_eq!(
            store.roles(org, *u.id.as_uuid()).await.unwrap(),
            roles[..1].to_vec()
        );
    }
}

#[tokio::test]
async fn rotation_is_guarded_by_version_and_delete_is_a_tombstone() {
    for store in stores().await {
        let (org, ws, _) = seed(store.as_ref()).await;
        let t = token(org, TokenScope::Workspace(ws));
        let roles = [RoleBinding {
            role: Role::Workspace(WorkspaceRole::Operator),
            entity_id: *ws.as_uuid(),
        }];
        store.create_token(&t, &roles).await.unwrap();
        assert_eq!(store.token(org, t.id).await.unwrap().unwrap(), t);

        let rotation = |expected_version, grace: Option<OffsetDateTime>| Rotation {
            expected_version,
            new_jti: Jti::new(),
            short_token: "zzzz9999".into(),
            previous_valid_until: grace,
            start_at: T0 + Duration::hours(1),
            end_at: Some(T0 + Duration::days(31)),
            rotated_at: T0 + Duration::hours(1),
            by: Actor::ApiToken(TokenId::new()),
        };
        let first = rotation(1, Some(T0 + Duration::hours(2)));
        assert!(store.rotate_token(org, t.id, &first).await.unwrap());
        // The same expected version again: someone else got there first.
        assert!(
            !store
                .rotate_token(org, t.id, &rotation(1, None))
                .await
                .unwrap()
        );
        let after = store.token(org, t.id).await.unwrap().unwrap();
        assert_eq!(after.version, 2);
        assert_eq!(after.current_jti, first.new_jti);
        assert_eq!(after.previous_jti, Some(t.current_jti));
        assert_eq!(after.previous_valid_until, Some(T0 + Duration::hours(2)));
        assert_eq!(after.last_rotated_at, Some(T0 + Duration::hours(1)));

        // Without grace the previous value is forgotten.
        assert!(
            store
                .rotate_token(org, t.id, &rotation(2, None))
                .await
                .unwrap()
        );
        let after = store.token(org, t.id).await.unwrap().unwrap();
        assert_eq!(
            (after.previous_jti, after.previous_valid_until),
            (None, None)
        );

        store
            .record_last_used(&[(t.id, T0 + Duration::hours(5))])
            .await
            .unwrap();
        store
            .record_last_used(&[(t.id, T0 + Duration::hours(4))])
            .await
            .unwrap();
        assert_eq!(
            store.token(org, t.id).await.unwrap().unwrap().last_used_at,
            Some(T0 + Duration::hours(5))
        );

        let by = Actor::User(UserId::new());
        // Name and description, and roles: each records who changed the token and when.
        assert!(
            store
                .update_token(org, t.id, "renamed", "why", by, T0 + Duration::hours(5))
                .await
                .unwrap()
        );
        assert!(
            !store
                .update_token(OrganizationId::new(), t.id, "x", "", by, T0)
                .await
                .unwrap(),
            "another organization's id"
        );
        let renamed = store.token(org, t.id).await.unwrap().unwrap();
        assert_eq!(
            (renamed.name.as_str(), renamed.description.as_str()),
            ("renamed", "why")
        );
        assert_eq!(
            (renamed.updated_at, renamed.updated_by),
            (T0 + Duration::hours(5), by)
        );
        let member = [RoleBinding {
            role: Role::Workspace(WorkspaceRole::Member),
            entity_id: *ws.as_uuid(),
        }];
        let other = Actor::User(UserId::new());
        store
            .replace_roles(
                org,
                *t.id.as_uuid(),
                &member,
                other,
                T0 + Duration::hours(6),
            )
            .await
            .unwrap();
        assert_eq!(store.roles(org, *t.id.as_uuid()).await.unwrap(), member);
        let re_roled = store.token(org, t.id).await.unwrap().unwrap();
        assert_eq!(
            (re_roled.updated_at, re_roled.updated_by),
            (T0 + Duration::hours(6), other)
        );

        assert!(
            store
                .delete_token(org, t.id, by, T0 + Duration::hours(6))
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_token(org, t.id, by, T0 + Duration::hours(7))
                .await
                .unwrap()
        );
        let gone = store.token(org, t.id).await.unwrap().unwrap();
        assert_eq!(gone.deleted_at, Some(T0 + Duration::hours(6)));
        assert!(store.list_tokens(org).await.unwrap().is_empty());
        assert!(store.roles(org, *t.id.as_uuid()).await.unwrap().is_empty());
        assert!(
            matches!(
                store
                    .replace_roles(org, *t.id.as_uuid(), &member, by, T0 + Duration::hours(8))
                    .await,
                Err(StoreError::Conflict(_))
            ),
            "a deleted token gets no roles back"
        );
        assert!(store.roles(org, *t.id.as_uuid()).await.unwrap().is_empty());
        assert!(
            !store
                .rotate_token(org, t.id, &rotation(3, None))
                .await
                .unwrap()
        );
        assert_eq!(store.all_tokens().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn deleting_a_deployment_deletes_its_tokens_and_roles_on_it() {
    for store in stores().await {
        let (org, ws, dep) = seed(store.as_ref()).await;
        let t = token(org, TokenScope::Deployment(ws, dep));
        store
            .create_token(
                &t,
                &[RoleBinding {
                    role: Role::Deployment(tessera_core::role::DeploymentRole::Admin),
                    entity_id: *dep.as_uuid(),
                }],
            )
            .await
            .unwrap();
        let deleted = store.delete_deployment(org, dep, T0).await.unwrap();
        assert_eq!(deleted, vec![t.id]);
        assert!(
            store
                .token(org, t.id)
                .await
                .unwrap()
                .unwrap()
                .deleted_at
                .is_some()
        );
        assert!(store.deployment(org, dep).await.unwrap().is_none());
        assert_eq!(
            store.delete_workspace(org, ws, T0).await.unwrap(),
            Vec::<TokenId>::new()
        );
        assert!(store.workspace(org, ws).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn one_active_signing_key() {
    for store in stores().await {
        let key = |kid: &str, active| StoredKey {
            kid: kid.into(),
            algorithm: KeyAlgorithm::EdDSA,
            sealed_private_key: vec![1, 2, 3],
            public_jwk: "{}".into(),
            active,
            created_at: T0,
            retired_at: None,
        };
        store.insert_signing_key(&key("a", true)).await.unwrap();
        store.insert_signing_key(&key("b", true)).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(
            keys.iter()
                .filter(|k| k.active)
                .map(|k| k.kid.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(keys[0].sealed_private_key, vec![1, 2, 3]);

        // Only an inactive key is retired, once.
        assert!(!store.retire_signing_key("b", T0).await.unwrap(), "active");
        assert!(store.retire_signing_key("a", T0).await.unwrap());
        assert!(!store.retire_signing_key("a", T0).await.unwrap(), "already");
        assert!(
            !store.retire_signing_key("zz", T0).await.unwrap(),
            "unknown"
        );
        let a = store.signing_keys().await.unwrap();
        assert_eq!(
            a.iter().find(|k| k.kid == "a").unwrap().retired_at,
            Some(T0)
        );

        // Many writers at once: a new key each, never two active afterwards; a writer
        // that lost the race is told so (a conflict), not left half done.
        let racing = (0..8).map(|i| {
            let store = store.clone();
            let k = key(&format!("r{i}"), true);
            tokio::spawn(async move { store.insert_signing_key(&k).await })
        });
        for result in futures_join(racing).await {
            match result {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let active = store
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.active)
            .count();
        assert_eq!(active, 1);
    }
}

async fn futures_join<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}

mod sessions {
    use super::*;
    use tessera_core::ids::SessionId;
    use tessera_core::session::{
        AuthorizationCode, DeviceGrant, DeviceStatus, OAuthClient, Redemption, Session,
    };

    async fn user(store: &dyn Store, org: OrganizationId) -> UserId {
        let u = User {
            id: UserId::new(),
            email: format!("{}@example.test", uuid::Uuid::now_v7().simple()),
            full_name: String::new(),
            created_at: T0,
            updated_at: T0,
        };
        let role = RoleBinding {
            role: Role::Organization(OrganizationRole::Member),
            entity_id: *org.as_uuid(),
        };
        store.create_user(&u, "h", org, &[role]).await.unwrap();
        u.id
    }

    fn session(user: UserId, org: OrganizationId) -> Session {
        Session {
            id: SessionId::new(),
            user_id: user,
            organization_id: Some(org),
            client_id: "tessera-cli".into(),
            signed_in_at: T0,
            absolute_expiry: T0 + Duration::days(30),
            created_at: T0,
            last_refreshed_at: None,
            ended_at: None,
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            browser_session_id: Some(SessionId::new()),
        }
    }

    #[tokio::test]
    async fn clients_upsert() {
        for store in stores().await {
            let mut c = OAuthClient {
                id: "tessera-cli".into(),
                name: "CLI".into(),
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                loopback: true,
            };
            store.upsert_client(&c, T0).await.unwrap();
            c.name = "Tessera CLI".into();
            store.upsert_client(&c, T0).await.unwrap();
            assert_eq!(store.client("tessera-cli").await.unwrap(), Some(c));
            assert_eq!(store.client("nope").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn refresh_tokens_are_single_use() {
        for store in stores().await {
            let (org, _, _) = seed(store.as_ref()).await;
            let s = session(user(store.as_ref(), org).await, org);
            store.create_session(&s, Some("cookie-hash")).await.unwrap();
            assert_eq!(
                store
                    .session_by_cookie("cookie-hash")
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                s.id
            );
            store.insert_refresh_token("r1", s.id, T0).await.unwrap();
            let later = T0 + Duration::hours(1);
            assert_eq!(
                store.rotate_refresh_token("r1", "r2", later).await.unwrap(),
                Redemption::Fresh(s.id)
            );
            assert_eq!(
                store.rotate_refresh_token("r1", "r3", later).await.unwrap(),
                Redemption::Reused(s.id)
            );
            assert_eq!(
                store.rotate_refresh_token("zz", "r4", later).await.unwrap(),
                Redemption::Unknown
            );
            assert_eq!(
                store
                    .session(s.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .last_refreshed_at,
                Some(later)
            );
            assert_eq!(store.live_sessions(T0).await.unwrap().len(), 1);
            assert!(store.end_session(s.id, later).await.unwrap());
            assert!(!store.end_session(s.id, later).await.unwrap());
            assert!(store.live_sessions(T0).await.unwrap().is_empty());
            assert!(store.user_sessions(s.user_id).await.unwrap().is_empty());
            // Ending a user's sessions in one organization leaves the others.
            let elsewhere = Session {
                id: SessionId::new(),
                organization_id: Some(OrganizationId::new()),
                ..s.clone()
            };
            let here = Session {
                id: SessionId::new(),
                ..s.clone()
            };
            store.create_session(&elsewhere, None).await.unwrap();
            store.create_session(&here, None).await.unwrap();
            assert_eq!(
                store
                    .end_user_sessions(s.user_id, Some(org), later)
                    .await
                    .unwrap(),
                vec![here.id]
            );
            assert_eq!(
                store
                    .end_user_sessions(s.user_id, None, later)
                    .await
                    .unwrap(),
                vec![elsewhere.id]
            );
        }
    }

    #[tokio::test]
    async fn codes_are_single_use_and_remember_their_session() {
        for store in stores().await {
            let (org, _, _) = seed(store.as_ref()).await;
            let u = user(store.as_ref(), org).await;
            let c = AuthorizationCode {
                hash: "c1".into(),
                client_id: "tessera-cli".into(),
                redirect_uri: "http://127.0.0.1:5000/callback".into(),
                code_challenge: "x".repeat(43),
                user_id: u,
                organization_id: Some(org),
                signed_in_at: T0,
                expires_at: T0 + Duration::seconds(60),
                session_id: None,
                browser_session_id: Some(SessionId::new()),
            };
            store.insert_code(&c).await.unwrap();
            let sid = SessionId::new();
            let with_session = AuthorizationCode {
                session_id: Some(sid),
                ..c.clone()
            };
            assert_eq!(
                store.redeem_code("c1", T0, sid).await.unwrap(),
                Redemption::Fresh(with_session.clone())
            );
            let again = store.redeem_code("c1", T0, SessionId::new()).await.unwrap();
            assert_eq!(
                again,
                Redemption::Reused(with_session),
                "the first session is kept"
            );
            assert_eq!(
                store.redeem_code("c2", T0, sid).await.unwrap(),
                Redemption::Unknown
            );
        }
    }

    #[tokio::test]
    async fn device_grants_are_decided_once_and_redeemed_once() {
        for store in stores().await {
            let (org, _, _) = seed(store.as_ref()).await;
            let u = user(store.as_ref(), org).await;
            let g = DeviceGrant {
                hash: "d1".into(),
                user_code: "BCDF-GHJK".into(),
                client_id: "tessera-cli".into(),
                expires_at: T0 + Duration::minutes(10),
                interval_seconds: 5,
                last_poll_at: None,
                status: DeviceStatus::Pending,
                user_id: None,
                organization_id: None,
                signed_in_at: None,
            };
            store.insert_device_grant(&g).await.unwrap();
            assert!(
                !store.redeem_device_grant("d1").await.unwrap(),
                "not approved yet"
            );
            store.record_device_poll("d1", T0, 10).await.unwrap();
            assert!(
                store
                    .decide_device_grant("BCDF-GHJK", Some((u, Some(org), T0)), T0)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .decide_device_grant("BCDF-GHJK", None, T0)
                    .await
                    .unwrap(),
                "decided once"
            );
            let got = store.device_grant("d1").await.unwrap().unwrap();
            assert_eq!(
                (got.status, got.user_id, got.interval_seconds),
                (DeviceStatus::Approved, Some(u), 10)
            );
            assert!(store.redeem_device_grant("d1").await.unwrap());
            assert!(!store.redeem_device_grant("d1").await.unwrap());
            // Expired grants are not decided.
            let late = DeviceGrant {
                hash: "d2".into(),
                user_code: "BCDF-GHJL".into(),
                ..g
            };
            store.insert_device_grant(&late).await.unwrap();
            assert!(
                !store
                    .decide_device_grant("BCDF-GHJL", None, T0 + Duration::minutes(11))
                    .await
                    .unwrap()
            );
            assert_eq!(
                store
                    .device_grant_by_user_code("BCDF-GHJL")
                    .await
                    .unwrap()
                    .unwrap()
                    .status,
                DeviceStatus::Pending
            );
        }
    }

    #[tokio::test]
    async fn purge_removes_only_what_ended_or_expired_before_the_cut() {
        for store in stores().await {
            let (org, _, _) = seed(store.as_ref()).await;
            let u = user(store.as_ref(), org).await;
            let ended = session(u, org);
            let live = session(u, org);
            store.create_session(&ended, None).await.unwrap();
            store.create_session(&live, None).await.unwrap();
            store
                .insert_refresh_token("old", ended.id, T0)
                .await
                .unwrap();
            store
                .insert_refresh_token("new", live.id, T0)
                .await
                .unwrap();
            assert!(store.end_session(ended.id, T0).await.unwrap());
            let code = AuthorizationCode {
                hash: "c-old".into(),
                client_id: "tessera-cli".into(),
                redirect_uri: "http://127.0.0.1:5000/callback".into(),
                code_challenge: "x".repeat(43),
                user_id: u,
                organization_id: Some(org),
                signed_in_at: T0,
                expires_at: T0 + Duration::seconds(60),
                session_id: None,
                browser_session_id: None,
            };
            store.insert_code(&code).await.unwrap();
            store
                .insert_code(&AuthorizationCode {
                    hash: "c-new".into(),
                    expires_at: T0 + Duration::days(2),
                    ..code.clone()
                })
                .await
                .unwrap();

            let cut = T0 + Duration::days(1);
            // ended session + its refresh token + the expired code
            assert_eq!(store.purge_expired(cut).await.unwrap(), 3);
            assert_eq!(store.session(ended.id).await.unwrap(), None);
            assert_eq!(store.refresh_token_session("old").await.unwrap(), None);
            assert_eq!(
                store
                    .redeem_code("c-old", cut, SessionId::new())
                    .await
                    .unwrap(),
                Redemption::Unknown
            );
            assert!(store.session(live.id).await.unwrap().is_some());
            assert_eq!(
                store.refresh_token_session("new").await.unwrap(),
                Some(live.id)
            );
            assert!(matches!(
                store
                    .redeem_code("c-new", cut, SessionId::new())
                    .await
                    .unwrap(),
                Redemption::Fresh(_)
            ));
            // Past the live session's absolute expiry, it goes too.
            let later = T0 + Duration::days(31);
            assert_eq!(store.purge_expired(later).await.unwrap(), 3);
            assert_eq!(store.session(live.id).await.unwrap(), None);
        }
    }
}
