//! Who is on the other end: client addresses through trusted proxies, what sessions
//! record of them, and the limits kept per address, per account and per sign-in.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_testkit::{TestApp, pkce_challenge, query_param};
use time::Duration;

const CLI: &str = "tessera-cli";
const CLI_REDIRECT: &str = "http://127.0.0.1:43210/callback";

async fn sign_in_from(app: &TestApp, peer: &str, xff: &str, password: &str) -> StatusCode {
    app.form_from(
        peer,
        "/login",
        &[("email", &app.seed.owner_email), ("password", password)],
        &[("x-forwarded-for", xff)],
    )
    .await
    .status
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} in {v}"))
        .to_owned()
}

#[tokio::test]
async fn sign_in_limits_count_each_client_behind_a_trusted_proxy() {
    let app =
        TestApp::with_config(|c| c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let proxy = "10.0.0.1:40000";

    // Five failures for five different accounts from one client: the address backs off.
    for i in 0..5 {
        let a = app
            .form_from(
                proxy,
                "/login",
                &[
                    ("email", &format!("nobody{i}@acme.test")),
                    ("password", "wrong-wrong"),
                ],
                &[("x-forwarded-for", "198.51.100.7")],
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        sign_in_from(&app, proxy, "198.51.100.7", &app.seed.owner_password).await,
        StatusCode::TOO_MANY_REQUESTS,
        "that client waits"
    );
    // Another client behind the same proxy is not slowed down by it, and a forged
    // left-most hop does not hide the real one.
    assert_eq!(
        sign_in_from(
            &app,
            proxy,
            "198.51.100.7, 203.0.113.9",
            &app.seed.owner_password
        )
        .await,
        StatusCode::OK
    );
    // Without trusting the proxy, the header would mean nothing: a client that talks to
    // us directly cannot pick its address.
    assert_eq!(
        sign_in_from(
            &app,
            "192.0.2.50:5000",
            "203.0.113.9",
            &app.seed.owner_password
        )
        .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_account_backs_off_whatever_address_the_guesses_come_from() {
    let app = TestApp::new().await;
    for i in 0..5 {
        let peer = format!("192.0.2.{}:5000", 10 + i);
        assert_eq!(
            sign_in_from(&app, &peer, "", "wrong-wrong").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // A sixth address, the right password: the account waits.
    let locked = app
        .form_from(
            "192.0.2.99:5000",
            "/login",
            &[
                ("email", &app.seed.owner_email),
                ("password", &app.seed.owner_password),
            ],
            &[],
        )
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.header("retry-after"), Some("1"));
    app.clock.advance(Duration::seconds(2));
    assert_eq!(
        sign_in_from(&app, "192.0.2.99:5000", "", &app.seed.owner_password).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_cli_session_records_its_address_and_user_agent() {
    let app = TestApp::new().await;
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let verifier = "v".repeat(43);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", CLI),
        ("redirect_uri", CLI_REDIRECT),
        ("code_challenge", pkce_challenge(&verifier).as_str()),
        ("code_challenge_method", "S256"),
        ("state", "s"),
    ])
    .unwrap();
    // (The CLI is a loopback client: `authorize` confirms its consent page.)
    let allowed = app.authorize(&query, &cookie).await;
    let location = allowed.header("location").expect("a redirect").to_owned();
    let code = query_param(&location, "code").expect("a code");
    let tokens = app
        .form_from(
            "192.0.2.33:6000",
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CLI_REDIRECT),
                ("client_id", CLI),
                ("code_verifier", &verifier),
            ],
            &[("user-agent", "tessera-cli/9.9")],
        )
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{tokens:?}");
    let access = s(&tokens.body, "access_token");
    let list = app
        .call(Method::GET, "/v1/users/me/sessions", Some(&access), None)
        .await;
    let mine = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("this session")
        .clone();
    assert_eq!(mine["clientId"], CLI);
    assert_eq!(mine["ip"], "192.0.2.33");
    assert_eq!(mine["userAgent"], "tessera-cli/9.9");
    assert!(mine["expiresAt"].is_string() && mine["createdAt"].is_string());
}

#[tokio::test]
async fn device_sign_ins_are_limited_per_address_and_wrong_codes_back_off() {
    let app = TestApp::new().await;
    let start = |peer: &'static str| {
        let app = &app;
        async move {
            app.form_from(peer, "/oauth/device/code", &[("client_id", CLI)], &[])
                .await
        }
    };
    for _ in 0..20 {
        assert_eq!(start("192.0.2.1:1").await.status, StatusCode::OK);
    }
    let refused = start("192.0.2.1:2").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["error"], "slow_down");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        refused.header("cache-control"),
        Some("no-store"),
        "still an OAuth answer"
    );
    assert_eq!(
        start("192.0.2.2:1").await.status,
        StatusCode::OK,
        "another address"
    );
    // Many /64s of one IPv6 /48 count together too: 100 in all.
    let peers: Vec<String> = (0..6).map(|i| format!("[2001:db8:1:{i}::1]:1")).collect();
    for peer in &peers[..5] {
        for _ in 0..20 {
            let a = app
                .form_from(peer, "/oauth/device/code", &[("client_id", CLI)], &[])
                .await;
            assert_eq!(a.status, StatusCode::OK, "{peer}");
        }
    }
    let sixth = app
        .form_from(&peers[5], "/oauth/device/code", &[("client_id", CLI)], &[])
        .await;
    assert_eq!(
        sixth.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the /48 is spent"
    );

    // A signed-in person guessing user codes is slowed down after five wrong ones.
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let page = app.get_with("/device", &[("cookie", &cookie)]).await;
    let csrf = tessera_testkit::hidden_fields(&page.text)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .expect("a CSRF field")
        .1;
    let guess = |code: &'static str| {
        let (app, cookie, csrf) = (&app, cookie.clone(), csrf.clone());
        async move {
            app.form(
                "/device",
                &[("user_code", code), ("action", "approve"), ("csrf", &csrf)],
                &[("cookie", &cookie)],
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(guess("BCDF-GHJK").await.status, StatusCode::BAD_REQUEST);
    }
    let slowed = guess("BCDF-GHJK").await;
    assert_eq!(slowed.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(slowed.text.contains("Too many wrong codes"));
}

#[tokio::test]
async fn an_owner_ends_a_members_sessions_and_access_tokens_can_be_revoked() {
    let app = TestApp::new().await;
    let created = app
        .call(
            Method::POST,
            &app.org_path("/users"),
            Some(app.owner()),
            Some(
                json!({"email": "member@acme.test", "password": "a long member password",
                        "organizationRole": "ORGANIZATION_MEMBER"}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let member_id = s(&created.body, "id");
    let cookie = app
        .browser_sign_in("member@acme.test", "a long member password")
        .await;
    let ui = app
        .oauth_sign_in(&cookie, "tessera-ui", "http://tessera.test/ui/callback")
        .await;
    let access = s(&ui, "access_token");
    let me = app
        .call(Method::GET, "/v1/users/me", Some(&access), None)
        .await;
    assert_eq!(me.status, StatusCode::OK);

    // Roles are the store's, not the token's: a change applies to the next request of
    // the same session, either way.
    let create_ws = || async {
        app.call(
            Method::POST,
            &app.org_path("/workspaces"),
            Some(&access),
            Some(json!({"name": "by the member"})),
        )
        .await
        .status
    };
    let set_role = |role: &'static str| {
        let (app, path) = (&app, app.org_path(&format!("/users/{member_id}/roles")));
        async move {
            let a = app
                .call(
                    Method::POST,
                    &path,
                    Some(app.owner()),
                    Some(json!({"organizationRole": role})),
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{a:?}");
        }
    };
    assert_eq!(create_ws().await, StatusCode::FORBIDDEN);
    set_role("ORGANIZATION_OWNER").await;
    assert!(create_ws().await.is_success(), "promoted at once");
    set_role("ORGANIZATION_MEMBER").await;
    assert_eq!(create_ws().await, StatusCode::FORBIDDEN, "demoted at once");

    // A member may not end another person's sessions.
    let users = app
        .call(
            Method::GET,
            &app.org_path("/users"),
            Some(app.owner()),
            None,
        )
        .await;
    let owner_id = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == app.seed.owner_email.as_str())
        .map(|u| s(u, "id"))
        .expect("the owner is listed");
    let denied = app
        .call(
            Method::POST,
            &app.org_path(&format!("/users/{owner_id}/sessions/revoke-all")),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");

    let ended = app
        .call(
            Method::POST,
            &app.org_path(&format!("/users/{member_id}/sessions/revoke-all")),
            Some(app.owner()),
            None,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{ended:?}");
    assert!(ended.body["ended"].as_u64().unwrap() >= 2, "{ended:?}");
    assert_eq!(
        app.call(Method::GET, "/v1/users/me", Some(&access), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the member's access token is dead at once"
    );
    let refresh = app
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &s(&ui, "refresh_token")),
                ("client_id", "tessera-ui"),
            ],
            &[],
        )
        .await;
    assert_eq!(refresh.body["error"], "invalid_grant");

    // RFC 7009 with an access token: its session ends.
    let cookie = app
        .browser_sign_in("member@acme.test", "a long member password")
        .await;
    let ui = app
        .oauth_sign_in(&cookie, "tessera-ui", "http://tessera.test/ui/callback")
        .await;
    let access = s(&ui, "access_token");
    let revoked = app
        .form(
            "/oauth/revoke",
            &[
                ("token", &access),
                ("token_type_hint", "access_token"),
                ("client_id", "tessera-ui"),
            ],
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    assert_eq!(
        app.call(Method::GET, "/v1/users/me", Some(&access), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn configured_lifetimes_are_kept() {
    let app = TestApp::with_config(|c| {
        c.access_token_lifetime_minutes = 60;
        c.session_lifetime_days = 2;
    })
    .await;
    let cookie = app
        .browser_sign_in(&app.seed.owner_email, &app.seed.owner_password)
        .await;
    let ui = app
        .oauth_sign_in(&cookie, "tessera-ui", "http://tessera.test/ui/callback")
        .await;
    assert_eq!(ui["expires_in"], 3600);
    let access = s(&ui, "access_token");
    app.clock.advance(Duration::minutes(59));
    assert_eq!(
        app.call(Method::GET, "/v1/users/me", Some(&access), None)
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance(Duration::minutes(2));
    assert_eq!(
        app.call(Method::GET, "/v1/users/me", Some(&access), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "past the configured hour"
    );
    // Late on day 2 a refresh is capped at the session's end; after it, none.
    app.clock.advance(Duration::hours(46));
    let refreshed = app
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &s(&ui, "refresh_token")),
                ("client_id", "tessera-ui"),
            ],
            &[],
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{refreshed:?}");
    let expires_in = refreshed.body["expires_in"].as_i64().unwrap();
    assert!(expires_in < 3600 && expires_in > 0, "{expires_in}");
    app.clock.advance(Duration::hours(1));
    let late = app
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &s(&refreshed.body, "refresh_token")),
                ("client_id", "tessera-ui"),
            ],
            &[],
        )
        .await;
    assert_eq!(late.body["error"], "invalid_grant");
    assert!(late.text.contains("sign in again"), "{}", late.text);
}
