//! The server's validation path, in process: a verified-token cache hit (no signature
//! work) against a miss (signature and claims), both including the live-status check;
//! then the caller with its roles (what authorization needs), the roles held in memory
//! against read from the database (SQLite).
//! `cargo bench -p tessera-server --bench validation`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::secret::sha256;
use tessera_server::auth::{Caller, authenticate};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tessera_testkit::TempDir::new("tessera-bench");
    let (state, token) = rt.block_on(async {
        let config = tessera_testkit::test_config(dir.path());
        let state = tessera_server::build_state(config, Arc::new(tessera_core::SystemClock))
            .await
            .unwrap();
        let boot = tessera_server::dev::bootstrap(&state, "Bench", "bench@tessera.test")
            .await
            .unwrap();
        (state, boot.token.expose().to_owned())
    });
    let key = sha256(token.as_bytes());

    let mut group = c.benchmark_group("authenticate");
    group.bench_function("cache_hit", |b| {
        rt.block_on(authenticate(&state, &token)).unwrap();
        b.iter(|| rt.block_on(authenticate(&state, &token)).unwrap())
    });
    group.bench_function("cache_miss", |b| {
        b.iter(|| {
            state.verified.invalidate(&key);
            rt.block_on(authenticate(&state, &token)).unwrap()
        })
    });
    group.finish();

    let caller = || async {
        let verified = authenticate(&state, &token).await.unwrap();
        Caller::load(&state, verified).await.unwrap()
    };
    let mut group = c.benchmark_group("caller");
    group.bench_function("roles_held", |b| {
        rt.block_on(caller());
        b.iter(|| rt.block_on(caller()))
    });
    group.bench_function("roles_from_database", |b| {
        b.iter(|| {
            state.roles.invalidate(None);
            rt.block_on(caller())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
