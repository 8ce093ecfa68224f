//! Signing keys: generation, import, sealing under the master key, JWKs.
//!
//! Private halves exist in memory as PKCS#8 inside [`SecretBytes`] and at rest only
//! sealed with AES-256-GCM under the [`MasterKey`], the key id bound as associated data
//! so a sealed key cannot be swapped onto another id.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
    RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::secret::{SecretBytes, TokenValue, random_bytes};

/// JWK types, for those who publish or read key sets.
pub use jsonwebtoken::jwk::{Jwk as PublicJwk, JwkSet};

/// The signature algorithms Tessera signs with. A key has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8037). The default.
    #[default]
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys or larger.
    RS256,
}

impl KeyAlgorithm {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub const fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            other => Err(KeyError::Unsupported(format!(
                "signing algorithm {other:?}; expected EdDSA, ES256 or RS256"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    #[error(
        "a signing key could not be decrypted: the master key is not the one it was sealed with, \
         or the stored key is damaged"
    )]
    WrongMasterKey,
    #[error("unsupported key: {0}")]
    Unsupported(String),
    #[error("key operation failed: {0}")]
    Crypto(&'static str),
}

/// The key that seals signing keys at rest, and (through a key derived from it) tags
/// values that every replica must be able to check, such as the web UI's CSRF tokens.
pub struct MasterKey {
    aead: LessSafeKey,
    mac: aws_lc_rs::hmac::Key,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: &SecretBytes) -> Result<Self, KeyError> {
        if bytes.expose().len() != Self::LEN {
            return Err(KeyError::BadMasterKey);
        }
        let key =
            UnboundKey::new(&AES_256_GCM, bytes.expose()).map_err(|_| KeyError::BadMasterKey)?;
        // A separate key for tags, so that no key serves two algorithms.
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes.expose());
        let derived = hmac::sign(&root, b"tessera master key: tags v1");
        Ok(Self {
            aead: LessSafeKey::new(key),
            mac: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    /// HMAC-SHA256 of `message` under the tag key, bound to `purpose`: a tag made for one
    /// purpose never checks for another.
    pub fn tag(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(&(purpose.len() as u64).to_be_bytes());
        ctx.update(purpose.as_bytes());
        ctx.update(message);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// From the base64 text of `TESSERA_MASTER_KEY` or a key file (whitespace trimmed).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::BadMasterKey)?;
        Self::from_bytes(&SecretBytes::new(bytes))
    }

    /// A fresh random master key and its base64 text (for dev mode's key file).
    pub fn generate() -> (Self, SecretBytes) {
        let raw = SecretBytes::new(random_bytes(Self::LEN));
        let text = SecretBytes::new(STANDARD.encode(raw.expose()).into_bytes());
        (
            Self::from_bytes(&raw).expect("32 random bytes make a key"),
            text,
        )
    }

    /// `nonce || ciphertext || tag`, with `kid` as associated data.
    pub fn seal(&self, kid: &str, plaintext: &SecretBytes) -> Result<Vec<u8>, KeyError> {
        let nonce_bytes = random_bytes(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes)
            .map_err(|_| KeyError::Crypto("nonce"))?;
        let mut in_out = plaintext.expose().to_vec();
        self.aead
            .seal_in_place_append_tag(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| KeyError::Crypto("seal"))?;
        let mut out = nonce_bytes;
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<SecretBytes, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::WrongMasterKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::WrongMasterKey)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| KeyError::WrongMasterKey)?;
        let plain = SecretBytes::new(plain.to_vec());
        drop(SecretBytes::new(in_out));
        Ok(plain)
    }
}

/// A private signing key (PKCS#8) with its algorithm and id.
#[derive(Debug, Clone)]
pub struct KeyPair {
    kid: String,
    algorithm: KeyAlgorithm,
    pkcs8: SecretBytes,
    public: AlgorithmParameters,
}

impl KeyPair {
    /// A new key. RSA keys are 2048-bit.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let pkcs8 = match algorithm {
            KeyAlgorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map_err(|_| KeyError::Crypto("generate Ed25519"))?
                .as_ref()
                .to_vec(),
            KeyAlgorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(|_| KeyError::Crypto("generate P-256"))?
                .as_ref()
                .to_vec(),
            KeyAlgorithm::RS256 => {
                use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
                let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Crypto("generate RSA"))?;
                let der: Pkcs8V1Der<'static> =
                    key.as_der().map_err(|_| KeyError::Crypto("encode RSA"))?;
                der.as_ref().to_vec()
            }
        };
        Self::from_pkcs8(&SecretBytes::new(pkcs8))
    }

    /// Reads a PKCS#8 private key: Ed25519, P-256, or RSA of at least 2048 bits. The
    /// algorithm follows from the key. Anything else is refused.
    pub fn from_pkcs8(pkcs8: &SecretBytes) -> Result<Self, KeyError> {
        let der = pkcs8.expose();
        let (algorithm, public) = if let Ok(k) = Ed25519KeyPair::from_pkcs8(der) {
            let x = URL_SAFE_NO_PAD.encode(k.public_key().as_ref());
            (
                KeyAlgorithm::EdDSA,
                AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x,
                }),
            )
        } else if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            let point = k.public_key().as_ref();
            // Uncompressed SEC1: 0x04 || x || y.
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError::Unsupported("P-256 public key encoding".into()));
            }
            (
                KeyAlgorithm::ES256,
                AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                    y: URL_SAFE_NO_PAD.encode(&point[33..65]),
                }),
            )
        } else if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            if k.public_modulus_len() < 256 {
                return Err(KeyError::Unsupported(format!(
                    "RSA keys must be at least 2048 bits; this one has {}",
                    k.public_modulus_len() * 8
                )));
            }
            let public = k.public_key();
            (
                KeyAlgorithm::RS256,
                AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                }),
            )
        } else {
            return Err(KeyError::Unsupported(
                "expected a PKCS#8 Ed25519, P-256 or RSA (2048 bits or more) private key".into(),
            ));
        };
        // The key id is the RFC 7638 thumbprint of the public key.
        let bare = Jwk {
            common: CommonParameters::default(),
            algorithm: public.clone(),
        };
        let kid = bare
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| KeyError::Crypto("thumbprint"))?;
        Ok(Self {
            kid,
            algorithm,
            pkcs8: pkcs8.clone(),
            public,
        })
    }

    /// Reads a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PRIVATE KEY-----")
            .collect();
        if body.is_empty() {
            return Err(KeyError::Unsupported(
                "expected a PEM block 'BEGIN PRIVATE KEY' (PKCS#8); convert other formats with \
                 `openssl pkcs8 -topk8 -nocrypt`"
                    .into(),
            ));
        }
        let der = STANDARD
            .decode(body)
            .map_err(|_| KeyError::Unsupported("the PEM body is not valid base64".into()))?;
        Self::from_pkcs8(&SecretBytes::new(der))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    pub fn pkcs8(&self) -> &SecretBytes {
        &self.pkcs8
    }

    /// The public half as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(
                    jsonwebtoken::jwk::KeyAlgorithm::from_str(self.algorithm.as_str())
                        .expect("our algorithms are JWK algorithms"),
                ),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: self.public.clone(),
        }
    }

    pub fn signer(&self) -> Result<Signer, KeyError> {
        let der = self.pkcs8.expose();
        let key = match self.algorithm {
            KeyAlgorithm::EdDSA => EncodingKey::from_ed_der(der),
            KeyAlgorithm::ES256 => EncodingKey::from_ec_der(der),
            KeyAlgorithm::RS256 => {
                // jsonwebtoken reads RSA PKCS#8 only through PEM.
                let pem = format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    STANDARD.encode(der)
                );
                EncodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|_| KeyError::Crypto("RSA key"))?
            }
        };
        Ok(Signer {
            kid: self.kid.clone(),
            algorithm: self.algorithm,
            key,
        })
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        VerifyingKey::from_jwk(&self.public_jwk())
    }
}

