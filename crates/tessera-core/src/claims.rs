//! The claims Tessera puts in tokens, Astro-compatible for API tokens.

use serde::{Deserialize, Serialize};

use crate::ids::{DeploymentId, Jti, OrganizationId, SessionId, TokenId, UserId, WorkspaceId};
use crate::model::{ScopeKind, TokenScope};

/// `aud`: one string or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(all) => all.iter().any(|a| a == aud),
        }
    }

    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(a) => vec![a.clone()],
            Self::Many(all) => all.clone(),
        }
    }
}

/// Every claim Tessera reads or writes. On the way in, all are optional so that a
/// missing one is reported by name; a claim of the wrong type fails to parse.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(
        rename = "apiTokenId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub api_token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// What an API token value states about itself.
#[derive(Debug, Clone)]
pub struct ApiTokenGrant<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub token_id: TokenId,
    pub jti: Jti,
    pub organization_id: OrganizationId,
    pub scope: TokenScope,
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    pub version: i64,
}

/// What a session access token states.
#[derive(Debug, Clone)]
pub struct SessionGrant<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub client_id: &'a str,
    pub organization_id: Option<OrganizationId>,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl Claims {
    /// The claims of one API token value.
    pub fn api_token(g: &ApiTokenGrant<'_>) -> Self {
        let mut permissions = vec![format!("organizationId:{}", g.organization_id)];
        if let Some(ws) = g.scope.workspace() {
            permissions.push(format!("workspaceId:{ws}"));
        }
        if let Some(d) = g.scope.deployment() {
            permissions.push(format!("deploymentId:{d}"));
        }
        Self {
            iss: Some(g.issuer.to_owned()),
            aud: Some(Audience::One(g.audience.to_owned())),
            sub: Some(g.token_id.to_string()),
            iat: Some(g.issued_at),
            nbf: Some(g.issued_at),
            exp: g.expires_at,
            jti: Some(g.jti.to_string()),
            api_token_id: Some(g.token_id.to_string()),
            org_id: Some(g.organization_id.to_string()),
            scope: Some(g.scope.kind()),
            permissions: Some(permissions),
            version: Some(g.version),
            sid: None,
            client_id: None,
        }
    }

    /// The claims of a session access token.
    pub fn session_access(g: &SessionGrant<'_>) -> Self {
        Self {
            iss: Some(g.issuer.to_owned()),
            aud: Some(Audience::One(g.audience.to_owned())),
            sub: Some(g.user_id.to_string()),
            iat: Some(g.issued_at),
            nbf: Some(g.issued_at),
            exp: Some(g.expires_at),
            jti: Some(Jti::new().to_string()),
            org_id: g.organization_id.map(|o| o.to_string()),
            sid: Some(g.session_id.to_string()),
            client_id: Some(g.client_id.to_owned()),
            ..Self::default()
        }
    }

    /// The workspace and deployment named in `permissions`, if any.
    pub fn scoped_entities(&self) -> (Option<WorkspaceId>, Option<DeploymentId>) {
        let mut ws = None;
        let mut dep = None;
        for p in self.permissions.iter().flatten() {
            if let Some(id) = p.strip_prefix("workspaceId:") {
                ws = id.parse().ok();
            } else if let Some(id) = p.strip_prefix("deploymentId:") {
                dep = id.parse().ok();
            }
        }
        (ws, dep)
    }
}

/// The identity a verified token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    ApiToken {
        token_id: TokenId,
        organization_id: OrganizationId,
        scope: ScopeKind,
    },
    Session {
        user_id: UserId,
        session_id: SessionId,
        client_id: String,
        organization_id: Option<OrganizationId>,
    },
}

impl Identity {
    pub fn organization_id(&self) -> Option<OrganizationId> {
        match self {
            Self::ApiToken {
                organization_id, ..
            } => Some(*organization_id),
            Self::Session {
                organization_id, ..
            } => *organization_id,
        }
    }

    /// The `sub` claim.
    pub fn subject(&self) -> String {
        match self {
            Self::ApiToken { token_id, .. } => token_id.to_string(),
            Self::Session { user_id, .. } => user_id.to_string(),
        }
    }
}
