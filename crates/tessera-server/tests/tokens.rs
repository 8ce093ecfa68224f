//! API tokens through the router: create at each scope, use, rotate, delete, roles,
//! escalation, lifetimes with a settable clock.

use axum::http::{Method, StatusCode};
use serde_json::json;
use tessera_testkit::{Answer, TestApp};
use time::Duration;

async fn authz(app: &TestApp, token: &str, query: &str) -> Answer {
    app.call(Method::GET, &format!("/v1/authz{query}"), Some(token), None)
        .await
}

async fn create(app: &TestApp, body: serde_json::Value) -> (String, String) {
    let a = app.create_token(body).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    (a.str("id"), a.str("token"))
}

#[tokio::test]
async fn tokens_at_each_scope_authenticate_with_identity_headers() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    for (scope, entity, role) in [
        ("ORGANIZATION", None, "ORGANIZATION_MEMBER"),
        ("WORKSPACE", Some(&s.workspace_id), "WORKSPACE_AUTHOR"),
        ("DEPLOYMENT", Some(&s.deployment_id), "DEPLOYMENT_ADMIN"),
    ] {
        let a = app
            .create_token(
                json!({"name": format!("{scope} token"), "scope": scope, "entityId": entity,
                "role": role, "tokenExpiryPeriodInDays": 30}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        assert_eq!(a.body["scope"], scope);
        assert_eq!(a.body["kind"], "STANDARD");
        assert_eq!(a.body["expiryPeriodInDays"], 30);
        assert_eq!(a.body["roles"][0]["role"], role);
        assert_eq!(a.body["createdBy"]["subjectType"], "SERVICEKEY");
        let value = a.str("token");
        assert!(value.ends_with(&a.str("shortToken")));
        assert_eq!(
            app.state.keys.current().signer.algorithm().as_str(),
            "EdDSA"
        );

        let ok = authz(&app, &value, "").await;
        assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
        assert_eq!(ok.header("x-tessera-subject"), Some(a.str("id").as_str()));
        assert_eq!(
            ok.header("x-tessera-organization"),
            Some(s.organization_id.as_str())
        );
        assert_eq!(ok.header("x-tessera-scope"), Some(scope));

        // The value is never shown again.
        let got = app
            .call(
                Method::GET,
                &app.org_path(&format!("/tokens/{}", a.str("id"))),
                Some(app.owner()),
                None,
            )
            .await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(got.body.get("token").is_none());
    }
}

#[tokio::test]
async fn claims_are_astro_compatible() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    let (id, value) = create(
        &app,
        json!({"name": "d", "scope": "DEPLOYMENT", "entityId": s.deployment_id,
        "role": "DEPLOYMENT_ADMIN", "tokenExpiryPeriodInDays": 1}),
    )
    .await;
    let payload = value.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["apiTokenId"], id);
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["org_id"], s.organization_id);
    assert_eq!(claims["scope"], "DEPLOYMENT");
    assert_eq!(claims["iss"], "http://tessera.test");
    assert_eq!(claims["aud"], "tessera");
    assert_eq!(claims["version"], 1);
    assert_eq!(
        claims["permissions"],
        json!([
            format!("organizationId:{}", s.organization_id),
            format!("workspaceId:{}", s.workspace_id),
            format!("deploymentId:{}", s.deployment_id)
        ])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86_400
    );
    for claim in ["nbf", "jti"] {
        assert!(claims.get(claim).is_some(), "{claim}");
    }
    let header = value.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].is_string());
}

