//! Several replicas on one PostgreSQL database: every change made through one is seen by
//! the others within milliseconds; with the database out of reach a replica answers 503,
//! never 200, and recovers by itself. Runs when `TESSERA_TEST_DATABASE_URL` is set.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{authz, clean_command, eventually, feed_state, ok, start, until_status};

const ISSUER: &str = "http://tessera.replicas.test";

struct Cluster {
    database: String,
    key: String,
    owner: String,
    owner_email: String,
    owner_password: String,
}

/// A fresh database, a master key, and a bootstrapped organization.
async fn cluster() -> Option<Cluster> {
    let Some(base) = tessera_testkit::postgres_url() else {
        eprintln!("TESSERA_TEST_DATABASE_URL is not set: skipping the PostgreSQL replica tests");
        return None;
    };
    let database = tessera_testkit::fresh_postgres(&base).await;
    let key = ok(clean_command()
        .args(["admin", "master-key"])
        .output()
        .unwrap());
    let printed = ok(clean_command()
        .args([
            "admin",
            "bootstrap",
            "--database-url",
            &database,
            "--issuer",
            ISSUER,
        ])
        .args([
            "--organization",
            "Replicated",
            "--email",
            "owner@replicas.test",
        ])
        .env("TESSERA_MASTER_KEY", &key)
        .output()
        .unwrap());
    let field = |label: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap()
    };
    Some(Cluster {
        database,
        key,
        owner: field("Owner token"),
        owner_email: "owner@replicas.test".into(),
        owner_password: field("Password"),
    })
}

async fn replica(c: &Cluster, database_url: &str) -> support::Server {
    replica_with(c, database_url, &[]).await
}

async fn replica_with(c: &Cluster, database_url: &str, envs: &[(&str, &str)]) -> support::Server {
    let mut envs = envs.to_vec();
    envs.push(("TESSERA_MASTER_KEY", c.key.as_str()));
    let server = start(&["--database-url", database_url, "--issuer", ISSUER], &envs).await;
    let url = server.url.clone();
    eventually(Duration::from_secs(30), "the change feed comes up", || {
        let url = url.clone();
        async move { feed_state(&url).await == "up" }
    })
    .await;
    server
}

