//! The validation path against forged and unfit tokens, and the error contract for bad
//! input: a clear 4xx with `{"message","requestId","statusCode"}`, never a 500.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_core::keys::{KeyAlgorithm, KeyPair};
use tessera_testkit::{Answer, TestApp};
use time::Duration;

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let h = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    let p = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    (h, p, it.next().unwrap().to_owned())
}

async fn authz(app: &TestApp, token: &str) -> Answer {
    app.call(Method::GET, "/v1/authz", Some(token), None).await
}

fn assert_error_body(a: &Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.body["statusCode"], status.as_u16(), "{a:?}");
    assert!(
        a.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{a:?}"
    );
    let id = a.body["requestId"].as_str().unwrap();
    assert!(!id.is_empty());
    assert_eq!(a.header("x-request-id"), Some(id));
}

#[tokio::test]
async fn forged_and_unfit_tokens_get_401() {
    let app = TestApp::new().await;
    let good = app.owner().to_owned();
    let (header, claims, sig) = parts(&good);
    let signer = &app.state.keys.current().signer;
    let resign = |c: &Value| signer.sign(c).unwrap().expose().to_owned();

    let mut cases: Vec<(&str, String)> = Vec::new();
    // Tampered payload, original signature.
    let mut tampered = claims.clone();
    tampered["org_id"] = json!(uuid::Uuid::now_v7().to_string());
    cases.push((
        "tampered",
        format!("{}.{}.{}", b64(&header), b64(&tampered), sig),
    ));
    // alg none, with and without a signature.
    let mut none = header.clone();
    none["alg"] = json!("none");
    cases.push(("alg none", format!("{}.{}.", b64(&none), b64(&claims))));
    cases.push((
        "alg none signed",
        format!("{}.{}.{}", b64(&none), b64(&claims), sig),
    ));
    // HS256 with the public key as the secret.
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    cases.push((
        "alg confusion",
        format!("{}.{}.{}", b64(&hs), b64(&claims), sig),
    ));
    // Signed by us, but wrong issuer / audience / expired / not yet valid.
    let mut c = claims.clone();
    c["iss"] = json!("https://evil.test");
    cases.push(("wrong iss", resign(&c)));
    let mut c = claims.clone();
    c["aud"] = json!("someone-else");
    cases.push(("wrong aud", resign(&c)));
    let mut c = claims.clone();
    c["exp"] = json!(c["iat"].as_i64().unwrap() - 10);
    cases.push(("expired", resign(&c)));
    let mut c = claims.clone();
    c["nbf"] = json!(c["iat"].as_i64().unwrap() + 3600);
    cases.push(("not yet valid", resign(&c)));
    let mut c = claims.clone();
    c["sid"] = json!(uuid::Uuid::now_v7().to_string());
    cases.push(("both kinds", resign(&c)));
    let mut c = claims.clone();
    c["jti"] = json!(uuid::Uuid::now_v7().to_string());
    cases.push(("unknown jti", resign(&c)));
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove("jti");
    cases.push(("missing jti", resign(&c)));
    // Another key: unknown kid, and our kid with another key's signature.
    let other = KeyPair::generate(KeyAlgorithm::EdDSA).unwrap();
    cases.push((
        "other key",
        other
            .signer()
            .unwrap()
            .sign(&claims)
            .unwrap()
            .expose()
            .to_owned(),
    ));
    let foreign = other.signer().unwrap().sign(&claims).unwrap();
    let (_, _, foreign_sig) = parts(foreign.expose());
    cases.push((
        "our kid, other key",
        format!("{}.{}.{}", b64(&header), b64(&claims), foreign_sig),
    ));
    // Garbage and oversize.
    cases.push(("garbage", "not-a-token".into()));
    cases.push((
        "oversize",
        format!("{}.{}.{}", b64(&header), "a".repeat(9000), sig),
    ));

    for (name, token) in cases {
        let a = authz(&app, &token).await;
        assert_error_body(&a, StatusCode::UNAUTHORIZED);
        let challenge = a.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("invalid_token"),
            "{name}: {challenge}"
        );
    }
    // And the real token still works.
    assert_eq!(authz(&app, &good).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_of_one_server_is_not_accepted_by_another() {
    let a = TestApp::new().await;
    let b = TestApp::new().await;
    assert_eq!(authz(&b, a.owner()).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_garbled_and_basic_authorization_headers() {
    let app = TestApp::new().await;
    let none = app.call(Method::GET, "/v1/authz", None, None).await;
    assert_error_body(&none, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"tessera\"")
    );
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer    ",
        "garbage",
        "Token abc",
    ] {
        let req = Request::get("/v1/authz")
            .header("authorization", value)
            .body(Body::empty())
            .unwrap();
        let a = app.send(req).await;
        assert_error_body(&a, StatusCode::UNAUTHORIZED);
        let challenge = a.header("www-authenticate").unwrap_or_default();
        // RFC 6750 §3.1: another scheme is no bearer credential: no error code.
        let foreign = !value.starts_with("Bearer");
        assert_eq!(
            !challenge.contains("error="),
            foreign,
            "{value}: {challenge}"
        );
    }
    let lower = Request::get("/v1/authz")
        .header("authorization", format!("bearer {}", app.owner()))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(lower).await.status, StatusCode::OK);
}

