//! The validation path, steps 1 and 3 of DESIGN.md (the cache and the live status are
//! the server's): size cap, header, key by `kid`, algorithm pinned by the key,
//! signature, then the claims against a clock.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::claims::{Claims, Identity};
use crate::error::Rejection;
use crate::ids::Jti;
use crate::keys::{KeySet, VerifyingKey};

/// Tokens larger than this are rejected unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Exact `iss`.
    pub issuer: String,
    /// Must be in `aud`.
    pub audience: String,
    /// Tolerance for a `nbf` in the future (issuer's clock ahead of ours).
    pub nbf_leeway: Duration,
    /// Tolerance for an `exp` in the past. Zero where the verifier is the issuer.
    pub exp_leeway: Duration,
}

/// The parts of the JOSE header Tessera reads. `jku`, `x5u` and `jwk` are never followed.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions we would have to understand. We understand none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The result of step 1: which key, and that the token's `alg` is that key's.
#[derive(Debug, Clone)]
pub struct Located<'k> {
    pub key: &'k VerifyingKey,
}

/// Step 1: size cap, three base64url parts, header JSON, `kid` -> key, `alg` == key's.
pub fn locate<'k>(token: &str, keys: &'k KeySet) -> Result<Located<'k>, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::TooLarge {
            max: MAX_TOKEN_BYTES,
        });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed("expected three dot-separated parts"));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(Rejection::Malformed("empty part"));
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Rejection::Malformed("header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header)
        .map_err(|_| Rejection::Malformed("header is not a JOSE header"))?;
    if header.crit.is_some() {
        return Err(Rejection::Malformed(
            "unsupported critical header extension",
        ));
    }
    let kid = header
        .kid
        .ok_or(Rejection::Malformed("header has no kid"))?;
    let key = keys.get(&kid).ok_or(Rejection::UnknownKey)?;
    if header.alg != key.algorithm.as_str() {
        return Err(Rejection::AlgorithmMismatch);
    }
    Ok(Located { key })
}

/// Step 3a: the signature, with the algorithm the key fixes; returns the parsed claims.
pub fn check_signature(token: &str, located: &Located<'_>) -> Result<Claims, Rejection> {
    let mut validation = jsonwebtoken::Validation::new(located.key.algorithm.jwt());
    // Time, issuer and audience are checked below with our clock and our rules.
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Claims>(token, &located.key.key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature
            | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
            | jsonwebtoken::errors::ErrorKind::InvalidEddsaKey
            | jsonwebtoken::errors::ErrorKind::Provider(_) => Rejection::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => Rejection::AlgorithmMismatch,
            jsonwebtoken::errors::ErrorKind::Json(_) => Rejection::MalformedClaims,
            _ => Rejection::Malformed("token could not be decoded"),
        })
}

/// A token whose signature and claims have been checked. Its live status has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub identity: Identity,
    pub jti: Jti,
    pub issued_at: OffsetDateTime,
    pub not_before: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub issuer: String,
    pub audience: Vec<String>,
    pub kid: String,
    pub claims: Claims,
}

impl VerifiedToken {
    /// The time-dependent checks, repeated on every use (also on a cache hit).
    pub fn check_time(&self, cfg: &VerifyConfig, now: OffsetDateTime) -> Result<(), Rejection> {
        if let Some(exp) = self.expires_at
            && now >= exp + cfg.exp_leeway
        {
            return Err(Rejection::Expired { exp, now });
        }
        if now + cfg.nbf_leeway < self.not_before {
            return Err(Rejection::NotYetValid {
                nbf: self.not_before,
                now,
            });
        }
        Ok(())
    }
}

fn timestamp(secs: i64) -> Result<OffsetDateTime, Rejection> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Rejection::MalformedClaims)
}

fn parse_id<T: std::str::FromStr>(v: &str) -> Result<T, Rejection> {
    v.parse().map_err(|_| Rejection::MalformedClaims)
}

