//! Tessera's HTTP server.
//!
//! [`router`] builds the whole application from an [`AppState`]; [`serve`] runs it. The
//! validation path is in [`auth`], the management API in [`api`], forward-auth in
//! [`authz`], OAuth endpoints in [`oauth`], discovery and health in [`well_known`].

pub mod api;
pub mod auth;
pub mod authz;
pub mod client;
pub mod config;
pub mod dev;
pub mod error;
pub mod feed;
pub mod keyring;
pub mod keys_admin;
pub mod login;
pub mod oauth;
pub mod roles;
pub mod sessions;
pub mod state;
pub mod status;
pub mod ui;
pub mod usage;
pub mod well_known;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tessera_core::Clock;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::Config;
pub use state::{AppState, StartupError};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera", description = "Bearer-token authentication and authorization for multi-tenant platform APIs."),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "API tokens scoped to an organization, workspace or deployment"),
        (name = "organizations"), (name = "workspaces"), (name = "deployments"), (name = "users"),
        (name = "authz", description = "Forward authentication for gateways"),
        (name = "oauth", description = "OAuth 2.0 endpoints"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The `/v1` and OAuth routes with their OpenAPI description.
fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use api::{organizations as o, tokens as t, users as u};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(o::list_organizations, o::create_organization))
        .routes(routes!(o::get_organization, o::update_organization))
        .routes(routes!(o::list_workspaces, o::create_workspace))
        .routes(routes!(
            o::get_workspace,
            o::update_workspace,
            o::delete_workspace
        ))
        .routes(routes!(o::list_deployments, o::create_deployment))
        .routes(routes!(
            o::get_deployment,
            o::update_deployment,
            o::delete_deployment
        ))
        .routes(routes!(u::list_users, u::create_user))
        .routes(routes!(u::get_user, u::remove_user))
        .routes(routes!(u::update_user_roles))
        .routes(routes!(api::me::me))
        .routes(routes!(api::me::my_sessions))
        .routes(routes!(api::me::end_my_session))
        .routes(routes!(api::me::end_all_my_sessions))
        .routes(routes!(api::me::end_member_sessions))
        .routes(routes!(t::list_tokens, t::create_token))
        .routes(routes!(t::get_token, t::update_token, t::delete_token))
        .routes(routes!(t::rotate_token))
        .routes(routes!(t::update_token_roles))
        .routes(routes!(authz::authz))
        .routes(routes!(oauth::introspect::introspect))
        .routes(routes!(oauth::token::token))
        .routes(routes!(
            oauth::authorize::authorize,
            oauth::authorize::consent
        ))
        .routes(routes!(oauth::device::device_code))
        .routes(routes!(oauth::revoke::revoke))
        .routes(routes!(oauth::userinfo))
        .split_for_parts()
}

/// The OpenAPI 3.1 document of the API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes().1
}

/// Security headers on every answer; no caching of anything that may carry a token.
async fn response_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = documented_routes();
    let openapi = Arc::new(openapi.to_json().unwrap_or_else(|_| "{}".into()));
    let max_body = state.config.max_body_bytes;
    let request_timeout = Duration::from_secs(state.config.request_timeout_seconds);
    Router::new()
        .merge(api)
        .route("/openapi.json", get(move || {
            let doc = openapi.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], doc.as_ref().clone()).into_response() }
        }))
        .route("/login", get(login::login_form).post(login::login))
        .route("/logout", axum::routing::post(login::logout))
        .route("/device", get(oauth::device::device_page).post(oauth::device::device_decide))
        .route("/assets/tessera.css", get(login::stylesheet))
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route("/.well-known/oauth-authorization-server", get(well_known::openid_configuration))
        .route("/.well-known/openid-configuration", get(well_known::openid_configuration))
        .merge(ui::routes(&state))
        .route("/healthz", get(well_known::healthz))
        .route("/readyz", get(well_known::readyz))
        .route("/metrics", get(well_known::metrics))
        .fallback(error::not_found)
        .layer(CatchPanicLayer::new())
        // A database that stops answering without closing (a partition) must not hang
        // requests: they fail closed with 503.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(error::error_bodies))
        .layer(middleware::from_fn(response_headers))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                // The path only: query strings are the caller's business.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Opens the database, reads the master key, loads keys and status.
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartupError> {
    config.validate()?;
    if config.database_url.is_none() {
        tessera_store::prepare_sqlite_dir(&config.data_dir).map_err(|source| StartupError::Io {
            context: format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            ),
            source,
        })?;
    }
    let master = dev::master_key(&config)?;
    let store = tessera_store::connect(&config.database_url()).await?;
    AppState::new(config, store, clock, master).await
}

/// How often the signing keys are read when nothing else says they changed.
const KEY_WATCH: Duration = Duration::from_secs(2);
/// How often ended sessions, spent codes and old device grants are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Background work: the change feed (PostgreSQL), the periodic resync, watching the
/// signing keys, and writing `lastUsedAt` every `last_used_flush_seconds`.
pub fn spawn_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if state.store.backend() == "postgres" {
        tasks.push(feed::spawn(state, state.config.database_url()));
        let resyncing = state.clone();
        tasks.push(tokio::spawn(async move {
            let period = Duration::from_secs(resyncing.config.resync_seconds);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                feed::periodic_resync(&resyncing).await;
            }
        }));
    }
    // Operator commands (`tessera keys ...`) write the keys from another process: on
    // SQLite nothing tells this server, and on PostgreSQL the feed may be down. Both
    // look at the key table every KEY_WATCH (a few rows; rebuilt only on a change).
    let watching = state.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_WATCH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if watching.feed.caches_current() && watching.store.backend() == "postgres" {
                continue;
            }
            if let Err(e) = watching.reload_keys().await {
                tracing::warn!(error = %e, "could not read the signing keys; will retry");
            }
        }
    }));
    // Codes, device grants and sessions that ended or expired a day ago are of no more
    // use (a replayed code or refresh token is then simply unknown): removed hourly, with
    // the expired sessions held in memory.
    let purging = state.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + PURGE_EVERY, PURGE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = purging.clock.now();
            purging.sessions.prune(now);
            let before = now - time::Duration::days(1);
            match purging.store.purge_expired(before).await {
                Ok(n) => tracing::debug!(rows = n, "purged ended sessions, codes and grants"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired records; will retry"),
            }
        }
    }));
    let state = state.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_secs(state.config.last_used_flush_seconds));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = state.usage.flush(state.store.as_ref()).await {
                tracing::warn!(error = %e, "could not record lastUsedAt; will retry");
            }
        }
    }));
    tasks
}

/// Runs the server until SIGTERM or Ctrl-C, then finishes in-flight requests and
/// writes pending `lastUsedAt`.
pub async fn serve(mut config: Config) -> Result<(), StartupError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartupError::Io {
            context: format!("cannot listen on {}", config.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartupError::Io {
        context: "cannot read the listen address".into(),
        source,
    })?;
    config.listen = addr;
    let state = build_state(config, Arc::new(tessera_core::SystemClock)).await?;
    if state.config.dev {
        dev::seed(&state, &format!("http://{addr}")).await?;
    }
    let flusher = spawn_background(&state);
    println!(
        "Tessera listening on http://{addr} (issuer {})",
        state.issuer
    );
    tracing::info!(%addr, backend = state.store.backend(), "listening");
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| StartupError::Io {
            context: "server error".into(),
            source,
        })?;
    for task in &flusher {
        task.abort();
    }
    if let Err(e) = state.usage.flush(state.store.as_ref()).await {
        tracing::warn!(error = %e, "could not record lastUsedAt at shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
