//! Test helpers: a Tessera application in-process with a settable clock, seeded with an
//! organization, a workspace, a deployment and an Organization Owner token; requests
//! through `oneshot` (no socket) or a real listener on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use tessera_core::ManualClock;
use tessera_core::keys::MasterKey;
use tessera_core::password::PasswordCost;
use tessera_server::{AppState, Config};
use tower::ServiceExt as _;

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration for tests: SQLite in `dir`, a fresh master key, a fast (weak) argon2.
pub fn test_config(dir: &std::path::Path) -> Config {
    let (_, text) = MasterKey::generate();
    Config {
        data_dir: dir.to_owned(),
        issuer: Some("http://tessera.test".into()),
        master_key: Some(String::from_utf8(text.expose().to_vec()).expect("base64 is text")),
        password_cost: PasswordCost::danger_insecure_fast(),
        ..Config::default()
    }
}

/// The ids and credentials of the seeded organization.
#[derive(Debug, Clone)]
pub struct Seed {
    pub organization_id: String,
    pub workspace_id: String,
    pub deployment_id: String,
    pub owner_email: String,
    pub owner_password: String,
    pub owner_token: String,
}

/// An answer, with its body parsed as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body as text (HTML pages).
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `body[key]` as a string; panics with the whole answer when absent.
    pub fn str(&self, key: &str) -> String {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key:?} in {self:?}"))
            .to_owned()
    }
}

/// An in-process Tessera.
pub struct TestApp {
    pub state: AppState,
    pub clock: ManualClock,
    pub seed: Seed,
    pub dir: TempDir,
}