/// Step 3b: `iss`, `aud`, required and well-typed claims, the token's kind, then time.
pub fn check_claims(
    claims: Claims,
    kid: &str,
    cfg: &VerifyConfig,
    now: OffsetDateTime,
) -> Result<VerifiedToken, Rejection> {
    let iss = claims
        .iss
        .as_deref()
        .ok_or(Rejection::MissingClaim("iss"))?;
    if iss != cfg.issuer {
        return Err(Rejection::WrongIssuer);
    }
    let aud = claims.aud.as_ref().ok_or(Rejection::MissingClaim("aud"))?;
    if !aud.contains(&cfg.audience) {
        return Err(Rejection::WrongAudience);
    }
    let sub = claims
        .sub
        .as_deref()
        .ok_or(Rejection::MissingClaim("sub"))?;
    let iat = timestamp(claims.iat.ok_or(Rejection::MissingClaim("iat"))?)?;
    let nbf = timestamp(claims.nbf.ok_or(Rejection::MissingClaim("nbf"))?)?;
    let jti: Jti = parse_id(
        claims
            .jti
            .as_deref()
            .ok_or(Rejection::MissingClaim("jti"))?,
    )?;
    let exp = claims.exp.map(timestamp).transpose()?;

    let identity = match (&claims.api_token_id, &claims.sid) {
        (Some(token_id), None) => {
            if token_id != sub {
                return Err(Rejection::MalformedClaims);
            }
            Identity::ApiToken {
                token_id: parse_id(token_id)?,
                organization_id: parse_id(
                    claims
                        .org_id
                        .as_deref()
                        .ok_or(Rejection::MissingClaim("org_id"))?,
                )?,
                scope: claims.scope.ok_or(Rejection::MissingClaim("scope"))?,
            }
        }
        (None, Some(sid)) => Identity::Session {
            user_id: parse_id(sub)?,
            session_id: parse_id(sid)?,
            client_id: claims
                .client_id
                .clone()
                .ok_or(Rejection::MissingClaim("client_id"))?,
            organization_id: claims.org_id.as_deref().map(parse_id).transpose()?,
        },
        _ => return Err(Rejection::AmbiguousKind),
    };
    // Session access tokens always expire; only API tokens may live without `exp`.
    if exp.is_none() && matches!(identity, Identity::Session { .. }) {
        return Err(Rejection::MissingClaim("exp"));
    }

    let verified = VerifiedToken {
        identity,
        jti,
        issued_at: iat,
        not_before: nbf,
        expires_at: exp,
        issuer: iss.to_owned(),
        audience: aud.to_vec(),
        kid: kid.to_owned(),
        claims,
    };
    verified.check_time(cfg, now)?;
    Ok(verified)
}