async fn token_count(app: &TestApp) -> u64 {
    let list = app
        .call(
            Method::GET,
            &app.org_path("/tokens"),
            Some(app.owner()),
            None,
        )
        .await;
    list.body["totalCount"].as_u64().unwrap()
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_changes_nothing() {
    let app = TestApp::new().await;
    let s = app.seed.clone();
    let before = token_count(&app).await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"name": "x", "scope": "ORGANIZATION", "role": "ORGANIZATION_KING"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown role",
        ),
        (
            json!({"name": "x", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER", "tokenExpiryPeriodInDays": 0}),
            StatusCode::BAD_REQUEST,
            "between 1 and 3650",
        ),
        (
            json!({"name": "x", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER", "tokenExpiryPeriodInDays": 3651}),
            StatusCode::BAD_REQUEST,
            "between 1 and 3650",
        ),
        (
            json!({"name": "x", "scope": "WORKSPACE", "role": "WORKSPACE_MEMBER"}),
            StatusCode::BAD_REQUEST,
            "entityId is required",
        ),
        (
            json!({"name": "x", "scope": "WORKSPACE", "entityId": s.deployment_id, "role": "WORKSPACE_MEMBER"}),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            json!({"name": "x", "scope": "WORKSPACE", "entityId": s.workspace_id, "role": "DEPLOYMENT_ADMIN"}),
            StatusCode::BAD_REQUEST,
            "token of scope WORKSPACE",
        ),
        (
            json!({"name": "x", "scope": "DEPLOYMENT", "entityId": s.workspace_id, "role": "DEPLOYMENT_ADMIN"}),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            json!({"name": "x", "scope": "WORKSPACE", "entityId": "not-an-id", "role": "WORKSPACE_MEMBER"}),
            StatusCode::BAD_REQUEST,
            "not a valid id",
        ),
        (
            json!({"name": "x", "scope": "WORKSPACE", "entityId": uuid::Uuid::now_v7().to_string(), "role": "WORKSPACE_MEMBER"}),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            json!({"name": "  ", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
            StatusCode::BAD_REQUEST,
            "must not be empty",
        ),
        (
            json!({"name": "x", "scope": "GALAXY", "role": "ORGANIZATION_MEMBER"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "GALAXY",
        ),
        (
            json!({"name": "x", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "extra",
        ),
        (
            json!({"name": "x", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER", "tokenExpiryPeriodInDays": "ten"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tokenExpiryPeriodInDays",
        ),
    ];
    for (body, status, needle) in cases {
        let a = app.create_token(body.clone()).await;
        assert_error_body(&a, status);
        let message = a.body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    // Malformed JSON, wrong content type, oversized body.
    let path = app.org_path("/tokens");
    let raw = |body: &'static str, ctype: &'static str| {
        Request::post(path.clone())
            .header("authorization", format!("Bearer {}", app.owner()))
            .header("content-type", ctype)
            .body(Body::from(body))
            .unwrap()
    };
    assert_error_body(
        &app.send(raw("{\"name\": ", "application/json")).await,
        StatusCode::BAD_REQUEST,
    );
    assert_error_body(
        &app.send(raw("name=x", "text/plain")).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );
    let huge = Request::post(path.clone())
        .header("authorization", format!("Bearer {}", app.owner()))
        .header("content-type", "application/json")
        .body(Body::from(format!(
            "{{\"name\": \"{}\"}}",
            "x".repeat(100_000)
        )))
        .unwrap();
    assert_error_body(&app.send(huge).await, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(token_count(&app).await, before, "nothing was stored");

    // Unknown and foreign ids answer 404.
    let foreign = uuid::Uuid::now_v7();
    for path in [
        format!("/v1/organizations/{foreign}/tokens"),
        app.org_path(&format!("/tokens/{foreign}")),
        app.org_path("/tokens/not-an-id"),
        app.org_path(&format!("/workspaces/{foreign}")),
        app.org_path(&format!("/deployments/{foreign}")),
        "/v1/nothing-here".into(),
    ] {
        assert_error_body(
            &app.call(Method::GET, &path, Some(app.owner()), None).await,
            StatusCode::NOT_FOUND,
        );
    }
    assert_error_body(
        &app.call(
            Method::PUT,
            &app.org_path("/tokens"),
            Some(app.owner()),
            None,
        )
        .await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
    // Authz with an unknown permission.
    let a = app
        .call(
            Method::GET,
            "/v1/authz?permission=deployment.destroy&entityId=x",
            Some(app.owner()),
            None,
        )
        .await;
    assert_error_body(&a, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_organization_sees_nothing() {
    let app = TestApp::new().await;
    let other = tessera_server::dev::bootstrap(&app.state, "Other", "boss@other.test")
        .await
        .unwrap();
    let theirs = other.token.expose().to_owned();
    let s = app.seed.clone();
    for path in [
        app.org_path("/tokens"),
        app.org_path(""),
        app.org_path(&format!("/workspaces/{}", s.workspace_id)),
        app.org_path(&format!("/deployments/{}", s.deployment_id)),
        app.org_path("/users"),
    ] {
        let a = app.call(Method::GET, &path, Some(&theirs), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {a:?}");
    }
    // Even forward-auth with a permission on our deployment is a plain 403.
    let a = app
        .call(
            Method::GET,
            &format!(
                "/v1/authz?permission=deployment.view&entityId={}",
                s.deployment_id
            ),
            Some(&theirs),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Introspecting our token with theirs: inactive.
    let form = Request::post("/oauth/introspect")
        .header("authorization", format!("Bearer {theirs}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={}", app.owner())))
        .unwrap();
    let a = app.send(form).await;
    assert_eq!(a.body, json!({"active": false}));
}

#[tokio::test]
async fn introspection_follows_live_status() {
    let app = TestApp::new().await;
    let created = app.create_token(json!({"name": "x", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER", "tokenExpiryPeriodInDays": 2})).await;
    let value = created.str("token");
    let introspect = |token: String, auth: Option<String>| {
        let mut req = Request::post("/oauth/introspect")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            req = req.header("authorization", format!("Bearer {a}"));
        }
        req.body(Body::from(format!(
            "token={token}&token_type_hint=access_token"
        )))
        .unwrap()
    };
    let a = app
        .send(introspect(value.clone(), Some(app.owner().into())))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["active"], true);
    assert_eq!(a.body["sub"], created.str("id"));
    assert_eq!(a.body["scope"], "ORGANIZATION");
    assert_eq!(a.body["org_id"], app.seed.organization_id);
    assert_eq!(a.body["token_type"], "api_token");
    for key in ["exp", "iat", "iss", "aud", "jti"] {
        assert!(!a.body[key].is_null(), "{key}");
    }
    let unauth = app.send(introspect(value.clone(), None)).await;
    assert_error_body(&unauth, StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::days(3));
    let a = app.send(introspect(value, Some(app.owner().into()))).await;
    assert_eq!(a.body, json!({"active": false}));
    let a = app
        .send(introspect("garbage".into(), Some(app.owner().into())))
        .await;
    assert_eq!(a.body, json!({"active": false}));
}

#[tokio::test]
async fn discovery_jwks_health_and_openapi() {
    let app = TestApp::new().await;
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(jwks.status, StatusCode::OK);
    let key = &jwks.body["keys"][0];
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kty"], "OKP");
    assert!(key["kid"].is_string());
    assert!(key.get("d").is_none());
    let (header, _, _) = parts(app.owner());
    assert_eq!(header["kid"], key["kid"]);

    let oidc = app
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(oidc.body["issuer"], "http://tessera.test");
    assert_eq!(
        oidc.body["jwks_uri"],
        "http://tessera.test/.well-known/jwks.json"
    );
    assert_eq!(
        oidc.body["introspection_endpoint"],
        "http://tessera.test/oauth/introspect"
    );

    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database"], "ok");

    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/organizations", "get"),
        ("/v1/organizations/{organizationId}", "post"),
        ("/v1/organizations/{organizationId}/workspaces", "post"),
        (
            "/v1/organizations/{organizationId}/workspaces/{workspaceId}",
            "delete",
        ),
        ("/v1/organizations/{organizationId}/deployments", "get"),
        (
            "/v1/organizations/{organizationId}/deployments/{deploymentId}",
            "post",
        ),
        ("/v1/organizations/{organizationId}/users", "post"),
        (
            "/v1/organizations/{organizationId}/users/{userId}",
            "delete",
        ),
        (
            "/v1/organizations/{organizationId}/users/{userId}/roles",
            "post",
        ),
        ("/v1/organizations/{organizationId}/tokens", "get"),
        ("/v1/organizations/{organizationId}/tokens", "post"),
        ("/v1/organizations/{organizationId}/tokens/{tokenId}", "get"),
        (
            "/v1/organizations/{organizationId}/tokens/{tokenId}",
            "post",
        ),
        (
            "/v1/organizations/{organizationId}/tokens/{tokenId}",
            "delete",
        ),
        (
            "/v1/organizations/{organizationId}/tokens/{tokenId}/rotate",
            "post",
        ),
        (
            "/v1/organizations/{organizationId}/tokens/{tokenId}/roles",
            "post",
        ),
        ("/v1/authz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
}

#[tokio::test]
async fn es256_and_rs256_are_selectable_and_old_keys_keep_verifying() {
    let app = TestApp::with_config(|c| c.signing_algorithm = Some(KeyAlgorithm::ES256)).await;
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let algs: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs, ["ES256"]);
    let (header, _, _) = parts(app.owner());
    assert_eq!(header["alg"], "ES256");
    assert_eq!(authz(&app, app.owner()).await.status, StatusCode::OK);

    // Restart on the same data with RS256: a new signing key, the old one still verifies.
    let mut config = tessera_testkit::test_config(app.dir.path());
    config.master_key = app.state.config.master_key.clone();
    config.signing_algorithm = Some(KeyAlgorithm::RS256);
    let clock = std::sync::Arc::new(app.clock.clone());
    let state = tessera_server::build_state(config, clock).await.unwrap();
    let keys = state.keys.current();
    assert_eq!(keys.signer.algorithm(), KeyAlgorithm::RS256);
    assert_eq!(keys.jwks.keys.len(), 2);
    let restarted = tessera_testkit::TestApp {
        state,
        clock: app.clock.clone(),
        seed: app.seed.clone(),
        dir: tessera_testkit::TempDir::new("unused"),
    };
    assert_eq!(
        authz(&restarted, app.owner()).await.status,
        StatusCode::OK,
        "ES256 token still valid"
    );
    let created = restarted
        .create_token(
            json!({"name": "rsa", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
        )
        .await;
    let (header, _, _) = parts(&created.str("token"));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        authz(&restarted, &created.str("token")).await.status,
        StatusCode::OK
    );

    // A restart with no algorithm configured keeps the active key, whatever its
    // algorithm (as after `tessera keys import` or `keys rotate --algorithm`).
    let mut config = tessera_testkit::test_config(app.dir.path());
    config.master_key = app.state.config.master_key.clone();
    config.signing_algorithm = None;
    let state = tessera_server::build_state(config, std::sync::Arc::new(app.clock.clone()))
        .await
        .unwrap();
    assert_eq!(state.keys.current().signer.algorithm(), KeyAlgorithm::RS256);
    assert_eq!(state.keys.current().jwks.keys.len(), 2, "no key made");

    // A wrong master key is refused, never replaced: neither with the active key's
    // algorithm nor with another one (which would otherwise make a new key).
    for algorithm in [KeyAlgorithm::RS256, KeyAlgorithm::EdDSA] {
        let mut config = tessera_testkit::test_config(app.dir.path());
        config.signing_algorithm = Some(algorithm);
        let err = tessera_server::build_state(config, std::sync::Arc::new(app.clock.clone()))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("master key"), "{algorithm}: {err}");
    }
    assert_eq!(
        app.state.store.signing_keys().await.unwrap().len(),
        2,
        "nothing stored by a refused start"
    );
}

#[tokio::test]
async fn control_characters_are_refused_and_introspection_is_not_a_use() {
    let app = TestApp::new().await;
    let a = app
        .create_token(json!({"name": "x", "description": "a\u{0}b", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}))
        .await;
    assert_error_body(&a, StatusCode::BAD_REQUEST);
    let a = app
        .call(Method::POST, &app.org_path("/users"), Some(app.owner()),
            Some(json!({"email": "n@u.test", "fullName": "a\u{0}b", "organizationRole": "ORGANIZATION_MEMBER"})))
        .await;
    assert_error_body(&a, StatusCode::BAD_REQUEST);

    let created = app
        .create_token(
            json!({"name": "quiet", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
        )
        .await;
    let form = Request::post("/oauth/introspect")
        .header("authorization", format!("Bearer {}", app.owner()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={}", created.str("token"))))
        .unwrap();
    assert_eq!(app.send(form).await.body["active"], true);
    let got = app
        .call(
            Method::GET,
            &app.org_path(&format!("/tokens/{}", created.str("id"))),
            Some(app.owner()),
            None,
        )
        .await;
    assert!(got.body["lastUsedAt"].is_null(), "{got:?}");
}

#[tokio::test]
async fn forward_auth_fails_closed_on_a_half_configured_gateway() {
    let app = TestApp::new().await;
    let dep = app.seed.deployment_id.clone();
    for query in [
        format!("?permission=&entityId={dep}"),
        format!("?entityId={dep}"),
        "?permission=deployment.deploy".into(),
    ] {
        let a = app
            .call(
                Method::GET,
                &format!("/v1/authz{query}"),
                Some(app.owner()),
                None,
            )
            .await;
        assert_error_body(&a, StatusCode::BAD_REQUEST);
    }
    // Without a token the answer is 401, whatever the query.
    let a = app
        .call(Method::GET, "/v1/authz?permission=nonsense", None, None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
