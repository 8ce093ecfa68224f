//! Sessions for people: lifetimes, refresh and code secrets, PKCE, OAuth clients, device
//! user codes. The rules only; the server does the IO.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

use crate::error::Rejection;
use crate::ids::{OrganizationId, SessionId, UserId};
use crate::secret::{random_bytes, sha256};

/// A sign-in: one per client that signed in (the browser's own sign-in included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// The organization the session acts in.
    pub organization_id: Option<OrganizationId>,
    pub client_id: String,
    /// When the person typed their password; refresh never extends past
    /// `signed_in_at + absolute lifetime` (`absolute_expiry`).
    pub signed_in_at: OffsetDateTime,
    pub absolute_expiry: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub last_refreshed_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The browser sign-in this session came from (for client sessions).
    pub browser_session_id: Option<SessionId>,
}

impl Session {
    /// Whether tokens of this session are accepted at `now`.
    pub fn check(&self, now: OffsetDateTime) -> Result<(), Rejection> {
        if self.ended_at.is_some() || now >= self.absolute_expiry {
            return Err(Rejection::SessionEnded);
        }
        Ok(())
    }
}

/// Lifetimes of session tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    /// Access tokens: 8 hours by default.
    pub access: Duration,
    /// From sign-in to the end of every refresh: 30 days by default.
    pub absolute: Duration,
}

impl Default for SessionLifetimes {
    fn default() -> Self {
        Self {
            access: Duration::hours(8),
            absolute: Duration::days(30),
        }
    }
}

impl SessionLifetimes {
    /// `exp` of an access token issued at `now`: never past the session's end.
    pub fn access_expiry(
        &self,
        now: OffsetDateTime,
        absolute_expiry: OffsetDateTime,
    ) -> OffsetDateTime {
        (now + self.access).min(absolute_expiry)
    }
}

/// An opaque secret (refresh token, authorization code, device code, sign-in cookie):
/// 256 random bits, base64url, with a prefix that says what it is.
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes(32)))
}

/// What is stored instead of a secret: its SHA-256, base64url. (The secrets carry 256
/// random bits, so a fast hash is the right one.)
pub fn secret_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(secret.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn valid_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A `code_challenge` for S256: 43 base64url characters (a SHA-256).
pub fn valid_code_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// RFC 7636 §4.6, S256: `BASE64URL(SHA256(verifier)) == challenge`, in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes()).is_ok()
}

/// An OAuth client Tessera knows. Public clients only: no secret, PKCE required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: String,
    pub name: String,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// RFC 8252 §7.3: a registered `http://127.0.0.1/...` or `http://[::1]/...` URI
    /// matches that loopback address on any port.
    pub loopback: bool,
}

impl OAuthClient {
    /// Whether `uri` is one of this client's redirect URIs.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        if !self.loopback {
            return false;
        }
        let Some((host, path)) = loopback_parts(uri) else {
            return false;
        };
        self.redirect_uris
            .iter()
            .filter_map(|r| loopback_parts(r))
            .any(|(h, p)| h == host && p == path)
    }
}

/// `http://127.0.0.1:PORT/path` or `http://[::1]:PORT/path` -> (host, path). No query,
/// fragment or user info; the port, if any, must be a number.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.contains(['?', '#']) || authority.contains('@') {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix("[::1]") {
        port_ok(v6)?;
        "[::1]"
    } else if let Some(v4) = authority.strip_prefix("127.0.0.1") {
        port_ok(v4)?;
        "127.0.0.1"
    } else {
        return None;
    };
    Some((host, path))
}

fn port_ok(rest: &str) -> Option<()> {
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Some(()),
        Some(port)
            if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            port.parse::<u16>().ok().map(|_| ())
        }
        _ => None,
    }
}

/// RFC 8628 §6.1: user codes from 20 consonants (no vowels: no words), 8 characters,
/// shown as `XXXX-XXXX`. 20^8 ≈ 2^34.6 possibilities.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

