//! A wrong password and an unknown email must cost the same, so that the time of an
//! answer does not tell whether an account exists: both run argon2id at the shipped
//! cost (an unknown email against a decoy hash). Compare the two medians.
//! `cargo bench -p tessera-server --bench sign_in`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::password::PasswordCost;
use tessera_core::secret::Password;
use tessera_server::login::check_password;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tessera_testkit::TempDir::new("tessera-bench-sign-in");
    let state = rt.block_on(async {
        let config = tessera_server::Config {
            // The shipped cost: what an attacker would time.
            password_cost: PasswordCost::default(),
            ..tessera_testkit::test_config(dir.path())
        };
        let state = tessera_server::build_state(config, Arc::new(tessera_core::SystemClock))
            .await
            .unwrap();
        tessera_server::dev::bootstrap(&state, "Bench", "known@tessera.test")
            .await
            .unwrap();
        state
    });
    let mut group = c.benchmark_group("check_password");
    group.sample_size(20);
    for (name, email) in [
        ("wrong_password", "known@tessera.test"),
        ("unknown_email", "nobody@tessera.test"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let found = rt
                    .block_on(check_password(&state, email, Password::new("not it")))
                    .unwrap();
                assert!(found.is_none());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
