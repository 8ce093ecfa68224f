//! A small HTTP client for Tessera's API. Errors carry the server's message.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ClientArgs;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{message} (HTTP {status}, request {request_id})")]
    Api {
        status: u16,
        message: String,
        request_id: String,
    },
    #[error("cannot reach Tessera at {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    #[error("unexpected answer from Tessera: {0}")]
    Decode(String),
    #[error("{0}")]
    Usage(String),
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// The token is the stored session of `tessera login` (not `TESSERA_API_TOKEN`).
    from_login: bool,
}

/// The HTTP client every command uses.
pub fn http() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| ClientError::Decode(e.to_string()))
}

/// The server's base URL: the flag or `TESSERA_URL`, else the one `tessera login` used,
/// else the local default.
pub fn base_url(args: &ClientArgs) -> Result<String, ClientError> {
    let url = match &args.url {
        Some(u) => u.clone(),
        None => crate::login::load()?.map_or_else(|| DEFAULT_URL.to_owned(), |c| c.url),
    };
    let url = url.trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ClientError::Usage(format!(
            "the server URL {url:?} must start with http:// or https://"
        )));
    }
    Ok(url)
}

pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

impl Client {
    /// Credentials: `--token`/`TESSERA_API_TOKEN` win; else the session of `tessera login`
    /// for the same server, refreshed when near expiry.
    pub async fn new(args: &ClientArgs) -> Result<Self, ClientError> {
        let http = http()?;
        let base = base_url(args)?;
        let (token, from_login) = match &args.api_token {
            Some(t) => (Some(t.clone()), false),
            None => match crate::login::load()? {
                Some(creds) if creds.url == base => {
                    (Some(crate::login::access_token(&http, creds).await?), true)
                }
                _ => (None, false),
            },
        };
        Ok(Self {
            http,
            base,
            token,
            from_login,
        })
    }

    fn require_token(&self) -> Result<&str, ClientError> {
        self.token.as_deref().ok_or_else(|| {
            ClientError::Usage(
                "no credentials: run `tessera login`, or set TESSERA_API_TOKEN (or pass --token)"
                    .into(),
            )
        })
    }

    /// Sends a request with a JSON body; `auth` says whether to send the credentials.
    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        auth: bool,
    ) -> Result<(StatusCode, String), ClientError> {
        self.send_with(method, path, auth, |req| match body {
            Some(b) => req.json(b),
            None => req,
        })
        .await
    }

    /// Sends a request, its body put on by `attach`. A 401 to a stored session is
    /// answered by one refresh and one more try; errors carry the server's message.
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        auth: bool,
        attach: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, String), ClientError> {
        let token = if auth {
            Some(self.require_token()?)
        } else {
            None
        };
        let (mut status, mut text) = self.send_once(&method, path, &attach, token).await?;
        if status == StatusCode::UNAUTHORIZED && token.is_some() && self.from_login {
            // The stored session may have been ended on the server: a refresh says so
            // (and then the credentials go), or gives a token to try once more.
            let fresh = crate::login::refresh_after_refusal(&self.http, &self.base).await?;
            (status, text) = self.send_once(&method, path, &attach, Some(&fresh)).await?;
        }
        if !status.is_success() {
            let err: Option<tessera_api::ErrorBody> = serde_json::from_str(&text).ok();
            return Err(match err {
                Some(e) => ClientError::Api {
                    status: status.as_u16(),
                    message: e.message,
                    request_id: e.request_id,
                },
                None => ClientError::Api {
                    status: status.as_u16(),
                    message: text.chars().take(200).collect(),
                    request_id: "-".into(),
                },
            });
        }
        Ok((status, text))
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        attach: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        token: Option<&str>,
    ) -> Result<(StatusCode, String), ClientError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = attach(req)
            .send()
            .await
            .map_err(|source| ClientError::Connect {
                url: self.base.clone(),
                source,
            })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok((status, text))
    }

    pub async fn json<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let (_, text) = self.send(method, path, body, true).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Whether there are credentials to send.
    pub fn has_credentials(&self) -> bool {
        self.token.is_some()
    }

    /// A form post with the credentials (the OAuth endpoints take forms).
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let (_, text) = self
            .send_with(Method::POST, path, true, |req| req.form(fields))
            .await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json::<T, ()>(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send::<()>(Method::DELETE, path, None, true)
            .await
            .map(|_| ())
    }

    /// The organization to act in: the flag, else the one the credentials belong to.
    pub async fn organization(&self, flag: Option<&str>) -> Result<String, ClientError> {
        if let Some(id) = flag {
            return Ok(id.to_owned());
        }
        let orgs: tessera_api::ListOf<tessera_api::Organization> =
            self.get("/v1/organizations").await?;
        orgs.items
            .into_iter()
            .next()
            .map(|o| o.id)
            .ok_or_else(|| ClientError::Usage("the credentials belong to no organization".into()))
    }
}
