//! Interoperability: a third-party OAuth 2.0 client library (the `oauth2` crate) signs
//! in with authorization code + PKCE, refreshes and revokes against a server listening
//! on 127.0.0.1:0. Sign-in is driven with plain HTTP form posts.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, RevocationUrl,
    StandardRevocableToken, TokenResponse as _, TokenUrl,
};
use tessera_testkit::{TestApp, query_param};

/// Clients must refuse a revocation endpoint that is not HTTPS (RFC 7009 §2), and
/// `oauth2` does. The library is given this origin; the transport below carries its
/// requests, unchanged, to the test server on loopback.
const TLS_ORIGIN: &str = "https://tessera.test";

type Answer = Result<oauth2::HttpResponse, reqwest::Error>;

/// `oauth2`'s HTTP seam over our reqwest, never following redirects.
fn http_client(
    http: reqwest::Client,
    base: String,
) -> impl Fn(oauth2::HttpRequest) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer>>> {
    move |request: oauth2::HttpRequest| {
        let http = http.clone();
        let base = base.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string().replacen(TLS_ORIGIN, &base, 1);
            let resp = http
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut builder = oauth2::http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            Ok(builder
                .body(resp.bytes().await?.to_vec())
                .expect("a response"))
        })
    }
}

#[tokio::test]
async fn the_oauth2_crate_signs_in_refreshes_and_revokes() {
    let app = TestApp::new().await;
    let addr = app.serve().await;
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = "http://127.0.0.1:38111/callback";
    let client = BasicClient::new(ClientId::new("tessera-cli".into()))
        .set_auth_uri(AuthUrl::new(format!("{base}/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{base}/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{TLS_ORIGIN}/oauth/revoke")).unwrap());

    // Sign in with the browser form: plain HTTP.
    let login = http
        .post(format!("{base}/login"))
        .form(&[
            ("email", app.seed.owner_email.as_str()),
            ("password", app.seed.owner_password.as_str()),
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

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    // A native client: the person confirms on the consent page (plain form post).
    let consent = http
        .get(url.as_str())
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let mut fields = tessera_testkit::hidden_fields(&consent.text().await.unwrap());
    fields.push(("decision".into(), "allow".into()));
    let resp = http
        .post(format!("{base}/authorize"))
        .header("cookie", &cookie)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(redirect));
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(&location, "code").unwrap();

    let call = http_client(http.clone(), base.clone());
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&call)
        .await
        .expect("code exchange");
    assert_eq!(
        token.expires_in(),
        Some(std::time::Duration::from_secs(8 * 3600))
    );
    let access = token.access_token().secret().clone();
    let authz = |t: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}/v1/authz"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(authz(access.clone()).await, 200);

    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&call)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret()
    );
    let new_access = refreshed.access_token().secret().clone();
    assert_eq!(authz(new_access.clone()).await, 200);

    client
        .revoke_token(StandardRevocableToken::RefreshToken(
            refreshed.refresh_token().unwrap().clone(),
        ))
        .unwrap()
        .request_async(&call)
        .await
        .expect("revocation");
    assert_eq!(authz(new_access).await, 401);
    assert_eq!(authz(access).await, 401);
    let again = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .request_async(&call)
        .await;
    assert!(again.is_err(), "a revoked session cannot be refreshed");
}
