//! The pages. Each one calls the `/v1` handler that does the same thing, with the
//! signed-in person as the caller: authorization, validation and the store are the API's.

use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_api as wire;
use tessera_core::ids::{DeploymentId, WorkspaceId};
use tessera_core::lifetime::{ExpiryPeriod, GracePeriod};
use tessera_core::model::{ScopeKind, TokenScope};
use tessera_core::policy::{Action, GrantTarget, Resource, authorize, may_grant};
use tessera_core::role::{EntityType, Role};
use time::OffsetDateTime;

use super::{Ui, cleared_cookies};
use crate::api::{organizations as o, tokens as t, users as u};
use crate::error::{ApiError, OwnBody};
use crate::login::UI_CLIENT;
use crate::state::AppState;

/// The page's Content-Security-Policy: our own stylesheet and script, nothing inline,
/// forms only to us, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every page shows around its content.
pub struct Frame {
    /// False on pages shown without a session: no menu, no sign-out button.
    pub signed_in: bool,
    pub email: String,
    pub csrf: String,
    pub org_tokens: bool,
    pub members: bool,
    /// Which menu entry is the current page.
    pub section: &'static str,
}

impl Frame {
    fn of(ui: &Ui, section: &'static str) -> Self {
        let org = ui.caller.organization_id();
        Self {
            signed_in: true,
            email: ui.email.clone(),
            csrf: ui.csrf.clone(),
            org_tokens: can_manage(ui, TokenScope::Organization),
            members: authorize(
                &ui.caller.principal,
                Action::ManageUsers,
                &Resource::Organization(org),
            )
            .is_allowed(),
            section,
        }
    }

    fn anonymous() -> Self {
        Self {
            signed_in: false,
            email: String::new(),
            csrf: String::new(),
            org_tokens: false,
            members: false,
            section: "",
        }
    }

    fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}

fn can_manage(ui: &Ui, scope: TokenScope) -> bool {
    authorize(
        &ui.caller.principal,
        Action::ManageToken,
        &Resource::Token(ui.caller.organization_id(), scope),
    )
    .is_allowed()
}

/// An HTML answer with the UI's headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(OwnBody);
    response
}

fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".into(),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "ui/problem.html")]
struct ProblemPage<'a> {
    frame: Frame,
    title: &'a str,
    text: &'a str,
    sign_in: bool,
}

/// A page that explains what went wrong.
pub(super) fn problem(status: StatusCode, title: &str, text: &str, ui: Option<&Ui>) -> Response {
    render(
        status,
        &ProblemPage {
            frame: ui.map_or_else(Frame::anonymous, |u| Frame::of(u, "")),
            title,
            text,
            sign_in: status == StatusCode::UNAUTHORIZED,
        },
    )
}

