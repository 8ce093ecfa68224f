//! Token introspection (RFC 7662).

use axum::Json;
use axum::extract::{Form, State};
use serde::Deserialize;
use tessera_api::{ErrorBody, Introspection};
use tessera_core::claims::Identity;

use crate::auth::{Caller, inspect};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct IntrospectionRequest {
    /// The token to introspect.
    pub token: String,
    /// Accepted and ignored (RFC 7662 §2.1): the token says what it is.
    #[serde(default)]
    pub token_type_hint: Option<String>,
}

/// RFC 7662 introspection. The caller authenticates with a bearer token of the same
/// organization; any token that would be rejected, or belongs to another organization,
/// is `{"active": false}`.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn introspect(
    State(state): State<AppState>,
    caller: Caller,
    Form(req): Form<IntrospectionRequest>,
) -> Result<Json<Introspection>, ApiError> {
    let inactive = Json(Introspection::default());
    let verified = match inspect(&state, &req.token).await {
        Ok(v) => v,
        Err(crate::auth::AuthFailure::Rejected(_)) => return Ok(inactive),
        Err(e) => return Err(e.into()),
    };
    if verified.identity.organization_id() != Some(caller.organization_id()) {
        return Ok(inactive);
    }
    let c = &verified.claims;
    let (scope, token_type, client_id) = match &verified.identity {
        Identity::ApiToken { scope, .. } => (Some(scope.as_str().to_owned()), "api_token", None),
        Identity::Session { client_id, .. } => (None, "access_token", Some(client_id.clone())),
    };
    Ok(Json(Introspection {
        active: true,
        sub: c.sub.clone(),
        scope,
        exp: c.exp,
        iat: c.iat,
        iss: c.iss.clone(),
        aud: Some(verified.audience.clone()),
        jti: c.jti.clone(),
        org_id: c.org_id.clone(),
        token_type: Some(token_type.to_owned()),
        client_id,
    }))
}
