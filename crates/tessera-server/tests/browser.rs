//! The web UI in headless Chromium, driven over WebDriver (chromedriver), against a
//! server on `127.0.0.1:0`. Saves screenshots of the main pages (see [`screenshots`]).
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the tests say so and
//! pass, unless `TESSERA_BROWSER_TESTS=required` (as `.ci/run` sets), where they fail.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tessera_testkit::TestApp;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver process, stopped on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser, or `None` when Chromium is not installed and the tests are optional.
async fn browser() -> Option<(Driver, Client)> {
    let required = std::env::var("TESSERA_BROWSER_TESTS").is_ok_and(|v| v == "required");
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            !required,
            "TESSERA_BROWSER_TESTS=required but {CHROMEDRIVER} or {CHROMIUM} is missing: \
             apt-get install chromium chromium-driver"
        );
        eprintln!("skipped: install chromium and chromium-driver to run the browser tests");
        return None;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr").port()
    };
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while http.get(format!("{url}/status")).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not answer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-dev-shm-usage",
                     "--window-size=1280,900"]
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a browser session");
    Some((driver, client))
}

/// Where screenshots go: `TESSERA_SCREENSHOT_DIR` when set (the README's
/// `docs/screenshots` are refreshed that way), else the build's scratch directory, so
/// a test run leaves the working tree as it found it.
fn screenshots() -> PathBuf {
    std::env::var_os("TESSERA_SCREENSHOT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
        PathBuf::from,
    )
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::create_dir_all(screenshots()).expect("screenshot directory");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("screenshot saved");
}

