//! Signing-key operations: rotate, retire a compromised key, import an operator's key.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::json;
use tessera_core::keys::{KeyAlgorithm, KeyPair};
use tessera_server::keys_admin;
use tessera_testkit::TestApp;

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let v: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

async fn status(app: &TestApp, token: &str) -> StatusCode {
    app.call(Method::GET, "/v1/authz", Some(token), None)
        .await
        .status
}

#[tokio::test]
async fn rotate_then_retire_a_compromised_key() {
    let app = TestApp::new().await;
    let old_kid = kid_of(app.owner());
    let err = keys_admin::retire(&app.state, &old_kid).await.unwrap_err();
    assert!(
        err.to_string().contains("is the active signing key"),
        "{err}"
    );

    let new_kid = keys_admin::rotate(&app.state, KeyAlgorithm::ES256)
        .await
        .unwrap();
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 2);
    // Old tokens still verify; new ones are signed with the new key.
    assert_eq!(status(&app, app.owner()).await, StatusCode::OK);
    let fresh = app
        .create_token(json!({"name": "new", "scope": "ORGANIZATION", "role": "ORGANIZATION_OWNER"}))
        .await
        .str("token");
    assert_eq!(kid_of(&fresh), new_kid);

    // Retire the old key: out of the JWKS, and every token it signed is refused.
    keys_admin::retire(&app.state, &old_kid).await.unwrap();
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str()]);
    let refused = app
        .call(Method::GET, "/v1/authz", Some(app.owner()), None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("unknown key")
    );
    assert_eq!(status(&app, &fresh).await, StatusCode::OK);
    assert!(
        keys_admin::retire(&app.state, &old_kid).await.is_err(),
        "retired once"
    );
    let listed = keys_admin::list(&app.state).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|k| k.kid == old_kid && k.retired_at.is_some())
    );
}

#[tokio::test]
async fn import_an_operator_key_and_refuse_anything_else() {
    let app = TestApp::new().await;
    let pair = KeyPair::generate(KeyAlgorithm::RS256).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(pair.pkcs8().expose())
    );
    let kid = keys_admin::import(&app.state, &pem).await.unwrap();
    assert_eq!(kid, pair.kid());
    let t = app
        .create_token(
            json!({"name": "rsa", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
        )
        .await
        .str("token");
    assert_eq!(kid_of(&t), kid);
    assert_eq!(status(&app, &t).await, StatusCode::OK);
    assert!(
        keys_admin::import(&app.state, &pem).await.is_err(),
        "the same key twice"
    );
    for bad in [
        "not a pem".to_owned(),
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".to_owned(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
    ] {
        let err = keys_admin::import(&app.state, &bad).await.unwrap_err();
        assert!(
            matches!(err, tessera_server::error::ApiError::BadRequest(_)),
            "{err}"
        );
    }
}
