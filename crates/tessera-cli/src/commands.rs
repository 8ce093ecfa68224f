//! What each subcommand does.

use std::sync::Arc;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;
use tessera_api as wire;
use tessera_core::keys::{JwkSet, KeySet};
use tessera_core::verify::{VerifyConfig, verify as verify_token};
use tessera_server::Config;

use crate::client::{Client, ClientError};
use crate::output::{self, time};
use crate::{ClientArgs, Output, ServeArgs};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Defaults, then the config file, then `TESSERA_*` variables, then flags.
fn server_config(args: ServeArgs) -> Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let data_dir_from_file = args.config.is_some() && config.data_dir != Config::default().data_dir;
    config.apply_env(std::env::vars())?;
    let data_dir_set = data_dir_from_file || std::env::var_os("TESSERA_DATA_DIR").is_some();
    if args.dev {
        config.dev = true;
        if !data_dir_set {
            config.data_dir = ".tessera-dev".into();
        }
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.issuer {
        config.issuer = Some(v);
    }
    if let Some(v) = args.audience {
        config.audience = v;
    }
    if let Some(v) = args.master_key_file {
        // A flag wins over the environment, TESSERA_MASTER_KEY included.
        config.master_key_file = Some(v);
        config.master_key = None;
    }
    if let Some(v) = args.database_url {
        config.database_url = Some(v);
    }
    if let Some(v) = args.signing_algorithm {
        config.signing_algorithm = Some(v.parse()?);
    }
    config.validate()?;
    Ok(config)
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    tessera_server::serve(server_config(args)?).await?;
    Ok(())
}

pub async fn bootstrap(args: ServeArgs, organization: &str, email: &str) -> Result<()> {
    let mut config = server_config(args)?;
    // Whatever a running server signs with stays its signing key.
    config.signing_algorithm = None;
    if config.issuer.is_none() {
        eprintln!(
            "Note: no --issuer given: the token names {}; it works only on a server with that issuer.",
            config.issuer()
        );
    }
    let state = tessera_server::build_state(config, Arc::new(tessera_core::SystemClock)).await?;
    let boot = tessera_server::dev::bootstrap(&state, organization, email)
        .await
        .map_err(|e| format!("bootstrap failed: {e}"))?;
    out!(
        "Organization {name} created ({id}).\n\n\
         Owner user     {email}\n\
         Password       {password}   (shown once)\n\
         Owner token    {token}\n\n\
         The token is an Organization Owner API token that never expires; it is shown once.\n\
         export TESSERA_API_TOKEN=<the token above>",
        name = boot.organization.name,
        id = boot.organization.id,
        email = boot.owner.email,
        password = boot.password.expose(),
        token = boot.token.expose(),
    );
    Ok(())
}

/// Token subcommands, the same at each scope (as the astro CLI has them).
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its value is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The token's role (default: ORGANIZATION_MEMBER, WORKSPACE_MEMBER or DEPLOYMENT_ADMIN).
        #[arg(long)]
        role: Option<String>,
        /// Lifetime in days, 1 to 3650; omitted: never expires.
        #[arg(long)]
        expiration: Option<i64>,
        /// Print only the token value.
        #[arg(long)]
        clean_output: bool,
    },
    /// List tokens.
    List,
    /// Show one token.
    Get { token_id: String },
    /// Change a token's name or description.
    Update {
        token_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Issue a new value; the old one stops working at once, or after --grace seconds.
    Rotate {
        token_id: String,
        /// Seconds the old value keeps working, 0 to 86400.
        #[arg(long, default_value_t = 0)]
        grace: i64,
        /// Print only the new token value.
        #[arg(long)]
        clean_output: bool,
    },
    /// Delete a token for good.
    Delete { token_id: String },
}

/// What a scope adds to token commands.
struct Scope {
    kind: &'static str,
    entity_id: Option<String>,
    default_role: &'static str,
    list_filter: String,
}

