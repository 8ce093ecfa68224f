//! Discovery: JWKS and the OpenID / OAuth server metadata, and health.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// The public signing keys (RFC 7517), each with `kid`, `alg` and `use`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.keys.current();
    let mut response = Json(&keys.jwks).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// Server metadata: the endpoints this server has, and nothing it hasn't.
pub async fn openid_configuration(State(state): State<AppState>) -> Json<serde_json::Value> {
    let issuer = &state.issuer;
    let keys = state.keys.current();
    // Every algorithm of a published key: tokens signed by older keys still verify.
    let mut algs: Vec<String> = keys
        .jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_algorithm.map(|a| a.to_string()))
        .collect();
    algs.sort();
    algs.dedup();
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device/code"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "token_signing_alg_values_supported": algs,
        "claims_supported": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "apiTokenId",
            "org_id", "scope", "permissions", "version", "sid", "client_id"],
    }))
}

/// Liveness: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers within two seconds.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    let database = match ping {
        Ok(Ok(())) => "ok",
        Ok(Err(_)) => "unavailable",
        Err(_) => "timeout",
    };
    let status = if database == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database == "ok" { "ready" } else { "not ready" },
        "database": database,
        "backend": state.store.backend(),
        "signingKeys": state.keys.current().verifying.len(),
        "tokensInStatusCache": state.status.len(),
        "changeFeed": state.feed.get().as_str(),
    });
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
