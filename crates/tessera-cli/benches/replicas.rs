//! Not a test: measures revocation propagation between two replicas on PostgreSQL
//! (rotate on A, then how long until B refuses the old value), and token issuance
//! throughput on SQLite and PostgreSQL, through the real binary over loopback HTTP.
//!
//! `TESSERA_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p tessera-cli --bench replicas`
//! (`TESSERA_BENCH_ROTATIONS` sets the count, default 1000.)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{authz, clean_command, feed_state, ok, start};

const ISSUER: &str = "http://tessera.bench";

async fn wait_feed(url: &str) {
    while feed_state(url).await != "up" {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Creates `count` tokens with `parallel` clients; answers tokens per second.
async fn issuance(url: &str, token: &str, count: usize, parallel: usize) -> f64 {
    let http = reqwest::Client::new();
    let orgs: Value = http
        .get(format!("{url}/v1/organizations"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = orgs["items"][0]["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..parallel {
        let (http, url, token, org) = (http.clone(), url.to_owned(), token.to_owned(), org.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..count).step_by(parallel) {
                let resp = http
                    .post(format!("{url}/v1/organizations/{org}/tokens"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("bench-{i}"), "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}))
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rotations: usize = std::env::var("TESSERA_BENCH_ROTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);

    // SQLite: one dev server.
    let dir = tessera_testkit::TempDir::new("tessera-bench");
    let sqlite = start(
        &[
            "--dev",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--issuer",
            ISSUER,
        ],
        &[],
    )
    .await;
    let creds = support::credentials(dir.path());
    let owner = creds["organizationToken"].as_str().unwrap().to_owned();
    let rate = issuance(&sqlite.url, &owner, 300, 4).await;
    println!("issuance, SQLite:      {rate:.0} tokens/s (300 tokens, 4 clients)");
    drop(sqlite);

    let Some(base) = tessera_testkit::postgres_url() else {
        println!("TESSERA_TEST_DATABASE_URL is not set: no PostgreSQL figures");
        return;
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
            "--organization",
            "Bench",
            "--email",
            "bench@tessera.test",
        ])
        .env("TESSERA_MASTER_KEY", &key)
        .output()
        .unwrap());
    let owner = printed
        .lines()
        .find_map(|l| l.strip_prefix("Owner token"))
        .unwrap()
        .trim()
        .to_owned();
    let envs = [("TESSERA_MASTER_KEY", key.as_str())];
    let a = start(&["--database-url", &database, "--issuer", ISSUER], &envs).await;
    let b = start(&["--database-url", &database, "--issuer", ISSUER], &envs).await;
    wait_feed(&a.url).await;
    wait_feed(&b.url).await;
    let rate = issuance(&a.url, &owner, 300, 4).await;
    println!("issuance, PostgreSQL:  {rate:.0} tokens/s (300 tokens, 4 clients)");

    let http = reqwest::Client::new();
    let orgs: Value = http
        .get(format!("{}/v1/organizations", a.url))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = orgs["items"][0]["id"].as_str().unwrap().to_owned();
    let created: Value = http
        .post(format!("{}/v1/organizations/{org}/tokens", a.url))
        .bearer_auth(&owner)
        .json(
            &json!({"name": "propagation", "scope": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let mut value = created["token"].as_str().unwrap().to_owned();
    let mut delays = Vec::with_capacity(rotations);
    let mut answers = Vec::with_capacity(rotations);
    for _ in 0..rotations {
        // B has accepted the current value (its cache holds it).
        assert_eq!(authz(&b.url, &value, "").await, 200);
        // From the moment A is asked: A's own work (sign, commit, notify) counts too.
        let asked = Instant::now();
        let rotated: Value = http
            .post(format!(
                "{}/v1/organizations/{org}/tokens/{id}/rotate",
                a.url
            ))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answers.push(asked.elapsed());
        while authz(&b.url, &value, "").await != 401 {
            assert!(
                asked.elapsed() < Duration::from_secs(10),
                "B never refused the old value"
            );
        }
        delays.push(asked.elapsed());
        value = rotated["token"].as_str().unwrap().to_owned();
    }
    delays.sort();
    answers.sort();
    println!(
        "revocation A -> B over {rotations} rotations: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         (from the rotate request to A until B's first 401, polling B back to back; \
         A itself answered in p50 {:.2} ms)",
        percentile(&delays, 0.50).as_secs_f64() * 1e3,
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().unwrap().as_secs_f64() * 1e3,
        percentile(&answers, 0.50).as_secs_f64() * 1e3,
    );
}