/// An API error as a page a person understands.
pub(super) fn error_page(e: &ApiError, ui: Option<&Ui>) -> Response {
    let status = e.status();
    match e {
        ApiError::Forbidden(m) => problem(status, "You don't have permission", &capital(m), ui),
        ApiError::NotFound(m) => problem(status, "Not found", &capital(m), ui),
        ApiError::BadRequest(m) => problem(status, "That didn't work", &capital(m), ui),
        ApiError::Conflict(m) => problem(status, "Changed meanwhile", &capital(m), ui),
        ApiError::MissingCredentials(_) | ApiError::InvalidToken(_) => problem(
            StatusCode::UNAUTHORIZED,
            "Your session has ended",
            "Sign in again to continue.",
            None,
        ),
        ApiError::Unavailable(cause) => {
            tracing::error!(%cause, "dependency unavailable");
            problem(
                status,
                "Tessera is unavailable",
                "Tessera cannot reach its database right now. Try again in a moment.",
                ui,
            )
        }
        ApiError::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            problem(
                status,
                "Something went wrong",
                "The request failed on our side. Try again; if it keeps failing, tell your operator.",
                ui,
            )
        }
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

type PageResult = Result<Response, Response>;

/// Runs an API call; an error becomes its page.
async fn api<T>(ui: &Ui, call: impl Future<Output = Result<T, ApiError>>) -> Result<T, Response> {
    call.await.map_err(|e| error_page(&e, Some(ui)))
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn org_str(ui: &Ui) -> String {
    ui.caller.organization_id().to_string()
}

pub(super) fn when(t: Option<OffsetDateTime>, none: &str) -> String {
    match t {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        None => none.to_owned(),
    }
}

fn role_label(role: Role) -> String {
    role.as_str().replace('_', " ").to_lowercase()
}

/// A select option.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Names of the organization's workspaces and deployments, by id.
struct Names {
    workspaces: Vec<wire::Workspace>,
    deployments: Vec<wire::Deployment>,
}

impl Names {
    async fn load(state: &AppState, ui: &Ui) -> Result<Self, Response> {
        let org = ui.caller.organization_id();
        let workspaces = api(ui, async { Ok(state.store.list_workspaces(org).await?) }).await?;
        let deployments = api(ui, async {
            Ok(state.store.list_deployments(org, None).await?)
        })
        .await?;
        Ok(Self {
            workspaces: workspaces.iter().map(o::workspace_wire).collect(),
            deployments: deployments.iter().map(o::deployment_wire).collect(),
        })
    }

    fn entity(&self, org: &str, kind: EntityType, id: &str) -> String {
        match kind {
            EntityType::Organization if id == org => "this organization".into(),
            EntityType::Workspace => self
                .workspaces
                .iter()
                .find(|w| w.id == id)
                .map_or_else(|| id.to_owned(), |w| format!("workspace {}", w.name)),
            EntityType::Deployment => self
                .deployments
                .iter()
                .find(|d| d.id == id)
                .map_or_else(|| id.to_owned(), |d| format!("deployment {}", d.name)),
            EntityType::Organization => id.to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Overview

pub struct EntityRow {
    pub id: String,
    pub name: String,
    pub detail: String,
    pub role: String,
    pub tokens: bool,
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage {
    frame: Frame,
    organization: String,
    role: String,
    workspaces: Vec<EntityRow>,
    deployments: Vec<EntityRow>,
}

/// `GET /ui`: the organization, its workspaces and deployments, with the caller's role.
pub async fn overview(State(state): State<AppState>, Extension(ui): Extension<Ui>) -> PageResult {
    let org = org_str(&ui);
    let c = || ui.caller.clone();
    let organization = api(
        &ui,
        o::get_organization(State(state.clone()), c(), Path(org.clone())),
    )
    .await?
    .0;
    let workspaces = api(
        &ui,
        o::list_workspaces(State(state.clone()), c(), Path(org.clone())),
    )
    .await?
    .0
    .items;
    let deployments = api(
        &ui,
        o::list_deployments(
            State(state.clone()),
            c(),
            Path(org.clone()),
            Query(wire::ListDeploymentsParams::default()),
        ),
    )
    .await?
    .0
    .items;
    let p = &ui.caller.principal;
    let ws_name: HashMap<&str, &str> = workspaces
        .iter()
        .map(|w| (w.id.as_str(), w.name.as_str()))
        .collect();
    let workspace_rows = workspaces
        .iter()
        .filter_map(|w| {
            let id: WorkspaceId = w.id.parse().ok()?;
            Some(EntityRow {
                id: w.id.clone(),
                name: w.name.clone(),
                detail: w.description.clone(),
                role: p
                    .workspace_role(id)
                    .map_or_else(|| "—".into(), |r| role_label(Role::Workspace(r))),
                tokens: can_manage(&ui, TokenScope::Workspace(id)),
            })
        })
        .collect();
    let deployment_rows = deployments
        .iter()
        .filter_map(|d| {
            let ws: WorkspaceId = d.workspace_id.parse().ok()?;
            let id: DeploymentId = d.id.parse().ok()?;
            let role = if p.deployment_roles.contains_key(&id) {
                role_label(Role::Deployment(tessera_core::role::DeploymentRole::Admin))
            } else {
                p.workspace_role(ws)
                    .map_or_else(|| "—".into(), |r| role_label(Role::Workspace(r)))
            };
            Some(EntityRow {
                id: d.id.clone(),
                name: d.name.clone(),
                detail: format!(
                    "in {}",
                    ws_name.get(d.workspace_id.as_str()).unwrap_or(&"?")
                ),
                role,
                tokens: can_manage(&ui, TokenScope::Deployment(ws, id)),
            })
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &OverviewPage {
            frame: Frame::of(&ui, "overview"),
            organization: organization.name,
            role: p
                .organization_role
                .map_or_else(|| "—".into(), |r| role_label(Role::Organization(r))),
            workspaces: workspace_rows,
            deployments: deployment_rows,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// Token lists

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub short_token: String,
    pub created_by: String,
    pub expires: String,
    pub last_used: String,
    pub last_rotated: String,
    /// Where the token comes from, when it is not a token of this page's entity.
    pub origin: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "ui/tokens.html")]
struct TokensPage {
    frame: Frame,
    heading: String,
    scope: &'static str,
    entity_id: String,
    can_create: bool,
    tokens: Vec<TokenRow>,
}

fn profile(p: &wire::SubjectProfile) -> String {
    p.username
        .clone()
        .or_else(|| p.api_token_name.clone().map(|n| format!("token {n}")))
        .unwrap_or_else(|| p.id.clone())
}

/// The rows of a token list at `entity`: each token's role there (else at its home),
/// and where it comes from when that is not here.
fn token_rows(tokens: Vec<wire::ApiToken>, entity: &str, now: OffsetDateTime) -> Vec<TokenRow> {
    tokens
        .into_iter()
        .map(|tk| {
            let home = tk
                .roles
                .iter()
                .find(|r| r.entity_type == tk.scope.entity_type());
            let here = tk.roles.iter().find(|r| r.entity_id == entity);
            let origin = match (home, here) {
                (Some(h), _) if h.entity_id == entity => None,
                (_, Some(_)) => Some("added"),
                // A deployment's token, listed with its workspace.
                _ => Some("deployment token"),
            };
            let role = here
                .or(home)
                .map_or_else(String::new, |r| role_label(r.role));
            let expires = match tk.end_at {
                Some(end) if end <= now => format!("expired {}", when(Some(end), "")),
                other => when(other, "never"),
            };
            TokenRow {
                origin,
                id: tk.id,
                name: tk.name,
                role,
                short_token: tk.short_token,
                created_by: profile(&tk.created_by),
                expires,
                last_used: when(tk.last_used_at, "never"),
                last_rotated: when(tk.last_rotated_at, "never"),
            }
        })
        .collect()
}

async fn list(
    state: &AppState,
    ui: &Ui,
    params: wire::ListApiTokensParams,
) -> Result<Vec<wire::ApiToken>, Response> {
    let params = wire::ListApiTokensParams {
        limit: Some(1000),
        sorts: Some("name:asc".into()),
        ..params
    };
    Ok(api(
        ui,
        t::list_tokens(
            State(state.clone()),
            ui.caller.clone(),
            Path(org_str(ui)),
            Query(params),
        ),
    )
    .await?
    .0
    .tokens)
}

/// `GET /ui/tokens`: the organization's tokens.
pub async fn organization_tokens(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
) -> PageResult {
    let tokens = list(
        &state,
        &ui,
        wire::ListApiTokensParams {
            include_only_organization_tokens: Some(true),
            ..Default::default()
        },
    )
    .await?;
    let org = org_str(&ui);
    Ok(render(
        StatusCode::OK,
        &TokensPage {
            frame: Frame::of(&ui, "org-tokens"),
            heading: "Organization API tokens".into(),
            scope: "ORGANIZATION",
            can_create: can_manage(&ui, TokenScope::Organization),
            tokens: token_rows(tokens, &org, state.clock.now()),
            entity_id: org,
        },
    ))
}

async fn workspace_of(state: &AppState, ui: &Ui, id: &str) -> Result<wire::Workspace, Response> {
    Ok(api(
        ui,
        o::get_workspace(
            State(state.clone()),
            ui.caller.clone(),
            Path((org_str(ui), id.to_owned())),
        ),
    )
    .await?
    .0)
}

async fn deployment_of(state: &AppState, ui: &Ui, id: &str) -> Result<wire::Deployment, Response> {
    Ok(api(
        ui,
        o::get_deployment(
            State(state.clone()),
            ui.caller.clone(),
            Path((org_str(ui), id.to_owned())),
        ),
    )
    .await?
    .0)
}

/// `GET /ui/workspaces/{id}/tokens`: the workspace's tokens, and organization tokens
/// added to it.
pub async fn workspace_tokens(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let ws = workspace_of(&state, &ui, &id).await?;
    let tokens = list(
        &state,
        &ui,
        wire::ListApiTokensParams {
            workspace_id: Some(ws.id.clone()),
            ..Default::default()
        },
    )
    .await?;
    let scope = ws
        .id
        .parse()
        .map(TokenScope::Workspace)
        .map_err(|_| not_found_response(&ui))?;
    Ok(render(
        StatusCode::OK,
        &TokensPage {
            frame: Frame::of(&ui, "overview"),
            heading: format!("API tokens of workspace {}", ws.name),
            scope: "WORKSPACE",
            can_create: can_manage(&ui, scope),
            tokens: token_rows(tokens, &ws.id, state.clock.now()),
            entity_id: ws.id,
        },
    ))
}

/// `GET /ui/deployments/{id}/tokens`: the deployment's tokens, and tokens added to it.
pub async fn deployment_tokens(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let d = deployment_of(&state, &ui, &id).await?;
    let tokens = list(
        &state,
        &ui,
        wire::ListApiTokensParams {
            deployment_id: Some(d.id.clone()),
            ..Default::default()
        },
    )
    .await?;
    let scope = match (d.workspace_id.parse(), d.id.parse()) {
        (Ok(ws), Ok(dep)) => TokenScope::Deployment(ws, dep),
        _ => return Err(not_found_response(&ui)),
    };
    Ok(render(
        StatusCode::OK,
        &TokensPage {
            frame: Frame::of(&ui, "overview"),
            heading: format!("API tokens of deployment {}", d.name),
            scope: "DEPLOYMENT",
            can_create: can_manage(&ui, scope),
            tokens: token_rows(tokens, &d.id, state.clock.now()),
            entity_id: d.id,
        },
    ))
}

fn not_found_response(ui: &Ui) -> Response {
    error_page(&ApiError::not_found("page"), Some(ui))
}

// ---------------------------------------------------------------------------------------
// Create

/// Where a new token goes: its scope, entity and the page that lists it.
struct Place {
    scope: TokenScope,
    kind: ScopeKind,
    entity_id: String,
    label: String,
    back: String,
}

async fn place(state: &AppState, ui: &Ui, scope: &str, entity_id: &str) -> Result<Place, Response> {
    // Without a scope: the organization's tokens, as on the organization's page.
    let scope = if scope.is_empty() {
        "ORGANIZATION"
    } else {
        scope
    };
    match ScopeKind::parse(scope) {
        Some(ScopeKind::Organization) => Ok(Place {
            scope: TokenScope::Organization,
            kind: ScopeKind::Organization,
            entity_id: org_str(ui),
            label: "the organization".into(),
            back: "/ui/tokens".into(),
        }),
        Some(ScopeKind::Workspace) => {
            let ws = workspace_of(state, ui, entity_id).await?;
            let id = ws.id.parse().map_err(|_| not_found_response(ui))?;
            Ok(Place {
                scope: TokenScope::Workspace(id),
                kind: ScopeKind::Workspace,
                back: format!("/ui/workspaces/{}/tokens", ws.id),
                entity_id: ws.id,
                label: format!("workspace {}", ws.name),
            })
        }
        Some(ScopeKind::Deployment) => {
            let d = deployment_of(state, ui, entity_id).await?;
            let (Ok(ws), Ok(id)) = (d.workspace_id.parse(), d.id.parse()) else {
                return Err(not_found_response(ui));
            };
            Ok(Place {
                scope: TokenScope::Deployment(ws, id),
                kind: ScopeKind::Deployment,
                back: format!("/ui/deployments/{}/tokens", d.id),
                entity_id: d.id,
                label: format!("deployment {}", d.name),
            })
        }
        None => Err(error_page(
            &ApiError::BadRequest("the scope must be ORGANIZATION, WORKSPACE or DEPLOYMENT".into()),
            Some(ui),
        )),
    }
}

/// The roles the caller may give a token at `place`, most privileged last.
fn role_choices(ui: &Ui, place: &Place, selected: &str) -> Vec<Choice> {
    let org = ui.caller.organization_id();
    Role::ALL
        .into_iter()
        .filter(|r| r.entity_type() == place.kind.entity_type())
        .filter(|r| {
            may_grant(
                &ui.caller.principal,
                *r,
                t::grant_target_of_scope(org, place.scope),
            )
            .is_allowed()
        })
        .map(|r| Choice {
            value: r.as_str().into(),
            label: role_label(r),
            selected: r.as_str() == selected,
        })
        .collect()
}

/// Errors of a form, by field; `general` for the rest.
#[derive(Default)]
pub struct Problems {
    pub name: Option<String>,
    pub description: Option<String>,
    pub role: Option<String>,
    pub expiry: Option<String>,
    pub grace: Option<String>,
    pub general: Option<String>,
}

impl Problems {
    fn any(&self) -> bool {
        self.name.is_some()
            || self.description.is_some()
            || self.role.is_some()
            || self.expiry.is_some()
            || self.grace.is_some()
            || self.general.is_some()
    }
}

#[derive(Template)]
#[template(path = "ui/new_token.html")]
struct NewTokenPage {
    frame: Frame,
    scope: &'static str,
    entity_id: String,
    place: String,
    back: String,
    roles: Vec<Choice>,
    name: String,
    description: String,
    expiry: String,
    /// Names this form: sent twice (a reload of the answer, say), it creates nothing more.
    once: String,
    problems: Problems,
}

#[derive(Deserialize)]
pub struct PlaceQuery {
    #[serde(default)]
    scope: String,
    #[serde(default, rename = "entityId")]
    entity_id: String,
}

// The error of a page is the page that explains it: a `Response`, as axum answers.
#[allow(clippy::result_large_err)]
fn require_manage(ui: &Ui, place: &Place) -> Result<(), Response> {
    if can_manage(ui, place.scope) {
        Ok(())
    } else {
        Err(error_page(
            &ApiError::Forbidden(format!(
                "your role does not allow you to manage API tokens of {}",
                place.label
            )),
            Some(ui),
        ))
    }
}

/// `GET /ui/tokens/new?scope=...&entityId=...`: the form.
pub async fn new_token(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<PlaceQuery>,
) -> PageResult {
    let place = place(&state, &ui, &q.scope, &q.entity_id).await?;
    require_manage(&ui, &place)?;
    Ok(render(
        StatusCode::OK,
        &NewTokenPage {
            frame: Frame::of(&ui, ""),
            scope: place.kind.as_str(),
            roles: role_choices(&ui, &place, ""),
            entity_id: place.entity_id,
            place: place.label,
            back: place.back,
            name: String::new(),
            description: String::new(),
            expiry: String::new(),
            once: tessera_core::session::new_secret("f_"),
            problems: Problems::default(),
        },
    ))
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    scope: String,
    #[serde(default, rename = "entityId")]
    entity_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    once: String,
}

#[derive(Template)]
#[template(path = "ui/token_value.html")]
struct TokenValuePage {
    frame: Frame,
    heading: String,
    id: String,
    name: String,
    value: String,
    note: String,
}

/// Days of the expiry field: empty is "never".
fn parse_days(raw: &str) -> Result<Option<i64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let wrong = || "Enter a whole number of days from 1 to 3650, or leave it empty for no expiry.";
    let days: i64 = raw.parse().map_err(|_| wrong().to_owned())?;
    ExpiryPeriod::days(Some(days)).map_err(|_| wrong().to_owned())?;
    Ok(Some(days))
}

/// `POST /ui/tokens/new`: creates the token and shows its value, once.
pub async fn create_token(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Form(f): Form<NewTokenForm>,
) -> PageResult {
    let place = place(&state, &ui, &f.scope, &f.entity_id).await?;
    let mut problems = Problems::default();
    if let Err(e) = crate::api::valid_name(&f.name, "name") {
        problems.name = Some(capital(&e.to_string()));
    }
    if let Err(e) = crate::api::valid_description(Some(&f.description)) {
        problems.description = Some(capital(&e.to_string()));
    }
    let role = f.role.parse::<Role>().ok();
    if role.is_none() {
        problems.role = Some("Choose a role.".into());
    }
    let days = parse_days(&f.expiry)
        .map_err(|e| problems.expiry = Some(e))
        .ok()
        .flatten();
    // The same form sent again creates nothing more: the value was shown once.
    let claimed = !problems.any() && role.is_some() && !f.once.is_empty();
    if claimed
        && !state
            .ui_forms
            .entry(f.once.clone())
            .or_insert(())
            .is_fresh()
    {
        return Err(problem(
            StatusCode::CONFLICT,
            "Already created",
            "This form was sent before, and the token was created then; its value was shown \
             once. Find the token in the list, or rotate it for a new value.",
            Some(&ui),
        ));
    }
    let outcome = match role {
        Some(role) if !problems.any() => Some(
            t::create_token(
                State(state.clone()),
                ui.caller.clone(),
                Path(org_str(&ui)),
                Json(wire::CreateApiTokenRequest {
                    name: f.name.clone(),
                    description: Some(f.description.clone()),
                    scope: place.kind,
                    entity_id: Some(place.entity_id.clone()),
                    role,
                    token_expiry_period_in_days: days,
                }),
            )
            .await,
        ),
        _ => None,
    };
    match outcome {
        Some(Ok(Json(token))) => {
            tracing::info!(token_id = %token.id, "API token created in the web UI");
            let note = match token.end_at {
                Some(end) => format!("It expires on {}.", when(Some(end), "")),
                None => "It does not expire.".into(),
            };
            return Ok(render(
                StatusCode::OK,
                &TokenValuePage {
                    frame: Frame::of(&ui, ""),
                    heading: "Token created".into(),
                    value: token.token.unwrap_or_default(),
                    id: token.id,
                    name: token.name,
                    note,
                },
            ));
        }
        Some(Err(e)) => {
            // Nothing was created: the form may be sent again once corrected.
            if claimed {
                state.ui_forms.invalidate(&f.once);
            }
            match e {
                ApiError::BadRequest(m) => problems.general = Some(capital(&m)),
                e => return Err(error_page(&e, Some(&ui))),
            }
        }
        None => {}
    }
    Ok(render(
        StatusCode::BAD_REQUEST,
        &NewTokenPage {
            frame: Frame::of(&ui, ""),
            scope: place.kind.as_str(),
            roles: role_choices(&ui, &place, &f.role),
            entity_id: place.entity_id,
            place: place.label,
            back: place.back,
            name: f.name,
            description: f.description,
            expiry: f.expiry,
            once: f.once,
            problems,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// One token

async fn get_token(state: &AppState, ui: &Ui, id: &str) -> Result<wire::ApiToken, Response> {
    Ok(api(
        ui,
        t::get_token(
            State(state.clone()),
            ui.caller.clone(),
            Path((org_str(ui), id.to_owned())),
        ),
    )
    .await?
    .0)
}

/// The page that lists a token at its home.
fn home_list(org: &str, token: &wire::ApiToken) -> String {
    let home = token
        .roles
        .iter()
        .find(|r| r.entity_type == token.scope.entity_type());
    match (token.scope, home) {
        (ScopeKind::Workspace, Some(r)) => format!("/ui/workspaces/{}/tokens", r.entity_id),
        (ScopeKind::Deployment, Some(r)) => format!("/ui/deployments/{}/tokens", r.entity_id),
        _ => {
            let _ = org;
            "/ui/tokens".into()
        }
    }
}

pub struct RoleRow {
    pub entity_type: String,
    pub entity_id: String,
    pub entity: String,
    pub role: String,
    pub home: bool,
}

#[derive(Template)]
#[template(path = "ui/token.html")]
struct TokenPage {
    frame: Frame,
    token: wire::ApiToken,
    scope: String,
    created_by: String,
    updated_by: String,
    created: String,
    expires: String,
    last_used: String,
    last_rotated: String,
    back: String,
    roles: Vec<RoleRow>,
    workspace_targets: Vec<Choice>,
    workspace_roles: Vec<Choice>,
    deployment_targets: Vec<Choice>,
    error: Option<String>,
}

async fn token_page(
    state: &AppState,
    ui: &Ui,
    token: wire::ApiToken,
    error: Option<String>,
) -> PageResult {
    let org = org_str(ui);
    let names = Names::load(state, ui).await?;
    let home_ws = token
        .roles
        .iter()
        .find(|r| r.entity_type == EntityType::Workspace && token.scope == ScopeKind::Workspace)
        .map(|r| r.entity_id.clone());
    let roles = token
        .roles
        .iter()
        .map(|r| RoleRow {
            entity_type: r.entity_type.as_str().into(),
            entity_id: r.entity_id.clone(),
            entity: names.entity(&org, r.entity_type, &r.entity_id),
            role: role_label(r.role),
            home: r.entity_type == token.scope.entity_type(),
        })
        .collect();
    let held = |id: &str| token.roles.iter().any(|r| r.entity_id == id);
    let org_id = ui.caller.organization_id();
    let p = &ui.caller.principal;
    let workspace_targets: Vec<Choice> = if token.scope == ScopeKind::Organization {
        names
            .workspaces
            .iter()
            .filter(|w| !held(&w.id))
            .filter(|w| {
                w.id.parse().is_ok_and(|id| {
                    may_grant(
                        p,
                        Role::Workspace(tessera_core::role::WorkspaceRole::Accessor),
                        GrantTarget::Workspace(org_id, id),
                    )
                    .is_allowed()
                })
            })
            .map(|w| Choice {
                value: w.id.clone(),
                label: w.name.clone(),
                selected: false,
            })
            .collect()
    } else {
        Vec::new()
    };
    let workspace_roles = Role::ALL
        .into_iter()
        .filter(|r| r.entity_type() == EntityType::Workspace)
        .map(|r| Choice {
            value: r.as_str().into(),
            label: role_label(r),
            selected: false,
        })
        .collect();
    let deployment_targets = match token.scope {
        ScopeKind::Organization | ScopeKind::Workspace => names
            .deployments
            .iter()
            .filter(|d| {
                token.scope == ScopeKind::Organization
                    || home_ws.as_deref() == Some(d.workspace_id.as_str())
            })
            .filter(|d| !held(&d.id))
            .filter(|d| match (d.workspace_id.parse(), d.id.parse()) {
                (Ok(ws), Ok(id)) => may_grant(
                    p,
                    Role::Deployment(tessera_core::role::DeploymentRole::Admin),
                    GrantTarget::Deployment(org_id, ws, id),
                )
                .is_allowed(),
                _ => false,
            })
            .map(|d| Choice {
                value: d.id.clone(),
                label: d.name.clone(),
                selected: false,
            })
            .collect(),
        ScopeKind::Deployment => Vec::new(),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &TokenPage {
            frame: Frame::of(ui, ""),
            scope: token.scope.as_str().to_lowercase(),
            created_by: profile(&token.created_by),
            updated_by: profile(&token.updated_by),
            created: when(Some(token.created_at), ""),
            expires: when(token.end_at, "never"),
            last_used: when(token.last_used_at, "never"),
            last_rotated: when(token.last_rotated_at, "never"),
            back: home_list(&org, &token),
            roles,
            workspace_targets,
            workspace_roles,
            deployment_targets,
            error,
            token,
        },
    ))
}

/// `GET /ui/tokens/{id}`: the token, its roles, and what can be done with it.
pub async fn token_detail(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let token = get_token(&state, &ui, &id).await?;
    token_page(&state, &ui, token, None).await
}

#[derive(Template)]
#[template(path = "ui/edit_token.html")]
struct EditTokenPage {
    frame: Frame,
    id: String,
    name: String,
    description: String,
    problems: Problems,
}

/// `GET /ui/tokens/{id}/edit`.
pub async fn edit_token(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let token = get_token(&state, &ui, &id).await?;
    Ok(render(
        StatusCode::OK,
        &EditTokenPage {
            frame: Frame::of(&ui, ""),
            id: token.id,
            name: token.name,
            description: token.description,
            problems: Problems::default(),
        },
    ))
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /ui/tokens/{id}/edit`.
pub async fn update_token(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(f): Form<EditForm>,
) -> PageResult {
    let mut problems = Problems::default();
    if let Err(e) = crate::api::valid_name(&f.name, "name") {
        problems.name = Some(capital(&e.to_string()));
    }
    if let Err(e) = crate::api::valid_description(Some(&f.description)) {
        problems.description = Some(capital(&e.to_string()));
    }
    if !problems.any() {
        match t::update_token(
            State(state.clone()),
            ui.caller.clone(),
            Path((org_str(&ui), id.clone())),
            Json(wire::UpdateApiTokenRequest {
                name: Some(f.name.clone()),
                description: Some(f.description.clone()),
            }),
        )
        .await
        {
            Ok(Json(token)) => return Ok(see_other(&format!("/ui/tokens/{}", token.id))),
            Err(ApiError::BadRequest(m)) => problems.general = Some(capital(&m)),
            Err(e) => return Err(error_page(&e, Some(&ui))),
        }
    }
    Ok(render(
        StatusCode::BAD_REQUEST,
        &EditTokenPage {
            frame: Frame::of(&ui, ""),
            id,
            name: f.name,
            description: f.description,
            problems,
        },
    ))
}

#[derive(Template)]
#[template(path = "ui/confirm.html")]
struct ConfirmPage {
    frame: Frame,
    id: String,
    name: String,
    rotate: bool,
    grace: String,
    /// The token's version when the page was shown: a rotation sent twice (a reload of
    /// its answer, say) finds the token changed and rotates nothing.
    version: i64,
    problems: Problems,
}

/// The stored version of a token the caller may see (`get_token` checked that).
async fn version(state: &AppState, ui: &Ui, id: &str) -> Result<i64, Response> {
    let id = id
        .parse()
        .map_err(|_| error_page(&ApiError::not_found("token"), Some(ui)))?;
    match state.store.token(ui.caller.organization_id(), id).await {
        Ok(Some(t)) => Ok(t.version),
        Ok(None) => Err(error_page(&ApiError::not_found("token"), Some(ui))),
        Err(e) => Err(error_page(&e.into(), Some(ui))),
    }
}

/// `GET /ui/tokens/{id}/rotate`: asks first.
pub async fn confirm_rotate(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let token = get_token(&state, &ui, &id).await?;
    let version = version(&state, &ui, &id).await?;
    Ok(render(
        StatusCode::OK,
        &ConfirmPage {
            frame: Frame::of(&ui, ""),
            id: token.id,
            name: token.name,
            rotate: true,
            grace: "0".into(),
            version,
            problems: Problems::default(),
        },
    ))
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace: String,
    #[serde(default)]
    version: Option<i64>,
}

/// `POST /ui/tokens/{id}/rotate`: a new value, shown once.
pub async fn rotate_token(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(f): Form<RotateForm>,
) -> PageResult {
    let raw = f.grace.trim();
    let grace = if raw.is_empty() {
        Ok(0)
    } else {
        raw.parse::<i64>()
    };
    let checked = grace
        .ok()
        .filter(|g| GracePeriod::seconds(Some(*g)).is_ok())
        .ok_or_else(|| "Enter a whole number of seconds from 0 (none) to 86400.".to_owned());
    let g = match checked {
        Ok(g) => g,
        Err(m) => {
            let token = get_token(&state, &ui, &id).await?;
            return Ok(render(
                StatusCode::BAD_REQUEST,
                &ConfirmPage {
                    frame: Frame::of(&ui, ""),
                    id: token.id,
                    name: token.name,
                    rotate: true,
                    grace: f.grace,
                    version: f.version.unwrap_or_default(),
                    problems: Problems {
                        grace: Some(m),
                        ..Problems::default()
                    },
                },
            ));
        }
    };
    // Rotated only if still at the version the form was shown with: the same form
    // sent twice (a reload of its answer) finds it changed and rotates nothing more.
    let rotated = t::rotate(
        &state,
        &ui.caller,
        ui.caller.organization_id(),
        &id,
        Some(g),
        f.version,
    )
    .await;
    let token = match rotated {
        Ok(Json(token)) => token,
        Err(ApiError::Conflict(_)) => {
            return Err(problem(
                StatusCode::CONFLICT,
                "Rotated meanwhile",
                "This token changed after the page was shown (this form may have been sent \
                 twice), so it was not rotated again. Its latest value was shown once when \
                 it was rotated; open the token to rotate it anew.",
                Some(&ui),
            ));
        }
        Err(e) => return Err(error_page(&e, Some(&ui))),
    };
    tracing::info!(token_id = %token.id, "API token rotated in the web UI");
    let note = if g == 0 {
        "The previous value no longer works.".to_owned()
    } else {
        format!("The previous value keeps working for {g} more seconds.")
    };
    Ok(render(
        StatusCode::OK,
        &TokenValuePage {
            frame: Frame::of(&ui, ""),
            heading: "Token rotated".into(),
            value: token.token.unwrap_or_default(),
            id: token.id,
            name: token.name,
            note,
        },
    ))
}

/// `GET /ui/tokens/{id}/delete`: asks first.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let token = get_token(&state, &ui, &id).await?;
    Ok(render(
        StatusCode::OK,
        &ConfirmPage {
            frame: Frame::of(&ui, ""),
            id: token.id,
            name: token.name,
            rotate: false,
            grace: String::new(),
            version: 0,
            problems: Problems::default(),
        },
    ))
}

/// `POST /ui/tokens/{id}/delete`: revokes every value of the token, for good.
pub async fn delete_token(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let token = get_token(&state, &ui, &id).await?;
    api(
        &ui,
        t::delete_token(
            State(state.clone()),
            ui.caller.clone(),
            Path((org_str(&ui), id)),
        ),
    )
    .await?;
    tracing::info!(token_id = %token.id, "API token deleted in the web UI");
    Ok(see_other(&home_list(&org_str(&ui), &token)))
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default, rename = "entityType")]
    entity_type: String,
    #[serde(default, rename = "entityId")]
    entity_id: String,
    #[serde(default)]
    role: String,
}

async fn set_roles(
    state: &AppState,
    ui: &Ui,
    token: wire::ApiToken,
    roles: Vec<wire::ApiTokenRole>,
) -> PageResult {
    match t::update_token_roles(
        State(state.clone()),
        ui.caller.clone(),
        Path((org_str(ui), token.id.clone())),
        Json(wire::UpdateApiTokenRolesRequest { roles }),
    )
    .await
    {
        Ok(Json(updated)) => Ok(see_other(&format!("/ui/tokens/{}", updated.id))),
        Err(ApiError::BadRequest(m)) => token_page(state, ui, token, Some(capital(&m))).await,
        Err(e) => Err(error_page(&e, Some(ui))),
    }
}

/// `POST /ui/tokens/{id}/roles`: adds the token to a workspace or deployment (or changes
/// its role there).
pub async fn add_token_role(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(f): Form<RoleForm>,
) -> PageResult {
    let token = get_token(&state, &ui, &id).await?;
    let (Ok(entity_type), Ok(role)) = (f.entity_type.parse::<EntityType>(), f.role.parse::<Role>())
    else {
        return token_page(
            &state,
            &ui,
            token,
            Some("Choose where to add the token, and a role.".into()),
        )
        .await;
    };
    if f.entity_id.is_empty() {
        return token_page(
            &state,
            &ui,
            token,
            Some("Choose where to add the token.".into()),
        )
        .await;
    }
    let mut roles: Vec<wire::ApiTokenRole> = token
        .roles
        .iter()
        .filter(|r| r.entity_id != f.entity_id)
        .cloned()
        .collect();
    roles.push(wire::ApiTokenRole {
        entity_type,
        entity_id: f.entity_id,
        role,
    });
    set_roles(&state, &ui, token, roles).await
}

/// `POST /ui/tokens/{id}/roles/remove`: takes the token out of a workspace or deployment.
pub async fn remove_token_role(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(f): Form<RoleForm>,
) -> PageResult {
    let token = get_token(&state, &ui, &id).await?;
    let roles = token
        .roles
        .iter()
        .filter(|r| r.entity_id != f.entity_id)
        .cloned()
        .collect();
    set_roles(&state, &ui, token, roles).await
}

// ---------------------------------------------------------------------------------------
// Members

pub struct MemberRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub organization_role: String,
    pub other_roles: Vec<String>,
    pub me: bool,
}

#[derive(Template)]
#[template(path = "ui/members.html")]
struct MembersPage {
    frame: Frame,
    members: Vec<MemberRow>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    ended: Option<usize>,
}

/// `GET /ui/members`: the organization's people and their roles (for owners).
pub async fn members(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<NoticeQuery>,
) -> PageResult {
    if !Frame::of(&ui, "").members {
        return Err(error_page(
            &ApiError::Forbidden("only organization owners manage members".into()),
            Some(&ui),
        ));
    }
    let org = org_str(&ui);
    let users = api(
        &ui,
        u::list_users(State(state.clone()), ui.caller.clone(), Path(org.clone())),
    )
    .await?
    .0
    .items;
    let names = Names::load(&state, &ui).await?;
    let me = ui.caller.actor.id().to_string();
    let members = users
        .into_iter()
        .map(|user| {
            let mut other_roles: Vec<String> = user
                .workspace_roles
                .iter()
                .map(|r| {
                    format!(
                        "{} on {}",
                        role_label(r.role),
                        names.entity(&org, EntityType::Workspace, &r.workspace_id)
                    )
                })
                .collect();
            other_roles.extend(user.deployment_roles.iter().map(|r| {
                format!(
                    "{} on {}",
                    role_label(r.role),
                    names.entity(&org, EntityType::Deployment, &r.deployment_id)
                )
            }));
            MemberRow {
                me: user.id == me,
                id: user.id,
                email: user.email,
                name: user.full_name,
                organization_role: user
                    .organization_role
                    .map_or_else(|| "—".into(), role_label),
                other_roles,
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &MembersPage {
            frame: Frame::of(&ui, "members"),
            members,
            notice: q.ended.map(|n| format!("Ended {n} session(s).")),
        },
    ))
}

/// `POST /ui/members/{id}/end-sessions`: signs a member out everywhere.
pub async fn end_member_sessions(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    let Json(ended) = api(
        &ui,
        crate::api::me::end_member_sessions(
            State(state.clone()),
            ui.caller.clone(),
            Path((org_str(&ui), id)),
        ),
    )
    .await?;
    Ok(see_other(&format!("/ui/members?ended={}", ended.ended)))
}

// ---------------------------------------------------------------------------------------
// Sessions

pub struct SessionRow {
    pub id: String,
    pub client: String,
    pub device: String,
    pub ip: String,
    pub created: String,
    pub refreshed: String,
    pub expires: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "ui/sessions.html")]
struct SessionsPage {
    frame: Frame,
    sessions: Vec<SessionRow>,
}

fn client_label(id: &str) -> String {
    match id {
        UI_CLIENT => "Web UI".into(),
        crate::login::CLI_CLIENT => "Command line".into(),
        crate::login::BROWSER_CLIENT => "Browser sign-in".into(),
        other => other.into(),
    }
}

/// `GET /ui/sessions`: the person's live sessions.
pub async fn sessions(State(state): State<AppState>, Extension(ui): Extension<Ui>) -> PageResult {
    let items = api(
        &ui,
        crate::api::me::my_sessions(State(state.clone()), ui.caller.clone()),
    )
    .await?
    .0
    .items;
    let current = ui.session_id.to_string();
    let sessions = items
        .into_iter()
        .map(|s| SessionRow {
            current: s.id == current,
            id: s.id,
            client: client_label(&s.client_id),
            device: s.user_agent.unwrap_or_else(|| "unknown".into()),
            ip: s.ip.unwrap_or_else(|| "unknown".into()),
            created: when(Some(s.created_at), ""),
            refreshed: when(s.last_refreshed_at, "never"),
            expires: when(Some(s.expires_at), ""),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &SessionsPage {
            frame: Frame::of(&ui, "sessions"),
            sessions,
        },
    ))
}

fn signed_out_redirect(state: &AppState) -> Response {
    let mut response = see_other("/ui/signed-out");
    for c in cleared_cookies(state) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// Ends the web UI's session and the browser sign-in it came from.
async fn end_own(state: &AppState, ui: &Ui) -> Result<(), Response> {
    let session = api(ui, async {
        Ok(state
            .sessions
            .get(
                ui.session_id,
                state.store.as_ref(),
                state.feed.caches_current(),
            )
            .await?)
    })
    .await?;
    api(ui, crate::sessions::end(state, ui.session_id)).await?;
    if let Some(browser) = session.and_then(|s| s.browser_session_id) {
        api(ui, crate::sessions::end(state, browser)).await?;
    }
    Ok(())
}

/// `POST /ui/sessions/{id}/end`: ends one session; ending this one signs out.
pub async fn end_session(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> PageResult {
    if id.parse::<tessera_core::ids::SessionId>().ok() == Some(ui.session_id) {
        end_own(&state, &ui).await?;
        return Ok(signed_out_redirect(&state));
    }
    api(
        &ui,
        crate::api::me::end_my_session(State(state.clone()), ui.caller.clone(), Path(id)),
    )
    .await?;
    Ok(see_other("/ui/sessions"))
}

/// `POST /ui/sessions/end-all`: signs out everywhere, here included.
pub async fn end_all_sessions(
    State(state): State<AppState>,
    Extension(ui): Extension<Ui>,
) -> PageResult {
    let _ended = api(
        &ui,
        crate::api::me::end_all_my_sessions(State(state.clone()), ui.caller.clone()),
    )
    .await?;
    Ok(signed_out_redirect(&state))
}

/// `POST /ui/logout`: ends this session (its access tokens are rejected at once) and
/// the browser sign-in.
pub async fn sign_out(State(state): State<AppState>, Extension(ui): Extension<Ui>) -> PageResult {
    end_own(&state, &ui).await?;
    tracing::info!(session_id = %ui.session_id, "signed out of the web UI");
    Ok(signed_out_redirect(&state))
}

/// `GET /ui/signed-out`.
pub async fn signed_out() -> Response {
    render(
        StatusCode::OK,
        &ProblemPage {
            frame: Frame::anonymous(),
            title: "Signed out",
            text: "You are signed out of Tessera on this browser.",
            sign_in: true,
        },
    )
}

/// Any other path under `/ui`.
pub async fn not_found(Extension(ui): Extension<Ui>) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
        Some(&ui),
    )
}
