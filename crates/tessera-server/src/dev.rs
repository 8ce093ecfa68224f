//! The master key, first-run bootstrap, and dev mode.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tessera_core::ids::{DeploymentId, OrganizationId, UserId, WorkspaceId};
use tessera_core::keys::MasterKey;
use tessera_core::lifetime::ExpiryPeriod;
use tessera_core::model::{
    Actor, Deployment, Organization, RoleBinding, TokenScope, User, Workspace,
};
use tessera_core::role::{OrganizationRole, Role};
use tessera_core::secret::{Password, random_string};

use crate::api::now_seconds;
use crate::api::tokens::create_api_token;
use crate::api::users::hash_password;
use crate::config::Config;
use crate::error::ApiError;
use crate::state::{AppState, StartupError};

const DEV_MASTER_KEY_FILE: &str = "master.key";
const DEV_CREDENTIALS_FILE: &str = "dev-credentials.json";

/// The master key: `TESSERA_MASTER_KEY`, else `master_key_file`, else (dev mode only) a
/// key file in the data directory, created on first start with mode 0600.
pub fn master_key(config: &Config) -> Result<MasterKey, StartupError> {
    let bad = |source: &str, e: tessera_core::keys::KeyError| {
        StartupError::MasterKey(format!("the master key from {source} is unusable: {e}"))
    };
    if let Some(text) = &config.master_key {
        return MasterKey::from_base64(text).map_err(|e| bad("TESSERA_MASTER_KEY", e));
    }
    if let Some(path) = &config.master_key_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StartupError::MasterKey(format!(
                "cannot read the master key file {}: {e}",
                path.display()
            ))
        })?;
        return MasterKey::from_base64(&text).map_err(|e| bad(&path.display().to_string(), e));
    }
    if config.dev {
        let path = config.data_dir.join(DEV_MASTER_KEY_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                StartupError::MasterKey(format!("cannot read {}: {e}", path.display()))
            })?;
            return MasterKey::from_base64(&text).map_err(|e| bad(&path.display().to_string(), e));
        }
        let (key, text) = MasterKey::generate();
        write_private(&path, text.expose())?;
        tracing::warn!(path = %path.display(), "dev mode: generated a master key file");
        return Ok(key);
    }
    Err(StartupError::MasterKey(
        "no master key: set TESSERA_MASTER_KEY (base64 of 32 random bytes) or pass \
         --master-key-file FILE; `tessera admin master-key > FILE` makes one. (`--dev` makes one for you.)"
            .into(),
    ))
}

/// Writes a file readable by its owner only, atomically (temporary file, then rename).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), StartupError> {
    let io = |source| StartupError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// What bootstrap made. The password and token are shown once.
#[derive(Debug)]
pub struct Bootstrapped {
    pub organization: Organization,
    pub owner: User,
    pub password: Password,
    pub token: tessera_core::secret::TokenValue,
}

/// Creates an organization with an Organization Owner user (random password) and an
/// Organization Owner API token that never expires.
pub async fn bootstrap(
    state: &AppState,
    organization: &str,
    email: &str,
) -> Result<Bootstrapped, ApiError> {
    let now = now_seconds(state);
    let email = crate::api::users::valid_email(email)?;
    // Checked first, so that a taken email leaves no organization behind.
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "a user with the email {email} already exists"
        )));
    }
    let org = Organization {
        id: OrganizationId::new(),
        name: crate::api::valid_name(organization, "organization name")?,
        description: String::new(),
        created_at: now,
        updated_at: now,
    };
    state.store.create_organization(&org).await?;
    let user = User {
        id: UserId::new(),
        email,
        full_name: "Organization Owner".into(),
        created_at: now,
        updated_at: now,
    };
    let password = Password::new(random_string(18));
    let hash = hash_password(password.clone(), state.config.password_cost).await?;
    let owner_role = Role::Organization(OrganizationRole::Owner);
    state
        .store
        .create_user(
            &user,
            &hash,
            org.id,
            &[RoleBinding {
                role: owner_role,
                entity_id: *org.id.as_uuid(),
            }],
        )
        .await?;
    let (_, token) = create_api_token(
        state,
        org.id,
        "Organization Owner (bootstrap)".into(),
        "Created by bootstrap. Rotate or delete it once you have your own tokens.".into(),
        TokenScope::Organization,
        owner_role,
        ExpiryPeriod::NEVER,
        Actor::User(user.id),
    )
    .await?;
    Ok(Bootstrapped {
        organization: org,
        owner: user,
        password,
        token,
    })
}

/// The seeded Organization Owner.
const DEV_OWNER: &str = "owner@tessera.dev";

/// `<data-dir>/dev-credentials.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevCredentials {
    pub issuer: String,
    pub audience: String,
    pub base_url: String,
    pub organization_id: String,
    pub workspace_id: String,
    pub deployment_id: String,
    pub owner_email: String,
    pub owner_password: String,
    pub organization_token: String,
}

