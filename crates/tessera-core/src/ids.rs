//! Typed identifiers. Each is a UUID (version 7 when Tessera makes it) with its own type,
//! so a workspace id can never be passed where a deployment id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.as_hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Only the canonical hyphenated form: one spelling per id.
                if s.len() != 36 {
                    return Err(InvalidId);
                }
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId)
            }
        }
    };
}

/// The text given is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

id_type!(
    /// An organization: the tenant.
    OrganizationId
);
id_type!(
    /// A workspace inside an organization.
    WorkspaceId
);
id_type!(
    /// A deployment inside a workspace.
    DeploymentId
);
id_type!(
    /// A person who signs in.
    UserId
);
id_type!(
    /// An API token (stable across rotations; each issued value has its own `jti`).
    TokenId
);
id_type!(
    /// One issued value of a token, or one access token of a session (`jti`).
    Jti
);
id_type!(
    /// A sign-in session (`sid`).
    SessionId
);
