//! Authorization: a pure function of who asks, what for, and on what.
//!
//! Roles never come from a token's claims: the server loads a [`Principal`] from its
//! store for each request, then asks [`authorize`]. The table this implements is
//! `PERMISSIONS.md`; the tests below walk every role against every action.

use std::collections::HashMap;

use crate::ids::{DeploymentId, OrganizationId, TokenId, UserId, WorkspaceId};
use crate::model::TokenScope;
use crate::role::{DeploymentRole, OrganizationRole, Role, WorkspaceRole};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    User(UserId),
    ApiToken(TokenId),
}

/// An authenticated caller with the roles the store holds for it in one organization.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: Subject,
    pub organization_id: OrganizationId,
    pub organization_role: Option<OrganizationRole>,
    pub workspace_roles: HashMap<WorkspaceId, WorkspaceRole>,
    pub deployment_roles: HashMap<DeploymentId, DeploymentRole>,
}

impl Principal {
    pub fn new(subject: Subject, organization_id: OrganizationId) -> Self {
        Self {
            subject,
            organization_id,
            organization_role: None,
            workspace_roles: HashMap::new(),
            deployment_roles: HashMap::new(),
        }
    }

    /// Adds one role binding. Where two paths lead to one entity the higher role wins.
    pub fn with_role(mut self, role: Role, entity: uuid::Uuid) -> Self {
        self.add_role(role, entity);
        self
    }

    pub fn add_role(&mut self, role: Role, entity: uuid::Uuid) {
        match role {
            Role::Organization(r) => {
                self.organization_role = self.organization_role.max(Some(r));
            }
            Role::Workspace(r) => {
                let slot = self
                    .workspace_roles
                    .entry(WorkspaceId::from_uuid(entity))
                    .or_insert(r);
                *slot = (*slot).max(r);
            }
            Role::Deployment(r) => {
                self.deployment_roles
                    .insert(DeploymentId::from_uuid(entity), r);
            }
        }
    }

    /// The caller's effective role in a workspace: its own, or Owner through the
    /// organization.
    pub fn workspace_role(&self, workspace: WorkspaceId) -> Option<WorkspaceRole> {
        let through_org = (self.organization_role == Some(OrganizationRole::Owner))
            .then_some(WorkspaceRole::Owner);
        self.workspace_roles
            .get(&workspace)
            .copied()
            .max(through_org)
    }

    /// The caller's powers on one deployment, expressed as a workspace role: its
    /// workspace role, or Operator's powers through `DEPLOYMENT_ADMIN` on that deployment.
    pub fn deployment_power(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
    ) -> Option<WorkspaceRole> {
        let through_admin = self
            .deployment_roles
            .contains_key(&deployment)
            .then_some(WorkspaceRole::Operator);
        self.workspace_role(workspace).max(through_admin)
    }
}

/// What is touched. Each carries its organization, so a foreign id is never "forbidden"
/// but "not found".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Organization(OrganizationId),
    Workspace(OrganizationId, WorkspaceId),
    Deployment(OrganizationId, WorkspaceId, DeploymentId),
    /// An API token, by its home scope.
    Token(OrganizationId, TokenScope),
}

impl Resource {
    pub const fn organization(&self) -> OrganizationId {
        match self {
            Self::Organization(o)
            | Self::Workspace(o, _)
            | Self::Deployment(o, _, _)
            | Self::Token(o, _) => *o,
        }
    }
}

