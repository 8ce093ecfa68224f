//! Server configuration: a typed struct passed by value. Sources, later ones winning:
//! defaults, then a TOML file, then `TESSERA_*` environment variables, then flags.
//! Unknown keys in the file are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_core::keys::KeyAlgorithm;
use tessera_core::lifetime::MAX_LEEWAY_SECONDS;
use tessera_core::password::PasswordCost;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {key}: {message}")]
    Value { key: &'static str, message: String },
}

/// Every setting, with its default.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Where SQLite keeps its file (and dev mode its credentials). Default `./tessera-data`;
    /// `./.tessera-dev` with `--dev`.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The `iss` of every token, exact. Default `http://<listen>`.
    pub issuer: Option<String>,
    /// The `aud` of every token. Default `tessera`.
    pub audience: String,
    /// File holding the base64 master key (32 bytes) that seals signing keys. The
    /// `TESSERA_MASTER_KEY` variable may give the key itself instead.
    pub master_key_file: Option<PathBuf>,
    /// Algorithm of the signing key: `EdDSA`, `ES256` or `RS256`. Unset (the default):
    /// the first key is EdDSA and the active key is kept whatever its algorithm (keys
    /// rotated or imported with `tessera keys` stay). Set: when the active key is of
    /// another algorithm at start, a new key of this one becomes the signing key; older
    /// keys keep verifying what they signed.
    pub signing_algorithm: Option<KeyAlgorithm>,
    /// Tolerated clock skew for `nbf`, in seconds, 0 to 60. Default 30. (`exp` is exact:
    /// this server issued it.)
    pub leeway_seconds: u32,
    /// Entries in the verified-token cache. Default 100000.
    pub verified_cache_capacity: u64,
    /// How often `lastUsedAt` is written, in seconds. Default 10.
    pub last_used_flush_seconds: u64,
    /// Largest request body, in bytes. Default 65536.
    pub max_body_bytes: usize,
    /// Dev mode: seed an organization and print credentials. Default false.
    pub dev: bool,
    /// With PostgreSQL: how often every cache is reloaded in full, in seconds, besides
    /// the change feed. Default 60.
    pub resync_seconds: u64,
    /// Longest a request may take, in seconds; after it the answer is 503 (a database
    /// that stopped answering must not hang requests). Default 10.
    pub request_timeout_seconds: u64,
    /// Lifetime of session access tokens, in minutes. Default 480 (8 hours).
    pub access_token_lifetime_minutes: u32,
    /// How long after sign-in a session can be refreshed, in days. Default 30.
    pub session_lifetime_days: u32,
    /// Proxies in front of the server whose `X-Forwarded-For` is believed, as addresses
    /// or blocks (`["10.0.0.0/8", "fd00::/8"]`). Default none: the client is the TCP
    /// peer. Behind a load balancer, list it, or every sign-in seems to come from it
    /// and one person's failures slow everyone down.
    pub trusted_proxies: Vec<crate::client::IpNet>,
    /// Argon2id cost. Not settable from files or the environment: tests lower it.
    #[serde(skip)]
    pub password_cost: PasswordCost,
    /// The master key itself, from `TESSERA_MASTER_KEY`. Never from a file or a flag.
    #[serde(skip)]
    pub master_key: Option<String>,
}

