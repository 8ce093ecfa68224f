//! End to end: the `tessera` binary as a server (`serve --dev` on 127.0.0.1:0) and as a
//! client, plus plain HTTP.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{authz, clean_command, cli, credentials, ok, start};
use tessera_testkit::TempDir;

#[tokio::test]
async fn dev_server_and_cli_end_to_end() {
    let dir = TempDir::new("tessera-e2e");
    let data = dir.path().to_str().unwrap();
    let server = start(
        &[
            "--dev",
            "--data-dir",
            data,
            "--issuer",
            "http://tessera.e2e",
        ],
        &[],
    )
    .await;
    let creds = credentials(dir.path());
    let url = server.url.as_str();
    assert_eq!(creds["baseUrl"], url);
    let owner = creds["organizationToken"].as_str().unwrap().to_owned();
    let ws = creds["workspaceId"].as_str().unwrap().to_owned();
    let dep = creds["deploymentId"].as_str().unwrap().to_owned();
    assert_eq!(authz(url, &owner, "").await, 200);

    // Create at each scope with the CLI; use each value.
    let ws_token = ok(cli(
        url,
        &owner,
        &[
            "workspace",
            "token",
            "create",
            "--workspace-id",
            &ws,
            "--name",
            "ci",
            "--role",
            "WORKSPACE_OPERATOR",
            "--expiration",
            "30",
            "--clean-output",
        ],
    ));
    let dep_token = ok(cli(
        url,
        &owner,
        &[
            "deployment",
            "token",
            "create",
            "--deployment-id",
            &dep,
            "--name",
            "d",
            "--clean-output",
        ],
    ));
    let org_token = ok(cli(
        url,
        &owner,
        &[
            "organization",
            "token",
            "create",
            "--name",
            "o",
            "--role",
            "ORGANIZATION_MEMBER",
            "--clean-output",
        ],
    ));
    for t in [&ws_token, &dep_token, &org_token] {
        assert_eq!(authz(url, t, "").await, 200);
    }
    let deploy = format!("?permission=deployment.deploy&entityId={dep}");
    assert_eq!(authz(url, &ws_token, &deploy).await, 200);
    assert_eq!(authz(url, &dep_token, &deploy).await, 200);
    assert_eq!(authz(url, &org_token, &deploy).await, 403);

    // List as JSON and find ids.
    let list: Value = serde_json::from_str(&ok(cli(
        url,
        &owner,
        &[
            "workspace",
            "token",
            "list",
            "--workspace-id",
            &ws,
            "--output",
            "json",
        ],
    )))
    .unwrap();
    let ws_token_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let orgs: Value = serde_json::from_str(&ok(cli(
        url,
        &owner,
        &["organization", "token", "list", "--output", "json"],
    )))
    .unwrap();
    let org_token_id = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "o")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Add the organization token to the workspace: its permissions change on the next request.
    ok(cli(
        url,
        &owner,
        &[
            "workspace",
            "token",
            "add",
            &org_token_id,
            "--workspace-id",
            &ws,
            "--role",
            "WORKSPACE_AUTHOR",
        ],
    ));
    assert_eq!(authz(url, &org_token, &deploy).await, 200);
    // The workspace's list shows it with its role there, not its role elsewhere.
    let table = ok(cli(
        url,
        &owner,
        &["workspace", "token", "list", "--workspace-id", &ws],
    ));
    let row = table
        .lines()
        .find(|l| l.contains(&org_token_id))
        .unwrap_or_else(|| panic!("the added token is listed: {table}"));
    assert!(row.contains("WORKSPACE_AUTHOR"), "{row}");

    // Escalation through the CLI: a Workspace Operator cannot create tokens.
    let denied = cli(
        url,
        &ws_token,
        &[
            "workspace",
            "token",
            "create",
            "--workspace-id",
            &ws,
            "--name",
            "x",
            "--role",
            "WORKSPACE_OWNER",
        ],
    );
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("permission denied"),
        "{denied:?}"
    );

    // Rotate: the old value is rejected at once.
    let rotated = ok(cli(
        url,
        &owner,
        &[
            "workspace",
            "token",
            "rotate",
            &ws_token_id,
            "--workspace-id",
            &ws,
            "--clean-output",
        ],
    ));
    assert_eq!(authz(url, &ws_token, "").await, 401);
    assert_eq!(authz(url, &rotated, "").await, 200);
    // With grace, both work for now.
    let graced = ok(cli(
        url,
        &owner,
        &[
            "workspace",
            "token",
            "rotate",
            &ws_token_id,
            "--workspace-id",
            &ws,
            "--grace",
            "3600",
            "--clean-output",
        ],
    ));
    assert_eq!(authz(url, &rotated, "").await, 200);
    assert_eq!(authz(url, &graced, "").await, 200);

    // verify checks the signature against the JWKS and asks the server about status.
    let verified = ok(cli(url, &owner, &["verify", &graced, "--output", "json"]));
    let v: Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(v["claims"]["apiTokenId"], ws_token_id.as_str());
    assert_eq!(v["status"], "live");
    let stale = cli(url, &owner, &["verify", &ws_token, "--output", "json"]);
    assert!(!stale.status.success(), "a rotated token fails verify");
    assert!(
        String::from_utf8_lossy(&stale.stdout).contains("rotated"),
        "{stale:?}"
    );

    // Delete: every value rejected.
    ok(cli(
        url,
        &owner,
        &[
            "workspace",
            "token",
            "delete",
            &ws_token_id,
            "--workspace-id",
            &ws,
        ],
    ));
    assert_eq!(authz(url, &rotated, "").await, 401);
    assert_eq!(authz(url, &graced, "").await, 401);

    // Errors print the server's message and exit non-zero.
    let bad = cli(
        url,
        &owner,
        &[
            "organization",
            "token",
            "create",
            "--name",
            "x",
            "--expiration",
            "3651",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("between 1 and 3650"));

    // Forged tokens over the wire.
    let mut parts: Vec<String> = owner.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    assert_eq!(authz(url, &parts.join("."), "").await, 401);
    use base64::Engine as _;
    let none =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let owner_parts: Vec<&str> = owner.split('.').collect();
    assert_eq!(
        authz(url, &format!("{none}.{}.", owner_parts[1]), "").await,
        401
    );

    // Users, workspaces, deployments.
    ok(cli(
        url,
        &owner,
        &["user", "create", "--email", "dev@example.test"],
    ));
    assert!(ok(cli(url, &owner, &["user", "list"])).contains("dev@example.test"));
    ok(cli(
        url,
        &owner,
        &["workspace", "create", "--name", "Second"],
    ));
    assert!(ok(cli(url, &owner, &["workspace", "list"])).contains("Second"));
    ok(cli(
        url,
        &owner,
        &[
            "deployment",
            "create",
            "--workspace-id",
            &ws,
            "--name",
            "staging",
        ],
    ));
    assert!(
        ok(cli(
            url,
            &owner,
            &["deployment", "list", "--workspace-id", &ws]
        ))
        .contains("staging")
    );

    // Restart on the same data: the same organization and tokens.
    drop(server);
    let server = start(
        &[
            "--dev",
            "--data-dir",
            data,
            "--issuer",
            "http://tessera.e2e",
        ],
        &[],
    )
    .await;
    let again = credentials(dir.path());
    assert_eq!(again["organizationId"], creds["organizationId"]);
    assert_eq!(again["organizationToken"], creds["organizationToken"]);
    assert_eq!(authz(&server.url, &owner, "").await, 200);
    assert_eq!(
        authz(&server.url, &org_token, &deploy).await,
        200,
        "roles survive a restart"
    );
    assert_eq!(
        authz(&server.url, &graced, "").await,
        401,
        "deletions survive a restart"
    );
}

