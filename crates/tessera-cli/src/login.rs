//! `tessera login`, `logout`, `whoami`: a person's session for the CLI, as the public
//! OAuth client `tessera-cli`, stored in `$XDG_CONFIG_HOME/tessera/credentials.json`.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::client::ClientError;

pub const CLIENT_ID: &str = "tessera-cli";
/// Refresh when the access token has less than this left.
const REFRESH_MARGIN_SECONDS: i64 = 60;

/// What `tessera login` stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

#[derive(Debug, Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `$XDG_CONFIG_HOME/tessera/credentials.json`, else `~/.config/tessera/credentials.json`.
pub fn credentials_path() -> Result<PathBuf, ClientError> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            ClientError::Usage("set HOME or XDG_CONFIG_HOME to store credentials".into())
        })?;
    Ok(base.join("tessera").join("credentials.json"))
}

/// Reads stored credentials; refuses a file that others can read.
pub fn load() -> Result<Option<Credentials>, ClientError> {
    let path = credentials_path()?;
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ClientError::Usage(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(ClientError::Usage(format!(
                "refusing to use {}: other users can read it; run `chmod 600 {}` or `tessera login` again",
                path.display(),
                path.display()
            )));
        }
    }
    let _ = meta;
    let text = std::fs::read(&path)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&text).map(Some).map_err(|_| {
        ClientError::Usage(format!("{} is damaged: run tessera login", path.display()))
    })
}

/// Writes credentials atomically: directory 0700, file 0600, then rename.
pub fn save(creds: &Credentials) -> Result<(), ClientError> {
    let path = credentials_path()?;
    let dir = path.parent().expect("a file in a directory");
    let io =
        |e: std::io::Error| ClientError::Usage(format!("cannot write {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        // A name no earlier (crashed) run can have left behind.
        let tmp = dir.join(format!(".credentials.{}.tmp", random_url_safe(12)));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            std::io::Write::write_all(
                &mut f,
                &serde_json::to_vec_pretty(creds).unwrap_or_default(),
            )?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename itself survives a crash only once the directory is on disk.
            std::fs::File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)?;
    }
    #[cfg(not(unix))]
    std::fs::write(&path, serde_json::to_vec_pretty(creds).unwrap_or_default()).map_err(io)?;
    Ok(())
}

pub fn remove() -> Result<bool, ClientError> {
    let path = credentials_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ClientError::Usage(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

async fn token_request(
    http: &reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
) -> Result<Result<TokenAnswer, OAuthErrorBody>, ClientError> {
    let resp = http
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .map_err(|source| ClientError::Connect {
            url: base.to_owned(),
            source,
        })?;
    let ok = resp.status().is_success();
    let text = resp
        .text()
        .await
        .map_err(|e| ClientError::Decode(e.to_string()))?;
    if ok {
        serde_json::from_str(&text)
            .map(Ok)
            .map_err(|e| ClientError::Decode(e.to_string()))
    } else {
        serde_json::from_str(&text)
            .map(Err)
            .map_err(|_| ClientError::Decode(text.chars().take(200).collect()))
    }
}

fn store(base: &str, t: TokenAnswer) -> Result<Credentials, ClientError> {
    let creds = Credentials {
        url: base.to_owned(),
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_at: now() + t.expires_in,
    };
    save(&creds)?;
    Ok(creds)
}

/// A live access token from stored credentials, refreshed when near expiry.
pub async fn access_token(
    http: &reqwest::Client,
    creds: Credentials,
) -> Result<String, ClientError> {
    if creds.expires_at - now() > REFRESH_MARGIN_SECONDS {
        return Ok(creds.access_token);
    }
    refresh_locked(http, &creds.url, false).await
}

/// After the server refused the stored access token (the session was ended elsewhere,
/// say): a refresh tells whether the session still lives. If it does, the new access
/// token; if not, the credentials are removed and the error says to sign in again.
pub async fn refresh_after_refusal(
    http: &reqwest::Client,
    url: &str,
) -> Result<String, ClientError> {
    refresh_locked(http, url, true).await
}

/// Refreshes while holding a lock on the credentials, so two commands at once do not
/// both spend the same single-use refresh token (the second would look like a replay
/// and end the session). Without `force`, a token another command refreshed meanwhile
/// is used as it is.
async fn refresh_locked(
    http: &reqwest::Client,
    url: &str,
    force: bool,
) -> Result<String, ClientError> {
    let lock_path = credentials_path()?.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| ClientError::Usage(format!("cannot open {}: {e}", lock_path.display())))?;
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| ClientError::Usage(e.to_string()))?
        .map_err(|e| ClientError::Usage(format!("cannot lock {}: {e}", lock_path.display())))?;
    let creds = match load()? {
        Some(c) if c.url == url => c,
        _ => return Err(session_expired(None)),
    };
    if !force && creds.expires_at - now() > REFRESH_MARGIN_SECONDS {
        return Ok(creds.access_token);
    }
    let result = refresh(http, creds).await;
    drop(lock);
    result
}

/// What the CLI says when the stored session is over.
fn session_expired(why: Option<&str>) -> ClientError {
    ClientError::Usage(match why {
        Some(why) if !why.is_empty() => format!("session expired, run tessera login ({why})"),
        _ => "session expired, run tessera login".into(),
    })
}