/// Dev mode: seeds an organization, a workspace, a deployment, an owner and an owner
/// token on first start; later starts reuse them. Prints them with curl lines.
pub async fn seed(state: &AppState, base_url: &str) -> Result<DevCredentials, StartupError> {
    let path = state.config.data_dir.join(DEV_CREDENTIALS_FILE);
    let existing: Option<DevCredentials> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let failed = |e: ApiError| StartupError::MasterKey(format!("dev seeding failed: {e}"));
    let creds = match existing {
        Some(mut c) => {
            c.base_url = base_url.to_owned();
            if c.issuer != state.issuer {
                // The seeded token names the old issuer and would be refused: issue a new one.
                c.organization_token =
                    reissue_owner_token(state, &c, true).await.map_err(failed)?;
                tracing::warn!(old = %c.issuer, new = %state.issuer, "dev mode: the issuer changed; issued a new owner token");
                c.issuer = state.issuer.clone();
            } else if let Err(crate::auth::AuthFailure::Rejected(why)) =
                crate::auth::inspect(state, &c.organization_token).await
            {
                // Rotated or deleted since: what the file holds works no more. A new one
                // (a rotated token keeps the value its rotation gave).
                c.organization_token = reissue_owner_token(state, &c, false)
                    .await
                    .map_err(failed)?;
                tracing::warn!(reason = %why, "dev mode: the saved owner token is refused; issued a new one");
            }
            c
        }
        None => {
            if state.store.user_by_email(DEV_OWNER).await?.is_some() {
                return Err(StartupError::MasterKey(format!(
                    "{} holds a dev organization, but {} is gone (its password cannot be \
                     recovered): remove the directory to start afresh, or sign in with a user \
                     of your own",
                    state.config.data_dir.display(),
                    path.display()
                )));
            }
            fresh_seed(state, base_url).await.map_err(failed)?
        }
    };
    let json = serde_json::to_vec_pretty(&creds).unwrap_or_default();
    if path.exists() {
        std::fs::remove_file(&path).map_err(|source| StartupError::Io {
            context: format!("cannot replace {}", path.display()),
            source,
        })?;
    }
    write_private(&path, &json)?;
    print_credentials(&creds, &path);
    Ok(creds)
}

/// Makes a new owner token for the current issuer; with `delete_old`, deletes the one
/// the file names first.
async fn reissue_owner_token(
    state: &AppState,
    c: &DevCredentials,
    delete_old: bool,
) -> Result<String, ApiError> {
    use base64::Engine as _;
    let org: OrganizationId = c
        .organization_id
        .parse()
        .map_err(|_| ApiError::BadRequest("dev credentials name no organization".into()))?;
    let owner = state
        .store
        .user_by_email(&c.owner_email)
        .await?
        .map(|(u, _)| u.id)
        .ok_or_else(|| ApiError::not_found("dev owner"))?;
    // The old token's id, from its (unverified: our own file) payload.
    let old_id = c
        .organization_token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["apiTokenId"].as_str().and_then(|s| s.parse().ok()));
    let now = now_seconds(state);
    if delete_old
        && let Some(id) = old_id
        && state
            .store
            .delete_token(org, id, Actor::User(owner), now)
            .await?
    {
        crate::feed::token_deleted(state, id);
        crate::feed::roles_changed(state, Some(*id.as_uuid()));
    }
    let (_, token) = create_api_token(
        state,
        org,
        "Organization Owner (dev)".into(),
        format!("Issued by tessera serve --dev for {}", state.issuer),
        TokenScope::Organization,
        Role::Organization(OrganizationRole::Owner),
        ExpiryPeriod::NEVER,
        Actor::User(owner),
    )
    .await?;
    Ok(token.expose().to_owned())
}

async fn fresh_seed(state: &AppState, base_url: &str) -> Result<DevCredentials, ApiError> {
    let boot = bootstrap(state, "Dev Organization", DEV_OWNER).await?;
    let now = now_seconds(state);
    let ws = Workspace {
        id: WorkspaceId::new(),
        organization_id: boot.organization.id,
        name: "Dev Workspace".into(),
        description: "Seeded by tessera serve --dev".into(),
        created_at: now,
        updated_at: now,
    };
    state.store.create_workspace(&ws).await?;
    let dep = Deployment {
        id: DeploymentId::new(),
        organization_id: boot.organization.id,
        workspace_id: ws.id,
        name: "dev-deployment".into(),
        description: "Seeded by tessera serve --dev".into(),
        created_at: now,
        updated_at: now,
    };
    state.store.create_deployment(&dep).await?;
    Ok(DevCredentials {
        issuer: state.issuer.clone(),
        audience: state.config.audience.clone(),
        base_url: base_url.to_owned(),
        organization_id: boot.organization.id.to_string(),
        workspace_id: ws.id.to_string(),
        deployment_id: dep.id.to_string(),
        owner_email: boot.owner.email,
        owner_password: boot.password.expose().to_owned(),
        organization_token: boot.token.expose().to_owned(),
    })
}

fn print_credentials(c: &DevCredentials, path: &Path) {
    println!(
        "\nTessera dev mode: NOT FOR PRODUCTION (credentials below are also in {path})\n\n\
         organization   {org}\n\
         workspace      {ws}\n\
         deployment     {dep}\n\
         owner          {email} / {password}\n\
         owner token    (Organization Owner API token)\n\
         web UI         {base}/ui (sign in as the owner)\n\n\
         export TESSERA_URL={base}\n\
         export TESSERA_API_TOKEN={token}\n\n\
         curl -s $TESSERA_URL/v1/authz -H \"Authorization: Bearer $TESSERA_API_TOKEN\" -i\n\
         curl -s $TESSERA_URL/v1/organizations/{org}/tokens -H \"Authorization: Bearer $TESSERA_API_TOKEN\"\n\
         curl -s $TESSERA_URL/v1/organizations/{org}/tokens -H \"Authorization: Bearer $TESSERA_API_TOKEN\" \\\n  \
           -H 'Content-Type: application/json' \\\n  \
           -d '{{\"name\":\"ci\",\"scope\":\"WORKSPACE\",\"entityId\":\"{ws}\",\"role\":\"WORKSPACE_OPERATOR\",\"tokenExpiryPeriodInDays\":30}}'\n",
        path = path.display(),
        org = c.organization_id,
        ws = c.workspace_id,
        dep = c.deployment_id,
        email = c.owner_email,
        password = c.owner_password,
        base = c.base_url,
        token = c.organization_token,
    );
}