#[tokio::test]
async fn bootstrap_then_serve_with_a_master_key() {
    let dir = TempDir::new("tessera-e2e-boot");
    let data = dir.path().to_str().unwrap();
    let key = ok(clean_command()
        .args(["admin", "master-key"])
        .output()
        .unwrap());
    let envs = [
        ("TESSERA_MASTER_KEY", key.as_str()),
        ("TESSERA_ISSUER", "https://auth.example.test"),
    ];

    // Without a master key the server refuses to start, and says why.
    let out = clean_command()
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no master key"),
        "{out:?}"
    );

    let mut cmd = clean_command();
    cmd.args([
        "admin",
        "bootstrap",
        "--data-dir",
        data,
        "--organization",
        "Acme",
        "--email",
        "owner@acme.test",
    ]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let printed = ok(cmd.output().unwrap());
    let token = printed
        .lines()
        .find_map(|l| l.strip_prefix("Owner token"))
        .map(str::trim)
        .expect("token printed")
        .to_owned();
    assert!(printed.contains("Password"));

    let server = start(&["--data-dir", data], &envs).await;
    assert_eq!(authz(&server.url, &token, "").await, 200);
    assert!(ok(cli(&server.url, &token, &["organization", "list"])).contains("Acme"));
    drop(server);

    // A wrong master key is a start-up error, never a silent new key.
    let (_, other) = tessera_core::keys::MasterKey::generate();
    let other = String::from_utf8(other.expose().to_vec()).unwrap();
    let out = clean_command()
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .env("TESSERA_MASTER_KEY", &other)
        .env("TESSERA_ISSUER", "https://auth.example.test")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master key"),
        "{out:?}"
    );
}