#[tokio::test]
async fn rotation_rejects_the_old_value_at_once() {
    let app = TestApp::new().await;
    let (id, old) = create(
        &app,
        json!({"name": "ci", "scope": "WORKSPACE", "entityId": app.seed.workspace_id,
        "role": "WORKSPACE_OPERATOR", "tokenExpiryPeriodInDays": 7}),
    )
    .await;
    assert_eq!(authz(&app, &old, "").await.status, StatusCode::OK);
    app.clock.advance(Duration::hours(1));
    let r = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/rotate")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let new = r.str("token");
    assert_ne!(new, old);
    assert!(r.body["lastRotatedAt"].is_string());
    let unauthorized = authz(&app, &old, "").await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    let challenge = unauthorized.header("www-authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("rotated"), "{challenge}");
    assert_eq!(unauthorized.body["statusCode"], 401);
    assert!(
        unauthorized.body["requestId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(authz(&app, &new, "").await.status, StatusCode::OK);
    // A fresh window: the new value lives 7 days from the rotation.
    let end = time::OffsetDateTime::parse(
        &r.str("endAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let start = time::OffsetDateTime::parse(
        &r.str("startAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(end - start, Duration::days(7));
}

#[tokio::test]
async fn rotation_with_grace_keeps_the_old_value_until_the_window_ends() {
    let app = TestApp::new().await;
    let (id, old) = create(
        &app,
        json!({"name": "ci", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
    )
    .await;
    let r = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/rotate")),
            Some(app.owner()),
            Some(json!({"gracePeriodSeconds": 300})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let new = r.str("token");
    app.clock.advance(Duration::seconds(299));
    assert_eq!(authz(&app, &old, "").await.status, StatusCode::OK);
    assert_eq!(authz(&app, &new, "").await.status, StatusCode::OK);
    app.clock.advance(Duration::seconds(2));
    assert_eq!(authz(&app, &old, "").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(authz(&app, &new, "").await.status, StatusCode::OK);
    // Grace out of bounds is refused and changes nothing.
    let bad = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/rotate")),
            Some(app.owner()),
            Some(json!({"gracePeriodSeconds": 86_401})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(authz(&app, &new, "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn delete_rejects_every_value_at_once() {
    let app = TestApp::new().await;
    let (id, old) = create(
        &app,
        json!({"name": "ci", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
    )
    .await;
    let r = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/rotate")),
            Some(app.owner()),
            Some(json!({"gracePeriodSeconds": 3600})),
        )
        .await;
    let new = r.str("token");
    let d = app
        .call(
            Method::DELETE,
            &app.org_path(&format!("/tokens/{id}")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT, "{d:?}");
    for v in [&old, &new] {
        let a = authz(&app, v, "").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(a.header("www-authenticate").unwrap().contains("deleted"));
    }
    let again = app
        .call(
            Method::DELETE,
            &app.org_path(&format!("/tokens/{id}")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let list = app
        .call(
            Method::GET,
            &app.org_path("/tokens"),
            Some(app.owner()),
            None,
        )
        .await;
    assert!(
        list.body["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != id.as_str())
    );
}

#[tokio::test]
async fn lifetime_edges_with_a_settable_clock() {
    let app = TestApp::new().await;
    let a = app
        .create_token(
            json!({"name": "short", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER",
        "tokenExpiryPeriodInDays": 1}),
        )
        .await;
    let value = a.str("token");
    let end = time::OffsetDateTime::parse(
        &a.str("endAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    app.clock.set(end - Duration::seconds(1));
    assert_eq!(authz(&app, &value, "").await.status, StatusCode::OK);
    app.clock.set(end + Duration::seconds(1));
    let expired = authz(&app, &value, "").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("expired")
    );
    // A token without expiry still works ten years on.
    let forever = app
        .create_token(
            json!({"name": "forever", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
        )
        .await;
    assert!(forever.body["endAt"].is_null());
    app.clock.advance(Duration::days(3650));
    assert_eq!(
        authz(&app, &forever.str("token"), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn role_changes_take_effect_on_the_next_request_with_the_same_value() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    let (id, value) = create(
        &app,
        json!({"name": "org member", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
    )
    .await;
    let deploy = format!("?permission=deployment.deploy&entityId={}", s.deployment_id);
    assert_eq!(
        authz(&app, &value, &deploy).await.status,
        StatusCode::FORBIDDEN
    );

    // Add the organization token to the workspace as an Author.
    let roles = json!({"roles": [
        {"entityType": "ORGANIZATION", "entityId": s.organization_id, "role": "ORGANIZATION_MEMBER"},
        {"entityType": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_AUTHOR"}]});
    let r = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/roles")),
            Some(app.owner()),
            Some(roles),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["roles"].as_array().unwrap().len(), 2);
    assert_eq!(authz(&app, &value, &deploy).await.status, StatusCode::OK);
    let update = format!("?permission=deployment.update&entityId={}", s.deployment_id);
    assert_eq!(
        authz(&app, &value, &update).await.status,
        StatusCode::FORBIDDEN
    );

    // The filter by workspace now finds it.
    let list = app
        .call(
            Method::GET,
            &app.org_path(&format!("/tokens?workspaceId={}", s.workspace_id)),
            Some(app.owner()),
            None,
        )
        .await;
    assert!(
        list.body["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str()),
        "{list:?}"
    );

    // Remove it again: denied at once.
    let roles = json!({"roles": [{"entityType": "ORGANIZATION", "entityId": s.organization_id, "role": "ORGANIZATION_MEMBER"}]});
    let r = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/roles")),
            Some(app.owner()),
            Some(roles),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        authz(&app, &value, &deploy).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn nobody_escalates() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    // A Workspace Owner token manages its workspace's tokens...
    let (_, ws_owner) = create(
        &app,
        json!({"name": "ws owner", "scope": "WORKSPACE", "entityId": s.workspace_id,
        "role": "WORKSPACE_OWNER"}),
    )
    .await;
    let ok = app
        .call(Method::POST, &app.org_path("/tokens"), Some(&ws_owner),
            Some(json!({"name": "op", "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_OPERATOR"})))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    let dep = app
        .call(Method::POST, &app.org_path("/tokens"), Some(&ws_owner),
            Some(json!({"name": "dep", "scope": "DEPLOYMENT", "entityId": s.deployment_id, "role": "DEPLOYMENT_ADMIN"})))
        .await;
    assert_eq!(dep.status, StatusCode::OK, "{dep:?}");
    // ...but not organization tokens, and cannot grant organization roles.
    for role in ["ORGANIZATION_OWNER", "ORGANIZATION_MEMBER"] {
        let no = app
            .call(
                Method::POST,
                &app.org_path("/tokens"),
                Some(&ws_owner),
                Some(json!({"name": "x", "scope": "ORGANIZATION", "role": role})),
            )
            .await;
        assert_eq!(no.status, StatusCode::FORBIDDEN, "{role}: {no:?}");
    }
    // A Workspace Operator token cannot create tokens at all.
    let operator = ok.str("token");
    let no = app
        .call(Method::POST, &app.org_path("/tokens"), Some(&operator),
            Some(json!({"name": "x", "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_ACCESSOR"})))
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    // Nor rotate or delete its own or others' tokens.
    let own_id = ok.str("id");
    let no = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{own_id}/rotate")),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    // The Workspace Owner token cannot add an organization token to its workspace.
    let (org_token_id, _) = create(
        &app,
        json!({"name": "o", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
    )
    .await;
    let roles = json!({"roles": [
        {"entityType": "ORGANIZATION", "entityId": s.organization_id, "role": "ORGANIZATION_MEMBER"},
        {"entityType": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_OWNER"}]});
    let no = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{org_token_id}/roles")),
            Some(&ws_owner),
            Some(roles),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    // A member organization token cannot promote itself.
    let (member_id, member) = create(
        &app,
        json!({"name": "m", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
    )
    .await;
    let roles = json!({"roles": [{"entityType": "ORGANIZATION", "entityId": s.organization_id, "role": "ORGANIZATION_OWNER"}]});
    let no = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{member_id}/roles")),
            Some(&member),
            Some(roles),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    let still = app
        .call(
            Method::GET,
            &app.org_path(&format!("/tokens/{member_id}")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(still.body["roles"][0]["role"], "ORGANIZATION_MEMBER");
}

#[tokio::test]
async fn a_token_is_managed_only_in_its_home_scope() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    // A workspace token added to a deployment of its workspace.
    let (id, _) = create(&app, json!({"name": "w", "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_MEMBER"})).await;
    let roles = json!({"roles": [
        {"entityType": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_MEMBER"},
        {"entityType": "DEPLOYMENT", "entityId": s.deployment_id, "role": "DEPLOYMENT_ADMIN"}]});
    let r = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/roles")),
            Some(app.owner()),
            Some(roles),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // A Deployment Admin of that deployment cannot manage it.
    let (_, dep_admin) = create(&app, json!({"name": "d", "scope": "DEPLOYMENT", "entityId": s.deployment_id, "role": "DEPLOYMENT_ADMIN"})).await;
    let no = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}/rotate")),
            Some(&dep_admin),
            None,
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    // A deployment token cannot be added elsewhere; roles must keep the home role.
    let (dep_id, _) = create(&app, json!({"name": "d2", "scope": "DEPLOYMENT", "entityId": s.deployment_id, "role": "DEPLOYMENT_ADMIN"})).await;
    let roles = json!({"roles": [
        {"entityType": "DEPLOYMENT", "entityId": s.deployment_id, "role": "DEPLOYMENT_ADMIN"},
        {"entityType": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_MEMBER"}]});
    let no = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{dep_id}/roles")),
            Some(app.owner()),
            Some(roles),
        )
        .await;
    assert_eq!(no.status, StatusCode::BAD_REQUEST, "{no:?}");
    let no = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{dep_id}/roles")),
            Some(app.owner()),
            Some(json!({"roles": []})),
        )
        .await;
    assert_eq!(no.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn update_list_filter_sort_and_page() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    for name in ["charlie", "alpha", "bravo"] {
        create(&app, json!({"name": name, "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_MEMBER"})).await;
    }
    let (id, _) = create(&app, json!({"name": "dep", "scope": "DEPLOYMENT", "entityId": s.deployment_id, "role": "DEPLOYMENT_ADMIN"})).await;
    let list = app
        .call(
            Method::GET,
            &app.org_path("/tokens?sorts=name:asc&limit=2&offset=1"),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    assert_eq!(list.body["totalCount"], 5, "bootstrap token + 4");
    assert_eq!(list.body["limit"], 2);
    let names: Vec<_> = list.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["bravo", "charlie"]);
    let orgs = app
        .call(
            Method::GET,
            &app.org_path("/tokens?includeOnlyOrganizationTokens=true"),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(orgs.body["totalCount"], 1);
    let deps = app
        .call(
            Method::GET,
            &app.org_path(&format!("/tokens?deploymentId={}", s.deployment_id)),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(deps.body["totalCount"], 1);
    assert_eq!(deps.body["tokens"][0]["id"], id.as_str());
    let bad = app
        .call(
            Method::GET,
            &app.org_path("/tokens?sorts=secret:asc"),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let u = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{id}")),
            Some(app.owner()),
            Some(json!({"name": "renamed", "description": "why"})),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{u:?}");
    assert_eq!(u.body["name"], "renamed");
    assert_eq!(u.body["description"], "why");
}

#[tokio::test]
async fn last_used_is_recorded_without_a_write_per_request() {
    let app = TestApp::new().await;
    let (id, value) = create(
        &app,
        json!({"name": "ci", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
    )
    .await;
    let path = app.org_path(&format!("/tokens/{id}"));
    assert!(
        app.call(Method::GET, &path, Some(app.owner()), None)
            .await
            .body["lastUsedAt"]
            .is_null()
    );
    assert_eq!(authz(&app, &value, "").await.status, StatusCode::OK);
    // Visible at once from memory, not yet in the database.
    assert!(
        app.call(Method::GET, &path, Some(app.owner()), None)
            .await
            .body["lastUsedAt"]
            .is_string()
    );
    let org = app.seed.organization_id.parse().unwrap();
    let stored = app
        .state
        .store
        .token(org, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, None);
    app.state
        .usage
        .flush(app.state.store.as_ref())
        .await
        .unwrap();
    let stored = app
        .state
        .store
        .token(org, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, Some(app.now()));
}