/// What the caller wants to do. The comment names the least role that may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Organization Member.
    ViewOrganization,
    /// Organization Billing Admin.
    UpdateOrganization,
    /// Organization Billing Admin.
    ViewUsage,
    /// Organization Owner.
    CreateWorkspace,
    /// Organization Owner: create users, change organization roles, remove users.
    ManageUsers,
    /// Organization Owner.
    ManageTokenPolicy,
    /// Organization Owner.
    ReadAuditLog,
    /// Workspace Accessor.
    ViewWorkspace,
    /// Workspace Member.
    ViewWorkspaceUsers,
    /// Workspace Operator.
    CreateDeployment,
    /// Workspace Owner.
    UpdateWorkspace,
    /// Workspace Owner.
    DeleteWorkspace,
    /// Workspace Owner: give and take workspace and deployment roles.
    ManageWorkspaceUsers,
    /// Workspace Accessor, or Deployment Admin of it.
    ViewDeployment,
    /// Workspace Author, or Deployment Admin of it: the data-plane actions.
    Deploy,
    /// Workspace Operator, or Deployment Admin of it.
    UpdateDeployment,
    /// Workspace Operator.
    DeleteDeployment,
    /// Organization tokens: Organization Owner. Workspace and Deployment tokens:
    /// Workspace Owner of the home workspace. Covers view, create, update, rotate,
    /// delete and roles.
    ManageToken,
}

impl Action {
    /// Every action, for exhaustive tests and documentation.
    pub const ALL: [Action; 18] = [
        Self::ViewOrganization,
        Self::UpdateOrganization,
        Self::ViewUsage,
        Self::CreateWorkspace,
        Self::ManageUsers,
        Self::ManageTokenPolicy,
        Self::ReadAuditLog,
        Self::ViewWorkspace,
        Self::ViewWorkspaceUsers,
        Self::CreateDeployment,
        Self::UpdateWorkspace,
        Self::DeleteWorkspace,
        Self::ManageWorkspaceUsers,
        Self::ViewDeployment,
        Self::Deploy,
        Self::UpdateDeployment,
        Self::DeleteDeployment,
        Self::ManageToken,
    ];

    /// The name used by `/v1/authz?permission=`: `deployment.deploy` and so on.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ViewOrganization => "organization.view",
            Self::UpdateOrganization => "organization.update",
            Self::ViewUsage => "organization.usage.view",
            Self::CreateWorkspace => "organization.workspace.create",
            Self::ManageUsers => "organization.users.manage",
            Self::ManageTokenPolicy => "organization.token_policy.manage",
            Self::ReadAuditLog => "organization.audit_log.read",
            Self::ViewWorkspace => "workspace.view",
            Self::ViewWorkspaceUsers => "workspace.users.view",
            Self::CreateDeployment => "workspace.deployment.create",
            Self::UpdateWorkspace => "workspace.update",
            Self::DeleteWorkspace => "workspace.delete",
            Self::ManageWorkspaceUsers => "workspace.users.manage",
            Self::ViewDeployment => "deployment.view",
            Self::Deploy => "deployment.deploy",
            Self::UpdateDeployment => "deployment.update",
            Self::DeleteDeployment => "deployment.delete",
            Self::ManageToken => "token.manage",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The answer. `NotFound` hides the existence of another organization's entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    NotFound,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Self::Allow
    }

    fn from_bool(allowed: bool) -> Self {
        if allowed { Self::Allow } else { Self::Deny }
    }
}