impl TestApp {
    /// A seeded application on SQLite.
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// A seeded application; `adjust` may change the test configuration first.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = TempDir::new("tessera-test");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let clock = ManualClock::starting_now();
        let state = tessera_server::build_state(config, Arc::new(clock.clone()))
            .await
            .expect("state builds");
        let boot = tessera_server::dev::bootstrap(&state, "Acme", "owner@acme.test")
            .await
            .expect("bootstrap");
        let mut app = Self {
            state,
            clock,
            seed: Seed {
                organization_id: boot.organization.id.to_string(),
                workspace_id: String::new(),
                deployment_id: String::new(),
                owner_email: boot.owner.email.clone(),
                owner_password: boot.password.expose().to_owned(),
                owner_token: boot.token.expose().to_owned(),
            },
            dir,
        };
        let token = app.seed.owner_token.clone();
        let ws = app
            .call(
                Method::POST,
                &app.org_path("/workspaces"),
                Some(&token),
                Some(serde_json::json!({"name": "Data"})),
            )
            .await;
        assert_eq!(ws.status, StatusCode::OK, "{ws:?}");
        app.seed.workspace_id = ws.str("id");
        let dep = app
            .call(
                Method::POST,
                &app.org_path("/deployments"),
                Some(&token),
                Some(serde_json::json!({"name": "prod", "workspaceId": app.seed.workspace_id})),
            )
            .await;
        assert_eq!(dep.status, StatusCode::OK, "{dep:?}");
        app.seed.deployment_id = dep.str("id");
        app
    }

    /// `/v1/organizations/{seeded org}` followed by `rest`.
    pub fn org_path(&self, rest: &str) -> String {
        format!("/v1/organizations/{}{rest}", self.seed.organization_id)
    }

    /// The application's current time.
    pub fn now(&self) -> time::OffsetDateTime {
        use tessera_core::Clock as _;
        self.clock.now()
    }

    pub fn owner(&self) -> &str {
        &self.seed.owner_token
    }

    /// One request through the router, no socket.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        let request = match body {
            Some(b) => builder
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&b).expect("json"))),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    /// Any prepared request through the router.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = tessera_server::router(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// A form post (`application/x-www-form-urlencoded`) with extra headers.
    pub async fn form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        self.send(form_request(path, fields, headers)).await
    }

    /// [`form`](Self::form), arriving over TCP from `peer` (`"192.0.2.1:5000"`).
    pub async fn form_from(
        &self,
        peer: &str,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = form_request(path, fields, headers);
        let peer: SocketAddr = peer.parse().expect("a socket address");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        self.send(request).await
    }

    /// A GET with extra headers (a cookie, say).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut builder = Request::builder().method(Method::GET).uri(path);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        self.send(builder.body(Body::empty()).expect("request"))
            .await
    }

    /// Signs in with a browser form; answers the `Cookie` header value to send after.
    pub async fn browser_sign_in(&self, email: &str, password: &str) -> String {
        let a = self
            .form("/login", &[("email", email), ("password", password)], &[])
            .await;
        assert_eq!(a.status, StatusCode::OK, "sign-in failed: {}", a.text);
        let set = a.header("set-cookie").expect("a sign-in cookie");
        set.split(';').next().expect("cookie pair").to_owned()
    }

    /// A full authorization-code + PKCE sign-in as `client_id` with `redirect_uri`;
    /// answers the token response.
    pub async fn oauth_sign_in(&self, cookie: &str, client_id: &str, redirect_uri: &str) -> Value {
        let verifier = "v".repeat(20) + &uuid::Uuid::now_v7().simple().to_string();
        let challenge = pkce_challenge(&verifier);
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "xyz"),
        ])
        .expect("query");
        let a = self.authorize(&query, cookie).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
        let location = a.header("location").expect("redirect").to_owned();
        let code = query_param(&location, "code").expect("code in redirect");
        assert_eq!(query_param(&location, "state").as_deref(), Some("xyz"));
        let t = self
            .form(
                "/oauth/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect_uri),
                    ("client_id", client_id),
                    ("code_verifier", &verifier),
                ],
                &[],
            )
            .await;
        assert_eq!(t.status, StatusCode::OK, "{t:?}");
        t.body
    }

    /// `GET /authorize?{query}` as a signed-in browser; when a consent page comes back
    /// (loopback clients), allows it. Answers the final answer (a redirect, normally).
    pub async fn authorize(&self, query: &str, cookie: &str) -> Answer {
        let a = self
            .get_with(&format!("/authorize?{query}"), &[("cookie", cookie)])
            .await;
        if a.status != StatusCode::OK {
            return a;
        }
        let fields = hidden_fields(&a.text);
        let mut form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form.push(("decision", "allow"));
        self.form("/authorize", &form, &[("cookie", cookie)]).await
    }

    /// Creates a token as the owner; answers the whole ApiToken (with `token`).
    pub async fn create_token(&self, body: Value) -> Answer {
        self.call(
            Method::POST,
            &self.org_path("/tokens"),
            Some(self.owner()),
            Some(body),
        )
        .await
    }

    /// A seeded application served on `127.0.0.1:0` whose issuer is that address, as a
    /// browser needs: the web UI's sign-in comes back to `{issuer}/ui/callback`.
    pub async fn live() -> (Self, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Self::with_config(|c| c.issuer = Some(format!("http://{addr}"))).await;
        let router = tessera_server::router(app.state.clone());
        tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        (app, addr)
    }

    /// Serves the router on `127.0.0.1:0`; answers the address.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = tessera_server::router(self.state.clone());
        tokio::spawn(async move {
            let app = router.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, app).await;
        });
        addr
    }
}

fn form_request(path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let body = serde_urlencoded::to_string(fields).expect("form");
    builder.body(Body::from(body)).expect("request")
}

/// The S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(tessera_core::secret::sha256(verifier.as_bytes()))
}

/// The value of `name` in the query of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The hidden inputs of an HTML form, as (name, value), entities decoded.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|chunk| {
            let name = chunk.split("name=\"").nth(1)?.split('"').next()?;
            let value = chunk.split("value=\"").nth(1)?.split('"').next()?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `TESSERA_TEST_DATABASE_URL`: tests that need PostgreSQL run when it is set.
pub fn postgres_url() -> Option<String> {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Creates a fresh database on the server `base` names; answers its URL.
pub async fn fresh_postgres(base: &str) -> String {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let name = format!("tessera_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::AnyConnection::connect(base)
        .await
        .expect("TESSERA_TEST_DATABASE_URL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("a URL with a database name");
    let query = base
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{prefix}/{name}{query}")
}