/// Steps 1 and 3 together, without a cache: what the SDK and `tessera verify` do.
pub fn verify(
    token: &str,
    keys: &KeySet,
    cfg: &VerifyConfig,
    now: OffsetDateTime,
) -> Result<VerifiedToken, Rejection> {
    let located = locate(token, keys)?;
    let claims = check_signature(token, &located)?;
    check_claims(claims, &located.key.kid, cfg, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::ApiTokenGrant;
    use crate::ids::{OrganizationId, TokenId};
    use crate::keys::{KeyAlgorithm, KeyPair};
    use crate::model::TokenScope;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn cfg() -> VerifyConfig {
        VerifyConfig {
            issuer: "https://tessera.test".into(),
            audience: "tessera".into(),
            nbf_leeway: Duration::seconds(30),
            exp_leeway: Duration::ZERO,
        }
    }

    fn grant(exp: Option<OffsetDateTime>) -> Claims {
        Claims::api_token(&ApiTokenGrant {
            issuer: "https://tessera.test",
            audience: "tessera",
            token_id: TokenId::new(),
            jti: Jti::new(),
            organization_id: OrganizationId::new(),
            scope: TokenScope::Organization,
            issued_at: NOW.unix_timestamp(),
            expires_at: exp.map(|e| e.unix_timestamp()),
            version: 1,
        })
    }

    fn setup() -> (KeyPair, KeySet) {
        let key = KeyPair::generate(KeyAlgorithm::EdDSA).unwrap();
        let set = KeySet::new(vec![key.verifying_key().unwrap()]);
        (key, set)
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn a_good_token_verifies_and_says_who_it_is() {
        let (key, set) = setup();
        let claims = grant(Some(NOW + Duration::days(1)));
        let token = key.signer().unwrap().sign(&claims).unwrap();
        let v = verify(token.expose(), &set, &cfg(), NOW).unwrap();
        assert!(matches!(
            v.identity,
            Identity::ApiToken {
                scope: crate::model::ScopeKind::Organization,
                ..
            }
        ));
        assert_eq!(v.claims, claims);
    }

    #[test]
    fn lifetime_edges_with_a_set_clock() {
        let (key, set) = setup();
        let end = NOW + Duration::days(30);
        let token = key.signer().unwrap().sign(&grant(Some(end))).unwrap();
        assert!(verify(token.expose(), &set, &cfg(), end - Duration::seconds(1)).is_ok());
        assert!(matches!(
            verify(token.expose(), &set, &cfg(), end + Duration::seconds(1)),
            Err(Rejection::Expired { .. })
        ));
        // Not yet valid beyond the leeway, valid within it.
        assert!(verify(token.expose(), &set, &cfg(), NOW - Duration::seconds(29)).is_ok());
        assert!(matches!(
            verify(token.expose(), &set, &cfg(), NOW - Duration::seconds(31)),
            Err(Rejection::NotYetValid { .. })
        ));
        // A token without exp never expires.
        let forever = key.signer().unwrap().sign(&grant(None)).unwrap();
        assert!(verify(forever.expose(), &set, &cfg(), NOW + Duration::days(36_500)).is_ok());
    }

    #[test]
    fn wrong_issuer_audience_key_and_size_are_rejected() {
        let (key, set) = setup();
        let token = key.signer().unwrap().sign(&grant(None)).unwrap();
        let mut c = cfg();
        c.issuer = "https://evil.test".into();
        assert_eq!(
            verify(token.expose(), &set, &c, NOW),
            Err(Rejection::WrongIssuer)
        );
        let mut c = cfg();
        c.audience = "other".into();
        assert_eq!(
            verify(token.expose(), &set, &c, NOW),
            Err(Rejection::WrongAudience)
        );
        let (_, other_set) = setup();
        assert_eq!(
            verify(token.expose(), &other_set, &cfg(), NOW),
            Err(Rejection::UnknownKey)
        );
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            verify(&huge, &set, &cfg(), NOW),
            Err(Rejection::TooLarge { .. })
        ));
        assert!(matches!(
            verify("a.b", &set, &cfg(), NOW),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            verify("a.b.c.d", &set, &cfg(), NOW),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn tampered_payload_and_alg_none_are_rejected() {
        let (key, set) = setup();
        let token = key.signer().unwrap().sign(&grant(None)).unwrap();
        let parts: Vec<&str> = token.expose().split('.').collect();
        let mut claims = grant(None);
        claims.org_id = Some(OrganizationId::new().to_string());
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_value(&claims).unwrap()),
            parts[2]
        );
        assert_eq!(
            verify(&forged, &set, &cfg(), NOW),
            Err(Rejection::BadSignature)
        );

        let kid = key.kid();
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg":"none","kid":kid})),
            parts[1]
        );
        assert!(verify(&none, &set, &cfg(), NOW).is_err());
        let none = format!(
            "{}.{}.sig",
            b64(&serde_json::json!({"alg":"none","kid":kid})),
            parts[1]
        );
        assert_eq!(
            verify(&none, &set, &cfg(), NOW),
            Err(Rejection::AlgorithmMismatch)
        );
        // An HMAC token keyed with the public key's bytes (the classic confusion attack).
        let hs = format!(
            "{}.{}.sig",
            b64(&serde_json::json!({"alg":"HS256","kid":kid})),
            parts[1]
        );
        assert_eq!(
            verify(&hs, &set, &cfg(), NOW),
            Err(Rejection::AlgorithmMismatch)
        );
        let crit = format!(
            "{}.{}.{}",
            b64(&serde_json::json!({"alg":"EdDSA","kid":kid,"crit":["exp"]})),
            parts[1],
            parts[2]
        );
        assert!(matches!(
            verify(&crit, &set, &cfg(), NOW),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn claims_must_be_present_well_typed_and_of_one_kind() {
        let (key, set) = setup();
        let sign = |c: &serde_json::Value| key.signer().unwrap().sign(c).unwrap();
        let good = serde_json::to_value(grant(None)).unwrap();

        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("jti");
        assert_eq!(
            verify(sign(&missing).expose(), &set, &cfg(), NOW),
            Err(Rejection::MissingClaim("jti"))
        );

        let mut wrong_type = good.clone();
        wrong_type["exp"] = serde_json::json!("tomorrow");
        assert_eq!(
            verify(sign(&wrong_type).expose(), &set, &cfg(), NOW),
            Err(Rejection::MalformedClaims)
        );

        let mut both = good.clone();
        both["sid"] = serde_json::json!(crate::ids::SessionId::new().to_string());
        assert_eq!(
            verify(sign(&both).expose(), &set, &cfg(), NOW),
            Err(Rejection::AmbiguousKind)
        );

        let mut neither = good.clone();
        neither.as_object_mut().unwrap().remove("apiTokenId");
        assert_eq!(
            verify(sign(&neither).expose(), &set, &cfg(), NOW),
            Err(Rejection::AmbiguousKind)
        );

        let mut aud_list = good;
        aud_list["aud"] = serde_json::json!(["other", "tessera"]);
        assert!(verify(sign(&aud_list).expose(), &set, &cfg(), NOW).is_ok());
    }

    #[test]
    fn es256_and_rs256_keys_verify_their_own_tokens_only() {
        let ec = KeyPair::generate(KeyAlgorithm::ES256).unwrap();
        let rsa = KeyPair::generate(KeyAlgorithm::RS256).unwrap();
        let set = KeySet::new(vec![
            ec.verifying_key().unwrap(),
            rsa.verifying_key().unwrap(),
        ]);
        for key in [&ec, &rsa] {
            let token = key.signer().unwrap().sign(&grant(None)).unwrap();
            assert!(verify(token.expose(), &set, &cfg(), NOW).is_ok());
        }
    }
}