/// Signs in with the browser form and answers the sign-in cookie.
async fn browser_cookie(http: &reqwest::Client, url: &str, email: &str, password: &str) -> String {
    let resp = http
        .post(format!("{url}/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let set = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

fn login_command(url: &str, config_home: &Path, args: &[&str]) -> std::process::Child {
    clean_command()
        .args(["login", "--url", url])
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Lines of the child's standard error, as they come.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn as_person(url: &str, config_home: &Path, args: &[&str]) -> Output {
    clean_command()
        .args(args)
        .env("TESSERA_URL", url)
        .env("XDG_CONFIG_HOME", config_home)
        .output()
        .unwrap()
}

#[tokio::test]
async fn cli_device_login_then_api_then_logout() {
    let dir = TempDir::new("tessera-e2e-device");
    let data = dir.path().join("data");
    let home = dir.path().join("config");
    let server = start(&["--dev", "--data-dir", data.to_str().unwrap()], &[]).await;
    let creds = credentials(&data);
    let url = server.url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut login = login_command(&url, &home, &["--device"]);
    let lines = stderr_lines(&mut login);
    let user_code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a user code");
        let t = line.trim();
        if t.len() == 9 && t.as_bytes()[4] == b'-' {
            break t.to_owned();
        }
    };
    // Another HTTP client approves the code through /device.
    let cookie = browser_cookie(
        &http,
        &url,
        creds["ownerEmail"].as_str().unwrap(),
        creds["ownerPassword"].as_str().unwrap(),
    )
    .await;
    let page = http
        .get(format!("{url}/device"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let approved = http
        .post(format!("{url}/device"))
        .header("cookie", &cookie)
        .form(&[
            ("user_code", user_code.as_str()),
            ("action", "approve"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let out = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signed in"));

    // The stored session works for API commands; the file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let file = home.join("tessera/credentials.json");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(home.join("tessera"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    assert!(ok(as_person(&url, &home, &["workspace", "list"])).contains("Dev Workspace"));
    assert!(
        ok(as_person(&url, &home, &["whoami"])).contains(creds["ownerEmail"].as_str().unwrap())
    );
    // Near expiry, the CLI refreshes on its own: an access token about to lapse (here
    // replaced by garbage, so only a refresh can succeed) is renewed with the refresh
    // token, which is spent and replaced in the file.
    let file = home.join("tessera/credentials.json");
    let mut stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let first_refresh = stored["refresh_token"].as_str().unwrap().to_owned();
    stored["access_token"] = "not-a-token".into();
    stored["expires_at"] = (time::OffsetDateTime::now_utc().unix_timestamp() + 5).into();
    std::fs::write(&file, serde_json::to_vec(&stored).unwrap()).unwrap();
    assert!(ok(as_person(&url, &home, &["workspace", "list"])).contains("Dev Workspace"));
    let renewed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_ne!(renewed["refresh_token"], first_refresh.as_str());
    assert_ne!(renewed["access_token"], "not-a-token");
    let saved = std::fs::read(&file).unwrap();

    ok(as_person(&url, &home, &["logout"]));
    let after = as_person(&url, &home, &["workspace", "list"]);
    assert!(!after.status.success());
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("tessera login"),
        "{after:?}"
    );
    // Even a copy of the old credentials is dead: the session ended on the server.
    std::fs::write(home.join("tessera/credentials.json"), &saved).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let file = home.join("tessera/credentials.json");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = as_person(&url, &home, &["workspace", "list"]);
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("other users can read it"),
            "{refused:?}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The server refuses the unexpired access token; the CLI learns from a refresh
    // that the session is over, says so, and forgets the dead credentials.
    let dead = as_person(&url, &home, &["workspace", "list"]);
    assert!(!dead.status.success());
    assert!(
        String::from_utf8_lossy(&dead.stderr).contains("session expired, run tessera login"),
        "{dead:?}"
    );
    assert!(!home.join("tessera/credentials.json").exists());
    drop(server);
}

#[tokio::test]
async fn cli_browser_login_with_a_loopback_redirect() {
    let dir = TempDir::new("tessera-e2e-loopback");
    let data = dir.path().join("data");
    let home = dir.path().join("config");
    let server = start(&["--dev", "--data-dir", data.to_str().unwrap()], &[]).await;
    let creds = credentials(&data);
    let url = server.url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = browser_cookie(
        &http,
        &url,
        creds["ownerEmail"].as_str().unwrap(),
        creds["ownerPassword"].as_str().unwrap(),
    )
    .await;

    let mut login = login_command(&url, &home, &["--no-browser"]);
    let lines = stderr_lines(&mut login);
    let authorize = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("an authorize URL");
        if let Some(i) = line.find("/authorize?") {
            break format!("{url}{}", &line[i..]);
        }
    };
    // The "browser": signed in, it confirms on the consent page and follows the redirect.
    let consent = http
        .get(&authorize)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let mut fields = tessera_testkit::hidden_fields(&consent.text().await.unwrap());
    fields.push(("decision".into(), "allow".into()));
    let resp = http
        .post(format!("{url}/authorize"))
        .header("cookie", &cookie)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let callback = resp
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    let page = http.get(&callback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let out = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(ok(as_person(&url, &home, &["workspace", "list"])).contains("Dev Workspace"));
    // TESSERA_API_TOKEN wins over the stored login.
    let with_token = clean_command()
        .args(["whoami", "--output", "json"])
        .env("TESSERA_URL", &url)
        .env("XDG_CONFIG_HOME", &home)
        .env(
            "TESSERA_API_TOKEN",
            creds["organizationToken"].as_str().unwrap(),
        )
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&with_token.stdout).contains("API token"),
        "{with_token:?}"
    );
    drop(server);
}

#[tokio::test]
async fn dev_mode_reissues_its_token_when_the_issuer_changes() {
    let dir = TempDir::new("tessera-e2e-reissue");
    let data = dir.path().to_str().unwrap();
    // No --issuer: it follows the listen address, which port 0 changes on every start.
    let first = start(&["--dev", "--data-dir", data], &[]).await;
    let before = credentials(dir.path());
    assert_eq!(
        authz(
            &first.url,
            before["organizationToken"].as_str().unwrap(),
            ""
        )
        .await,
        200
    );
    drop(first);
    let second = start(&["--dev", "--data-dir", data], &[]).await;
    let after = credentials(dir.path());
    assert_ne!(after["issuer"], before["issuer"]);
    assert_eq!(
        authz(
            &second.url,
            after["organizationToken"].as_str().unwrap(),
            ""
        )
        .await,
        200
    );
    assert_eq!(
        authz(
            &second.url,
            before["organizationToken"].as_str().unwrap(),
            ""
        )
        .await,
        401
    );
    // Token commands act only in a token's home scope.
    let owner = after["organizationToken"].as_str().unwrap();
    let ws = after["workspaceId"].as_str().unwrap();
    let orgs: Value = serde_json::from_str(&ok(cli(
        &second.url,
        owner,
        &["organization", "token", "list", "--output", "json"],
    )))
    .unwrap();
    let org_token = orgs[0]["id"].as_str().unwrap().to_owned();
    let wrong = cli(
        &second.url,
        owner,
        &[
            "workspace",
            "token",
            "rotate",
            &org_token,
            "--workspace-id",
            ws,
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .contains("manage it with `tessera organization token`"),
        "{wrong:?}"
    );
    // verify fails (non-zero) for a token the server no longer accepts.
    let stale = cli(
        &second.url,
        owner,
        &["verify", before["organizationToken"].as_str().unwrap()],
    );
    assert!(!stale.status.success());
}

#[tokio::test]
async fn sigterm_finishes_and_writes_last_used() {
    let dir = TempDir::new("tessera-e2e-term");
    let data = dir.path().to_str().unwrap();
    let mut server = start(
        &[
            "--dev",
            "--data-dir",
            data,
            "--issuer",
            "http://tessera.term",
        ],
        &[],
    )
    .await;
    let creds = credentials(dir.path());
    let owner = creds["organizationToken"].as_str().unwrap().to_owned();
    let used = ok(cli(
        &server.url,
        &owner,
        &[
            "organization",
            "token",
            "create",
            "--name",
            "used",
            "--clean-output",
        ],
    ));
    assert_eq!(authz(&server.url, &used, "").await, 200);
    // SIGTERM: a clean stop that writes the pending lastUsedAt (batched every 10 s).
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        (s, server)
    })
    .await
    .unwrap()
    .0;
    assert!(status.success(), "{status:?}");
    let again = start(
        &[
            "--dev",
            "--data-dir",
            data,
            "--issuer",
            "http://tessera.term",
        ],
        &[],
    )
    .await;
    let list: Value = serde_json::from_str(&ok(cli(
        &again.url,
        &owner,
        &["organization", "token", "list", "--output", "json"],
    )))
    .unwrap();
    let used = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "used")
        .unwrap();
    assert!(
        used["lastUsedAt"].is_string(),
        "written at shutdown: {list}"
    );
}

/// The claims of a JWT, decoded without any check.
fn payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn header(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').next().expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn jwks_kids(url: &str) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{url}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn misissued_tokens_are_refused_and_operator_key_commands_reach_a_running_server() {
    let dir = TempDir::new("tessera-e2e-keys");
    let data = dir.path().to_str().unwrap();
    let issuer = "http://tessera.e2e";
    let server = start(&["--dev", "--data-dir", data, "--issuer", issuer], &[]).await;
    let url = server.url.clone();
    let owner = credentials(dir.path())["organizationToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(authz(&url, &owner, "").await, 200);

    // Tokens signed with the server's own key, but not as it issues them: another
    // issuer, another audience, expired. Each is refused over the wire.
    let config = tessera_server::Config {
        data_dir: dir.path().to_owned(),
        dev: true,
        issuer: Some(issuer.into()),
        password_cost: tessera_core::password::PasswordCost::danger_insecure_fast(),
        ..Default::default()
    };
    let state = tessera_server::build_state(config, std::sync::Arc::new(tessera_core::SystemClock))
        .await
        .unwrap();
    let signer = &state.keys.current().signer;
    let claims = payload(&owner);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sign = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        signer.sign(&c).unwrap().expose().to_owned()
    };
    // The same claims, signed again: accepted (the forgeries below differ in one claim).
    assert_eq!(authz(&url, &sign("iss", issuer.into()), "").await, 200);
    for (field, value) in [
        ("iss", Value::from("http://elsewhere.example")),
        ("aud", Value::from("someone-else")),
        ("exp", Value::from(now - 120)),
        ("nbf", Value::from(now + 3600)),
    ] {
        assert_eq!(
            authz(&url, &sign(field, value.clone()), "").await,
            401,
            "{field} = {value}"
        );
    }
    // The owner's claims signed by a key the server does not know.
    let stranger = tessera_core::keys::KeyPair::generate(tessera_core::keys::KeyAlgorithm::EdDSA)
        .unwrap()
        .signer()
        .unwrap();
    let foreign = stranger.sign(&claims).unwrap().expose().to_owned();
    assert_eq!(authz(&url, &foreign, "").await, 401);
    drop(state);

    // `tessera keys` acts on the database of a running SQLite server: rotate, and the
    // server publishes and signs with the new key; retire the old one, and every token
    // it signed is refused.
    let old_kid = header(&owner)["kid"].as_str().unwrap().to_owned();
    let keys = |args: &[&str]| {
        clean_command()
            .arg("keys")
            .args(args)
            .args(["--dev", "--data-dir", data])
            .output()
            .unwrap()
    };
    ok(keys(&["rotate"]));
    support::eventually(Duration::from_secs(10), "the new key is published", || {
        let url = url.clone();
        async move { jwks_kids(&url).await.len() == 2 }
    })
    .await;
    let fresh = ok(cli(
        &url,
        &owner,
        &[
            "organization",
            "token",
            "create",
            "--name",
            "after",
            "--clean-output",
        ],
    ));
    assert_ne!(
        header(&fresh)["kid"],
        old_kid.as_str(),
        "signed with the new key"
    );
    assert_eq!(
        authz(&url, &owner, "").await,
        200,
        "the old key still verifies"
    );
    ok(keys(&["retire", &old_kid]));
    support::until_status(
        Duration::from_secs(10),
        "a retired key's tokens are refused",
        &url,
        &owner,
        "",
        401,
    )
    .await;
    assert_eq!(jwks_kids(&url).await.len(), 1);
    assert_eq!(authz(&url, &fresh, "").await, 200);
}

#[tokio::test]
async fn dev_mode_replaces_a_refused_saved_token_and_refuses_a_lost_credentials_file() {
    let dir = TempDir::new("tessera-e2e-dev-again");
    let data = dir.path().to_str().unwrap();
    let args = [
        "--dev",
        "--data-dir",
        data,
        "--issuer",
        "http://tessera.again",
    ];
    let first = start(&args, &[]).await;
    let before = credentials(dir.path());
    let owner = before["organizationToken"].as_str().unwrap();
    let orgs: Value = serde_json::from_str(&ok(cli(
        &first.url,
        owner,
        &["organization", "token", "list", "--output", "json"],
    )))
    .unwrap();
    let id = orgs[0]["id"].as_str().unwrap().to_owned();
    // The saved owner token is rotated (its new value goes elsewhere)...
    let rotated = ok(cli(
        &first.url,
        owner,
        &["organization", "token", "rotate", &id, "--clean-output"],
    ));
    drop(first);
    // ...so the next start finds the saved value refused and saves one that works.
    let second = start(&args, &[]).await;
    let after = credentials(dir.path());
    let fresh = after["organizationToken"].as_str().unwrap();
    assert_ne!(fresh, owner);
    assert_eq!(authz(&second.url, fresh, "").await, 200);
    assert_eq!(
        authz(&second.url, &rotated, "").await,
        200,
        "the rotated value is left alone"
    );
    drop(second);

    // The credentials file lost: a clear refusal, not a second dev organization.
    std::fs::remove_file(dir.path().join("dev-credentials.json")).unwrap();
    let out = clean_command()
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dev-credentials.json is gone"),
        "{out:?}"
    );
}
