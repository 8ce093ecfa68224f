//! The web UI without a browser: its OAuth sign-in, cookies, lifetimes, headers, CSRF.
//! (The browser tests drive the same pages in Chromium.)

use std::collections::BTreeMap;

use axum::http::StatusCode;
use tessera_testkit::{Answer, TestApp, hidden_fields};
use time::Duration;

/// The cookies a browser would hold for the server.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, answer: &Answer) {
        for set in answer.headers.get_all("set-cookie") {
            let set = set.to_str().expect("ascii");
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attrs.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, app: &TestApp, path: &str) -> Answer {
        let a = app.get_with(path, &[("cookie", &self.header())]).await;
        self.take(&a);
        a
    }

    async fn post(&mut self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Answer {
        let a = app
            .form(
                path,
                fields,
                &[
                    ("cookie", &self.header()),
                    ("sec-fetch-site", "same-origin"),
                ],
            )
            .await;
        self.take(&a);
        a
    }
}

fn location(a: &Answer) -> String {
    a.header("location")
        .unwrap_or_else(|| panic!("a redirect, got {} {}", a.status, a.text))
        .to_owned()
}

/// Signs in to the web UI the way a browser does; answers the cookies.
async fn sign_in(app: &TestApp, email: &str, password: &str) -> Jar {
    let mut jar = Jar::default();
    let browser = app.browser_sign_in(email, password).await;
    let (name, value) = browser.split_once('=').unwrap();
    jar.0.insert(name.into(), value.into());

    let a = jar.get(app, "/ui/tokens").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let start = location(&a);
    assert!(start.starts_with("/ui/login?next="), "{start}");
    let a = jar.get(app, &start).await;
    let authorize = location(&a);
    assert!(authorize.starts_with("/authorize?"), "{authorize}");
    assert!(authorize.contains("code_challenge_method=S256"));
    assert!(authorize.contains("client_id=tessera-ui"));
    let a = jar.get(app, &authorize).await;
    let callback = location(&a);
    let callback = callback
        .strip_prefix("http://tessera.test")
        .expect("back to the issuer");
    assert!(callback.starts_with("/ui/callback?code="), "{callback}");
    let a = jar.get(app, callback).await;
    assert_eq!(
        location(&a),
        "/ui/tokens",
        "back where the person was going"
    );
    for name in ["tessera_ui_at", "tessera_ui_rt"] {
        let set = a
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|v| v.starts_with(name))
            .unwrap_or_else(|| panic!("{name} set"));
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/ui")
        );
        assert!(!set.contains("Secure"), "plain HTTP issuer: no Secure");
    }
    jar
}

fn csrf(html: &str) -> String {
    hidden_fields(html)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .expect("a csrf field")
}

#[tokio::test]
async fn sign_in_goes_through_authorize_with_pkce_and_pages_carry_the_security_headers() {
    let app = TestApp::new().await;
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let page = jar.get(&app, "/ui").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Acme"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(!page.text.contains("<script>"), "no inline script");

    // A state or verifier that does not match the flow cookie is refused.
    let a = jar.get(&app, "/ui/callback?code=tsc_x&state=forged").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text.contains("Sign-in failed"));
}

#[tokio::test]
async fn access_token_is_refreshed_transparently_until_the_session_limit() {
    let app = TestApp::new().await;
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let first_access = jar.0["tessera_ui_at"].clone();

    app.clock.advance(Duration::hours(8) + Duration::seconds(1));
    let page = jar.get(&app, "/ui").await;
    assert_eq!(page.status, StatusCode::OK, "refreshed without a word");
    assert_ne!(jar.0["tessera_ui_at"], first_access, "a new access token");

    // Two pages loaded at once with the same expired token share one refresh: the
    // second is not taken for a stolen refresh token.
    app.clock.advance(Duration::hours(8) + Duration::seconds(1));
    let cookie = jar.header();
    let headers = [("cookie", cookie.as_str())];
    let (a, b) = tokio::join!(
        app.get_with("/ui", &headers),
        app.get_with("/ui/sessions", &headers),
    );
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    jar.take(&a);
    assert_eq!(jar.get(&app, "/ui").await.status, StatusCode::OK);

    // Day 29: still fine; after day 30 the person signs in again.
    app.clock.advance(Duration::days(29) - Duration::hours(16));
    assert_eq!(jar.get(&app, "/ui/tokens").await.status, StatusCode::OK);
    app.clock.advance(Duration::days(1) + Duration::seconds(1));
    let a = jar.get(&app, "/ui/tokens").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text.contains("Your session has ended"), "{}", a.text);
    let a = jar.get(&app, "/ui/tokens").await;
    assert!(
        location(&a).starts_with("/ui/login"),
        "the dead cookies are gone: on to sign in"
    );
}