/// Waits until the browser is at `expected` (a click's navigation may still be on its
/// way).
async fn path_is(c: &Client, expected: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let path = c.current_url().await.expect("url").path().to_owned();
        if path == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never at {expected} (at {path})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the page's heading satisfies `want` (the page a click leads to may still
/// be loading, or the previous page still showing), and answers it. A heading swapped
/// between finding and reading it (a stale element) is looked up again.
async fn heading_where(c: &Client, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(found) = c.find(Locator::Css("h1")).await
            && let Ok(text) = found.text().await
        {
            if want(&text) {
                return text;
            }
            last = text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the heading never became {what} (last: {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn heading_is(c: &Client, expected: &str) {
    heading_where(c, &format!("{expected:?}"), |h| h == expected).await;
}

async fn heading_starts(c: &Client, prefix: &str) {
    heading_where(c, &format!("{prefix:?}…"), |h| h.starts_with(prefix)).await;
}

async fn heading_has(c: &Client, part: &str) {
    heading_where(c, &format!("…{part:?}…"), |h| h.contains(part)).await;
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn fill(c: &Client, css: &str, text: &str) {
    let field = c.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn value(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

/// Opens `path` and signs in with the password form when asked.
async fn sign_in(c: &Client, base: &str, email: &str, password: &str, to: &str) {
    c.goto(&format!("{base}{to}")).await.expect("goto");
    path_is(c, "/login").await; // sent to sign in first
    fill(c, "input[name=email]", email).await;
    fill(c, "input[name=password]", password).await;
    click(c, "button[type=submit]").await;
    // Back on the page asked for, through /authorize and /ui/callback.
    path_is(c, to).await;
}

async fn authz(addr: SocketAddr, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://{addr}/v1/authz"))
        .bearer_auth(token)
        .send()
        .await
        .expect("authz")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_creates_rotates_and_deletes_a_workspace_token_then_signs_out() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let (app, addr) = TestApp::live().await;
    let base = format!("http://{addr}");
    let ws = app.seed.workspace_id.clone();

    sign_in(
        &c,
        &base,
        &app.seed.owner_email,
        &app.seed.owner_password,
        "/ui",
    )
    .await;
    heading_is(&c, "Acme").await;
    screenshot(&c, "overview").await;

    // The workspace's tokens, then a new one.
    click(&c, &format!("a[href='/ui/workspaces/{ws}/tokens']")).await;
    heading_has(&c, "workspace Data").await;
    click(&c, "#create-token").await;
    heading_starts(&c, "New API token").await;
    fill(&c, "#name", "ci-deploy").await;
    fill(&c, "#description", "Deploys from CI").await;
    c.find(Locator::Css("#role"))
        .await
        .expect("role")
        .select_by_value("WORKSPACE_OPERATOR")
        .await
        .expect("select");
    fill(&c, "#expiry", "30").await;
    screenshot(&c, "new-token").await;
    click(&c, "#create").await;
    heading_is(&c, "Token created").await;
    let first = value(&c, "#token-value").await;
    assert!(
        first.len() > 100 && first.starts_with("ey"),
        "a JWT: {first}"
    );
    let page = c.source().await.expect("source");
    assert!(page.contains("will not be shown again"));
    assert!(
        c.find(Locator::Css("button[data-copy]")).await.is_ok(),
        "a copy button"
    );
    screenshot(&c, "token-created").await;
    assert_eq!(authz(addr, &first).await, 200, "the value works");

    // Its page lists it with its role.
    click(&c, "a.button[href^='/ui/tokens/']").await;
    heading_is(&c, "ci-deploy").await;
    let roles = c
        .find(Locator::Css("#roles"))
        .await
        .expect("roles")
        .text()
        .await
        .expect("text");
    assert!(
        roles.contains("workspace operator") && roles.contains("workspace Data"),
        "{roles}"
    );
    screenshot(&c, "token-detail").await;

    // Rotate: the old value stops working at once.
    click(&c, "#rotate").await;
    heading_starts(&c, "Rotate").await;
    screenshot(&c, "rotate-confirm").await;
    click(&c, "#confirm").await;
    heading_is(&c, "Token rotated").await;
    let second = value(&c, "#token-value").await;
    assert_ne!(first, second);
    assert_eq!(authz(addr, &first).await, 401, "the old value is dead");
    assert_eq!(authz(addr, &second).await, 200);

    // Delete.
    click(&c, "a.button[href^='/ui/tokens/']").await;
    click(&c, "#delete").await;
    heading_starts(&c, "Delete").await;
    click(&c, "#confirm").await;
    heading_has(&c, "workspace Data").await; // back to the list
    assert_eq!(
        authz(addr, &second).await,
        401,
        "deleted: every value is dead"
    );
    let list = c.source().await.expect("source");
    assert!(!list.contains("ci-deploy"));

    // Sessions, members, a phone-sized overview.
    click(&c, "a[href='/ui/sessions']").await;
    heading_is(&c, "Your sessions").await;
    screenshot(&c, "sessions").await;
    click(&c, "a[href='/ui/members']").await;
    heading_is(&c, "Members").await;
    screenshot(&c, "members").await;
    c.set_window_size(390, 844).await.expect("phone width");
    c.goto(&format!("{base}/ui/tokens")).await.expect("goto");
    screenshot(&c, "organization-tokens-phone").await;
    c.set_window_size(1280, 900).await.expect("laptop width");

    // Sign out; the old cookies then open no page.
    let old_cookies = c.get_all_cookies().await.expect("cookies");
    assert!(old_cookies.iter().any(|k| k.name() == "tessera_ui_at"));
    click(&c, "#sign-out").await;
    heading_is(&c, "Signed out").await;
    path_is(&c, "/ui/signed-out").await;
    for cookie in old_cookies {
        c.add_cookie(cookie).await.expect("put the old cookie back");
    }
    c.goto(&format!("{base}/ui/tokens")).await.expect("goto");
    // The old session opens nothing.
    heading_is(&c, "Your session has ended").await;
    assert!(
        c.find(Locator::Css("table")).await.is_err(),
        "no tokens shown"
    );
    click(&c, "a.button[href='/ui/login']").await;
    path_is(&c, "/login").await; // on to sign in again
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_sees_no_create_button_and_is_refused_when_posting_anyway() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let (app, addr) = TestApp::live().await;
    let base = format!("http://{addr}");
    let ws = app.seed.workspace_id.clone();
    let created = app
        .call(
            axum::http::Method::POST,
            &app.org_path("/users"),
            Some(app.owner()),
            Some(json!({
                "email": "member@acme.test", "password": "a long member password",
                "organizationRole": "ORGANIZATION_MEMBER",
                "workspaceRoles": [{"workspaceId": ws, "role": "WORKSPACE_MEMBER"}]
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 200, "{created:?}");

    let tokens = format!("/ui/workspaces/{ws}/tokens");
    sign_in(
        &c,
        &base,
        "member@acme.test",
        "a long member password",
        &tokens,
    )
    .await;
    heading_has(&c, "workspace Data").await;
    assert!(
        c.find(Locator::Css("#create-token")).await.is_err(),
        "no create button"
    );
    assert!(c.find(Locator::Css("a[href='/ui/members']")).await.is_err());
    screenshot(&c, "member-workspace-tokens").await;

    // Posting the form anyway, from our own page with the session's CSRF token.
    let csrf = value(&c, "input[name=csrf]").await;
    c.execute(
        "const f = document.createElement('form');
         f.method = 'post'; f.action = '/ui/tokens/new';
         for (const [k, v] of Object.entries(arguments[0])) {
           const i = document.createElement('input');
           i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
         }
         document.body.appendChild(f); f.submit();",
        vec![json!({"csrf": csrf, "scope": "WORKSPACE", "entityId": ws,
                    "name": "sneaky", "role": "WORKSPACE_OWNER"})],
    )
    .await
    .expect("post");
    heading_is(&c, "You don't have permission").await;
    screenshot(&c, "forbidden").await;
    let listed = app
        .call(
            axum::http::Method::GET,
            &app.org_path("/tokens"),
            Some(app.owner()),
            None,
        )
        .await;
    assert!(!listed.text.contains("sneaky"));
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_posted_from_another_site_is_refused() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let (app, addr) = TestApp::live().await;
    let base = format!("http://{addr}");
    sign_in(
        &c,
        &base,
        &app.seed.owner_email,
        &app.seed.owner_password,
        "/ui",
    )
    .await;

    // The person's real CSRF token, as if it had leaked: the origin check alone must
    // then refuse the forged form.
    c.goto(&format!("{base}/ui/tokens/new"))
        .await
        .expect("goto");
    let csrf = c
        .find(Locator::Css("input[name=csrf]"))
        .await
        .expect("a CSRF field")
        .attr("value")
        .await
        .expect("attr")
        .expect("a CSRF token");

    // Another origin (same host, another port: same-site, so the SameSite=Lax cookies
    // still go along) with a form that posts to Tessera.
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let evil_addr = evil.local_addr().expect("addr");
    let page = format!(
        "<!doctype html><form method=post action='{base}/ui/tokens/new'>\
         <input name=scope value=ORGANIZATION><input name=name value=evil>\
         <input name=role value=ORGANIZATION_OWNER><input name=csrf value='{csrf}'>\
         <button id=go>Claim your prize</button></form>"
    );
    tokio::spawn(async move {
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                let page = page.clone();
                async move { axum::response::Html(page) }
            }),
        );
        let _ = axum::serve(evil, router).await;
    });
    c.goto(&format!("http://{evil_addr}/")).await.expect("goto");
    click(&c, "#go").await;
    heading_is(&c, "Request refused").await;
    let listed = app
        .call(
            axum::http::Method::GET,
            &app.org_path("/tokens"),
            Some(app.owner()),
            None,
        )
        .await;
    assert!(!listed.text.contains("\"evil\""), "nothing was created");
    c.close().await.expect("close");
}