impl std::fmt::Debug for Config {
    /// The master key is never printed, nor a database URL (it may hold a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "[redacted]"),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("master_key_file", &self.master_key_file)
            .field("signing_algorithm", &self.signing_algorithm)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("dev", &self.dev)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("tessera-data"),
            database_url: None,
            issuer: None,
            audience: "tessera".into(),
            master_key_file: None,
            signing_algorithm: None,
            leeway_seconds: 30,
            verified_cache_capacity: 100_000,
            last_used_flush_seconds: 10,
            max_body_bytes: 64 * 1024,
            dev: false,
            resync_seconds: 60,
            request_timeout_seconds: 10,
            access_token_lifetime_minutes: 480,
            session_lifetime_days: 30,
            trusted_proxies: Vec::new(),
            password_cost: PasswordCost::default(),
            master_key: None,
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim().to_owned(),
        })
    }

    /// Applies `TESSERA_*` variables from `vars` (pass `std::env::vars()`).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (key, value) in vars {
            match key.as_str() {
                "TESSERA_LISTEN" => self.listen = parse("TESSERA_LISTEN", &value)?,
                "TESSERA_DATA_DIR" => self.data_dir = value.into(),
                "TESSERA_DATABASE_URL" => self.database_url = Some(value),
                "TESSERA_ISSUER" => self.issuer = Some(value),
                "TESSERA_AUDIENCE" => self.audience = value,
                "TESSERA_MASTER_KEY_FILE" => self.master_key_file = Some(value.into()),
                "TESSERA_MASTER_KEY" => self.master_key = Some(value),
                "TESSERA_SIGNING_ALGORITHM" => {
                    self.signing_algorithm = Some(parse("TESSERA_SIGNING_ALGORITHM", &value)?)
                }
                "TESSERA_LEEWAY_SECONDS" => {
                    self.leeway_seconds = parse("TESSERA_LEEWAY_SECONDS", &value)?
                }
                "TESSERA_ACCESS_TOKEN_LIFETIME_MINUTES" => {
                    self.access_token_lifetime_minutes =
                        parse("TESSERA_ACCESS_TOKEN_LIFETIME_MINUTES", &value)?
                }
                "TESSERA_REQUEST_TIMEOUT_SECONDS" => {
                    self.request_timeout_seconds = parse("TESSERA_REQUEST_TIMEOUT_SECONDS", &value)?
                }
                "TESSERA_TRUSTED_PROXIES" => {
                    self.trusted_proxies = value
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| {
                            s.parse().map_err(|message| ConfigError::Value {
                                key: "TESSERA_TRUSTED_PROXIES",
                                message,
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "TESSERA_SESSION_LIFETIME_DAYS" => {
                    self.session_lifetime_days = parse("TESSERA_SESSION_LIFETIME_DAYS", &value)?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks values that the types alone do not bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(ConfigError::Value {
                key: "leeway_seconds",
                message: format!("at most {MAX_LEEWAY_SECONDS}"),
            });
        }
        if self.audience.is_empty() {
            return Err(ConfigError::Value {
                key: "audience",
                message: "must not be empty".into(),
            });
        }
        if self.access_token_lifetime_minutes == 0 || self.access_token_lifetime_minutes > 24 * 60 {
            return Err(ConfigError::Value {
                key: "access_token_lifetime_minutes",
                message: "must be between 1 and 1440".into(),
            });
        }
        if self.session_lifetime_days == 0 || self.session_lifetime_days > 365 {
            return Err(ConfigError::Value {
                key: "session_lifetime_days",
                message: "must be between 1 and 365".into(),
            });
        }
        if self.resync_seconds == 0 {
            return Err(ConfigError::Value {
                key: "resync_seconds",
                message: "must be at least 1".into(),
            });
        }
        if self.request_timeout_seconds == 0 {
            return Err(ConfigError::Value {
                key: "request_timeout_seconds",
                message: "must be at least 1".into(),
            });
        }
        if self.last_used_flush_seconds == 0 {
            return Err(ConfigError::Value {
                key: "last_used_flush_seconds",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    pub fn session_lifetimes(&self) -> tessera_core::session::SessionLifetimes {
        tessera_core::session::SessionLifetimes {
            access: time::Duration::minutes(i64::from(self.access_token_lifetime_minutes)),
            absolute: time::Duration::days(i64::from(self.session_lifetime_days)),
        }
    }

    /// The issuer, defaulting to the listen address.
    pub fn issuer(&self) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| tessera_store::sqlite_url(&self.data_dir))
    }
}

fn parse<T: std::str::FromStr>(key: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError::Value {
        key,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_and_unknown_keys_refused() {
        let dir = std::env::temp_dir().join(format!("tessera-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tessera.toml");
        std::fs::write(&file, "audience = \"api\"\nleeway_seconds = 10\n").unwrap();
        let mut cfg = Config::from_file(&file).unwrap();
        assert_eq!(cfg.audience, "api");
        assert_eq!(cfg.leeway_seconds, 10);
        cfg.apply_env([("TESSERA_AUDIENCE".to_string(), "other".to_string())])
            .unwrap();
        assert_eq!(cfg.audience, "other");
        assert!(
            cfg.apply_env([("TESSERA_LISTEN".into(), "nope".into())])
                .is_err()
        );

        std::fs::write(&file, "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        let mut cfg = Config::from_file(&file).unwrap();
        assert_eq!(cfg.trusted_proxies.len(), 2);
        std::fs::write(&file, "trusted_proxies = [\"10.0.0.0/99\"]\n").unwrap();
        let err = Config::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("prefix"), "{err}");
        cfg.apply_env([(
            "TESSERA_TRUSTED_PROXIES".into(),
            "192.0.2.1, 2001:db8::/32".into(),
        )])
        .unwrap();
        assert_eq!(cfg.trusted_proxies.len(), 2);
        assert!(
            cfg.apply_env([("TESSERA_TRUSTED_PROXIES".into(), "nope".into())])
                .is_err()
        );

        std::fs::write(&file, "audiance = \"typo\"\n").unwrap();
        let err = Config::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("audiance"), "{err}");

        let cfg = Config {
            leeway_seconds: 61,
            ..Config::default()
        };
        assert!(cfg.validate().is_err());
    }
}