/// May `principal` do `action` on `resource`?
pub fn authorize(principal: &Principal, action: Action, resource: &Resource) -> Decision {
    use Action as A;
    use OrganizationRole as O;
    use WorkspaceRole as W;

    if resource.organization() != principal.organization_id {
        return Decision::NotFound;
    }
    let org = principal.organization_role;
    let allowed = match (action, *resource) {
        (A::ViewOrganization, Resource::Organization(_)) => org >= Some(O::Member),
        (A::UpdateOrganization | A::ViewUsage, Resource::Organization(_)) => {
            org >= Some(O::BillingAdmin)
        }
        (
            A::CreateWorkspace | A::ManageUsers | A::ManageTokenPolicy | A::ReadAuditLog,
            Resource::Organization(_),
        ) => org >= Some(O::Owner),

        (A::ViewWorkspace, Resource::Workspace(_, ws)) => {
            principal.workspace_role(ws) >= Some(W::Accessor)
        }
        (A::ViewWorkspaceUsers, Resource::Workspace(_, ws)) => {
            principal.workspace_role(ws) >= Some(W::Member)
        }
        (A::CreateDeployment, Resource::Workspace(_, ws)) => {
            principal.workspace_role(ws) >= Some(W::Operator)
        }
        (
            A::UpdateWorkspace | A::DeleteWorkspace | A::ManageWorkspaceUsers,
            Resource::Workspace(_, ws),
        ) => principal.workspace_role(ws) >= Some(W::Owner),

        (A::ViewDeployment, Resource::Deployment(_, ws, d)) => {
            principal.deployment_power(ws, d) >= Some(W::Accessor)
        }
        (A::Deploy, Resource::Deployment(_, ws, d)) => {
            principal.deployment_power(ws, d) >= Some(W::Author)
        }
        (A::UpdateDeployment, Resource::Deployment(_, ws, d)) => {
            principal.deployment_power(ws, d) >= Some(W::Operator)
        }
        // Deleting is a workspace power: Deployment Admin does not reach it.
        (A::DeleteDeployment, Resource::Deployment(_, ws, _)) => {
            principal.workspace_role(ws) >= Some(W::Operator)
        }

        (A::ManageToken, Resource::Token(_, home)) => match home {
            TokenScope::Organization => org >= Some(O::Owner),
            TokenScope::Workspace(ws) | TokenScope::Deployment(ws, _) => {
                principal.workspace_role(ws) >= Some(W::Owner)
            }
        },
        // An action asked of the wrong kind of resource is refused, never guessed.
        _ => false,
    };
    Decision::from_bool(allowed)
}

/// Where a role is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantTarget {
    Organization(OrganizationId),
    Workspace(OrganizationId, WorkspaceId),
    Deployment(OrganizationId, WorkspaceId, DeploymentId),
}