async fn api(method: reqwest::Method, url: &str, token: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

async fn org(url: &str, token: &str) -> String {
    api(
        reqwest::Method::GET,
        &format!("{url}/v1/organizations"),
        token,
        None,
    )
    .await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_replica_reach_the_other() {
    let Some(c) = cluster().await else { return };
    let a = replica(&c, &c.database).await;
    let b = replica(&c, &c.database).await;
    let org = org(&a.url, &c.owner).await;
    let tokens = |url: &str| format!("{url}/v1/organizations/{org}/tokens");
    let within = Duration::from_secs(5);

    // Created on A, works on B.
    let created = api(
        reqwest::Method::POST,
        &tokens(&a.url),
        &c.owner,
        Some(json!({"name": "ci", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"})),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["token"].as_str().unwrap().to_owned();
    assert_eq!(authz(&b.url, &first, "").await, 200);

    // Rotated on A: the old value is rejected on B.
    let rotated = api(
        reqwest::Method::POST,
        &format!("{}/{id}/rotate", tokens(&a.url)),
        &c.owner,
        None,
    )
    .await;
    let second = rotated["token"].as_str().unwrap().to_owned();
    let took = until_status(
        within,
        "B rejects the rotated value",
        &b.url,
        &first,
        "",
        401,
    )
    .await;
    eprintln!("rotation reached B in {took:?}");
    assert_eq!(authz(&b.url, &second, "").await, 200);

    // A role change on B changes authorization on A (A keeps roles in memory and hears
    // of the change through the feed).
    let ws = api(
        reqwest::Method::POST,
        &format!("{}/v1/organizations/{org}/workspaces", a.url),
        &c.owner,
        Some(json!({"name": "W"})),
    )
    .await;
    let ws_id = ws["id"].as_str().unwrap().to_owned();
    let view = format!("?permission=workspace.view&entityId={ws_id}");
    assert_eq!(authz(&a.url, &second, &view).await, 403);
    api(
        reqwest::Method::POST,
        &format!("{}/{id}/roles", tokens(&b.url)),
        &c.owner,
        Some(json!({"roles": [
        {"entityType": "ORGANIZATION", "entityId": org, "role": "ORGANIZATION_MEMBER"},
        {"entityType": "WORKSPACE", "entityId": ws_id, "role": "WORKSPACE_ACCESSOR"}]})),
    )
    .await;
    until_status(
        within,
        "A authorizes with the new role",
        &a.url,
        &second,
        &view,
        200,
    )
    .await;
    // And taken away again on B: A refuses once more.
    api(
        reqwest::Method::POST,
        &format!("{}/{id}/roles", tokens(&b.url)),
        &c.owner,
        Some(json!({"roles": [
        {"entityType": "ORGANIZATION", "entityId": org, "role": "ORGANIZATION_MEMBER"}]})),
    )
    .await;
    until_status(
        within,
        "A forgets the removed role",
        &a.url,
        &second,
        &view,
        403,
    )
    .await;

    // Deleted on B: rejected on A.
    let resp = reqwest::Client::new()
        .delete(format!("{}/{id}", tokens(&b.url)))
        .bearer_auth(&c.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    until_status(
        within,
        "A rejects the deleted token",
        &a.url,
        &second,
        "",
        401,
    )
    .await;

    // Signed out on A: the session's access token is rejected on B.
    let access = sign_in_ui(&a.url, &c).await;
    assert_eq!(authz(&b.url, &access, "").await, 200);
    let out = reqwest::Client::new()
        .post(format!("{}/logout", a.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    until_status(
        within,
        "B rejects the signed-out session",
        &b.url,
        &access,
        "",
        401,
    )
    .await;

    // Key rotation by an operator: both replicas publish and sign with the new key.
    let rotated = ok(clean_command()
        .args([
            "keys",
            "rotate",
            "--database-url",
            &c.database,
            "--algorithm",
            "ES256",
        ])
        .env("TESSERA_MASTER_KEY", &c.key)
        .output()
        .unwrap());
    let kid = rotated.split_whitespace().nth(3).unwrap().to_owned();
    for url in [&a.url, &b.url] {
        let url = url.clone();
        let kid = kid.clone();
        eventually(within, "the new key is published", || {
            let (url, kid) = (url.clone(), kid.clone());
            async move {
                reqwest::get(format!("{url}/.well-known/jwks.json"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
                    .contains(&kid)
            }
        })
        .await;
    }
    let made_on_b = api(
        reqwest::Method::POST,
        &tokens(&b.url),
        &c.owner,
        Some(json!({"name": "new key", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"})),
    )
    .await;
    let value = made_on_b["token"].as_str().unwrap();
    use base64::Engine as _;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], kid.as_str());
    assert_eq!(header["alg"], "ES256");
    assert_eq!(authz(&a.url, value, "").await, 200);
    // The old key still verifies what it signed.
    assert_eq!(authz(&a.url, &c.owner, "").await, 200);

    // The old key retired (thought compromised): both replicas drop it from the JWKS
    // and refuse every token it signed; the new key's tokens still work.
    let old_kid = {
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c.owner.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    ok(clean_command()
        .args(["keys", "retire", &old_kid, "--database-url", &c.database])
        .env("TESSERA_MASTER_KEY", &c.key)
        .output()
        .unwrap());
    for url in [&a.url, &b.url] {
        until_status(
            within,
            "the retired key's tokens are refused",
            url,
            &c.owner,
            "",
            401,
        )
        .await;
        assert_eq!(authz(url, value, "").await, 200);
    }
}

/// Signs in through `url` as the web UI client and answers an access token.
async fn sign_in_ui(url: &str, c: &Cluster) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(format!("{url}/login"))
        .form(&[
            ("email", c.owner_email.as_str()),
            ("password", c.owner_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let verifier = "v".repeat(64);
    let redirect = format!("{ISSUER}/ui/callback");
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "tessera-ui"),
        ("redirect_uri", redirect.as_str()),
        (
            "code_challenge",
            tessera_testkit::pkce_challenge(&verifier).as_str(),
        ),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let resp = http
        .get(format!("{url}/authorize?{query}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let code =
        tessera_testkit::query_param(resp.headers()["location"].to_str().unwrap(), "code").unwrap();
    let tokens: Value = http
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("client_id", "tessera-ui"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A TCP forwarder to PostgreSQL that the test can cut (connections closed, new ones
/// refused), freeze (nothing forwarded, nothing closed: a partition that drops packets)
/// and restore.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

const OPEN: u8 = 0;
const CUT: u8 = 1;
const FROZEN: u8 = 2;

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(OPEN));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (m, g) = (mode.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (m, g) = (m.clone(), g.clone());
                let target = target.clone();
                tokio::spawn(async move {
                    let born = g.load(Ordering::SeqCst);
                    let same_generation = || g.load(Ordering::SeqCst) == born;
                    // Held open and silent until the network is restored.
                    let hold = || async {
                        while same_generation() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    match m.load(Ordering::SeqCst) {
                        CUT => return,
                        FROZEN => return hold().await,
                        _ => {}
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let watch = async {
                        while m.load(Ordering::SeqCst) == OPEN && same_generation() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, () = watch => {} }
                    if m.load(Ordering::SeqCst) == FROZEN {
                        hold().await;
                    }
                    drop((inbound, outbound));
                });
            }
        });
        Self {
            port,
            mode,
            generation,
        }
    }

    fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn freeze(&self) {
        self.mode.store(FROZEN, Ordering::SeqCst);
    }

    /// Open again; connections held through a freeze are closed, as a partition long
    /// enough to notice leaves them.
    fn restore(&self) {
        self.mode.store(OPEN, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A database URL for `c` that goes through this proxy.
    fn url(&self, c: &Cluster) -> String {
        let (_, rest) = c.database.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let user = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("postgres://{user}127.0.0.1:{}/{path}", self.port)
    }

    /// The `host:port` of `c`'s database.
    fn target(c: &Cluster) -> String {
        let (_, rest) = c.database.split_once("://").unwrap();
        let authority = rest.split_once('/').unwrap().0;
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, hp)| hp)
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_the_database_fails_closed_and_recovers() {
    let Some(c) = cluster().await else { return };
    // The replica reaches PostgreSQL through a proxy we can cut; another does not.
    let proxy = Proxy::start(Proxy::target(&c)).await;
    let through_proxy = proxy.url(&c);
    let cut_off = replica(&c, &through_proxy).await;
    let direct = replica(&c, &c.database).await;
    let org = org(&direct.url, &c.owner).await;
    let created = api(
        reqwest::Method::POST,
        &format!("{}/v1/organizations/{org}/tokens", direct.url),
        &c.owner,
        Some(json!({"name": "victim", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"})),
    )
    .await;
    let value = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(authz(&cut_off.url, &value, "").await, 200);

    proxy.cut();
    let limit = Duration::from_secs(40);
    until_status(
        limit,
        "the cut-off replica answers 503",
        &cut_off.url,
        &value,
        "",
        503,
    )
    .await;
    assert_ne!(feed_state(&cut_off.url).await, "up");
    // Revoked during the outage, through the other replica.
    let resp = reqwest::Client::new()
        .delete(format!("{}/v1/organizations/{org}/tokens/{id}", direct.url))
        .bearer_auth(&c.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // Never a 200 while cut off.
    for _ in 0..5 {
        assert_ne!(authz(&cut_off.url, &value, "").await, 200);
    }

    proxy.restore();
    until_status(
        limit,
        "the replica recovers and knows of the revocation",
        &cut_off.url,
        &value,
        "",
        401,
    )
    .await;
    eventually(limit, "the feed is up again", || {
        let url = cut_off.url.clone();
        async move { feed_state(&url).await == "up" }
    })
    .await;
    assert_eq!(authz(&cut_off.url, &c.owner, "").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_silently_partitioned_from_the_database_fails_closed_within_seconds() {
    let Some(c) = cluster().await else { return };
    // The partition closes nothing: the replica only stops hearing from the database.
    let proxy = Proxy::start(Proxy::target(&c)).await;
    let partitioned = replica_with(
        &c,
        &proxy.url(&c),
        &[("TESSERA_REQUEST_TIMEOUT_SECONDS", "2")],
    )
    .await;
    let direct = replica(&c, &c.database).await;
    let org = org(&direct.url, &c.owner).await;
    let created = api(
        reqwest::Method::POST,
        &format!("{}/v1/organizations/{org}/tokens", direct.url),
        &c.owner,
        Some(json!({"name": "victim", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"})),
    )
    .await;
    let value = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(authz(&partitioned.url, &value, "").await, 200);

    proxy.freeze();
    // Within the feed's silence limit (3 s) and a request timeout (2 s), the cached
    // status is no longer trusted, and the database cannot answer: 503.
    let took = until_status(
        Duration::from_secs(20),
        "the partitioned replica answers 503",
        &partitioned.url,
        &value,
        "",
        503,
    )
    .await;
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let resp = reqwest::Client::new()
        .delete(format!("{}/v1/organizations/{org}/tokens/{id}", direct.url))
        .bearer_auth(&c.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for _ in 0..3 {
        assert_ne!(authz(&partitioned.url, &value, "").await, 200);
    }

    proxy.restore();
    let limit = Duration::from_secs(40);
    until_status(
        limit,
        "the replica recovers and knows of the revocation",
        &partitioned.url,
        &value,
        "",
        401,
    )
    .await;
    eventually(limit, "the feed is up again", || {
        let url = partitioned.url.clone();
        async move { feed_state(&url).await == "up" }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_rotations_leave_exactly_one_current_value() {
    let Some(c) = cluster().await else { return };
    let a = replica(&c, &c.database).await;
    let b = replica(&c, &c.database).await;
    let org = org(&a.url, &c.owner).await;
    let created = api(
        reqwest::Method::POST,
        &format!("{}/v1/organizations/{org}/tokens", a.url),
        &c.owner,
        Some(json!({"name": "raced", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"})),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let (mut won, mut conflicts) = (Vec::new(), 0);
    for _ in 0..20 {
        let rotate = |url: String| {
            let http = http.clone();
            let (owner, org, id) = (c.owner.clone(), org.clone(), id.clone());
            async move {
                let resp = http
                    .post(format!("{url}/v1/organizations/{org}/tokens/{id}/rotate"))
                    .bearer_auth(owner)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or_default();
                (status, body["token"].as_str().map(str::to_owned))
            }
        };
        let (x, y) = tokio::join!(rotate(a.url.clone()), rotate(b.url.clone()));
        for (status, value) in [x, y] {
            match status {
                200 => won.push(value.unwrap()),
                409 => conflicts += 1,
                other => panic!("unexpected {other}"),
            }
        }
    }
    eprintln!("{} rotations won, {conflicts} refused with 409", won.len());
    assert_eq!(won.len() + conflicts, 40);
    // Exactly one value is current: the one the stored token names (two rotations of a
    // round may both win when one finished before the other began, in either order).
    // It works on both replicas; every other value that won is refused on both.
    let token = api(
        reqwest::Method::GET,
        &format!("{}/v1/organizations/{org}/tokens/{id}", a.url),
        &c.owner,
        None,
    )
    .await;
    let short = token["shortToken"].as_str().unwrap();
    let current: Vec<&String> = won.iter().filter(|v| v.ends_with(short)).collect();
    assert_eq!(current.len(), 1, "one value is current");
    let current = current[0];
    for url in [&a.url, &b.url] {
        until_status(
            Duration::from_secs(5),
            "the current value works",
            url,
            current,
            "",
            200,
        )
        .await;
    }
    for earlier in won.iter().filter(|v| *v != current) {
        for url in [&a.url, &b.url] {
            until_status(
                Duration::from_secs(5),
                "an earlier value is refused",
                url,
                earlier,
                "",
                401,
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_rotation_leaves_one_current_value_per_token() {
    let Some(c) = cluster().await else { return };
    let mut a = replica(&c, &c.database).await;
    let org = org(&a.url, &c.owner).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let t = api(reqwest::Method::POST, &format!("{}/v1/organizations/{org}/tokens", a.url), &c.owner,
            Some(json!({"name": format!("t{i}"), "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}))).await;
        ids.push((
            t["id"].as_str().unwrap().to_owned(),
            t["token"].as_str().unwrap().to_owned(),
        ));
    }
    // A stream of rotations on every token; the last value each client saw is recorded.
    let seen = Arc::new(std::sync::Mutex::new(ids.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut streams = Vec::new();
    for (i, (id, _)) in ids.iter().enumerate() {
        let (seen, stop, url, owner, org, id) = (
            seen.clone(),
            stop.clone(),
            a.url.clone(),
            c.owner.clone(),
            org.clone(),
            id.clone(),
        );
        streams.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                let Ok(resp) = http
                    .post(format!("{url}/v1/organizations/{org}/tokens/{id}/rotate"))
                    .bearer_auth(&owner)
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(body) = resp.json::<Value>().await else {
                    break;
                };
                if let Some(v) = body["token"].as_str() {
                    seen.lock().unwrap()[i].1 = v.to_owned();
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.child.kill().unwrap(); // SIGKILL, mid-stream
    let _ = a.child.wait();
    stop.store(true, Ordering::SeqCst);
    for s in streams {
        let _ = s.await;
    }
    let restarted = replica(&c, &c.database).await;
    let seen = seen.lock().unwrap().clone();
    for (id, last_seen) in seen {
        let token = api(
            reqwest::Method::GET,
            &format!("{}/v1/organizations/{org}/tokens/{id}", restarted.url),
            &c.owner,
            None,
        )
        .await;
        let status = authz(&restarted.url, &last_seen, "").await;
        if last_seen.ends_with(token["shortToken"].as_str().unwrap()) {
            // The last answer received is the current value.
            assert_eq!(status, 200, "{id}");
        } else {
            // A rotation committed whose answer was lost with the process: its value is
            // current, and the one the client saw is refused. Never both, never none.
            assert_eq!(status, 401, "{id}");
        }
    }
}
