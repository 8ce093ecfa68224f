//! Roles, in Astro's hierarchies. Each level's enum is declared from least to most
//! privileged, so `Ord` is the hierarchy: `WorkspaceOwner > WorkspaceOperator`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of entity a role is held on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityType {
    Organization,
    Workspace,
    Deployment,
}

impl EntityType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Organization => "ORGANIZATION",
            Self::Workspace => "WORKSPACE",
            Self::Deployment => "DEPLOYMENT",
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ORGANIZATION" => Ok(Self::Organization),
            "WORKSPACE" => Ok(Self::Workspace),
            "DEPLOYMENT" => Ok(Self::Deployment),
            _ => Err(UnknownName {
                what: "entity type",
                expected: "ORGANIZATION, WORKSPACE, DEPLOYMENT",
            }),
        }
    }
}

/// A name that is not one of the known ones; the message lists the accepted names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}; expected one of {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub expected: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrganizationRole {
    Member,
    BillingAdmin,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkspaceRole {
    Accessor,
    Member,
    Author,
    Operator,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeploymentRole {
    Admin,
}

/// Any role, at any level. Spelled on the wire as Astro spells it: `WORKSPACE_OPERATOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Organization(OrganizationRole),
    Workspace(WorkspaceRole),
    Deployment(DeploymentRole),
}

const ROLE_NAMES: [(&str, Role); 9] = [
    (
        "ORGANIZATION_MEMBER",
        Role::Organization(OrganizationRole::Member),
    ),
    (
        "ORGANIZATION_BILLING_ADMIN",
        Role::Organization(OrganizationRole::BillingAdmin),
    ),
    (
        "ORGANIZATION_OWNER",
        Role::Organization(OrganizationRole::Owner),
    ),
    (
        "WORKSPACE_ACCESSOR",
        Role::Workspace(WorkspaceRole::Accessor),
    ),
    ("WORKSPACE_MEMBER", Role::Workspace(WorkspaceRole::Member)),
    ("WORKSPACE_AUTHOR", Role::Workspace(WorkspaceRole::Author)),
    (
        "WORKSPACE_OPERATOR",
        Role::Workspace(WorkspaceRole::Operator),
    ),
    ("WORKSPACE_OWNER", Role::Workspace(WorkspaceRole::Owner)),
    ("DEPLOYMENT_ADMIN", Role::Deployment(DeploymentRole::Admin)),
];

const ROLE_LIST: &str = "ORGANIZATION_MEMBER, ORGANIZATION_BILLING_ADMIN, ORGANIZATION_OWNER, \
WORKSPACE_ACCESSOR, WORKSPACE_MEMBER, WORKSPACE_AUTHOR, WORKSPACE_OPERATOR, WORKSPACE_OWNER, \
DEPLOYMENT_ADMIN";

impl Role {
    pub const ALL: [Role; 9] = {
        let mut all = [Role::Deployment(DeploymentRole::Admin); 9];
        let mut i = 0;
        while i < 9 {
            all[i] = ROLE_NAMES[i].1;
            i += 1;
        }
        all
    };

    pub fn as_str(self) -> &'static str {
        ROLE_NAMES
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .unwrap_or("UNKNOWN")
    }

    pub const fn entity_type(self) -> EntityType {
        match self {
            Self::Organization(_) => EntityType::Organization,
            Self::Workspace(_) => EntityType::Workspace,
            Self::Deployment(_) => EntityType::Deployment,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ROLE_NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, r)| *r)
            .ok_or(UnknownName {
                what: "role",
                expected: ROLE_LIST,
            })
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hierarchies_order() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!(OrganizationRole::Owner > OrganizationRole::BillingAdmin);
        assert!(OrganizationRole::BillingAdmin > OrganizationRole::Member);
        assert!(WorkspaceRole::Owner > WorkspaceRole::Operator);
        assert!(WorkspaceRole::Operator > WorkspaceRole::Author);
        assert!(WorkspaceRole::Author > WorkspaceRole::Member);
        assert!(WorkspaceRole::Member > WorkspaceRole::Accessor);
        let err = "WORKSPACE_KING".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("WORKSPACE_OPERATOR"));
    }
}