async fn refresh(http: &reqwest::Client, creds: Credentials) -> Result<String, ClientError> {
    let answer = token_request(
        http,
        &creds.url,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &creds.refresh_token),
            ("client_id", CLIENT_ID),
        ],
    )
    .await?;
    match answer {
        Ok(t) => Ok(store(&creds.url, t)?.access_token),
        Err(e) if e.error == "invalid_grant" => {
            remove()?;
            Err(session_expired(Some(&e.error_description)))
        }
        Err(e) => Err(ClientError::Usage(format!(
            "could not refresh the session: {} {}",
            e.error, e.error_description
        ))),
    }
}

fn random_url_safe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("the system random generator");
    URL_SAFE_NO_PAD.encode(buf)
}

/// Browser sign-in with a loopback redirect (RFC 8252) and PKCE.
pub async fn login_browser(
    http: &reqwest::Client,
    base: &str,
    open_browser: bool,
) -> Result<Credentials, ClientError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| ClientError::Usage(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| ClientError::Usage(e.to_string()))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let verifier = random_url_safe(32);
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let state = random_url_safe(16);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", state.as_str()),
    ])
    .unwrap_or_default();
    let url = format!("{base}/authorize?{query}");
    eprintln!("Open this address in your browser to sign in:\n\n  {url}\n");
    if open_browser {
        for opener in ["xdg-open", "open"] {
            let spawned = std::process::Command::new(opener)
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            if spawned.is_ok() {
                break;
            }
        }
    }
    let code = tokio::time::timeout(Duration::from_secs(300), wait_for_code(&listener, &state))
        .await
        .map_err(|_| ClientError::Usage("timed out waiting for the browser sign-in".into()))??;
    let answer = token_request(
        http,
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("client_id", CLIENT_ID),
            ("code_verifier", &verifier),
        ],
    )
    .await?
    .map_err(|e| {
        ClientError::Usage(format!(
            "sign-in failed: {} {}",
            e.error, e.error_description
        ))
    })?;
    store(base, answer)
}

/// Text from the network, made safe to print on a terminal.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// Serves the loopback redirect until it brings an answer with our state. Anything
/// else (another local program, a stray request) is answered and ignored.
async fn wait_for_code(
    listener: &tokio::net::TcpListener,
    state: &str,
) -> Result<String, ClientError> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        let mut buf = vec![0u8; 8192];
        let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => continue,
        };
        let request = String::from_utf8_lossy(&buf[..n]);
        let target = request
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let params: Vec<(String, String)> = target
            .strip_prefix("/callback?")
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("state").as_deref() != Some(state) {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let (body, outcome) = match (get("code"), get("error")) {
            (Some(code), _) => (
                "Signed in. You can close this tab and return to the terminal.",
                Ok(code),
            ),
            (None, error) => (
                "Sign-in failed. Return to the terminal.",
                Err(ClientError::Usage(format!(
                    "sign-in failed: {} {}",
                    printable(&error.unwrap_or_default()),
                    printable(&get("error_description").unwrap_or_default())
                ))),
            ),
        };
        let page = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(page.as_bytes()).await;
        return outcome;
    }
}

#[derive(Debug, Deserialize)]
struct DeviceStart {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

/// The device grant (RFC 8628): approve on any device with a browser.
pub async fn login_device(http: &reqwest::Client, base: &str) -> Result<Credentials, ClientError> {
    let resp = http
        .post(format!("{base}/oauth/device/code"))
        .form(&[("client_id", CLIENT_ID)])
        .send()
        .await
        .map_err(|source| ClientError::Connect {
            url: base.to_owned(),
            source,
        })?;
    let text = resp
        .text()
        .await
        .map_err(|e| ClientError::Decode(e.to_string()))?;
    let start: DeviceStart = serde_json::from_str(&text)
        .map_err(|_| ClientError::Decode(text.chars().take(200).collect()))?;
    eprintln!(
        "To sign in, open {} and enter the code\n\n  {}\n\n(or open {})\nWaiting for approval...",
        start.verification_uri, start.user_code, start.verification_uri_complete
    );
    let mut interval = start.interval.max(1);
    let deadline = now() + start.expires_in;
    loop {
        tokio::time::sleep(Duration::from_secs(interval as u64)).await;
        if now() > deadline {
            return Err(ClientError::Usage(
                "the code expired before it was approved: run tessera login again".into(),
            ));
        }
        let answer = token_request(
            http,
            base,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &start.device_code),
                ("client_id", CLIENT_ID),
            ],
        )
        .await?;
        match answer {
            Ok(t) => return store(base, t),
            Err(e) if e.error == "authorization_pending" => {}
            Err(e) if e.error == "slow_down" => interval += 5,
            Err(e) => {
                return Err(ClientError::Usage(format!(
                    "sign-in failed: {} {}",
                    e.error, e.error_description
                )));
            }
        }
    }
}

/// Revokes the stored session at the server, then deletes the file.
pub async fn logout(http: &reqwest::Client) -> Result<bool, ClientError> {
    let Some(creds) = load()? else {
        return Ok(false);
    };
    let resp = http
        .post(format!("{}/oauth/revoke", creds.url))
        .form(&[
            ("token", creds.refresh_token.as_str()),
            ("client_id", CLIENT_ID),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .map_err(|source| ClientError::Connect {
            url: creds.url.clone(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(ClientError::Usage(format!(
            "the server refused to end the session (HTTP {})",
            resp.status()
        )));
    }
    remove()
}
