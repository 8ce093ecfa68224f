//! The cache-less validation path (header, key, signature, claims) per algorithm.
//! `cargo bench -p tessera-core --bench validation`

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::claims::{ApiTokenGrant, Claims};
use tessera_core::ids::{Jti, OrganizationId, TokenId};
use tessera_core::keys::{KeyAlgorithm, KeyPair, KeySet};
use tessera_core::model::TokenScope;
use tessera_core::verify::{VerifyConfig, verify};
use time::{Duration, OffsetDateTime};

fn bench(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let cfg = VerifyConfig {
        issuer: "https://tessera.bench".into(),
        audience: "tessera".into(),
        nbf_leeway: Duration::seconds(30),
        exp_leeway: Duration::ZERO,
    };
    let mut group = c.benchmark_group("verify_uncached");
    for alg in [
        KeyAlgorithm::EdDSA,
        KeyAlgorithm::ES256,
        KeyAlgorithm::RS256,
    ] {
        let key = KeyPair::generate(alg).unwrap();
        let keys = KeySet::new(vec![key.verifying_key().unwrap()]);
        let claims = Claims::api_token(&ApiTokenGrant {
            issuer: &cfg.issuer,
            audience: &cfg.audience,
            token_id: TokenId::new(),
            jti: Jti::new(),
            organization_id: OrganizationId::new(),
            scope: TokenScope::Organization,
            issued_at: now.unix_timestamp(),
            expires_at: Some((now + Duration::days(30)).unix_timestamp()),
            version: 1,
        });
        let token = key.signer().unwrap().sign(&claims).unwrap();
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| verify(token.expose(), &keys, &cfg, now).unwrap())
        });
        let signer = key.signer().unwrap();
        group.bench_function(format!("sign_{}", alg.as_str()), |b| {
            b.iter(|| signer.sign(&claims).unwrap())
        });
    }
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