#[tokio::test]
async fn forms_need_the_session_csrf_token_and_a_same_origin_request() {
    let app = TestApp::new().await;
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let page = jar.get(&app, "/ui/tokens/new?scope=ORGANIZATION").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let token = csrf(&page.text);
    let fields = |csrf: &'static str| {
        vec![
            ("scope", "ORGANIZATION"),
            ("name", "from elsewhere"),
            ("role", "ORGANIZATION_OWNER"),
            ("csrf", csrf),
        ]
    };
    let leaked: &'static str = Box::leak(token.clone().into_boxed_str());

    // No token, a wrong token: refused.
    for bad in ["", "AAAA"] {
        let a = jar.post(&app, "/ui/tokens/new", &fields(bad)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
        assert!(a.text.contains("Request refused"));
    }
    // The right token from another site, or from a request that does not say where it
    // comes from: refused too.
    let a = app
        .form(
            "/ui/tokens/new",
            &fields(leaked),
            &[("cookie", &jar.header())],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "neither Sec-Fetch-Site nor Origin"
    );
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.test"),
    ] {
        let a = app
            .form(
                "/ui/tokens/new",
                &fields(leaked),
                &[
                    ("cookie", &jar.header()),
                    (header, value),
                    ("host", "tessera.test"),
                ],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{header}: {value}");
    }
    let listed = app
        .call(
            axum::http::Method::GET,
            &app.org_path("/tokens"),
            Some(app.owner()),
            None,
        )
        .await;
    assert!(
        !listed.text.contains("from elsewhere"),
        "nothing was created"
    );

    // Our own form works, shows the value once, and is not cached.
    let a = jar.post(&app, "/ui/tokens/new", &fields(leaked)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.text.contains("will not be shown again"));
    assert_eq!(a.header("cache-control"), Some("no-store"));

    // A token of one session does not work for another.
    let mut other = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let a = other.post(&app, "/ui/tokens/new", &fields(leaked)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn field_errors_are_shown_next_to_the_field_and_errors_are_pages() {
    let app = TestApp::new().await;
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let page = jar.get(&app, "/ui/tokens/new?scope=ORGANIZATION").await;
    let token = csrf(&page.text);
    let a = jar
        .post(
            &app,
            "/ui/tokens/new",
            &[
                ("csrf", &token),
                ("scope", "ORGANIZATION"),
                ("name", "  "),
                ("role", "ORGANIZATION_MEMBER"),
                ("expiry", "9999"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text.contains("id=\"name-error\""), "{}", a.text);
    assert!(a.text.contains("id=\"expiry-error\""));
    assert!(a.text.contains("aria-invalid=\"true\""));

    let missing = jar
        .get(&app, "/ui/tokens/0190a2b4-0000-7000-8000-000000000000")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(missing.text.contains("Not found"));
    let nowhere = jar.get(&app, "/ui/no/such/page").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert!(nowhere.text.contains("<h1>"));

    // What axum itself refuses (a query that does not parse, a method the page does
    // not take, a body that is not a form) is a page too, never a JSON body.
    let bad_query = jar.get(&app, "/ui/members?ended=many").await;
    let wrong_method = app
        .send(
            axum::http::Request::put("/ui/sessions")
                .header("cookie", jar.header())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let not_a_form = app
        .send(
            axum::http::Request::post("/ui/tokens/new")
                .header("cookie", jar.header())
                .header("sec-fetch-site", "same-origin")
                .header("content-type", "text/plain")
                .body(axum::body::Body::from(format!("csrf={token}&name=x")))
                .unwrap(),
        )
        .await;
    for (a, status) in [
        (&bad_query, StatusCode::BAD_REQUEST),
        (&wrong_method, StatusCode::METHOD_NOT_ALLOWED),
        (&not_a_form, StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        assert_eq!(a.status, status, "{}", a.text);
        assert!(
            a.header("content-type").unwrap().starts_with("text/html"),
            "{status}: {}",
            a.text
        );
        assert!(a.text.contains("<h1>") && !a.text.contains("requestId"));
        assert!(a.header("content-security-policy").is_some());
    }
}

#[tokio::test]
async fn signing_out_ends_the_session_and_its_cookies_open_nothing() {
    let app = TestApp::new().await;
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let before = jar.clone();
    let page = jar.get(&app, "/ui").await;
    let access = jar.0["tessera_ui_at"].clone();
    let a = jar
        .post(&app, "/ui/logout", &[("csrf", &csrf(&page.text))])
        .await;
    assert_eq!(location(&a), "/ui/signed-out");
    assert!(!jar.0.contains_key("tessera_ui_at") && !jar.0.contains_key("tessera_signin"));

    // The access token is rejected everywhere at once.
    let authz = app
        .get_with(
            "/v1/authz",
            &[("authorization", &format!("Bearer {access}"))],
        )
        .await;
    assert_eq!(authz.status, StatusCode::UNAUTHORIZED);
    // The old cookies open no page: a page says the session has ended (and clears
    // them), then it is back to sign-in, and the browser is signed out too.
    let mut old = before;
    let a = old.get(&app, "/ui/tokens").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text.contains("Your session has ended"));
    assert!(!a.text.contains("<table"), "nothing of the account shown");
    for path in ["/ui", "/ui/sessions"] {
        let a = old.get(&app, path).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert!(location(&a).starts_with("/ui/login"));
    }
    let start = old.get(&app, "/ui/login").await;
    let a = old.get(&app, &location(&start)).await;
    assert!(
        location(&a).starts_with("/login?"),
        "a password is needed again"
    );
}

#[tokio::test]
async fn a_member_is_offered_nothing_and_refused_anyway() {
    let app = TestApp::new().await;
    let ws = app.seed.workspace_id.clone();
    let created = app
        .call(
            axum::http::Method::POST,
            &app.org_path("/users"),
            Some(app.owner()),
            Some(serde_json::json!({
                "email": "member@acme.test", "password": "a long member password",
                "organizationRole": "ORGANIZATION_MEMBER",
                "workspaceRoles": [{"workspaceId": ws, "role": "WORKSPACE_MEMBER"}]
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let mut jar = sign_in(&app, "member@acme.test", "a long member password").await;
    let list = jar.get(&app, &format!("/ui/workspaces/{ws}/tokens")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text.contains("create-token"), "no create button");
    assert!(
        !list.text.contains("href=\"/ui/members\""),
        "no members page"
    );
    let form = jar
        .get(
            &app,
            &format!("/ui/tokens/new?scope=WORKSPACE&entityId={ws}"),
        )
        .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN);
    let a = jar
        .post(
            &app,
            "/ui/tokens/new",
            &[
                ("csrf", &csrf(&list.text)),
                ("scope", "WORKSPACE"),
                ("entityId", &ws),
                ("name", "sneaky"),
                ("role", "WORKSPACE_OWNER"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.text.contains("permission"));
    assert_eq!(
        jar.get(&app, "/ui/members").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_refresh_is_never_lost_and_dead_or_doubled_cookies_open_nothing() {
    let app = TestApp::new().await;
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;

    // The access token has expired; a link (from anywhere) to a path that refuses GET
    // spends the refresh token. The answer is an error page that still carries the new
    // cookies (and `Allow`), so the session lives on.
    app.clock.advance(Duration::hours(8) + Duration::seconds(1));
    let spent = jar.0["tessera_ui_rt"].clone();
    let a = jar.get(&app, "/ui/logout").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(a.header("allow"), Some("POST"));
    assert_ne!(
        jar.0["tessera_ui_rt"], spent,
        "the new refresh token arrived"
    );
    // Past the sharing window: only the new cookies could still work.
    app.clock.advance(Duration::hours(8) + Duration::seconds(1));
    assert_eq!(jar.get(&app, "/ui").await.status, StatusCode::OK);

    // Signed in already: a link to /ui/login starts no new session.
    let sessions = || async {
        let owner = app
            .state
            .store
            .user_by_email(&app.seed.owner_email)
            .await
            .unwrap()
            .unwrap();
        app.state
            .store
            .user_sessions(owner.0.id)
            .await
            .unwrap()
            .len()
    };
    let before = sessions().await;
    let a = jar.get(&app, "/ui/login?next=/ui/sessions").await;
    assert_eq!(location(&a), "/ui/sessions");
    assert_eq!(sessions().await, before);

    // A cookie name sent twice (one planted for a parent domain, say) counts as none.
    let doubled = format!("{}; tessera_ui_at=planted", jar.header());
    let a = app.get_with("/ui", &[("cookie", &doubled)]).await;
    assert_eq!(a.status, StatusCode::OK, "the refresh token still decides");
    let both = format!(
        "{}; tessera_ui_at=planted; tessera_ui_rt=planted",
        jar.header()
    );
    let a = app.get_with("/ui", &[("cookie", &both)]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(location(&a).starts_with("/ui/login"));

    // Once the session is over, a page says so (with a way to sign in again) and the
    // dead cookies are cleared.
    app.clock.advance(Duration::days(31));
    let a = jar.get(&app, "/ui").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text.contains("Your session has ended"), "{}", a.text);
    assert!(a.text.contains("href=\"/ui/login\""));
    assert!(
        !jar.0.contains_key("tessera_ui_rt") && !jar.0.contains_key("tessera_ui_at"),
        "cleared"
    );
}

#[tokio::test]
async fn token_lists_say_where_each_token_comes_from() {
    let app = TestApp::new().await;
    let (ws, dep) = (
        app.seed.workspace_id.clone(),
        app.seed.deployment_id.clone(),
    );
    let mk = |body: serde_json::Value| {
        let app = &app;
        async move {
            let a = app.create_token(body).await;
            assert_eq!(a.status, StatusCode::OK, "{a:?}");
            a.str("id")
        }
    };
    mk(serde_json::json!({"name": "ws-own", "scope": "WORKSPACE", "entityId": ws, "role": "WORKSPACE_MEMBER"})).await;
    mk(serde_json::json!({"name": "dep-own", "scope": "DEPLOYMENT", "entityId": dep, "role": "DEPLOYMENT_ADMIN"})).await;
    let org_token = mk(serde_json::json!({"name": "org-added", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"})).await;
    let added = app
        .call(
            axum::http::Method::POST,
            &app.org_path(&format!("/tokens/{org_token}/roles")),
            Some(app.owner()),
            Some(serde_json::json!({"roles": [
                {"entityType": "ORGANIZATION", "entityId": app.seed.organization_id, "role": "ORGANIZATION_MEMBER"},
                {"entityType": "WORKSPACE", "entityId": ws, "role": "WORKSPACE_AUTHOR"}
            ]})),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{added:?}");

    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let page = jar.get(&app, &format!("/ui/workspaces/{ws}/tokens")).await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |name: &str| {
        let start = page
            .text
            .find(&format!(">{name}</a>"))
            .unwrap_or_else(|| panic!("{name} listed"));
        let end = page.text[start..].find("</tr>").unwrap() + start;
        page.text[start..end].to_owned()
    };
    assert!(
        !row("ws-own").contains("class=\"tag\""),
        "{}",
        row("ws-own")
    );
    assert!(
        row("dep-own").contains("deployment token"),
        "{}",
        row("dep-own")
    );
    let org_row = row("org-added");
    assert!(
        org_row.contains(">added<") && org_row.contains("workspace author"),
        "{org_row}"
    );

    // The create form without a scope is the organization's.
    let form = jar.get(&app, "/ui/tokens/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(form.text.contains("New API token for the organization"));
}

/// The form fields of the first form on a page that posts to `action`, with `extra`.
fn form_of(html: &str, action: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("a form posting to {action}"));
    let end = html[start..].find("</form>").unwrap() + start;
    hidden_fields(&html[start..end])
}

fn with<'a>(
    fields: &'a [(String, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

/// The value shown once on a "created" or "rotated" page.
fn shown_value(html: &str) -> String {
    let start = html.find("id=\"token-value\"").expect("a value");
    let open = html[start..].find('>').unwrap() + start + 1;
    let close = html[open..].find("</textarea>").unwrap() + open;
    html[open..close].trim().to_owned()
}

async fn authz(app: &TestApp, token: &str) -> StatusCode {
    app.get_with(
        "/v1/authz",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .status
}

#[tokio::test]
async fn tokens_are_edited_added_elsewhere_and_rotated_with_grace_and_forms_sent_twice_change_nothing()
 {
    let app = TestApp::new().await;
    let ws = app.seed.workspace_id.clone();
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;

    // Create; the same form sent again (a reload of the answer) creates nothing more.
    let page = jar.get(&app, "/ui/tokens/new?scope=ORGANIZATION").await;
    let fields = form_of(&page.text, "/ui/tokens/new");
    let form = with(
        &fields,
        &[
            ("name", "deployer"),
            ("role", "ORGANIZATION_MEMBER"),
            ("expiry", ""),
        ],
    );
    let created = jar.post(&app, "/ui/tokens/new", &form).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let first = shown_value(&created.text);
    let again = jar.post(&app, "/ui/tokens/new", &form).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text.contains("Already created"));
    let listed = app
        .call(
            axum::http::Method::GET,
            &app.org_path("/tokens"),
            Some(app.owner()),
            None,
        )
        .await;
    let ours: Vec<_> = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "deployer")
        .collect();
    assert_eq!(ours.len(), 1, "one token, not two");
    let id = ours[0]["id"].as_str().unwrap().to_owned();
    let api_token = || async {
        app.call(
            axum::http::Method::GET,
            &app.org_path(&format!("/tokens/{id}")),
            Some(app.owner()),
            None,
        )
        .await
        .body
    };

    // Edit: a bad description is named next to its field; then the change is saved.
    let edit_path = format!("/ui/tokens/{id}/edit");
    let page = jar.get(&app, &edit_path).await;
    let fields = form_of(&page.text, &edit_path);
    let bad = jar
        .post(
            &app,
            &edit_path,
            &with(
                &fields,
                &[("name", "deployer"), ("description", "nul \u{0} here")],
            ),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.text.contains("id=\"description-error\""),
        "{}",
        bad.text
    );
    let saved = jar
        .post(
            &app,
            &edit_path,
            &with(
                &fields,
                &[("name", "deployer-2"), ("description", "Deploys")],
            ),
        )
        .await;
    assert_eq!(location(&saved), format!("/ui/tokens/{id}"));
    let t = api_token().await;
    assert_eq!(
        (t["name"].as_str(), t["description"].as_str()),
        (Some("deployer-2"), Some("Deploys"))
    );

    // Add the organization token to the workspace as an author; take it out again.
    let detail = jar.get(&app, &format!("/ui/tokens/{id}")).await;
    let add = form_of(&detail.text, &format!("/ui/tokens/{id}/roles"));
    let a = jar
        .post(
            &app,
            &format!("/ui/tokens/{id}/roles"),
            &with(&add, &[("entityId", &ws), ("role", "WORKSPACE_AUTHOR")]),
        )
        .await;
    assert_eq!(location(&a), format!("/ui/tokens/{id}"));
    let has_author = |t: &serde_json::Value| {
        t["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["entityId"] == ws.as_str() && r["role"] == "WORKSPACE_AUTHOR")
    };
    assert!(has_author(&api_token().await));
    let detail = jar.get(&app, &format!("/ui/tokens/{id}")).await;
    assert!(
        detail
            .text
            .contains("Remove<span class=\"sr\"> the role on")
    );
    let remove = form_of(&detail.text, &format!("/ui/tokens/{id}/roles/remove"));
    let a = jar
        .post(
            &app,
            &format!("/ui/tokens/{id}/roles/remove"),
            &with(&remove, &[]),
        )
        .await;
    assert_eq!(location(&a), format!("/ui/tokens/{id}"));
    assert!(!has_author(&api_token().await));

    // Rotate: a bad grace is named next to its field; with 60 s of grace the old value
    // works until the window ends. The rotation sent twice rotates nothing more.
    let rotate_path = format!("/ui/tokens/{id}/rotate");
    let page = jar.get(&app, &rotate_path).await;
    let fields = form_of(&page.text, &rotate_path);
    let bad = jar
        .post(&app, &rotate_path, &with(&fields, &[("grace", "86401")]))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("id=\"grace-error\""));
    let form = with(&fields, &[("grace", "60")]);
    let rotated = jar.post(&app, &rotate_path, &form).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert!(rotated.text.contains("keeps working for 60 more seconds"));
    let second = shown_value(&rotated.text);
    assert_eq!(
        authz(&app, &first).await,
        StatusCode::OK,
        "in the grace window"
    );
    assert_eq!(authz(&app, &second).await, StatusCode::OK);
    let twice = jar.post(&app, &rotate_path, &form).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.text.contains("Rotated meanwhile"));
    assert_eq!(
        authz(&app, &second).await,
        StatusCode::OK,
        "still the value shown"
    );
    app.clock.advance(Duration::seconds(61));
    assert_eq!(
        authz(&app, &first).await,
        StatusCode::UNAUTHORIZED,
        "grace over"
    );
    assert_eq!(authz(&app, &second).await, StatusCode::OK);
}

#[tokio::test]
async fn people_sign_out_of_one_session_or_all_and_owners_sign_members_out() {
    let app = TestApp::new().await;
    let mut here = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let mut elsewhere = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let sid = |jar: &Jar| {
        let at = &jar.0["tessera_ui_at"];
        let payload = at.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["sid"].as_str().unwrap().to_owned()
    };

    // "Your sessions" lists both; signing the other one out ends it at once.
    let page = here.get(&app, "/ui/sessions").await;
    let other = sid(&elsewhere);
    assert!(page.text.contains(&other), "the other session is listed");
    let end = form_of(&page.text, &format!("/ui/sessions/{other}/end"));
    let a = here
        .post(&app, &format!("/ui/sessions/{other}/end"), &with(&end, &[]))
        .await;
    assert_eq!(location(&a), "/ui/sessions");
    let dead = elsewhere.get(&app, "/ui/tokens").await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED);
    assert!(dead.text.contains("Your session has ended"));
    assert_eq!(here.get(&app, "/ui/tokens").await.status, StatusCode::OK);

    // An owner signs a member out everywhere.
    let created = app
        .call(
            axum::http::Method::POST,
            &app.org_path("/users"),
            Some(app.owner()),
            Some(
                serde_json::json!({"email": "m@acme.test", "password": "member password 1",
                                    "organizationRole": "ORGANIZATION_MEMBER"}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let member_id = created.str("id");
    let mut member = sign_in(&app, "m@acme.test", "member password 1").await;
    assert_eq!(member.get(&app, "/ui").await.status, StatusCode::OK);
    let page = here.get(&app, "/ui/members").await;
    let path = format!("/ui/members/{member_id}/end-sessions");
    let end = form_of(&page.text, &path);
    let a = here.post(&app, &path, &with(&end, &[])).await;
    assert!(location(&a).starts_with("/ui/members?ended="), "{a:?}");
    let page = here.get(&app, &location(&a)).await;
    assert!(
        page.text.contains("role=\"status\""),
        "a notice says how many"
    );
    assert_eq!(
        member.get(&app, "/ui").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Signing out everywhere ends this session too.
    let page = here.get(&app, "/ui/sessions").await;
    let all = form_of(&page.text, "/ui/sessions/end-all");
    let a = here
        .post(&app, "/ui/sessions/end-all", &with(&all, &[]))
        .await;
    assert!(location(&a).starts_with("/ui/signed-out"), "{a:?}");
    assert_ne!(here.get(&app, "/ui/tokens").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_error_no_page_answered_still_shows_who_is_signed_in() {
    let app = TestApp::new().await;
    let jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    let wrong_method = app
        .send(
            axum::http::Request::put("/ui/tokens")
                .header("cookie", jar.header())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.text.contains(&app.seed.owner_email));
    assert!(
        wrong_method.text.contains("id=\"sign-out\""),
        "a sign-out button"
    );
}

#[tokio::test]
async fn over_tls_every_cookie_is_secure() {
    let app = TestApp::with_config(|c| c.issuer = Some("https://tessera.test".into())).await;
    let secure_cookies = |a: &Answer| {
        let set: Vec<String> = a
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(!set.is_empty(), "cookies set: {a:?}");
        for c in &set {
            assert!(
                c.contains("; Secure") && c.contains("HttpOnly") && c.contains("SameSite=Lax"),
                "{c}"
            );
        }
    };
    let login = app
        .form(
            "/login",
            &[
                ("email", &app.seed.owner_email),
                ("password", &app.seed.owner_password),
            ],
            &[],
        )
        .await;
    secure_cookies(&login);
    let mut jar = Jar::default();
    jar.take(&login);
    let a = jar.get(&app, "/ui/tokens").await;
    let a = jar.get(&app, &location(&a)).await;
    secure_cookies(&a);
    let a = jar.get(&app, &location(&a)).await;
    let callback = location(&a);
    let callback = callback
        .strip_prefix("https://tessera.test")
        .expect("back to the issuer");
    let a = jar.get(&app, callback).await;
    assert_eq!(location(&a), "/ui/tokens");
    secure_cookies(&a);
    assert_eq!(jar.get(&app, "/ui/tokens").await.status, StatusCode::OK);
}

/// Every visible field of a page (input, select, textarea) has a `<label for>`.
fn assert_labelled(html: &str, page: &str) {
    let mut fields = 0;
    for tag in ["<input", "<select", "<textarea"] {
        for (at, _) in html.match_indices(tag) {
            let end = html[at..].find('>').unwrap() + at;
            let element = &html[at..end];
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let id = element
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{page}: a field without an id: {element}"));
            assert!(
                html.contains(&format!("<label for=\"{id}\"")),
                "{page}: no label for #{id}"
            );
            fields += 1;
        }
    }
    assert!(fields > 0, "{page} has fields");
}

#[tokio::test]
async fn every_field_has_a_label() {
    let app = TestApp::new().await;
    let created = app
        .create_token(serde_json::json!({"name": "l", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}))
        .await;
    let id = created.str("id");
    let mut jar = sign_in(&app, &app.seed.owner_email, &app.seed.owner_password).await;
    for page in [
        "/ui/tokens/new?scope=ORGANIZATION".to_owned(),
        format!(
            "/ui/tokens/new?scope=WORKSPACE&entityId={}",
            app.seed.workspace_id
        ),
        format!("/ui/tokens/{id}"),
        format!("/ui/tokens/{id}/edit"),
        format!("/ui/tokens/{id}/rotate"),
    ] {
        let a = jar.get(&app, &page).await;
        assert_eq!(a.status, StatusCode::OK, "{page}");
        assert_labelled(&a.text, &page);
    }
    let created = jar.get(&app, "/ui/tokens/new?scope=ORGANIZATION").await;
    let fields = form_of(&created.text, "/ui/tokens/new");
    let shown = jar
        .post(
            &app,
            "/ui/tokens/new",
            &with(&fields, &[("name", "m"), ("role", "ORGANIZATION_MEMBER")]),
        )
        .await;
    assert_labelled(&shown.text, "the value shown once");
    assert!(
        shown.text.contains("aria-live=\"polite\""),
        "the copy result is announced"
    );
}