/// No escalation: may `principal` grant `role` at `target`? Only a role it could hold
/// itself there (`granted <= own`), and only a role of the target's level.
pub fn may_grant(principal: &Principal, role: Role, target: GrantTarget) -> Decision {
    let org = match target {
        GrantTarget::Organization(o)
        | GrantTarget::Workspace(o, _)
        | GrantTarget::Deployment(o, _, _) => o,
    };
    if org != principal.organization_id {
        return Decision::NotFound;
    }
    let allowed = match (role, target) {
        (Role::Organization(r), GrantTarget::Organization(_)) => {
            principal.organization_role >= Some(r)
        }
        (Role::Workspace(r), GrantTarget::Workspace(_, ws)) => {
            principal.workspace_role(ws) >= Some(r)
        }
        (Role::Deployment(DeploymentRole::Admin), GrantTarget::Deployment(_, ws, d)) => {
            principal.deployment_power(ws, d) >= Some(WorkspaceRole::Operator)
        }
        _ => false,
    };
    Decision::from_bool(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::EntityType;

    fn org() -> OrganizationId {
        OrganizationId::from_uuid(uuid::Uuid::from_u128(1))
    }
    fn ws() -> WorkspaceId {
        WorkspaceId::from_uuid(uuid::Uuid::from_u128(2))
    }
    fn other_ws() -> WorkspaceId {
        WorkspaceId::from_uuid(uuid::Uuid::from_u128(3))
    }
    fn dep() -> DeploymentId {
        DeploymentId::from_uuid(uuid::Uuid::from_u128(4))
    }
    fn other_dep() -> DeploymentId {
        DeploymentId::from_uuid(uuid::Uuid::from_u128(5))
    }

    fn principal_with(role: Role) -> Principal {
        let entity = match role.entity_type() {
            EntityType::Organization => *org().as_uuid(),
            EntityType::Workspace => *ws().as_uuid(),
            EntityType::Deployment => *dep().as_uuid(),
        };
        Principal::new(Subject::User(UserId::new()), org()).with_role(role, entity)
    }

    /// The resource an action applies to, in `ws` / `dep`.
    fn resource_for(action: Action) -> Resource {
        use Action as A;
        match action {
            A::ViewOrganization
            | A::UpdateOrganization
            | A::ViewUsage
            | A::CreateWorkspace
            | A::ManageUsers
            | A::ManageTokenPolicy
            | A::ReadAuditLog => Resource::Organization(org()),
            A::ViewWorkspace
            | A::ViewWorkspaceUsers
            | A::CreateDeployment
            | A::UpdateWorkspace
            | A::DeleteWorkspace
            | A::ManageWorkspaceUsers => Resource::Workspace(org(), ws()),
            A::ViewDeployment | A::Deploy | A::UpdateDeployment | A::DeleteDeployment => {
                Resource::Deployment(org(), ws(), dep())
            }
            A::ManageToken => Resource::Token(org(), TokenScope::Workspace(ws())),
        }
    }

    /// PERMISSIONS.md, row by row: for each role, the actions it may do in `ws`/`dep`.
    fn expected(role: Role, action: Action) -> bool {
        use Action as A;
        let allowed: &[Action] = match role.as_str() {
            "ORGANIZATION_MEMBER" => &[A::ViewOrganization],
            "ORGANIZATION_BILLING_ADMIN" => {
                &[A::ViewOrganization, A::UpdateOrganization, A::ViewUsage]
            }
            "ORGANIZATION_OWNER" => &Action::ALL,
            "WORKSPACE_ACCESSOR" => &[A::ViewWorkspace, A::ViewDeployment],
            "WORKSPACE_MEMBER" => &[A::ViewWorkspace, A::ViewDeployment, A::ViewWorkspaceUsers],
            "WORKSPACE_AUTHOR" => &[
                A::ViewWorkspace,
                A::ViewDeployment,
                A::ViewWorkspaceUsers,
                A::Deploy,
            ],
            "WORKSPACE_OPERATOR" => &[
                A::ViewWorkspace,
                A::ViewDeployment,
                A::ViewWorkspaceUsers,
                A::Deploy,
                A::UpdateDeployment,
                A::CreateDeployment,
                A::DeleteDeployment,
            ],
            "WORKSPACE_OWNER" => &[
                A::ViewWorkspace,
                A::ViewDeployment,
                A::ViewWorkspaceUsers,
                A::Deploy,
                A::UpdateDeployment,
                A::CreateDeployment,
                A::DeleteDeployment,
                A::UpdateWorkspace,
                A::DeleteWorkspace,
                A::ManageWorkspaceUsers,
                A::ManageToken,
            ],
            "DEPLOYMENT_ADMIN" => &[A::ViewDeployment, A::Deploy, A::UpdateDeployment],
            other => panic!("role {other} missing from the table"),
        };
        allowed.contains(&action)
    }

    #[test]
    fn every_role_against_every_action() {
        for role in Role::ALL {
            let p = principal_with(role);
            for action in Action::ALL {
                let got = authorize(&p, action, &resource_for(action));
                let want = if expected(role, action) {
                    Decision::Allow
                } else {
                    Decision::Deny
                };
                assert_eq!(got, want, "{role} / {action:?}");
            }
        }
    }

    #[test]
    fn roles_do_not_leak_to_other_workspaces_or_deployments() {
        for role in Role::ALL {
            if role == Role::Organization(OrganizationRole::Owner) {
                continue;
            }
            let p = principal_with(role);
            for action in [Action::ViewWorkspace, Action::ManageToken] {
                let res = match action {
                    Action::ManageToken => {
                        Resource::Token(org(), TokenScope::Workspace(other_ws()))
                    }
                    _ => Resource::Workspace(org(), other_ws()),
                };
                assert_eq!(authorize(&p, action, &res), Decision::Deny, "{role}");
            }
            let res = Resource::Deployment(org(), other_ws(), other_dep());
            assert_eq!(
                authorize(&p, Action::ViewDeployment, &res),
                Decision::Deny,
                "{role}"
            );
        }
    }

    #[test]
    fn organization_tokens_are_managed_by_organization_owners_only() {
        let res = Resource::Token(org(), TokenScope::Organization);
        for role in Role::ALL {
            let want = role == Role::Organization(OrganizationRole::Owner);
            assert_eq!(
                authorize(&principal_with(role), Action::ManageToken, &res).is_allowed(),
                want
            );
        }
        let dep_token = Resource::Token(org(), TokenScope::Deployment(ws(), dep()));
        let owner = principal_with(Role::Workspace(WorkspaceRole::Owner));
        assert!(authorize(&owner, Action::ManageToken, &dep_token).is_allowed());
        let admin = principal_with(Role::Deployment(DeploymentRole::Admin));
        assert!(!authorize(&admin, Action::ManageToken, &dep_token).is_allowed());
    }

    #[test]
    fn another_organization_is_not_found_even_for_owners() {
        let p = principal_with(Role::Organization(OrganizationRole::Owner));
        let foreign = OrganizationId::from_uuid(uuid::Uuid::from_u128(99));
        for action in Action::ALL {
            let res = match resource_for(action) {
                Resource::Organization(_) => Resource::Organization(foreign),
                Resource::Workspace(_, w) => Resource::Workspace(foreign, w),
                Resource::Deployment(_, w, d) => Resource::Deployment(foreign, w, d),
                Resource::Token(_, s) => Resource::Token(foreign, s),
            };
            assert_eq!(authorize(&p, action, &res), Decision::NotFound);
        }
        assert_eq!(
            may_grant(
                &p,
                Role::Organization(OrganizationRole::Member),
                GrantTarget::Organization(foreign)
            ),
            Decision::NotFound
        );
    }

    #[test]
    fn no_escalation_when_granting() {
        // Each principal may grant exactly the roles at or below its own, at its level.
        for own in Role::ALL {
            let p = principal_with(own);
            for granted in Role::ALL {
                let target = match granted.entity_type() {
                    EntityType::Organization => GrantTarget::Organization(org()),
                    EntityType::Workspace => GrantTarget::Workspace(org(), ws()),
                    EntityType::Deployment => GrantTarget::Deployment(org(), ws(), dep()),
                };
                let want = match (own, granted) {
                    (Role::Organization(a), Role::Organization(b)) => a >= b,
                    (Role::Organization(OrganizationRole::Owner), _) => true,
                    (Role::Workspace(a), Role::Workspace(b)) => a >= b,
                    (Role::Workspace(a), Role::Deployment(_)) => a >= WorkspaceRole::Operator,
                    (Role::Deployment(_), Role::Deployment(_)) => true,
                    _ => false,
                };
                assert_eq!(
                    may_grant(&p, granted, target).is_allowed(),
                    want,
                    "{own} granting {granted}"
                );
            }
        }
    }

    #[test]
    fn a_role_of_the_wrong_level_is_never_granted() {
        let p = principal_with(Role::Organization(OrganizationRole::Owner));
        let ws_role = Role::Workspace(WorkspaceRole::Accessor);
        assert_eq!(
            may_grant(&p, ws_role, GrantTarget::Organization(org())),
            Decision::Deny
        );
        let org_role = Role::Organization(OrganizationRole::Member);
        assert_eq!(
            may_grant(&p, org_role, GrantTarget::Workspace(org(), ws())),
            Decision::Deny
        );
    }

    #[test]
    fn the_most_privileged_path_wins() {
        let p = principal_with(Role::Workspace(WorkspaceRole::Accessor)).with_role(
            Role::Organization(OrganizationRole::Owner),
            *org().as_uuid(),
        );
        assert_eq!(p.workspace_role(ws()), Some(WorkspaceRole::Owner));
        let p = principal_with(Role::Workspace(WorkspaceRole::Member))
            .with_role(Role::Deployment(DeploymentRole::Admin), *dep().as_uuid());
        assert!(
            authorize(
                &p,
                Action::UpdateDeployment,
                &Resource::Deployment(org(), ws(), dep())
            )
            .is_allowed()
        );
        assert!(
            !authorize(
                &p,
                Action::UpdateDeployment,
                &Resource::Deployment(org(), ws(), other_dep())
            )
            .is_allowed()
        );
    }

    #[test]
    fn action_names_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
        assert_eq!(Action::from_name("deployment.destroy"), None);
    }
}
