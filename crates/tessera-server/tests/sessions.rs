//! Sessions for people: sign-in, the OAuth grants, lifetimes with a settable clock,
//! sign-out, and the attacks on each step.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::Value;
use tessera_testkit::{Answer, TestApp, pkce_challenge, query_param};
use time::Duration;

const CLI: &str = "tessera-cli";
const CLI_REDIRECT: &str = "http://127.0.0.1:43210/callback";
const UI: &str = "tessera-ui";
const UI_REDIRECT: &str = "http://tessera.test/ui/callback";

async fn signed_in_cli(app: &TestApp) -> (String, Value) {
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let tokens = app.oauth_sign_in(&cookie, CLI, CLI_REDIRECT).await;
    (cookie, tokens)
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn authz(app: &TestApp, token: &str) -> StatusCode {
    app.call(Method::GET, "/v1/authz", Some(token), None)
        .await
        .status
}

async fn poll(app: &TestApp, device_code: &str) -> Answer {
    app.form(
        "/oauth/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", CLI),
        ],
        &[],
    )
    .await
}

async fn refresh(app: &TestApp, refresh_token: &str, client: &str) -> Answer {
    app.form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client),
        ],
        &[],
    )
    .await
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_owned()
}

#[tokio::test]
async fn access_tokens_live_eight_hours_and_sessions_thirty_days() {
    let app = TestApp::new().await;
    let t0 = app.now();
    let (_, tokens) = signed_in_cli(&app).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 8 * 3600);
    let access = s(&tokens, "access_token");
    let c = claims(&access);
    assert_eq!(c["client_id"], CLI);
    assert!(c["sid"].is_string());
    assert_eq!(c["org_id"], app.seed.organization_id.as_str());
    assert!(c.get("apiTokenId").is_none());

    app.clock
        .set(t0 + Duration::hours(8) - Duration::seconds(1));
    assert_eq!(authz(&app, &access).await, StatusCode::OK);
    app.clock
        .set(t0 + Duration::hours(8) + Duration::seconds(1));
    assert_eq!(authz(&app, &access).await, StatusCode::UNAUTHORIZED);

    // Refresh late on day 29: works, and the new access token ends with the session at
    // day 30, not 8 hours later.
    app.clock.set(t0 + Duration::days(29) + Duration::hours(20));
    let r = refresh(&app, &s(&tokens, "refresh_token"), CLI).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let capped = claims(&s(&r.body, "access_token"));
    assert_eq!(
        capped["exp"].as_i64().unwrap(),
        (t0 + Duration::days(30)).unix_timestamp()
    );
    assert_eq!(r.body["expires_in"], 4 * 3600);
    assert_ne!(
        s(&r.body, "refresh_token"),
        s(&tokens, "refresh_token"),
        "rotated"
    );
    assert_eq!(
        authz(&app, &s(&r.body, "access_token")).await,
        StatusCode::OK
    );

    // Day 30 + 1 s: nothing extends the session.
    app.clock
        .set(t0 + Duration::days(30) + Duration::seconds(1));
    let late = refresh(&app, &s(&r.body, "refresh_token"), CLI).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(late.body["error"], "invalid_grant");
    assert!(
        s(&late.body, "error_description").contains("sign in again"),
        "{late:?}"
    );
}

