//! Tenants: names and the approval workflow's states (SPEC §4.2).

use std::fmt;
use std::str::FromStr;

use crate::problem::Problem;

pub const MAX_TENANT_NAME: usize = 100;

/// A tenant's display name: trimmed, 1–100 characters. Uniqueness within an account
/// is case-insensitive, through [`TenantName::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(input: Option<&str>) -> Result<Self, Problem> {
        let name = input.unwrap_or("").trim();
        if name.is_empty() {
            return Err(Problem::invalid_field("TENANT_NAME_REQUIRED", "name", "{field} is required."));
        }
        if name.chars().count() > MAX_TENANT_NAME || name.chars().any(char::is_control) {
            return Err(Problem::invalid_field(
                "INVALID_TENANT_NAME",
                "name",
                "{field} must be at most {limit} printable characters.",
            )
            .detail("limit", MAX_TENANT_NAME.to_string()));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form in which names are compared for uniqueness.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Where a tenant stands in the approval workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    Active,
    PendingApproval,
    Rejected,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "ACTIVE",
            TenantStatus::PendingApproval => "PENDING_APPROVAL",
            TenantStatus::Rejected => "REJECTED",
        }
    }

    /// Only tenants that never went live can be deleted.
    pub fn can_be_deleted(self) -> bool {
        matches!(self, TenantStatus::PendingApproval | TenantStatus::Rejected)
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TenantStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ACTIVE" => Ok(TenantStatus::Active),
            "PENDING_APPROVAL" => Ok(TenantStatus::PendingApproval),
            "REJECTED" => Ok(TenantStatus::Rejected),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_keyed_case_insensitively() {
        let n = TenantName::parse(Some("  Acme Insurance ")).unwrap();
        assert_eq!(n.as_str(), "Acme Insurance");
        assert_eq!(n.key(), "acme insurance");
        assert_eq!(TenantName::parse(Some("  ")).unwrap_err().code, "TENANT_NAME_REQUIRED");
        assert_eq!(TenantName::parse(Some(&"x".repeat(101))).unwrap_err().code, "INVALID_TENANT_NAME");
    }
}