pub fn new_user_code() -> String {
    let bytes = random_bytes(8);
    let chars: String = bytes
        .iter()
        .map(|b| USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// Accepts what people type: any case, with or without the dash or spaces.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let chars: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (chars.len() == 8 && chars.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then(|| format!("{}-{}", &chars[..4], &chars[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn access_tokens_never_outlive_the_session() {
        let l = SessionLifetimes::default();
        let signed_in = datetime!(2026-01-01 0:00 UTC);
        let end = signed_in + l.absolute;
        assert_eq!(
            l.access_expiry(signed_in, end),
            signed_in + Duration::hours(8)
        );
        let day29 = signed_in + Duration::days(29) + Duration::hours(20);
        assert_eq!(l.access_expiry(day29, end), end);
    }

    #[test]
    fn session_check() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let s = Session {
            id: SessionId::new(),
            user_id: UserId::new(),
            organization_id: None,
            client_id: "tessera-cli".into(),
            signed_in_at: now,
            absolute_expiry: now + Duration::days(30),
            created_at: now,
            last_refreshed_at: None,
            ended_at: None,
            ip: None,
            user_agent: None,
            browser_session_id: None,
        };
        assert!(
            s.check(now + Duration::days(30) - Duration::seconds(1))
                .is_ok()
        );
        assert_eq!(
            s.check(now + Duration::days(30)),
            Err(Rejection::SessionEnded)
        );
        let ended = Session {
            ended_at: Some(now),
            ..s
        };
        assert_eq!(ended.check(now), Err(Rejection::SessionEnded));
    }

    #[test]
    fn pkce_s256_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_code_verifier(verifier));
        assert!(valid_code_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!valid_code_verifier("short"));
        assert!(!valid_code_verifier(&"a".repeat(129)));
        assert!(!valid_code_verifier(&format!("{}!", "a".repeat(50))));
    }

    #[test]
    fn redirect_uris_match_exactly_or_on_loopback_any_port() {
        let ui = OAuthClient {
            id: "tessera-ui".into(),
            name: "UI".into(),
            redirect_uris: vec!["https://auth.example.com/ui/callback".into()],
            loopback: false,
        };
        assert!(ui.allows_redirect("https://auth.example.com/ui/callback"));
        for bad in [
            "https://auth.example.com/ui/callback?x=1",
            "https://auth.example.com/ui/callback/",
            "https://evil.example.com/ui/callback",
            "https://auth.example.com.evil.com/ui/callback",
            "http://127.0.0.1:5000/ui/callback",
        ] {
            assert!(!ui.allows_redirect(bad), "{bad}");
        }
        let cli = OAuthClient {
            id: "tessera-cli".into(),
            name: "CLI".into(),
            redirect_uris: vec![
                "http://127.0.0.1/callback".into(),
                "http://[::1]/callback".into(),
            ],
            loopback: true,
        };
        for good in [
            "http://127.0.0.1:54321/callback",
            "http://[::1]:8000/callback",
            "http://127.0.0.1/callback",
        ] {
            assert!(cli.allows_redirect(good), "{good}");
        }
        for bad in [
            "http://127.0.0.1:54321/other",
            "http://127.0.0.1:54321/callback?next=https://evil",
            "http://127.0.0.1.evil.com:80/callback",
            "http://evil@127.0.0.1:80/callback",
            "http://localhost:5000/callback",
            "https://127.0.0.1:5000/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:/callback",
        ] {
            assert!(!cli.allows_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn user_codes() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(
            normalize_user_code(&code.to_lowercase().replace('-', " ")),
            Some(code.clone())
        );
        assert_eq!(
            normalize_user_code("AAAA-AAAA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize_user_code("BCDF"), None);
    }

    #[test]
    fn secrets_and_hashes() {
        let s = new_secret("tsr_");
        assert!(s.starts_with("tsr_"));
        assert_eq!(s.len(), 4 + 43);
        assert_ne!(secret_hash(&s), secret_hash(&new_secret("tsr_")));
        assert!(!secret_hash(&s).contains(&s[4..]));
    }
}

/// An authorization code as stored (RFC 6749 §4.1), by the hash of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub user_id: UserId,
    pub organization_id: Option<OrganizationId>,
    /// When the person signed in; the session the code creates ends 30 days after it.
    pub signed_in_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The session its redemption created, so that a replay can end it.
    pub session_id: Option<SessionId>,
    /// The browser sign-in that approved it.
    pub browser_session_id: Option<SessionId>,
}

/// Where a device authorization (RFC 8628) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    Redeemed,
}

impl DeviceStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Redeemed => "redeemed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Redeemed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// A device authorization as stored, by the hash of its device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    pub hash: String,
    pub user_code: String,
    pub client_id: String,
    pub expires_at: OffsetDateTime,
    pub interval_seconds: i64,
    pub last_poll_at: Option<OffsetDateTime>,
    pub status: DeviceStatus,
    /// Set on approval.
    pub user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub signed_in_at: Option<OffsetDateTime>,
}

/// The outcome of presenting a single-use secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption<T> {
    /// First use: here is what it stood for.
    Fresh(T),
    /// Already used: a replay. Here is what it stood for, to end it.
    Reused(T),
    Unknown,
}
