//! Helpers shared by the end-to-end tests: the `tessera` binary as server and client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A running `tessera serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn clean_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Starts the server and waits (bounded polls, no fixed sleep) until `/readyz` answers 200.
pub async fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut cmd = clean_command();
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tessera");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Tessera listening on ") {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    // Waiting off the async runtime: other tasks of the test (a proxy, say) keep running.
    let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("server did not start");
    let server = Server { child, url };
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    loop {
        let ready = http.get(format!("{}/readyz", server.url)).send().await;
        if matches!(ready, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "server never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
}

pub fn cli(url: &str, token: &str, args: &[&str]) -> Output {
    clean_command()
        .args(args)
        .env("TESSERA_URL", url)
        .env("TESSERA_API_TOKEN", token)
        .output()
        .expect("run tessera")
}

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "tessera failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn credentials(dir: &Path) -> Value {
    let path = dir.join("dev-credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in [path.clone(), dir.join("master.key")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is private", file.display());
        }
    }
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub async fn authz(url: &str, token: &str, query: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}/v1/authz{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `check` until it is true, at most `limit`; panics with `what` after.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `/readyz`'s `changeFeed`.
pub async fn feed_state(url: &str) -> String {
    let Ok(resp) = reqwest::get(format!("{url}/readyz")).await else {
        return "unreachable".into();
    };
    let body: Value = resp.json().await.unwrap_or_default();
    body["changeFeed"].as_str().unwrap_or_default().to_owned()
}

/// Polls `/v1/authz` until it answers `want`, at most `limit`; answers how long it took.
pub async fn until_status(
    limit: Duration,
    what: &str,
    url: &str,
    token: &str,
    query: &str,
    want: u16,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = authz(url, token, query).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "not within {limit:?}: {what} (last answer {got})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
