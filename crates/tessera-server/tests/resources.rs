//! Organizations, workspaces, deployments and users through the router.

use axum::http::{Method, StatusCode};
use serde_json::json;
use tessera_testkit::TestApp;

#[tokio::test]
async fn workspaces_and_deployments_lifecycle() {
    let app = TestApp::new().await;
    let owner = app.owner().to_owned();
    let ws = app
        .call(
            Method::POST,
            &app.org_path("/workspaces"),
            Some(&owner),
            Some(json!({"name": "ML", "description": "models"})),
        )
        .await;
    assert_eq!(ws.status, StatusCode::OK);
    let ws_id = ws.str("id");
    let list = app
        .call(
            Method::GET,
            &app.org_path("/workspaces"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(list.body["totalCount"], 2);
    let upd = app
        .call(
            Method::POST,
            &app.org_path(&format!("/workspaces/{ws_id}")),
            Some(&owner),
            Some(json!({"name": "Machine Learning"})),
        )
        .await;
    assert_eq!(upd.body["name"], "Machine Learning");
    assert_eq!(upd.body["description"], "models");

    let dep = app
        .call(
            Method::POST,
            &app.org_path("/deployments"),
            Some(&owner),
            Some(json!({"workspaceId": ws_id, "name": "train"})),
        )
        .await;
    assert_eq!(dep.status, StatusCode::OK, "{dep:?}");
    let dep_id = dep.str("id");
    let filtered = app
        .call(
            Method::GET,
            &app.org_path(&format!("/deployments?workspaceId={ws_id}")),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(filtered.body["totalCount"], 1);

    // A workspace with deployments is not deleted.
    let no = app
        .call(
            Method::DELETE,
            &app.org_path(&format!("/workspaces/{ws_id}")),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(no.status, StatusCode::CONFLICT, "{no:?}");

    // Deleting the deployment deletes its deployment tokens.
    let t = app.create_token(json!({"name": "d", "scope": "DEPLOYMENT", "entityId": dep_id, "role": "DEPLOYMENT_ADMIN"})).await;
    let value = t.str("token");
    assert_eq!(
        app.call(Method::GET, "/v1/authz", Some(&value), None)
            .await
            .status,
        StatusCode::OK
    );
    let d = app
        .call(
            Method::DELETE,
            &app.org_path(&format!("/deployments/{dep_id}")),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(Method::GET, "/v1/authz", Some(&value), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let d = app
        .call(
            Method::DELETE,
            &app.org_path(&format!("/workspaces/{ws_id}")),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let gone = app
        .call(
            Method::GET,
            &app.org_path(&format!("/workspaces/{ws_id}")),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn workspace_roles_decide_what_a_token_sees_and_does() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    let other = app
        .call(
            Method::POST,
            &app.org_path("/workspaces"),
            Some(app.owner()),
            Some(json!({"name": "Other"})),
        )
        .await;
    let accessor = app
        .create_token(json!({"name": "a", "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_ACCESSOR"}))
        .await
        .str("token");
    let list = app
        .call(
            Method::GET,
            &app.org_path("/workspaces"),
            Some(&accessor),
            None,
        )
        .await;
    assert_eq!(
        list.body["totalCount"], 1,
        "only its own workspace: {list:?}"
    );
    assert_eq!(list.body["items"][0]["id"], s.workspace_id.as_str());
    let no = app
        .call(
            Method::GET,
            &app.org_path(&format!("/workspaces/{}", other.str("id"))),
            Some(&accessor),
            None,
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    let no = app
        .call(
            Method::POST,
            &app.org_path("/deployments"),
            Some(&accessor),
            Some(json!({"workspaceId": s.workspace_id, "name": "x"})),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    let no = app
        .call(
            Method::POST,
            &app.org_path("/workspaces"),
            Some(&accessor),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    let no = app
        .call(Method::GET, &app.org_path(""), Some(&accessor), None)
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN, "no organization role");
    let deps = app
        .call(
            Method::GET,
            &app.org_path("/deployments"),
            Some(&accessor),
            None,
        )
        .await;
    assert_eq!(deps.body["totalCount"], 1);
    let operator = app
        .create_token(json!({"name": "o", "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_OPERATOR"}))
        .await
        .str("token");
    let ok = app
        .call(
            Method::POST,
            &app.org_path("/deployments"),
            Some(&operator),
            Some(json!({"workspaceId": s.workspace_id, "name": "new"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let no = app
        .call(
            Method::POST,
            &app.org_path(&format!("/workspaces/{}", s.workspace_id)),
            Some(&operator),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_with_roles_and_no_escalation() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    let created = app
        .call(
            Method::POST,
            &app.org_path("/users"),
            Some(app.owner()),
            Some(json!({
            "email": "Dev@Acme.test", "fullName": "Dev", "organizationRole": "ORGANIZATION_MEMBER",
            "workspaceRoles": [{"workspaceId": s.workspace_id, "role": "WORKSPACE_AUTHOR"}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    assert_eq!(created.body["email"], "dev@acme.test");
    let generated = created.str("password");
    assert!(generated.len() >= 20);
    let user_id = created.str("id");
    // The stored hash is argon2id and verifies the returned password.
    let (_, hash) = app
        .state
        .store
        .user_by_email("dev@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(tessera_core::password::verify(
        &tessera_core::secret::Password::new(generated),
        &hash
    ));

    let dup = app
        .call(
            Method::POST,
            &app.org_path("/users"),
            Some(app.owner()),
            Some(json!({"email": "dev@acme.test", "organizationRole": "ORGANIZATION_MEMBER"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    for bad in [
        json!({"email": "no-at-sign", "organizationRole": "ORGANIZATION_MEMBER"}),
        json!({"email": "a@b.test", "organizationRole": "WORKSPACE_OWNER"}),
        json!({"email": "a@b.test", "organizationRole": "ORGANIZATION_MEMBER", "password": "short"}),
    ] {
        let a = app
            .call(
                Method::POST,
                &app.org_path("/users"),
                Some(app.owner()),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {a:?}");
    }

    let list = app
        .call(
            Method::GET,
            &app.org_path("/users"),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(list.body["totalCount"], 2);
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("password").is_none())
    );

    // A Workspace Owner token may change workspace roles in its workspace, not the
    // organization role, and not above its own.
    let ws_owner = app
        .create_token(json!({"name": "wo", "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "WORKSPACE_OWNER"}))
        .await
        .str("token");
    let roles_path = app.org_path(&format!("/users/{user_id}/roles"));
    let ok = app
        .call(
            Method::POST,
            &roles_path,
            Some(&ws_owner),
            Some(json!({"organizationRole": "ORGANIZATION_MEMBER",
            "workspaceRoles": [{"workspaceId": s.workspace_id, "role": "WORKSPACE_OPERATOR"}]})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert_eq!(ok.body["workspaceRoles"][0]["role"], "WORKSPACE_OPERATOR");
    let no = app
        .call(
            Method::POST,
            &roles_path,
            Some(&ws_owner),
            Some(json!({"organizationRole": "ORGANIZATION_OWNER"})),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    // Users may not be created by a workspace owner.
    let no = app
        .call(
            Method::POST,
            &app.org_path("/users"),
            Some(&ws_owner),
            Some(json!({"email": "x@y.test", "organizationRole": "ORGANIZATION_MEMBER"})),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);

    // The last owner stays.
    let owner_id = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "owner@acme.test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let no = app
        .call(
            Method::DELETE,
            &app.org_path(&format!("/users/{owner_id}")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(no.status, StatusCode::CONFLICT, "{no:?}");
    let ok = app
        .call(
            Method::DELETE,
            &app.org_path(&format!("/users/{user_id}")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let gone = app
        .call(
            Method::GET,
            &app.org_path(&format!("/users/{user_id}")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn organization_view_and_update() {
    let app = TestApp::new().await;
    let got = app
        .call(Method::GET, &app.org_path(""), Some(app.owner()), None)
        .await;
    assert_eq!(got.body["name"], "Acme");
    let list = app
        .call(Method::GET, "/v1/organizations", Some(app.owner()), None)
        .await;
    assert_eq!(
        list.body["items"][0]["id"],
        app.seed.organization_id.as_str()
    );
    let upd = app
        .call(
            Method::POST,
            &app.org_path(""),
            Some(app.owner()),
            Some(json!({"description": "rockets"})),
        )
        .await;
    assert_eq!(upd.body["description"], "rockets");
    let member = app
        .create_token(json!({"name": "m", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}))
        .await
        .str("token");
    let no = app
        .call(
            Method::POST,
            &app.org_path(""),
            Some(&member),
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    let billing = app
        .create_token(
            json!({"name": "b", "scope": "ORGANIZATION", "role": "ORGANIZATION_BILLING_ADMIN"}),
        )
        .await
        .str("token");
    let ok = app
        .call(
            Method::POST,
            &app.org_path(""),
            Some(&billing),
            Some(json!({"name": "Acme Inc"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}
