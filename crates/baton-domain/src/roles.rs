//! Roles and permissions (SPEC §3).
//!
//! `*-write` implies `*-read`; `account-admin` and `tenant-admin` imply every role of
//! their kind. An endpoint passes when the caller holds any one of its listed roles.

use std::fmt;
use std::str::FromStr;

use crate::problem::Problem;

/// Whether a key (or token) acts for the whole account or for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Account,
    Tenant,
}

macro_rules! roles {
    ($($variant:ident => $name:literal, $kind:ident, $implied_read:expr;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Role { $($variant),* }

        impl Role {
            pub const ALL: &'static [Role] = &[$(Role::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Role::$variant => $name),* }
            }

            /// The kind of key this role belongs on; `None` for operator-only roles.
            pub fn kind(self) -> Option<KeyKind> {
                match self { $(Role::$variant => kind_of!($kind)),* }
            }

            /// The read role that this write role implies, if any.
            fn implied_read(self) -> Option<Role> {
                match self { $(Role::$variant => $implied_read),* }
            }
        }

        impl FromStr for Role {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($name => Ok(Role::$variant),)*
                    _ => Err(()),
                }
            }
        }
    };
}

macro_rules! kind_of {
    (account) => {
        Some(KeyKind::Account)
    };
    (tenant) => {
        Some(KeyKind::Tenant)
    };
    (platform) => {
        None
    };
}

roles! {
    AccountAdmin => "account-admin", account, None;
    AccountTenantRead => "account-tenant-read", account, None;
    AccountTenantWrite => "account-tenant-write", account, Some(Role::AccountTenantRead);
    AccountTenantApproval => "account-tenant-approval", account, None;
    TenantAdmin => "tenant-admin", tenant, None;
    TenantManagement => "tenant-management", tenant, None;
    TenantAppRead => "tenant-app-read", tenant, None;
    TenantAppWrite => "tenant-app-write", tenant, Some(Role::TenantAppRead);
    TenantCollectSchemeRead => "tenant-collect-scheme-read", tenant, None;
    TenantCollectSchemeWrite => "tenant-collect-scheme-write", tenant, Some(Role::TenantCollectSchemeRead);
    TenantPayoutSchemeRead => "tenant-payout-scheme-read", tenant, None;
    TenantPayoutSchemeWrite => "tenant-payout-scheme-write", tenant, Some(Role::TenantPayoutSchemeRead);
    TenantRewardGroupRead => "tenant-reward-group-read", tenant, None;
    TenantRewardGroupWrite => "tenant-reward-group-write", tenant, Some(Role::TenantRewardGroupRead);
    TenantTransactionRead => "tenant-transaction-read", tenant, None;
    TenantTransactionWrite => "tenant-transaction-write", tenant, Some(Role::TenantTransactionRead);
    PlatformAdmin => "platform-admin", platform, None;
}

impl Role {
    /// Whether holding `self` satisfies a requirement for `required`.
    pub fn grants(self, required: Role) -> bool {
        if self == required || self.implied_read() == Some(required) {
            return true;
        }
        match self {
            Role::AccountAdmin => required.kind() == Some(KeyKind::Account),
            Role::TenantAdmin => required.kind() == Some(KeyKind::Tenant),
            _ => false,
        }
    }

    /// Parses a role name given for a key of `kind`, refusing unknown names and roles
    /// of the other kind with `INVALID_ROLE`.
    pub fn parse_for(name: &str, kind: KeyKind) -> Result<Role, Problem> {
        match name.parse::<Role>() {
            Ok(role) if role.kind() == Some(kind) => Ok(role),
            _ => {
                Err(Problem::invalid_field("INVALID_ROLE", "roles", "{role} is not a valid role for this kind of key.")
                    .detail("role", name.chars().take(64).collect::<String>()))
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The roles held by a key or token: a small, sorted, de-duplicated list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    pub fn new(mut roles: Vec<Role>) -> Self {
        roles.sort();
        roles.dedup();
        Self(roles)
    }

    /// Parses the roles requested for a key of `kind`. At least one is required.
    pub fn parse_for(names: &[String], kind: KeyKind) -> Result<Self, Problem> {
        let names: Vec<&String> = names.iter().filter(|n| !n.trim().is_empty()).collect();
        if names.is_empty() {
            return Err(Problem::invalid_field("ROLES_REQUIRED", "roles", "At least one role is required."));
        }
        names.into_iter().map(|n| Role::parse_for(n, kind)).collect::<Result<Vec<_>, _>>().map(Self::new)
    }

    /// Whether any held role grants any of `required`.
    pub fn satisfies_any(&self, required: &[Role]) -> bool {
        required.iter().any(|r| self.0.iter().any(|held| held.grants(*r)))
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|r| r.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_and_admin_implies_its_kind() {
        assert!(Role::TenantAppWrite.grants(Role::TenantAppRead));
        assert!(!Role::TenantAppRead.grants(Role::TenantAppWrite));
        assert!(Role::TenantAdmin.grants(Role::TenantTransactionWrite));
        assert!(!Role::TenantAdmin.grants(Role::AccountTenantRead));
        assert!(Role::AccountAdmin.grants(Role::AccountTenantApproval));
        assert!(!Role::AccountAdmin.grants(Role::TenantManagement));
        assert!(!Role::AccountTenantWrite.grants(Role::AccountTenantApproval));
        assert!(!Role::AccountAdmin.grants(Role::PlatformAdmin));
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
    }

    #[test]
    fn wrong_kind_is_invalid_role() {
        let err = RoleSet::parse_for(&["tenant-admin".into()], KeyKind::Account).unwrap_err();
        assert_eq!(err.code, "INVALID_ROLE");
        assert!(RoleSet::parse_for(&["platform-admin".into()], KeyKind::Tenant).is_err());
        assert_eq!(RoleSet::parse_for(&[], KeyKind::Tenant).unwrap_err().code, "ROLES_REQUIRED");
        let ok = RoleSet::parse_for(&["TENANT-ADMIN".into(), "tenant-admin".into()], KeyKind::Tenant).unwrap();
        assert_eq!(ok.names(), vec!["tenant-admin"]);
    }
}