#[tokio::test]
async fn sign_out_kills_access_and_refresh_tokens_at_once() {
    let app = TestApp::new().await;
    let (_, tokens) = signed_in_cli(&app).await;
    let access = s(&tokens, "access_token");
    assert_eq!(authz(&app, &access).await, StatusCode::OK);
    let out = app.call(Method::POST, "/logout", Some(&access), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = app
        .call(Method::GET, "/v1/authz", Some(&access), None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert!(
        after
            .header("www-authenticate")
            .unwrap()
            .contains("session has ended")
    );
    let r = refresh(&app, &s(&tokens, "refresh_token"), CLI).await;
    assert_eq!(r.body["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_token_reuse_ends_the_session() {
    let app = TestApp::new().await;
    let (_, tokens) = signed_in_cli(&app).await;
    let first = s(&tokens, "refresh_token");
    let r = refresh(&app, &first, CLI).await;
    assert_eq!(r.status, StatusCode::OK);
    let second = s(&r.body, "refresh_token");
    let replay = refresh(&app, &first, CLI).await;
    assert_eq!(replay.body["error"], "invalid_grant");
    assert!(s(&replay.body, "error_description").contains("already used"));
    // The whole session is gone: the legitimate holder's tokens too.
    assert_eq!(
        refresh(&app, &second, CLI).await.body["error"],
        "invalid_grant"
    );
    assert_eq!(
        authz(&app, &s(&r.body, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        authz(&app, &s(&tokens, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    // Another client presenting it is refused too.
    let (_, other) = signed_in_cli(&app).await;
    assert_eq!(
        refresh(&app, &s(&other, "refresh_token"), UI).await.body["error"],
        "invalid_grant"
    );
}

/// Runs /authorize and answers (code, verifier).
async fn code_for(app: &TestApp, cookie: &str, client: &str, redirect: &str) -> (String, String) {
    let verifier = format!("{}{}", "k".repeat(30), uuid::Uuid::now_v7().simple());
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("code_challenge", &pkce_challenge(&verifier)),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let a = app.authorize(&query, cookie).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    (
        query_param(a.header("location").unwrap(), "code").unwrap(),
        verifier,
    )
}

async fn exchange(
    app: &TestApp,
    code: &str,
    client: &str,
    redirect: &str,
    verifier: &str,
) -> Answer {
    app.form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn codes_are_single_use_bound_to_client_redirect_and_verifier() {
    let app = TestApp::new().await;
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;

    // Reuse ends the session the code created.
    let (code, verifier) = code_for(&app, &cookie, CLI, CLI_REDIRECT).await;
    let ok = exchange(&app, &code, CLI, CLI_REDIRECT, &verifier).await;
    assert_eq!(ok.status, StatusCode::OK);
    let again = exchange(&app, &code, CLI, CLI_REDIRECT, &verifier).await;
    assert_eq!(again.body["error"], "invalid_grant");
    assert_eq!(
        authz(&app, &s(&ok.body, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );

    // Wrong verifier.
    let (code, _) = code_for(&app, &cookie, CLI, CLI_REDIRECT).await;
    let wrong = exchange(&app, &code, CLI, CLI_REDIRECT, &"w".repeat(50)).await;
    assert_eq!(wrong.body["error"], "invalid_grant");
    assert!(s(&wrong.body, "error_description").contains("code_verifier"));

    // Another redirect URI than the one authorized.
    let (code, verifier) = code_for(&app, &cookie, CLI, CLI_REDIRECT).await;
    let other = exchange(&app, &code, CLI, "http://127.0.0.1:1/callback", &verifier).await;
    assert_eq!(other.body["error"], "invalid_grant");

    // A code issued to the UI redeemed by the CLI.
    let (code, verifier) = code_for(&app, &cookie, UI, UI_REDIRECT).await;
    let stolen = exchange(&app, &code, CLI, UI_REDIRECT, &verifier).await;
    assert_eq!(stolen.body["error"], "invalid_grant");

    // Expired after 60 seconds.
    let (code, verifier) = code_for(&app, &cookie, CLI, CLI_REDIRECT).await;
    app.clock.advance(Duration::seconds(61));
    let expired = exchange(&app, &code, CLI, CLI_REDIRECT, &verifier).await;
    assert_eq!(expired.body["error"], "invalid_grant");
    assert!(s(&expired.body, "error_description").contains("expired"));
}

#[tokio::test]
async fn authorize_refuses_plain_pkce_and_never_redirects_to_unregistered_uris() {
    let app = TestApp::new().await;
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let get = |q: Vec<(&'static str, String)>| {
        let query = serde_urlencoded::to_string(q).unwrap();
        let app = &app;
        let cookie = cookie.clone();
        async move {
            app.get_with(&format!("/authorize?{query}"), &[("cookie", &cookie)])
                .await
        }
    };
    let challenge = pkce_challenge(&"a".repeat(43));
    // Open-redirect attempts: an error page, no Location.
    for (client, redirect) in [
        (CLI, "https://evil.example/callback"),
        (CLI, "http://127.0.0.1.evil.example/callback"),
        (CLI, "http://127.0.0.1:5000/elsewhere"),
        (UI, "http://tessera.test/ui/callback/../../evil"),
        (UI, "https://tessera.test.evil.example/ui/callback"),
        ("no-such-client", CLI_REDIRECT),
    ] {
        let a = get(vec![
            ("response_type", "code".into()),
            ("client_id", client.into()),
            ("redirect_uri", redirect.into()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ])
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{client} {redirect}");
        assert!(
            a.header("location").is_none(),
            "never redirect to {redirect}"
        );
        assert!(a.header("content-security-policy").is_some());
    }
    // plain PKCE, and none: back to the client with an error and the state.
    for method in [Some("plain"), None] {
        let mut q = vec![
            ("response_type", "code".into()),
            ("client_id", CLI.into()),
            ("redirect_uri", CLI_REDIRECT.into()),
            ("state", "s1".into()),
        ];
        if let Some(m) = method {
            q.push(("code_challenge", "a".repeat(43)));
            q.push(("code_challenge_method", m.into()));
        }
        let a = get(q).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER);
        let location = a.header("location").unwrap();
        assert!(location.starts_with(CLI_REDIRECT));
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(query_param(location, "state").as_deref(), Some("s1"));
        assert!(query_param(location, "code").is_none());
    }
    // Not signed in: to the login page, which comes back here.
    let a = app
        .get_with(
            &format!(
                "/authorize?{}",
                serde_urlencoded::to_string([
                    ("response_type", "code"),
                    ("client_id", CLI),
                    ("redirect_uri", CLI_REDIRECT),
                    ("code_challenge", challenge.as_str()),
                    ("code_challenge_method", "S256")
                ])
                .unwrap()
            ),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(
        a.header("location")
            .unwrap()
            .starts_with("/login?return_to=%2Fauthorize")
    );
}

#[tokio::test]
async fn sign_in_is_rate_limited_and_does_not_reveal_accounts() {
    let app = TestApp::new().await;
    let wrong_password = app
        .form(
            "/login",
            &[
                ("email", &app.seed.owner_email),
                ("password", "nope-nope-nope"),
            ],
            &[],
        )
        .await;
    let wrong_email = app
        .form(
            "/login",
            &[
                ("email", "nobody@acme.test"),
                ("password", "nope-nope-nope"),
            ],
            &[],
        )
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_email.status, StatusCode::UNAUTHORIZED);
    assert!(wrong_password.text.contains("Wrong email or password."));
    assert!(wrong_email.text.contains("Wrong email or password."));
    for _ in 0..3 {
        app.form(
            "/login",
            &[
                ("email", &app.seed.owner_email),
                ("password", "nope-nope-nope"),
            ],
            &[],
        )
        .await;
    }
    // Locked out now, even with the right password.
    let locked = app
        .form(
            "/login",
            &[
                ("email", &app.seed.owner_email),
                ("password", &app.seed.owner_password),
            ],
            &[],
        )
        .await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.text
    );
    assert!(locked.header("retry-after").is_some());
    app.clock.advance(Duration::seconds(2));
    let ok = app
        .form(
            "/login",
            &[
                ("email", &app.seed.owner_email),
                ("password", &app.seed.owner_password),
            ],
            &[],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    // A cross-site form post is refused.
    let cross = app
        .form(
            "/login",
            &[
                ("email", &app.seed.owner_email),
                ("password", &app.seed.owner_password),
            ],
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.header("set-cookie").is_none());
}

#[tokio::test]
async fn device_grant_from_start_to_tokens() {
    let app = TestApp::new().await;
    let start = app
        .form("/oauth/device/code", &[("client_id", CLI)], &[])
        .await;
    assert_eq!(start.status, StatusCode::OK, "{start:?}");
    let device_code = s(&start.body, "device_code");
    let user_code = s(&start.body, "user_code");
    assert_eq!(start.body["verification_uri"], "http://tessera.test/device");
    assert_eq!(
        poll(&app, &device_code).await.body["error"],
        "authorization_pending"
    );
    assert_eq!(
        poll(&app, &device_code).await.body["error"],
        "slow_down",
        "polled again at once"
    );

    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let page = app
        .get_with(
            &format!("/device?user_code={user_code}"),
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // Cross-site and forged-token posts are refused.
    let forged = app
        .form(
            "/device",
            &[
                ("user_code", &user_code),
                ("action", "approve"),
                ("csrf", "forged"),
            ],
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross = app
        .form(
            "/device",
            &[
                ("user_code", &user_code),
                ("action", "approve"),
                ("csrf", &csrf),
            ],
            &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let lower = user_code.to_lowercase().replace('-', "");
    let ok = app
        .form(
            "/device",
            &[
                ("user_code", &lower),
                ("action", "approve"),
                ("csrf", &csrf),
            ],
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);

    app.clock.advance(Duration::seconds(11));
    let tokens = poll(&app, &device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{tokens:?}");
    assert_eq!(
        authz(&app, &s(&tokens.body, "access_token")).await,
        StatusCode::OK
    );
    assert_eq!(
        poll(&app, &device_code).await.body["error"],
        "invalid_grant",
        "redeemed once"
    );
}

#[tokio::test]
async fn device_codes_expire_and_can_be_denied() {
    let app = TestApp::new().await;
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let denied = app
        .form("/oauth/device/code", &[("client_id", CLI)], &[])
        .await;
    let page = app.get_with("/device", &[("cookie", &cookie)]).await;
    let csrf = page
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let d = app
        .form(
            "/device",
            &[
                ("user_code", &s(&denied.body, "user_code")),
                ("action", "deny"),
                ("csrf", &csrf),
            ],
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(
        poll(&app, &s(&denied.body, "device_code")).await.body["error"],
        "access_denied"
    );

    let expiring = app
        .form("/oauth/device/code", &[("client_id", CLI)], &[])
        .await;
    app.clock.advance(Duration::minutes(11));
    assert_eq!(
        poll(&app, &s(&expiring.body, "device_code")).await.body["error"],
        "expired_token"
    );
    let late = app
        .form(
            "/device",
            &[
                ("user_code", &s(&expiring.body, "user_code")),
                ("action", "approve"),
                ("csrf", &csrf),
            ],
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let app = TestApp::new().await;
    let unsupported = app
        .form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "a"),
                ("password", "b"),
            ],
            &[],
        )
        .await;
    assert_eq!(unsupported.status, StatusCode::BAD_REQUEST);
    assert_eq!(unsupported.body["error"], "unsupported_grant_type");
    assert_eq!(unsupported.header("cache-control"), Some("no-store"));
    let missing = app
        .form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("client_id", CLI)],
            &[],
        )
        .await;
    assert_eq!(missing.body["error"], "invalid_request");
    let client = app
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "evil"),
            ],
            &[],
        )
        .await;
    assert_eq!(client.status, StatusCode::UNAUTHORIZED);
    assert_eq!(client.body["error"], "invalid_client");
    let unknown = refresh(&app, "tsr_nothing", CLI).await;
    assert_eq!(unknown.body["error"], "invalid_grant");
}

#[tokio::test]
async fn session_tokens_on_the_api_sessions_list_and_revocation() {
    let app = TestApp::new().await;
    let (cookie, cli) = signed_in_cli(&app).await;
    let ui = app.oauth_sign_in(&cookie, UI, UI_REDIRECT).await;
    let access = s(&cli, "access_token");

    // The management API with the user's roles (Organization Owner).
    let ws = app
        .call(
            Method::GET,
            &app.org_path("/workspaces"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(ws.status, StatusCode::OK);
    let me = app
        .call(Method::GET, "/v1/users/me", Some(&access), None)
        .await;
    assert_eq!(me.body["email"], app.seed.owner_email.as_str());
    assert_eq!(me.body["organizationRole"], "ORGANIZATION_OWNER");
    let info = app
        .call(Method::GET, "/userinfo", Some(&access), None)
        .await;
    assert_eq!(info.body["email"], app.seed.owner_email.as_str());
    assert_eq!(
        app.call(Method::GET, "/userinfo", Some(app.owner()), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::GET, "/v1/users/me", Some(app.owner()), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let list = app
        .call(Method::GET, "/v1/users/me/sessions", Some(&access), None)
        .await;
    assert_eq!(list.body["totalCount"], 3, "browser, CLI, UI: {list:?}");
    let current: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["clientId"], CLI);

    // A session token cannot be rotated.
    let sid = claims(&access)["sid"].as_str().unwrap().to_owned();
    let rot = app
        .call(
            Method::POST,
            &app.org_path(&format!("/tokens/{sid}/rotate")),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(rot.status, StatusCode::BAD_REQUEST);
    assert!(
        rot.body["message"]
            .as_str()
            .unwrap()
            .contains("cannot be rotated")
    );

    // End the UI's session from the CLI.
    let ui_sid = claims(&s(&ui, "access_token"))["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let del = app
        .call(
            Method::DELETE,
            &format!("/v1/users/me/sessions/{ui_sid}"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        authz(&app, &s(&ui, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(authz(&app, &access).await, StatusCode::OK);

    // RFC 7009 revocation of the refresh token ends the CLI session; always 200.
    let r = app
        .form(
            "/oauth/revoke",
            &[("token", &s(&cli, "refresh_token")), ("client_id", CLI)],
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(authz(&app, &access).await, StatusCode::UNAUTHORIZED);
    let r = app
        .form(
            "/oauth/revoke",
            &[("token", "garbage"), ("client_id", CLI)],
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // An owner ends every session of a member; sign out everywhere.
    let (_, again) = signed_in_cli(&app).await;
    let all = app
        .call(
            Method::POST,
            "/v1/users/me/sessions/revoke-all",
            Some(&s(&again, "access_token")),
            None,
        )
        .await;
    assert!(all.body["ended"].as_u64().unwrap() >= 2, "{all:?}");
    assert_eq!(
        authz(&app, &s(&again, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    let page = app.get_with("/device", &[("cookie", &cookie)]).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "the browser sign-in ended too"
    );
}

#[tokio::test]
async fn discovery_lists_the_oauth_endpoints() {
    let app = TestApp::new().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let d = app.call(Method::GET, path, None, None).await;
        assert_eq!(
            d.body["authorization_endpoint"],
            "http://tessera.test/authorize"
        );
        assert_eq!(d.body["token_endpoint"], "http://tessera.test/oauth/token");
        assert_eq!(
            d.body["device_authorization_endpoint"],
            "http://tessera.test/oauth/device/code"
        );
        assert_eq!(
            d.body["revocation_endpoint"],
            "http://tessera.test/oauth/revoke"
        );
        assert_eq!(
            d.body["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        let grants = d.body["grant_types_supported"].as_array().unwrap();
        assert_eq!(grants.len(), 3);
    }
}

#[tokio::test]
async fn loopback_clients_need_consent_and_the_ui_signs_the_browser_out() {
    let app = TestApp::new().await;
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", CLI),
        ("redirect_uri", CLI_REDIRECT),
        ("code_challenge", &pkce_challenge(&"c".repeat(43))),
        ("code_challenge_method", "S256"),
        ("state", "st"),
    ])
    .unwrap();
    let page = app
        .get_with(&format!("/authorize?{query}"), &[("cookie", &cookie)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "a consent page, no code yet");
    assert!(page.header("location").is_none());
    assert!(page.text.contains("Allow Tessera CLI?"));
    let fields = tessera_testkit::hidden_fields(&page.text);
    let form = |decision: &'static str| {
        let mut f: Vec<(String, String)> = fields.clone();
        f.push(("decision".into(), decision.into()));
        f
    };
    let as_refs = |f: &Vec<(String, String)>| {
        f.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    // A cross-site post is refused; so is a forged CSRF token.
    let f = as_refs(&form("allow"));
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cross = app
        .form(
            "/authorize",
            &pairs,
            &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let forged: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| {
            if *k == "csrf" {
                (*k, "forged")
            } else {
                (*k, *v)
            }
        })
        .collect();
    assert_eq!(
        app.form("/authorize", &forged, &[("cookie", &cookie)])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Deny: back to the client with access_denied.
    let f = as_refs(&form("deny"));
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let denied = app.form("/authorize", &pairs, &[("cookie", &cookie)]).await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let location = denied.header("location").unwrap();
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(location, "state").as_deref(), Some("st"));

    // The UI needs no consent (it is this server's own page) and its sign-out ends the
    // browser's sign-in too.
    let ui = app.oauth_sign_in(&cookie, UI, UI_REDIRECT).await;
    let out = app
        .call(Method::POST, "/logout", Some(&s(&ui, "access_token")), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = app.get_with("/device", &[("cookie", &cookie)]).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "signed out of the browser too"
    );
}

#[tokio::test]
async fn return_to_never_leaves_the_server_and_replayed_codes_end_their_session() {
    let app = TestApp::new().await;
    for evil in [
        "//evil.example",
        "/\t/evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%0d%0aSet-Cookie:x",
    ] {
        let a = app
            .form(
                "/login",
                &[
                    ("email", &app.seed.owner_email),
                    ("password", &app.seed.owner_password),
                    ("return_to", evil),
                ],
                &[],
            )
            .await;
        assert!(
            a.status == StatusCode::OK || a.status == StatusCode::SEE_OTHER,
            "{evil}: {}",
            a.status
        );
        if let Some(location) = a.header("location") {
            assert!(
                location.starts_with('/')
                    && !location.starts_with("//")
                    && !location.contains(['\t', '\\', '\r', '\n']),
                "{evil} -> {location}"
            );
        }
    }
    // A code presented again, however late, ends the session it created (RFC 6749
    // §4.1.2): the first redemption's refresh token then fails.
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let (code, verifier) = code_for(&app, &cookie, UI, UI_REDIRECT).await;
    let ok = exchange(&app, &code, UI, UI_REDIRECT, &verifier).await;
    app.clock.advance(Duration::minutes(30));
    let replay = exchange(&app, &code, UI, UI_REDIRECT, &verifier).await;
    assert_eq!(replay.body["error"], "invalid_grant");
    let r = refresh(&app, &s(&ok.body, "refresh_token"), UI).await;
    assert_eq!(r.body["error"], "invalid_grant", "the session ended: {r:?}");
}

#[tokio::test]
async fn a_replay_during_the_first_redemption_still_ends_its_session() {
    use tessera_core::ids::SessionId;
    let app = TestApp::new().await;
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let (code, verifier) = code_for(&app, &cookie, UI, UI_REDIRECT).await;
    // The first redemption has spent the code and named its session, but has not
    // stored the session yet...
    let planned = SessionId::new();
    let first = app
        .state
        .store
        .redeem_code(
            &tessera_core::session::secret_hash(&code),
            tessera_core::Clock::now(&app.clock),
            planned,
        )
        .await
        .unwrap();
    let tessera_core::session::Redemption::Fresh(stored) = first else {
        panic!("a fresh code: {first:?}");
    };
    // ...when the code is presented again.
    let replay = exchange(&app, &code, UI, UI_REDIRECT, &verifier).await;
    assert_eq!(replay.body["error"], "invalid_grant");
    let ended = app.state.store.session(planned).await.unwrap();
    assert!(
        ended.is_some_and(|s| s.ended_at.is_some()),
        "the session is stored ended ahead of the first redemption"
    );
    // The first redemption then cannot start it, so it hands out no tokens.
    let started = tessera_server::sessions::start(
        &app.state,
        tessera_server::sessions::NewSession {
            id: Some(planned),
            user: stored.user_id,
            organization: stored.organization_id,
            client_id: UI,
            signed_in_at: stored.signed_in_at,
            origin: Default::default(),
            cookie_hash: None,
            browser_session: stored.browser_session_id,
        },
    )
    .await;
    assert!(
        matches!(started, Err(tessera_server::error::ApiError::Conflict(_))),
        "{started:?}"
    );
}

#[tokio::test]
async fn revocation_and_device_endpoints_answer_oauth_errors() {
    let app = TestApp::new().await;
    let r = app.form("/oauth/revoke", &[("token", "x")], &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_request");
    let d = app
        .form("/oauth/device/code", &[("client_id", "nobody")], &[])
        .await;
    assert_eq!(d.status, StatusCode::UNAUTHORIZED);
    assert_eq!(d.body["error"], "invalid_client");
    let d = app.form("/oauth/device/code", &[], &[]).await;
    assert_eq!(d.body["error"], "invalid_request");
}