/// Signs tokens with one key.
pub struct Signer {
    kid: String,
    algorithm: KeyAlgorithm,
    key: EncodingKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// A compact JWS with header `{alg, kid, typ: "JWT"}`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<TokenValue, KeyError> {
        let mut header = Header::new(self.algorithm.jwt());
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map(TokenValue::new)
            .map_err(|_| KeyError::Crypto("sign"))
    }
}

/// A public key that verifies tokens; the algorithm is the key's, never the token's.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub(crate) key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// From a published JWK; `kid` and `alg` are required, and `alg` must be one of ours
    /// and fit the key type.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or_else(|| KeyError::Unsupported("JWK without kid".into()))?;
        let alg = jwk
            .common
            .key_algorithm
            .ok_or_else(|| KeyError::Unsupported("JWK without alg".into()))?;
        let algorithm: KeyAlgorithm = alg.to_string().parse()?;
        let fits = matches!(
            (&jwk.algorithm, algorithm),
            (AlgorithmParameters::OctetKeyPair(_), KeyAlgorithm::EdDSA)
                | (AlgorithmParameters::EllipticCurve(_), KeyAlgorithm::ES256)
                | (AlgorithmParameters::RSA(_), KeyAlgorithm::RS256)
        );
        if !fits {
            return Err(KeyError::Unsupported(format!(
                "JWK key type does not fit alg {algorithm}"
            )));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| KeyError::Unsupported("JWK".into()))?;
        Ok(Self {
            kid,
            algorithm,
            key,
        })
    }
}