#[derive(Debug, Subcommand)]
pub enum OrganizationCommand {
    /// List the organizations of the credentials.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create an organization (operators: see `tessera admin bootstrap`).
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Organization API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct WorkspaceId {
    /// The workspace.
    #[arg(long, env = "TESSERA_WORKSPACE_ID", global = true)]
    workspace_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// List the workspaces you can see.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a workspace.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Workspace API tokens.
    Token {
        #[command(subcommand)]
        command: WorkspaceTokenCommand,
        #[command(flatten)]
        workspace: WorkspaceId,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceTokenCommand {
    /// Give an Organization API token a role in this workspace.
    Add {
        token_id: String,
        #[arg(long)]
        role: String,
    },
    #[command(flatten)]
    Token(TokenCommand),
}

#[derive(Debug, Args)]
pub struct DeploymentId {
    /// The deployment.
    #[arg(long, env = "TESSERA_DEPLOYMENT_ID", global = true)]
    deployment_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// List the deployments you can see.
    List {
        /// Only this workspace's deployments.
        #[arg(long)]
        workspace_id: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a deployment in a workspace.
    Create {
        #[arg(long)]
        workspace_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Deployment API tokens.
    Token {
        #[command(subcommand)]
        command: DeploymentTokenCommand,
        #[command(flatten)]
        deployment: DeploymentId,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeploymentTokenCommand {
    /// Make an Organization or Workspace API token DEPLOYMENT_ADMIN of this deployment.
    Add { token_id: String },
    #[command(flatten)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List the users you can see.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a user; a password is generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        full_name: String,
        /// Organization role.
        #[arg(long, default_value = "ORGANIZATION_MEMBER")]
        role: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn organization(cmd: OrganizationCommand) -> Result<()> {
    match cmd {
        OrganizationCommand::List { client } => {
            let c = Client::new(&client).await?;
            let orgs: wire::ListOf<wire::Organization> = c.get("/v1/organizations").await?;
            output::list(
                client.output,
                &orgs.items,
                &["ID", "NAME", "CREATED"],
                |o| vec![o.id.clone(), o.name.clone(), time(Some(o.created_at))],
            );
        }
        OrganizationCommand::Create { name, client } => {
            let c = Client::new(&client).await?;
            let org: wire::Organization = c
                .post("/v1/organizations", &json!({ "name": name }))
                .await?;
            print_one(
                client.output,
                &org,
                &[("ID", org.id.clone()), ("NAME", org.name.clone())],
            );
        }
        OrganizationCommand::Token { command, client } => {
            let scope = Scope {
                kind: "ORGANIZATION",
                entity_id: None,
                default_role: "ORGANIZATION_MEMBER",
                list_filter: "includeOnlyOrganizationTokens=true".into(),
            };
            token(&client, &scope, command).await?;
        }
    }
    Ok(())
}

pub async fn workspace(cmd: WorkspaceCommand) -> Result<()> {
    match cmd {
        WorkspaceCommand::List { client } => {
            let c = Client::new(&client).await?;
            let org = c.organization(client.organization_id.as_deref()).await?;
            let list: wire::ListOf<wire::Workspace> = c
                .get(&format!("/v1/organizations/{org}/workspaces"))
                .await?;
            output::list(
                client.output,
                &list.items,
                &["ID", "NAME", "DESCRIPTION"],
                |w| vec![w.id.clone(), w.name.clone(), w.description.clone()],
            );
        }
        WorkspaceCommand::Create {
            name,
            description,
            client,
        } => {
            let c = Client::new(&client).await?;
            let org = c.organization(client.organization_id.as_deref()).await?;
            let w: wire::Workspace = c
                .post(
                    &format!("/v1/organizations/{org}/workspaces"),
                    &json!({"name": name, "description": description}),
                )
                .await?;
            print_one(
                client.output,
                &w,
                &[("ID", w.id.clone()), ("NAME", w.name.clone())],
            );
        }
        WorkspaceCommand::Token {
            command,
            workspace,
            client,
        } => {
            let workspace_id = workspace
                .workspace_id
                .ok_or("--workspace-id (or TESSERA_WORKSPACE_ID) is required")?;
            match command {
                WorkspaceTokenCommand::Add { token_id, role } => {
                    add_role(&client, &token_id, "WORKSPACE", &workspace_id, &role).await?;
                }
                WorkspaceTokenCommand::Token(command) => {
                    let scope = Scope {
                        kind: "WORKSPACE",
                        entity_id: Some(workspace_id.clone()),
                        default_role: "WORKSPACE_MEMBER",
                        list_filter: format!("workspaceId={workspace_id}"),
                    };
                    token(&client, &scope, command).await?;
                }
            }
        }
    }
    Ok(())
}

pub async fn deployment(cmd: DeploymentCommand) -> Result<()> {
    match cmd {
        DeploymentCommand::List {
            workspace_id,
            client,
        } => {
            let c = Client::new(&client).await?;
            let org = c.organization(client.organization_id.as_deref()).await?;
            let filter = workspace_id
                .map(|w| format!("?workspaceId={w}"))
                .unwrap_or_default();
            let list: wire::ListOf<wire::Deployment> = c
                .get(&format!("/v1/organizations/{org}/deployments{filter}"))
                .await?;
            output::list(
                client.output,
                &list.items,
                &["ID", "NAME", "WORKSPACE"],
                |d| vec![d.id.clone(), d.name.clone(), d.workspace_id.clone()],
            );
        }
        DeploymentCommand::Create {
            workspace_id,
            name,
            description,
            client,
        } => {
            let c = Client::new(&client).await?;
            let org = c.organization(client.organization_id.as_deref()).await?;
            let d: wire::Deployment = c
                .post(
                    &format!("/v1/organizations/{org}/deployments"),
                    &json!({"workspaceId": workspace_id, "name": name, "description": description}),
                )
                .await?;
            print_one(
                client.output,
                &d,
                &[("ID", d.id.clone()), ("NAME", d.name.clone())],
            );
        }
        DeploymentCommand::Token {
            command,
            deployment,
            client,
        } => {
            let deployment_id = deployment
                .deployment_id
                .ok_or("--deployment-id (or TESSERA_DEPLOYMENT_ID) is required")?;
            match command {
                DeploymentTokenCommand::Add { token_id } => {
                    add_role(
                        &client,
                        &token_id,
                        "DEPLOYMENT",
                        &deployment_id,
                        "DEPLOYMENT_ADMIN",
                    )
                    .await?;
                }
                DeploymentTokenCommand::Token(command) => {
                    let scope = Scope {
                        kind: "DEPLOYMENT",
                        entity_id: Some(deployment_id.clone()),
                        default_role: "DEPLOYMENT_ADMIN",
                        list_filter: format!("deploymentId={deployment_id}"),
                    };
                    token(&client, &scope, command).await?;
                }
            }
        }
    }
    Ok(())
}

pub async fn user(cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::List { client } => {
            let c = Client::new(&client).await?;
            let org = c.organization(client.organization_id.as_deref()).await?;
            let list: wire::ListOf<wire::User> =
                c.get(&format!("/v1/organizations/{org}/users")).await?;
            output::list(
                client.output,
                &list.items,
                &["ID", "EMAIL", "ORGANIZATION ROLE"],
                |u| {
                    vec![
                        u.id.clone(),
                        u.email.clone(),
                        u.organization_role
                            .map(|r| r.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]
                },
            );
        }
        UserCommand::Create {
            email,
            full_name,
            role,
            client,
        } => {
            let c = Client::new(&client).await?;
            let org = c.organization(client.organization_id.as_deref()).await?;
            let u: wire::User = c
                .post(
                    &format!("/v1/organizations/{org}/users"),
                    &json!({"email": email, "fullName": full_name, "organizationRole": role}),
                )
                .await?;
            print_one(
                client.output,
                &u,
                &[
                    ("ID", u.id.clone()),
                    ("EMAIL", u.email.clone()),
                    ("PASSWORD", u.password.clone().unwrap_or_default()),
                ],
            );
        }
    }
    Ok(())
}

fn print_one<T: serde::Serialize>(format: Output, value: &T, fields: &[(&str, String)]) {
    match format {
        Output::Json => output::json(value),
        Output::Table => {
            for (k, v) in fields {
                out!("{k:<12} {v}");
            }
        }
    }
}

fn print_token(format: Output, t: &wire::ApiToken) {
    let roles: Vec<String> = t
        .roles
        .iter()
        .map(|r| format!("{}@{}", r.role, r.entity_id))
        .collect();
    print_one(
        format,
        t,
        &[
            ("ID", t.id.clone()),
            ("NAME", t.name.clone()),
            ("DESCRIPTION", t.description.clone()),
            ("SCOPE", t.scope.as_str().to_owned()),
            ("ROLES", roles.join(", ")),
            ("SHORT TOKEN", t.short_token.clone()),
            ("EXPIRES", time(t.end_at)),
            ("LAST USED", time(t.last_used_at)),
            ("LAST ROTATED", time(t.last_rotated_at)),
            ("CREATED", time(Some(t.created_at))),
        ],
    );
    if let (Output::Table, Some(value)) = (format, &t.token) {
        out!("\nTOKEN        {value}\n\nCopy the token now: it will not be shown again.");
    }
}

/// The token's role where the list was asked for (an organization token added to this
/// workspace: its role here), else its role at home.
fn role_here(t: &wire::ApiToken, scope: &Scope) -> String {
    let here = scope.entity_id.as_ref().and_then(|entity| {
        t.roles
            .iter()
            .find(|r| &r.entity_id == entity && r.entity_type.as_str() == scope.kind)
    });
    here.or_else(|| {
        t.roles
            .iter()
            .find(|r| r.entity_type == t.scope.entity_type())
    })
    .map(|r| r.role.to_string())
    .unwrap_or_default()
}

/// Fetches a token and checks that it lives in the scope the command names: a token is
/// managed only in its home scope.
async fn home_token(
    c: &Client,
    base: &str,
    scope: &Scope,
    token_id: &str,
) -> Result<wire::ApiToken> {
    let t: wire::ApiToken = c.get(&format!("{base}/{token_id}")).await?;
    let home = t.scope.as_str() == scope.kind
        && scope.entity_id.as_ref().is_none_or(|entity| {
            t.roles
                .iter()
                .any(|r| r.entity_type.as_str() == scope.kind && &r.entity_id == entity)
        });
    if !home {
        return Err(format!(
            "token {token_id} is a{} {} token{}: manage it with `tessera {} token`",
            if t.scope.as_str() == "ORGANIZATION" {
                "n"
            } else {
                ""
            },
            t.scope.as_str(),
            if t.scope.as_str() == scope.kind {
                " of another entity"
            } else {
                ""
            },
            t.scope.as_str().to_lowercase()
        )
        .into());
    }
    Ok(t)
}

async fn token(client: &ClientArgs, scope: &Scope, cmd: TokenCommand) -> Result<()> {
    let c = Client::new(client).await?;
    let org = c.organization(client.organization_id.as_deref()).await?;
    let base = format!("/v1/organizations/{org}/tokens");
    if let TokenCommand::Get { token_id }
    | TokenCommand::Update { token_id, .. }
    | TokenCommand::Rotate { token_id, .. }
    | TokenCommand::Delete { token_id } = &cmd
    {
        home_token(&c, &base, scope, token_id).await?;
    }
    match cmd {
        TokenCommand::Create {
            name,
            description,
            role,
            expiration,
            clean_output,
        } => {
            let body = json!({
                "name": name,
                "description": description,
                "scope": scope.kind,
                "entityId": scope.entity_id,
                "role": role.as_deref().unwrap_or(scope.default_role),
                "tokenExpiryPeriodInDays": expiration,
            });
            let t: wire::ApiToken = c.post(&base, &body).await?;
            if clean_output {
                out!("{}", t.token.unwrap_or_default());
            } else {
                print_token(client.output, &t);
            }
        }
        TokenCommand::List => {
            let page: wire::ApiTokensPaginated = c
                .get(&format!("{base}?{}&limit=1000", scope.list_filter))
                .await?;
            output::list(
                client.output,
                &page.tokens,
                &[
                    "ID",
                    "NAME",
                    "SCOPE",
                    "ROLE",
                    "SHORT TOKEN",
                    "EXPIRES",
                    "LAST USED",
                ],
                |t| {
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        t.scope.as_str().to_owned(),
                        role_here(t, scope),
                        t.short_token.clone(),
                        time(t.end_at),
                        time(t.last_used_at),
                    ]
                },
            );
        }
        TokenCommand::Get { token_id } => {
            let t: wire::ApiToken = c.get(&format!("{base}/{token_id}")).await?;
            print_token(client.output, &t);
        }
        TokenCommand::Update {
            token_id,
            name,
            description,
        } => {
            let t: wire::ApiToken = c
                .post(
                    &format!("{base}/{token_id}"),
                    &json!({"name": name, "description": description}),
                )
                .await?;
            print_token(client.output, &t);
        }
        TokenCommand::Rotate {
            token_id,
            grace,
            clean_output,
        } => {
            let t: wire::ApiToken = c
                .post(
                    &format!("{base}/{token_id}/rotate"),
                    &json!({"gracePeriodSeconds": grace}),
                )
                .await?;
            if clean_output {
                out!("{}", t.token.unwrap_or_default());
            } else {
                print_token(client.output, &t);
            }
        }
        TokenCommand::Delete { token_id } => {
            c.delete(&format!("{base}/{token_id}")).await?;
            if client.output == Output::Json {
                output::json(&json!({"deleted": token_id}));
            } else {
                out!("Token {token_id} deleted.");
            }
        }
    }
    Ok(())
}

/// Adds (or changes) one role of a token, keeping its others.
async fn add_role(
    client: &ClientArgs,
    token_id: &str,
    entity_type: &str,
    entity_id: &str,
    role: &str,
) -> Result<()> {
    let c = Client::new(client).await?;
    let org = c.organization(client.organization_id.as_deref()).await?;
    let path = format!("/v1/organizations/{org}/tokens/{token_id}");
    let t: wire::ApiToken = c.get(&path).await?;
    let mut roles: Vec<serde_json::Value> = t
        .roles
        .iter()
        .filter(|r| r.entity_id != entity_id)
        .map(|r| json!({"entityType": r.entity_type, "entityId": r.entity_id, "role": r.role}))
        .collect();
    roles.push(json!({"entityType": entity_type, "entityId": entity_id, "role": role}));
    let t: wire::ApiToken = c
        .post(&format!("{path}/roles"), &json!({ "roles": roles }))
        .await?;
    print_token(client.output, &t);
    Ok(())
}

pub async fn verify(client: &ClientArgs, token: &str, audience: &str) -> Result<()> {
    let c = Client::new(client).await?;
    let (_, text) = c
        .send::<()>(
            Method::GET,
            "/.well-known/openid-configuration",
            None,
            false,
        )
        .await?;
    let discovery: serde_json::Value = serde_json::from_str(&text)?;
    let issuer = discovery["issuer"]
        .as_str()
        .ok_or("discovery has no issuer")?
        .to_owned();
    let (_, text) = c
        .send::<()>(Method::GET, "/.well-known/jwks.json", None, false)
        .await?;
    let jwks: JwkSet = serde_json::from_str(&text)?;
    let keys = KeySet::from_jwks(&jwks)?;
    let config = VerifyConfig {
        issuer,
        audience: audience.to_owned(),
        nbf_leeway: time::Duration::seconds(60),
        exp_leeway: time::Duration::ZERO,
    };
    let verified = verify_token(
        token.trim(),
        &keys,
        &config,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|r| format!("token rejected: {r}"))?;
    // The signature says who issued it; the server says whether it is still live. With
    // credentials of our own, we ask by introspection (RFC 7662), which is not a use of
    // the token (its `lastUsedAt` stays); without, the token itself has to ask, and that
    // is a use.
    let live = if c.has_credentials() {
        match c
            .post_form::<tessera_api::Introspection>(
                "/oauth/introspect",
                &[("token", token.trim())],
            )
            .await
        {
            Ok(i) if i.active => "live".to_owned(),
            Ok(_) => "not accepted by the server (revoked, rotated, ended, or of another \
                      organization than your credentials)"
                .to_owned(),
            Err(e) => format!("unknown: {e}"),
        }
    } else {
        let probe = ClientArgs {
            api_token: Some(token.trim().to_owned()),
            ..client.clone()
        };
        match Client::new(&probe)
            .await?
            .send::<()>(Method::GET, "/v1/authz", None, true)
            .await
        {
            Ok(_) => "live".to_owned(),
            Err(ClientError::Api { message, .. }) => {
                format!("not accepted by the server: {message}")
            }
            Err(e) => format!("unknown: {e}"),
        }
    };
    let accepted = live == "live";
    match client.output {
        Output::Json => output::json(
            &json!({"valid": true, "status": live, "kid": verified.kid, "claims": verified.claims}),
        ),
        Output::Table => {
            out!(
                "Signature valid (key {}), issuer and audience match, not expired.",
                verified.kid
            );
            out!("Status: {live}\n");
            output::json(&verified.claims);
        }
    }
    if !accepted {
        return Err("the signature is valid, but the server does not accept this token".into());
    }
    Ok(())
}

pub async fn login(client: &ClientArgs, device: bool, open_browser: bool) -> Result<()> {
    let http = crate::client::http()?;
    let base = crate::client::base_url(client)?;
    let creds = if device {
        crate::login::login_device(&http, &base).await?
    } else {
        crate::login::login_browser(&http, &base, open_browser).await?
    };
    let probe = ClientArgs {
        url: Some(creds.url.clone()),
        api_token: Some(creds.access_token),
        ..client.clone()
    };
    let info: serde_json::Value = Client::new(&probe).await?.get("/userinfo").await?;
    out!(
        "Signed in to {} as {}.",
        creds.url,
        info["email"].as_str().unwrap_or("?")
    );
    if std::env::var_os("TESSERA_API_TOKEN").is_some() {
        eprintln!("Note: TESSERA_API_TOKEN is set and wins over this login until you unset it.");
    }
    Ok(())
}

pub async fn logout() -> Result<()> {
    let http = crate::client::http()?;
    if crate::login::logout(&http).await? {
        out!("Signed out.");
    } else {
        out!("Not signed in.");
    }
    Ok(())
}

pub async fn whoami(client: &ClientArgs) -> Result<()> {
    let c = Client::new(client).await?;
    let info: std::result::Result<serde_json::Value, _> = c.get("/userinfo").await;
    match info {
        Ok(u) => {
            let fields = [
                ("USER", u["email"].as_str().unwrap_or_default().to_owned()),
                ("ID", u["sub"].as_str().unwrap_or_default().to_owned()),
                (
                    "ORGANIZATION",
                    u["org_id"].as_str().unwrap_or_default().to_owned(),
                ),
            ];
            print_one(client.output, &u, &fields);
        }
        Err(_) => {
            let orgs: wire::ListOf<wire::Organization> = c.get("/v1/organizations").await?;
            let org = orgs.items.first().map(|o| o.id.clone()).unwrap_or_default();
            let v = json!({"kind": "API token", "organization": org});
            print_one(
                client.output,
                &v,
                &[("KIND", "API token".into()), ("ORGANIZATION", org.clone())],
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Make a new key the signing key on every server; older keys keep verifying.
    Rotate {
        /// EdDSA, ES256 or RS256 (default: the configured signing algorithm, else EdDSA).
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// Remove a (compromised) key from the JWKS: every token it signed is rejected.
    Retire {
        /// The key's id (`tessera keys list`). Key ids are base64url: one may begin
        /// with `-`, and is still taken as the id, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Make an operator's PKCS#8 private key (Ed25519, P-256, or RSA of 2048 bits or more)
    /// the signing key.
    Import {
        #[arg(long)]
        pem: std::path::PathBuf,
    },
}

pub async fn keys(args: ServeArgs, cmd: KeysCommand) -> Result<()> {
    let mut config = server_config(args)?;
    // The keys of a server that exists: a mistyped data directory is not a new database.
    if config.database_url.is_none() {
        let file = tessera_store::sqlite_file(&config.data_dir);
        if !file.exists() {
            return Err(format!(
                "no Tessera database at {}: give the server's --data-dir (or --database-url)",
                file.display()
            )
            .into());
        }
    }
    // The operator's commands change the keys only as asked.
    let configured = config.signing_algorithm.take().unwrap_or_default();
    let state = tessera_server::build_state(config, Arc::new(tessera_core::SystemClock)).await?;
    match cmd {
        KeysCommand::List { output } => {
            let keys = tessera_server::keys_admin::list(&state)
                .await
                .map_err(|e| e.to_string())?;
            output::list(
                output,
                &keys,
                &["KID", "ALGORITHM", "ACTIVE", "CREATED", "RETIRED"],
                |k| {
                    vec![
                        k.kid.clone(),
                        k.algorithm.clone(),
                        if k.active { "yes".into() } else { "".into() },
                        time(Some(k.created_at)),
                        time(k.retired_at),
                    ]
                },
            );
        }
        KeysCommand::Rotate { algorithm } => {
            let algorithm = match algorithm {
                Some(a) => a.parse()?,
                None => configured,
            };
            let kid = tessera_server::keys_admin::rotate(&state, algorithm)
                .await
                .map_err(|e| e.to_string())?;
            out!("New signing key {kid} ({algorithm}) is active on every server.");
        }
        KeysCommand::Retire { kid } => {
            tessera_server::keys_admin::retire(&state, &kid)
                .await
                .map_err(|e| e.to_string())?;
            out!("Key {kid} retired: it is out of the JWKS and every token it signed is rejected.");
        }
        KeysCommand::Import { pem } => {
            let text = std::fs::read_to_string(&pem)
                .map_err(|e| format!("cannot read {}: {e}", pem.display()))?;
            let kid = tessera_server::keys_admin::import(&state, &text)
                .await
                .map_err(|e| e.to_string())?;
            out!("Imported key {kid}; it is the signing key on every server.");
        }
    }
    Ok(())
}