/// The keys a verifier accepts, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        Self { keys }
    }

    pub fn from_jwks(jwks: &JwkSet) -> Result<Self, KeyError> {
        jwks.keys
            .iter()
            .map(VerifyingKey::from_jwk)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_seals_and_refuses_the_wrong_key_or_kid() {
        let (mk, _) = MasterKey::generate();
        let secret = SecretBytes::new(b"private key bytes".to_vec());
        let sealed = mk.seal("kid-1", &secret).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(mk.open("kid-1", &sealed).unwrap(), secret);
        assert_eq!(
            mk.open("kid-2", &sealed).unwrap_err(),
            KeyError::WrongMasterKey
        );
        let (other, _) = MasterKey::generate();
        assert_eq!(
            other.open("kid-1", &sealed).unwrap_err(),
            KeyError::WrongMasterKey
        );
        assert_eq!(
            mk.open("kid-1", &sealed[..5]).unwrap_err(),
            KeyError::WrongMasterKey
        );
    }

    #[test]
    fn tags_depend_on_key_purpose_and_message() {
        let (a, text) = MasterKey::generate();
        let same = MasterKey::from_base64(std::str::from_utf8(text.expose()).unwrap()).unwrap();
        let (b, _) = MasterKey::generate();
        assert_eq!(
            a.tag("csrf", b"s1"),
            same.tag("csrf", b"s1"),
            "replicas agree"
        );
        assert_ne!(a.tag("csrf", b"s1"), b.tag("csrf", b"s1"), "another key");
        assert_ne!(
            a.tag("csrf", b"s1"),
            a.tag("csrf", b"s2"),
            "another message"
        );
        assert_ne!(
            a.tag("csrf", b"s1"),
            a.tag("other", b"s1"),
            "another purpose"
        );
        // The purpose is length-prefixed: moving bytes between purpose and message
        // gives another tag.
        assert_ne!(a.tag("ab", b"c"), a.tag("a", b"bc"));
    }

    #[test]
    fn master_key_text_must_be_32_bytes() {
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64 !!").is_err());
        let (_, text) = MasterKey::generate();
        assert!(MasterKey::from_base64(std::str::from_utf8(text.expose()).unwrap()).is_ok());
    }

    #[test]
    fn each_algorithm_generates_signs_and_round_trips() {
        for alg in [
            KeyAlgorithm::EdDSA,
            KeyAlgorithm::ES256,
            KeyAlgorithm::RS256,
        ] {
            let key = KeyPair::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let again = KeyPair::from_pkcs8(key.pkcs8()).unwrap();
            assert_eq!(again.kid(), key.kid());
            let jwk = key.public_jwk();
            let json = serde_json::to_value(&jwk).unwrap();
            assert_eq!(json["alg"], alg.as_str());
            assert_eq!(json["use"], "sig");
            assert_eq!(json["kid"], key.kid());
            assert!(json.get("d").is_none(), "no private part in a JWK");
            let token = key
                .signer()
                .unwrap()
                .sign(&serde_json::json!({"a": 1}))
                .unwrap();
            let vk = key.verifying_key().unwrap();
            let mut v = jsonwebtoken::Validation::new(alg.jwt());
            v.required_spec_claims.clear();
            v.validate_exp = false;
            jsonwebtoken::decode::<serde_json::Value>(token.expose(), &vk.key, &v).unwrap();
        }
    }

    #[test]
    fn garbage_keys_are_refused_clearly() {
        let err = KeyPair::from_pkcs8(&SecretBytes::new(vec![0x30, 0x03, 1, 2, 3])).unwrap_err();
        assert!(err.to_string().contains("PKCS#8"));
        assert!(
            KeyPair::from_pem(
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"
            )
            .is_err()
        );
    }
}
